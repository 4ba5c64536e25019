/* patientctl's command line; see ctl_opts.h. One table drives parsing and --help, so a
 * new option cannot be accepted without being documented. */
#include "ctl_opts.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl_reqid.h"
#include "pw_config.h"
#include "pw_envelope.h"

const char *const ctl_opts_field_names[CTL_NFIELDS] = {
    "nombre", "apellido_paterno", "apellido_materno", "dni", "fecha_nacimiento", "sexo",
};

/* --timeout's upper bound in seconds (a day); its error message says so. */
#define TIMEOUT_MAX 86400
/* --kid's longest; its error message says so. */
#define KID_MAX 128

#define M_TOKEN  (1u << CTL_CMD_TOKEN)
#define M_CREATE (1u << CTL_CMD_CREATE)
#define M_UPDATE (1u << CTL_CMD_UPDATE)
#define M_DELETE (1u << CTL_CMD_DELETE)
#define M_FIELDS (M_CREATE | M_UPDATE)
#define M_GET    (1u << CTL_CMD_GET)
#define M_LIST   (1u << CTL_CMD_LIST)
#define M_LOAD   (1u << CTL_CMD_LOAD)
#define M_NET    (M_FIELDS | M_DELETE | M_GET | M_LIST | M_LOAD)
#define M_ONE    (M_FIELDS | M_DELETE | M_GET | M_LIST)
#define M_ALL    (M_TOKEN | M_NET)

typedef enum opt_key {
	K_HELP,
	K_TEXT,     /* the value as it is, into the field at opt_def.off */
	K_NONEMPTY, /* the same, but "" is refused */
	K_TTL,
	K_REQUEST_ID,
	K_TIMEOUT,
	K_ID,
	K_VERSION,
	K_LIMIT,
	K_FORMAT,
	K_INFLIGHT,
	K_ID_PREFIX,
	K_ALG,
	K_KID,
} opt_key;

typedef struct opt_def {
	const char *name;
	const char *metavar; /**< NULL: takes no value */
	unsigned cmds;
	opt_key key;
	size_t off; /**< K_TEXT, K_NONEMPTY: the const char * field of ctl_opts */
	const char *help;
} opt_def;

#define OFF(f) offsetof(ctl_opts, f)

/* An option may appear twice with different commands when its meaning differs. */
static const opt_def opts[] = {
    {"--sub", "EMAIL", M_TOKEN, K_NONEMPTY, OFF(sub), "the token's subject, the owner (required)"},
    {"--ttl", "DURATION", M_TOKEN, K_TTL, 0,
     "lifetime: 3600, 90s, 30m, 1h or 2d (default 1h, at most 366d)"},
    {"--scope", "SCOPES", M_TOKEN, K_TEXT, OFF(scope),
     "space-separated scopes (default \"patients:read patients:write\")"},
    {"--jwks-out", "FILE", M_TOKEN, K_NONEMPTY, OFF(jwks_out),
     "sign with a key of its own, not JWT_SECRET, and add its public JWK to the JWK Set"
     " FILE (created if missing; a key of the same kid is replaced)"},
    {"--alg", "RS256|ES256|EdDSA", M_TOKEN, K_ALG, 0, "the algorithm (required with --jwks-out)"},
    {"--kid", "KID", M_TOKEN, K_KID, 0,
     "the key's id, 1-128 printable ASCII (default: its RFC 7638 thumbprint)"},
    {"--key-in", "PEM", M_TOKEN, K_NONEMPTY, OFF(key_in),
     "sign with this private key (RSA >= 2048 bits, EC P-256 or Ed25519, as --alg says);"
     " default: a new key"},
    {"--key-out", "PEM", M_TOKEN, K_NONEMPTY, OFF(key_out),
     "write the new private key there (PKCS#8, mode 0600), to sign again with --key-in"},
    {"--token", "JWT", M_NET, K_NONEMPTY, OFF(token), "the caller's token (or --sub, or PW_TOKEN)"},
    {"--sub", "EMAIL", M_NET, K_NONEMPTY, OFF(sub),
     "mint a 1 h HS256 token for EMAIL with JWT_SECRET"},
    {"--payload", "JSON", M_FIELDS, K_TEXT, OFF(payload),
     "the payload, a JSON object (the flags override its keys)"},
    {"--nombre", "TEXT", M_FIELDS, K_TEXT, OFF(fields[CTL_F_NOMBRE]), "payload field nombre"},
    {"--apellido-paterno", "TEXT", M_FIELDS, K_TEXT, OFF(fields[CTL_F_APELLIDO_PATERNO]),
     "payload field apellido_paterno"},
    {"--apellido-materno", "TEXT", M_FIELDS, K_TEXT, OFF(fields[CTL_F_APELLIDO_MATERNO]),
     "payload field apellido_materno (update: --payload '{\"apellido_materno\":null}'"
     " clears it)"},
    {"--dni", "DNI", M_FIELDS, K_TEXT, OFF(fields[CTL_F_DNI]), "payload field dni"},
    {"--fecha-nacimiento", "YYYY-MM-DD", M_FIELDS, K_TEXT, OFF(fields[CTL_F_FECHA_NACIMIENTO]),
     "payload field fecha_nacimiento"},
    {"--sexo", "M|F|X", M_FIELDS, K_TEXT, OFF(fields[CTL_F_SEXO]), "payload field sexo"},
    {"--id", "N", M_GET | M_UPDATE | M_DELETE, K_ID, 0, "the patient's id (required)"},
    {"--version", "N", M_UPDATE | M_DELETE, K_VERSION, 0,
     "the version you last saw (required): a stale one is answered 409 version_conflict"},
    {"--limit", "N", M_LIST, K_LIMIT, 0, "page size, 1-200 (the worker's default: 50)"},
    {"--cursor", "CURSOR", M_LIST, K_TEXT, OFF(cursor), "next_cursor of the previous page"},
    {"--dni", "DNI", M_LIST, K_TEXT, OFF(fields[CTL_F_DNI]), "only the patient with this dni"},
    {"--q", "PREFIX", M_LIST, K_TEXT, OFF(q),
     "case-insensitive prefix of nombre or an apellido (% and _ literal)"},
    {"--format", "csv|jsonl", M_LOAD, K_FORMAT, 0,
     "default: by extension (.csv; .jsonl or .ndjson)"},
    {"--inflight", "N", M_LOAD, K_INFLIGHT, 0,
     "rows sent and not answered yet, at most (default 500)"},
    {"--id-prefix", "P", M_LOAD, K_ID_PREFIX, 0,
     "request ids are load:P:LINE (default P: FILE's base name)"},
    {"--journal", "PATH", M_LOAD, K_TEXT, OFF(journal),
     "rows answered 2xx, skipped when run again (default FILE.done)"},
    {"--errors", "PATH", M_LOAD, K_TEXT, OFF(errors),
     "failed rows, one JSON object a line (default FILE.errors.jsonl)"},
    {"--request-id", "ID", M_ONE, K_REQUEST_ID, 0,
     "1-128 of [A-Za-z0-9._:-] (default: a random UUID)"},
    {"--reply-topic", "TOPIC", M_NET, K_TEXT, OFF(reply_topic),
     "TOPIC_REPLIES (default) or TOPIC_REPLIES.SUFFIX, which must exist"},
    {"--timeout", "SECONDS", M_ONE, K_TIMEOUT, 0, "wait at most this long, all told (default 10)"},
    {"--timeout", "SECONDS", M_LOAD, K_TIMEOUT, 0,
     "a row not answered this long after sending fails (default 10)"},
    {"--help", NULL, M_ALL, K_HELP, 0, "this text"},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

/* The settings a client uses; any other worker setting is an unknown option here. */
static const char *const settings[] = {
    "KAFKA_BROKERS", "JWT_ALG",           "JWT_SECRET",   "JWT_ISSUER",
    "JWT_AUDIENCE",  "JWT_OWNER_CLAIM",   "TOPIC_CREATE", "TOPIC_QUERY",
    "TOPIC_REPLIES", "MAX_MESSAGE_BYTES", "LOG_LEVEL",
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static const struct {
	const char *name;
	ctl_opts_cmd cmd;
	const char *synopsis;
	const char *what;
} cmds[] = {
    {"token", CTL_CMD_TOKEN,
     "token --sub EMAIL [--ttl DURATION] [--scope SCOPES]\n"
     "                 [--jwks-out FILE --alg RS256|ES256|EdDSA [--kid KID]"
     " [--key-in PEM | --key-out PEM]]",
     "print a development token signed with JWT_SECRET (HS256); with JWT_OWNER_CLAIM other\n"
     "than sub, that claim is set too, and iss/aud from JWT_ISSUER/JWT_AUDIENCE.\n"
     "With --jwks-out, sign instead with a key of patientctl's own (new, or --key-in) and\n"
     "add its public key to the JWK Set FILE, for a worker with JWT_JWKS_FILE=FILE: no\n"
     "identity provider needed (development and tests only)"},
    {"create", CTL_CMD_CREATE, "create (--payload JSON | --nombre ... ) [IDENTITY] [options]",
     "send one patient.create to TOPIC_CREATE and print the reply JSON; sent again with\n"
     "the same --request-id and payload, it gets the same reply and creates nothing"},
    {"update", CTL_CMD_UPDATE,
     "update --id N --version N (--payload JSON | --nombre ... ) [IDENTITY] [options]",
     "send one patient.update to TOPIC_CREATE and print the reply JSON: the fields given\n"
     "replace the stored ones; sent again with the same --request-id and payload, it gets\n"
     "the same reply, whatever changed since"},
    {"delete", CTL_CMD_DELETE, "delete --id N --version N [IDENTITY] [options]",
     "send one patient.delete to TOPIC_CREATE and print the reply JSON (the patient is\n"
     "gone for its owner; its row stays for the audit trail)"},
    {"get", CTL_CMD_GET, "get --id N [IDENTITY] [options]",
     "send one patient.get to TOPIC_QUERY and print the reply JSON"},
    {"list", CTL_CMD_LIST, "list [--limit N] [--cursor C] [--dni DNI] [--q PREFIX] [IDENTITY]",
     "send one patient.list to TOPIC_QUERY and print the reply JSON (one page)"},
    {"load", CTL_CMD_LOAD, "load FILE [--format csv|jsonl] [--inflight N] [IDENTITY] [options]",
     "send every row of FILE (CSV with a header row, or JSON Lines) as a patient.create,\n"
     "or as the command its op column or field names (create, update, delete; an update\n"
     "or delete row has id and version);\n"
     "rows already answered 2xx by an earlier run (FILE.done) are skipped, failed rows go\n"
     "to FILE.errors.jsonl; progress on stderr, a summary on stdout. FILE '-' reads\n"
     "standard input: then --format and --id-prefix are required, and the journal and\n"
     "errors file are P.done and P.errors.jsonl in the current folder"},
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

/* The command named name; CTL_CMD_NONE when there is none. */
static ctl_opts_cmd cmd_of(const char *name)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(name, cmds[i].name) == 0)
			return cmds[i].cmd;
	return CTL_CMD_NONE;
}

static const char *cmd_name(ctl_opts_cmd c)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (cmds[i].cmd == c)
			return cmds[i].name;
	return "patientctl";
}

/* "--kafka-brokers" -> "KAFKA_BROKERS" when it names a client setting. */
static const char *setting_of(const char *arg, size_t len)
{
	char var[64];

	if (len <= 2 || len - 2 >= sizeof(var))
		return NULL;
	for (size_t i = 2; i < len; i++)
		var[i - 2] = arg[i] == '-' ? '_' : (char)toupper((unsigned char)arg[i]);
	var[len - 2] = '\0';
	for (size_t i = 0; i < NSETTINGS; i++)
		if (strcmp(settings[i], var) == 0)
			return settings[i];
	return NULL;
}

static int parse_ll(const char *s, long long min, long long max, long long *out)
{
	char *end;

	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

pw_status ctl_opts_parse_duration(const char *s, long *out)
{
	char *end;
	long mult = 1;

	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || !isdigit((unsigned char)*s))
		return PW_E_INVALID;
	if (*end != '\0') {
		if (end[1] != '\0')
			return PW_E_INVALID;
		switch (*end) {
		case 's':
			mult = 1;
			break;
		case 'm':
			mult = 60;
			break;
		case 'h':
			mult = 3600;
			break;
		case 'd':
			mult = 86400;
			break;
		default:
			return PW_E_INVALID;
		}
	}
	if (v < 1 || v > 366L * 86400 / mult)
		return PW_E_INVALID;
	*out = v * mult;
	return PW_OK;
}

static const opt_def *find_opt(const char *arg, size_t len, ctl_opts_cmd cmd)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strlen(opts[i].name) == len && strncmp(opts[i].name, arg, len) == 0 &&
		    (opts[i].cmds & (1u << cmd)))
			return &opts[i];
	return NULL;
}

/* A kid goes into a token's header and the set: printable ASCII keeps it one word in a
 * log line and the same bytes in every JSON encoder. */
static bool kid_valid(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > KID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] < 0x21 || v[i] > 0x7e)
			return false;
	return true;
}

static ctl_exit bad(FILE *err, const char *what, const char *why)
{
	fprintf(err, "%s: %s\n", what, why);
	return CTL_EXIT_USAGE;
}

/* Stores one option's value; CTL_EXIT_USAGE (after the line) when it is malformed. */
static ctl_exit store(ctl_opts *o, const opt_def *d, const char *v, FILE *err)
{
	long long n;

	switch (d->key) {
	case K_HELP:
		o->help = true;
		break;
	case K_TEXT:
	case K_NONEMPTY:
		if (d->key == K_NONEMPTY && *v == '\0')
			return bad(err, d->name, "must not be empty");
		*(const char **)((char *)o + d->off) = v;
		break;
	case K_TTL:
		if (ctl_opts_parse_duration(v, &o->ttl_s) != PW_OK)
			return bad(err, d->name,
			           "must be like 3600, 90s, 30m, 1h or 2d (1 s to 366 d)");
		break;
	case K_REQUEST_ID:
		if (!pw_envelope_request_id_valid(v))
			return bad(err, d->name, "must be 1 to 128 characters of [A-Za-z0-9._:-]");
		o->request_id = v;
		break;
	case K_TIMEOUT:
		if (parse_ll(v, 1, TIMEOUT_MAX, &n) != 0)
			return bad(err, d->name,
			           "must be a whole number of seconds from 1 to 86400");
		o->timeout_s = (int)n;
		break;
	case K_ID:
	case K_VERSION:
		if (parse_ll(v, 1, LLONG_MAX, d->key == K_ID ? &o->id : &o->version) != 0)
			return bad(err, d->name, "must be a whole number from 1 up");
		break;
	case K_LIMIT:
		/* The range is the worker's to judge: it answers 400 with its reason. */
		if (parse_ll(v, LLONG_MIN, LLONG_MAX, &o->limit) != 0)
			return bad(err, d->name, "must be a whole number");
		o->has_limit = true;
		break;
	case K_FORMAT:
		if (strcmp(v, "csv") == 0)
			o->format = CTL_INPUT_CSV;
		else if (strcmp(v, "jsonl") == 0 || strcmp(v, "ndjson") == 0)
			o->format = CTL_INPUT_JSONL;
		else
			return bad(err, d->name, "must be csv or jsonl");
		break;
	case K_INFLIGHT:
		if (parse_ll(v, 1, 100000, &n) != 0)
			return bad(err, d->name, "must be a whole number from 1 to 100000");
		o->inflight = (int)n;
		break;
	case K_ID_PREFIX:
		if (!ctl_reqid_prefix_valid(v))
			return bad(err, d->name, "must be 1 to 102 characters of [A-Za-z0-9._-]");
		o->id_prefix = v;
		break;
	case K_ALG:
		if (ctl_jwk_alg_parse(v, &o->alg) != PW_OK)
			return bad(err, d->name, "must be RS256, ES256 or EdDSA");
		o->has_alg = true;
		break;
	case K_KID:
		if (!kid_valid(v))
			return bad(err, d->name,
			           "must be 1 to 128 printable ASCII characters, no space");
		o->kid = v;
		break;
	}
	return CTL_EXIT_OK;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && strcmp(s + n - k, suffix) == 0;
}

/* A create's or update's fields: --payload (a JSON object) or flags, at least one. */
static ctl_exit check_payload(const ctl_opts *o, int any_field, FILE *err)
{
	if (o->payload == NULL && !any_field)
		return bad(err, "--payload", "required (a JSON object), or field flags");
	if (o->payload != NULL) {
		json_t *p = json_loads(o->payload, JSON_REJECT_DUPLICATES, NULL);
		int is_obj = json_is_object(p);
		json_decref(p);
		if (!is_obj)
			return bad(err, "--payload", "is not a JSON object");
	}
	return CTL_EXIT_OK;
}

/* token's key options belong together: without --jwks-out the token is HS256 and they would
 * be silently ignored. */
static ctl_exit check_jwks(const ctl_opts *o, FILE *err)
{
	if (o->jwks_out == NULL) {
		const char *stray = o->has_alg  ? "--alg"
		                    : o->kid    ? "--kid"
		                    : o->key_in ? "--key-in"
		                                : "--key-out";
		if (o->has_alg || o->kid || o->key_in || o->key_out)
			return bad(err, stray, "only with --jwks-out FILE");
		return CTL_EXIT_OK;
	}
	if (!o->has_alg)
		return bad(err, "--alg", "required with --jwks-out: RS256, ES256 or EdDSA");
	if (o->key_in && o->key_out)
		return bad(err, "--key-out", "not with --key-in: that key is in a file already");
	if (o->key_out && strcmp(o->key_out, o->jwks_out) == 0)
		return bad(err, "--key-out",
		           "must not be the --jwks-out file (a private key "
		           "would be published)");
	return CTL_EXIT_OK;
}

/* What only the whole command line can tell: required options, exclusive ones. */
static ctl_exit check_command(ctl_opts *o, FILE *err)
{
	int any_field = 0;

	for (int i = 0; i < CTL_NFIELDS; i++)
		any_field |= o->fields[i] != NULL;
	if (o->token && o->sub)
		return bad(err, "--token", "give --token or --sub, not both");
	switch (o->cmd) {
	case CTL_CMD_TOKEN:
		if (o->sub == NULL)
			return bad(err, "--sub", "required: the token's subject (an email)");
		return check_jwks(o, err);
	case CTL_CMD_UPDATE:
	case CTL_CMD_DELETE:
		if (o->id == 0)
			return bad(err, "--id", "required");
		if (o->version == 0)
			return bad(err, "--version", "required: the version you last saw");
		return o->cmd == CTL_CMD_UPDATE ? check_payload(o, any_field, err) : CTL_EXIT_OK;
	case CTL_CMD_CREATE:
		return check_payload(o, any_field, err);
	case CTL_CMD_GET:
		if (o->id == 0)
			return bad(err, "--id", "required");
		break;
	case CTL_CMD_LOAD:
		if (o->file == NULL)
			return bad(err, "load", "a FILE argument is required");
		/* Standard input has no name to derive request ids, format or the journal's
		 * place from: the caller names them (the same prefix again resumes). */
		if (strcmp(o->file, "-") == 0 && o->format == CTL_INPUT_AUTO)
			return bad(err, "--format", "required when loading standard input ('-')");
		if (strcmp(o->file, "-") == 0 && o->id_prefix == NULL)
			return bad(err, "--id-prefix",
			           "required when loading standard input ('-'): it names the rows' "
			           "request ids, so the same stream loaded again is recognised");
		if (o->format == CTL_INPUT_AUTO) {
			if (ends_with(o->file, ".csv") || ends_with(o->file, ".CSV"))
				o->format = CTL_INPUT_CSV;
			else if (ends_with(o->file, ".jsonl") || ends_with(o->file, ".ndjson"))
				o->format = CTL_INPUT_JSONL;
			else
				return bad(err, "--format",
				           "required: the file name ends in none of .csv, .jsonl, "
				           ".ndjson");
		}
		break;
	default:
		break;
	}
	return CTL_EXIT_OK;
}

/* argv[1]: the command, or a request for help (then argv[2] may name a command). */
static ctl_exit take_command(ctl_opts *o, int argc, char **argv, FILE *err)
{
	if (argc < 2)
		return bad(err, "patientctl", "a command is required (see patientctl --help)");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		o->help = true;
		if (argc > 2)
			o->cmd = cmd_of(argv[2]);
		return CTL_EXIT_OK;
	}
	o->cmd = cmd_of(argv[1]);
	if (o->cmd == CTL_CMD_NONE) {
		fprintf(err, "%s: unknown command (token, create, get, list or load)\n", argv[1]);
		return CTL_EXIT_USAGE;
	}
	/* --help first: a user asking for help gets it whatever else is on the line. */
	for (int a = 2; a < argc; a++)
		if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0)
			o->help = true;
	return CTL_EXIT_OK;
}

/* An option of the command; its value follows '=' (eq) or is the next argument. */
static ctl_exit take_option(ctl_opts *o, const opt_def *d, const char *eq, int argc, char **argv,
                            int *a, FILE *err)
{
	const char *v = NULL;

	if (d->metavar != NULL) {
		if (eq != NULL)
			v = eq + 1;
		else if (*a + 1 < argc)
			v = argv[++*a];
		else
			return bad(err, d->name, "needs a value");
	} else if (eq != NULL) {
		return bad(err, d->name, "takes no value");
	}
	return store(o, d, v, err);
}

/* A setting flag (var) is handed to pw_config_load as it is, with its value when that is
 * the next argument: it applies the same rules as to the environment. */
static ctl_exit take_setting(ctl_opts *o, const char *var, const char *eq, int argc, char **argv,
                             int *a, FILE *err)
{
	if (o->cfg_argc + 2 > CTL_OPTS_MAX_CFG_ARGS)
		return bad(err, var, "too many setting flags");
	o->cfg_argv[o->cfg_argc++] = argv[*a];
	if (eq == NULL) {
		if (*a + 1 >= argc)
			return bad(err, var, "flag needs a value");
		o->cfg_argv[o->cfg_argc++] = argv[++*a];
	}
	return CTL_EXIT_OK;
}

/* argv[*a]: load's FILE, an option or a setting flag; *a moves past a value it takes. */
static ctl_exit take_arg(ctl_opts *o, int argc, char **argv, int *a, FILE *err)
{
	const char *arg = argv[*a];
	const char *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);

	if (strncmp(arg, "--", 2) != 0 || len == 2) {
		if (o->cmd == CTL_CMD_LOAD && o->file == NULL && *arg != '\0') {
			o->file = arg;
			return CTL_EXIT_OK;
		}
		fprintf(err, "%s: unexpected argument (see patientctl %s --help)\n", arg,
		        cmd_name(o->cmd));
		return CTL_EXIT_USAGE;
	}
	const opt_def *d = find_opt(arg, len, o->cmd);
	if (d != NULL)
		return take_option(o, d, eq, argc, argv, a, err);
	const char *var = setting_of(arg, len);
	if (var == NULL) {
		fprintf(err, "%.*s: unknown option for %s (see patientctl %s --help)\n", (int)len,
		        arg, cmd_name(o->cmd), cmd_name(o->cmd));
		return CTL_EXIT_USAGE;
	}
	return take_setting(o, var, eq, argc, argv, a, err);
}

ctl_exit ctl_opts_parse(ctl_opts *o, int argc, char **argv, FILE *err)
{
	ctl_exit rc;

	memset(o, 0, sizeof(*o));
	o->timeout_s = 10;
	o->ttl_s = 3600;
	o->inflight = 500;
	o->cfg_argv[o->cfg_argc++] = argv[0];
	rc = take_command(o, argc, argv, err);
	if (rc != CTL_EXIT_OK || o->help)
		return rc;
	for (int a = 2; a < argc; a++) {
		rc = take_arg(o, argc, argv, &a, err);
		if (rc != CTL_EXIT_OK)
			return rc;
	}
	o->cfg_argv[o->cfg_argc] = NULL;
	return check_command(o, err);
}

static void help_options(FILE *out, ctl_opts_cmd cmd)
{
	for (size_t i = 0; i < NOPTS; i++) {
		char left[64];
		if (!(opts[i].cmds & (1u << cmd)))
			continue;
		snprintf(left, sizeof(left), "%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
		         opts[i].metavar ? opts[i].metavar : "");
		fprintf(out, "  %-29s %s\n", left, opts[i].help);
	}
}

static void help_environment(FILE *out)
{
	fprintf(out,
	        "Environment (the worker's names; each also a flag, e.g. --kafka-brokers=H:P):\n"
	        "  KAFKA_BROKERS      bootstrap servers (required for create, get, list, load)\n"
	        "  JWT_SECRET         HS256 secret for token and --sub (at least 32 bytes)\n"
	        "  JWT_ALG            must be HS256 (the default) to mint tokens\n"
	        "  JWT_OWNER_CLAIM    claim naming the owner (default sub)\n"
	        "  JWT_ISSUER, JWT_AUDIENCE  put into minted tokens when set\n"
	        "  TOPIC_CREATE       default patients.create (create, load)\n"
	        "  TOPIC_QUERY        default patients.query (get, list)\n"
	        "  TOPIC_REPLIES      default patients.replies: replies are read there, and\n"
	        "                     --reply-topic must be it or start with it plus '.'\n"
	        "  MAX_MESSAGE_BYTES  default 65536: a larger command is refused before sending\n"
	        "  LOG_LEVEL          librdkafka's messages on stderr (default info)\n"
	        "  PW_TOKEN           the token, when neither --token nor --sub is given\n");
}

static void help_exit(FILE *out)
{
	fprintf(out,
	        "Exit status: 0 reply 2xx (load: every row fine); 1 reply 4xx/5xx (load: some\n"
	        "row failed); 2 bad option, setting or file; 3 no reply within --timeout (load:\n"
	        "some row timed out), or the broker did not answer; 130 interrupted.\n");
}

void ctl_opts_help(FILE *out, ctl_opts_cmd cmd)
{
	if (cmd != CTL_CMD_NONE) {
		for (size_t i = 0; i < NCMDS; i++) {
			if (cmds[i].cmd != cmd)
				continue;
			fprintf(out, "usage: patientctl %s\n%s\n\nOptions:\n", cmds[i].synopsis,
			        cmds[i].what);
		}
		help_options(out, cmd);
		if (cmd != CTL_CMD_TOKEN)
			fprintf(out, "\nIDENTITY is --token JWT, --sub EMAIL, or PW_TOKEN in the "
			             "environment.\n");
		fprintf(out, "\n");
		help_environment(out);
		fprintf(out, "\n");
		help_exit(out);
		return;
	}
	fprintf(out, "usage: patientctl COMMAND [options]   (patientctl COMMAND --help: one "
	             "command)\n\n");
	for (size_t i = 0; i < NCMDS; i++) {
		fprintf(out, "patientctl %s\n", cmds[i].synopsis);
		help_options(out, cmds[i].cmd);
		fprintf(out, "\n");
	}
	fprintf(out,
	        "IDENTITY (create, get, list, load): --token JWT; or --sub EMAIL, which mints a\n"
	        "1 h HS256 token with JWT_SECRET (development); or PW_TOKEN in the "
	        "environment.\nTokens are never printed, except by `token`.\n\n");
	help_environment(out);
	fprintf(out, "\n");
	help_exit(out);
}
