/* Configuration table: one row per setting drives parsing, --help and the start-up log. */
#include "pw_config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "pw_fetch.h"
#include "pw_jwk.h"
#include "pw_log.h"
#include "pw_util.h"

typedef enum { CFG_STR, CFG_INT } cfg_type;

enum {
	CFG_SECRET = 1 << 0,    /**< never printed */
	CFG_TOPIC = 1 << 1,     /**< must be a legal Kafka topic name */
	CFG_EMPTY_OFF = 1 << 2, /**< set but empty means off, not the default */
};

typedef struct cfg_row {
	const char *var;
	cfg_type type;
	size_t off;
	const char *def; /**< NULL: unset by default */
	unsigned need;   /**< required by commands that need this group; 0: never required */
	unsigned flags;
	long min, max;
	const char *help;
} cfg_row;

#define OFF(f) offsetof(pw_config, f)

static const cfg_row rows[] = {
    {"KAFKA_BROKERS", CFG_STR, OFF(kafka_brokers), NULL, PW_CFG_NEED_KAFKA, 0, 0, 0,
     "bootstrap servers, host:port[,host:port...]"},
    {"KAFKA_GROUP_ID", CFG_STR, OFF(group_id), "patient-worker", 0, 0, 0, 0,
     "consumer group; workers with the same id share the load"},
    {"DATABASE_URL", CFG_STR, OFF(database_url), NULL, PW_CFG_NEED_DB, CFG_SECRET, 0, 0,
     "libpq connection string or URI"},
    {"DATABASE_ROLE", CFG_STR, OFF(database_role), "patients_app", 0, 0, 0, 0,
     "role the session switches to (SET ROLE) before any work"},
    {"JWT_ALG", CFG_STR, OFF(jwt_alg_name), NULL, 0, 0, 0, 0,
     "HS256, RS256, ES256 or EdDSA (a key set: a comma-separated list); default HS256 with "
     "JWT_SECRET, else RS256; tokens naming any other algorithm are refused"},
    {"JWT_SECRET", CFG_STR, OFF(jwt_secret), NULL, 0, CFG_SECRET, 0, 0,
     "HS256 shared secret, at least 32 bytes"},
    {"JWT_PUBLIC_KEY_FILE", CFG_STR, OFF(jwt_public_key_file), NULL, 0, 0, 0, 0,
     "PEM public key for RS256 (RSA), ES256 (EC P-256) or EdDSA (Ed25519)"},
    {"JWT_JWKS_FILE", CFG_STR, OFF(jwt_jwks_file), NULL, 0, 0, 0, 0,
     "a JSON Web Key Set on disk (RFC 7517): RSA, EC P-256 and Ed25519 keys by kid"},
    {"JWT_JWKS_URL", CFG_STR, OFF(jwt_jwks_url), NULL, 0, 0, 0, 0,
     "a JWK Set over HTTPS (not implemented yet: refused)"},
    {"JWT_OIDC_ISSUER", CFG_STR, OFF(jwt_oidc_issuer), NULL, 0, 0, 0, 0,
     "OpenID Connect issuer whose discovered key set is used (not implemented yet: refused)"},
    {"JWT_JWKS_REFRESH_S", CFG_INT, OFF(jwt_jwks_refresh_s), "600", 0, 0, 60, 86400,
     "key set refresh period, seconds"},
    {"JWT_JWKS_CA_FILE", CFG_STR, OFF(jwt_jwks_ca_file), NULL, 0, 0, 0, 0,
     "extra trusted CAs (PEM) for fetching the key set"},
    {"JWT_ISSUER", CFG_STR, OFF(jwt_issuer), NULL, 0, 0, 0, 0, "expected iss (unset: not checked)"},
    {"JWT_AUDIENCE", CFG_STR, OFF(jwt_audience), NULL, 0, 0, 0, 0,
     "expected aud (unset: not checked)"},
    {"JWT_LEEWAY_S", CFG_INT, OFF(jwt_leeway_s), "30", 0, 0, 0, 600,
     "clock leeway for exp/nbf/iat, seconds"},
    {"JWT_OWNER_CLAIM", CFG_STR, OFF(jwt_owner_claim), "sub", 0, 0, 0, 0,
     "the claim that names the owner"},
    {"JWT_REQUIRE_SCOPE", CFG_INT, OFF(jwt_require_scope), "0", 0, 0, 0, 1,
     "1: require scope patients:write for creates, patients:read for queries"},
    {"TOPIC_CREATE", CFG_STR, OFF(topic_create), "patients.create", 0, CFG_TOPIC, 0, 0,
     "topic of patient.create commands"},
    {"TOPIC_QUERY", CFG_STR, OFF(topic_query), "patients.query", 0, CFG_TOPIC, 0, 0,
     "topic of patient.get and patient.list commands"},
    {"TOPIC_REPLIES", CFG_STR, OFF(topic_replies), "patients.replies", 0, CFG_TOPIC, 0, 0,
     "default reply topic, and the prefix every reply_to must have"},
    {"TOPIC_DLQ", CFG_STR, OFF(topic_dlq), "patients.dlq", 0, CFG_TOPIC, 0, 0, "dead-letter topic"},
    {"MAX_MESSAGE_BYTES", CFG_INT, OFF(max_message_bytes), "65536", 0, 0, 64, 16777216,
     "larger command records go to the DLQ"},
    {"MAX_INFLIGHT", CFG_INT, OFF(max_inflight), "10000", 0, 0, 1, 1000000,
     "records read but not yet acknowledged; the consumer waits above this"},
    {"SHUTDOWN_TIMEOUT_MS", CFG_INT, OFF(shutdown_timeout_ms), "8000", 0, 0, 0, 600000,
     "on SIGTERM, how long to wait for replies in flight"},
    {"LOG_LEVEL", CFG_STR, OFF(log_level), "info", 0, 0, 0, 0, "debug, info, warn or error"},
    {"BATCH_MAX", CFG_INT, OFF(batch_max), "500", 0, 0, 1, 5000,
     "creates written in one transaction, at most"},
    {"BATCH_WAIT_MS", CFG_INT, OFF(batch_wait_ms), "5", 0, 0, 0, 1000,
     "how long a batch of creates waits to fill, ms"},
    {"DB_WRITE_SESSIONS", CFG_INT, OFF(db_write_sessions), "4", 0, 0, 1, 16,
     "database sessions of the write lane; each writes the batches of its own partitions"},
    {"DB_QUERY_SESSIONS", CFG_INT, OFF(db_query_sessions), "2", 0, 0, 1, 16,
     "database sessions of the query lane; each answers the queries of its own partitions, "
     "so one slow query holds up only its share"},
    {"JWT_CACHE_SIZE", CFG_INT, OFF(jwt_cache_size), "10000", 0, 0, 0, 1000000,
     "verified tokens remembered per lane (time claims re-checked on every use); 0: none"},
    {"CURSOR_SECRET", CFG_STR, OFF(cursor_secret), NULL, 0, CFG_SECRET, 0, 0,
     "key that signs patient.list cursors; set the same on every worker (unset: a random "
     "key per process, so cursors do not survive a restart)"},
    {"HTTP_ADDR", CFG_STR, OFF(http_addr), "127.0.0.1:9464", 0, CFG_EMPTY_OFF, 0, 0,
     "host:port of the /metrics, /healthz and /readyz listener (empty: none)"},
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

static char **str_field(pw_config *cfg, const cfg_row *r)
{
	return (char **)((char *)cfg + r->off);
}

static int *int_field(pw_config *cfg, const cfg_row *r)
{
	return (int *)((char *)cfg + r->off);
}

static const char *str_value(const pw_config *cfg, const cfg_row *r)
{
	return *(char *const *)((const char *)cfg + r->off);
}

static int int_value(const pw_config *cfg, const cfg_row *r)
{
	return *(const int *)((const char *)cfg + r->off);
}

/* Whether arg is the flag of var ("--kafka-brokers" for KAFKA_BROKERS). *value is what
 * follows '=', or NULL when the value is the next argument. */
static bool flag_matches(const char *arg, const char *var, const char **value)
{
	size_t i;

	if (strncmp(arg, "--", 2) != 0)
		return false;
	arg += 2;
	for (i = 0; var[i]; i++) {
		char want = var[i] == '_' ? '-' : (char)tolower((unsigned char)var[i]);
		if (arg[i] != want)
			return false;
	}
	if (arg[i] == '=') {
		*value = arg + i + 1;
		return true;
	}
	if (arg[i] == '\0') {
		*value = NULL;
		return true;
	}
	return false;
}

/* The row whose flag arg is, or NULL; *value as flag_matches leaves it. */
static const cfg_row *flag_row(const char *arg, const char **value)
{
	for (size_t i = 0; i < NROWS; i++)
		if (flag_matches(arg, rows[i].var, value))
			return &rows[i];
	return NULL;
}

static bool set_value(pw_config *cfg, const cfg_row *r, const char *v, FILE *err)
{
	if (r->type == CFG_STR) {
		char **f = str_field(cfg, r);
		free(*f);
		*f = NULL;
		if (v == NULL || *v == '\0') /* empty means unset */
			return true;
		*f = strdup(v);
		if (*f == NULL) {
			fprintf(err, "%s: out of memory\n", r->var);
			return false;
		}
		return true;
	}
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < r->min || n > r->max) {
		fprintf(err, "%s: must be an integer from %ld to %ld\n", r->var, r->min, r->max);
		return false;
	}
	*int_field(cfg, r) = (int)n;
	return true;
}

static bool valid_topic(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && t[i] != '.' && t[i] != '_' && t[i] != '-')
			return false;
	return true;
}

/* host:port[,host:port...], optionally with a PLAINTEXT:// style prefix. */
static bool valid_brokers(const char *s)
{
	const char *p = s;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *scheme = NULL;
		for (size_t i = 0; i + 2 < len; i++)
			if (p[i] == ':' && p[i + 1] == '/' && p[i + 2] == '/')
				scheme = p + i + 3;
		const char *host = scheme ? scheme : p;
		size_t hlen = len - (size_t)(host - p);
		const char *colon = NULL;
		for (size_t i = 0; i < hlen; i++)
			if (host[i] == ':')
				colon = host + i;
		if (colon == NULL || colon == host || colon + 1 >= host + hlen)
			return false;
		for (const char *d = colon + 1; d < host + hlen; d++)
			if (!isdigit((unsigned char)*d))
				return false;
		long port = strtol(colon + 1, NULL, 10);
		if (port < 1 || port > 65535)
			return false;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return *s != '\0';
}

/* Whether libpq can parse it. Its error text may quote the string, which can hold a
 * password, so it is dropped unread. */
static bool valid_conninfo(const char *url)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &perr);
	bool ok = opts != NULL;

	PQconninfoFree(opts);
	PQfreemem(perr);
	return ok;
}

/* host:port or [v6]:port, split as the listener splits it (pw_util_hostport_split), with a
 * port of 1-65535. */
static bool valid_listen_addr(const char *addr)
{
	char host[256], port[16], *end;

	if (pw_util_hostport_split(addr, host, sizeof(host), port, sizeof(port)) != PW_OK)
		return false;
	long n = strtol(port, &end, 10);
	return *end == '\0' && isdigit((unsigned char)port[0]) && n >= 1 && n <= 65535;
}

/* The key must be of the type the algorithm needs: an RSA key cannot verify ES256. */
static bool check_pem(const pw_config *cfg, FILE *err)
{
	BIO *bio = BIO_new_mem_buf(cfg->jwt_key, (int)cfg->jwt_key_len);
	EVP_PKEY *pkey = NULL;
	bool ok = false;

	if (bio == NULL)
		goto out;
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (pkey == NULL) {
		fprintf(err, "JWT_PUBLIC_KEY_FILE: %s is not a PEM public key\n",
		        cfg->jwt_public_key_file);
		goto out;
	}
	if (cfg->jwt_alg == PW_ALG_RS256 &&
	    (!EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_get_bits(pkey) < PW_JWK_RSA_MIN_BITS)) {
		fprintf(err, "JWT_PUBLIC_KEY_FILE: RS256 needs an RSA public key of 2048 bits or "
		             "more\n");
		goto out;
	}
	if (cfg->jwt_alg == PW_ALG_ES256 &&
	    (!EVP_PKEY_is_a(pkey, "EC") || EVP_PKEY_get_bits(pkey) != 256)) {
		fprintf(err, "JWT_PUBLIC_KEY_FILE: ES256 needs an EC P-256 public key\n");
		goto out;
	}
	if (cfg->jwt_alg == PW_ALG_EDDSA && !EVP_PKEY_is_a(pkey, "ED25519")) {
		fprintf(err, "JWT_PUBLIC_KEY_FILE: EdDSA needs an Ed25519 public key\n");
		goto out;
	}
	ok = true;
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	ERR_clear_error();
	return ok;
}

/* The set must parse and hold a key for at least one of the algorithms allowed; the
 * verifier parses it again (each lane has its own keys). */
static bool check_jwks(const pw_config *cfg, FILE *err)
{
	pw_jwk_set set = {0};
	char why[256];
	bool fits = false;

	if (pw_jwk_set_parse((const char *)cfg->jwt_key, cfg->jwt_key_len, &set, NULL, NULL, why,
	                     sizeof(why)) != PW_OK) {
		fprintf(err, "JWT_JWKS_FILE: %s: %s\n", cfg->jwt_jwks_file, why);
		return false;
	}
	for (size_t i = 0; i < set.n; i++)
		fits |= (cfg->jwt_algs & PW_ALG_BIT(pw_jwk_alg(set.keys[i].type))) != 0;
	pw_jwk_set_clear(&set);
	if (!fits)
		fprintf(err, "JWT_JWKS_FILE: %s has no key for JWT_ALG=%s\n", cfg->jwt_jwks_file,
		        cfg->jwt_alg_name);
	return fits;
}

/* http:// only to a loopback host: anything else would let the network choose our keys. */
static bool check_key_url(const char *var, const char *url, FILE *err)
{
	if (pw_fetch_url_allowed(url))
		return true;
	fprintf(err, "%s: must be an https:// URL (http:// only to a loopback host)\n", var);
	return false;
}

/* The issuer is the iss every token must carry: JWT_ISSUER may repeat it, not differ. */
static bool check_oidc(pw_config *cfg, FILE *err)
{
	if (!check_key_url("JWT_OIDC_ISSUER", cfg->jwt_oidc_issuer, err))
		return false;
	if (cfg->jwt_issuer == NULL) {
		cfg->jwt_issuer = strdup(cfg->jwt_oidc_issuer);
		if (cfg->jwt_issuer == NULL) {
			fprintf(err, "JWT_OIDC_ISSUER: out of memory\n");
			return false;
		}
	} else if (strcmp(cfg->jwt_issuer, cfg->jwt_oidc_issuer) != 0) {
		fprintf(err, "JWT_ISSUER: must be unset or equal to JWT_OIDC_ISSUER\n");
		return false;
	}
	return true;
}

static bool load_key(pw_config *cfg, FILE *err)
{
	switch (cfg->jwt_source) {
	case PW_KEYS_SECRET:
		if (cfg->jwt_secret == NULL) {
			fprintf(err, "JWT_SECRET: required when JWT_ALG=HS256\n");
			return false;
		}
		/* RFC 7518 3.2: an HS256 key must be at least as long as the hash. */
		if (strlen(cfg->jwt_secret) < 32) {
			fprintf(err, "JWT_SECRET: must be at least 32 bytes for HS256\n");
			return false;
		}
		cfg->jwt_key_len = strlen(cfg->jwt_secret);
		cfg->jwt_key = (unsigned char *)strdup(cfg->jwt_secret);
		if (cfg->jwt_key == NULL) {
			fprintf(err, "JWT_SECRET: out of memory\n");
			return false;
		}
		return true;
	case PW_KEYS_PEM:
		if (cfg->jwt_public_key_file == NULL) {
			fprintf(err,
			        "JWT_PUBLIC_KEY_FILE: required when JWT_ALG=%s (or a key set: "
			        "JWT_JWKS_FILE)\n",
			        cfg->jwt_alg_name);
			return false;
		}
		if (pw_util_read_file(cfg->jwt_public_key_file, 1024 * 1024, (char **)&cfg->jwt_key,
		                      &cfg->jwt_key_len) != PW_OK) {
			fprintf(err, "JWT_PUBLIC_KEY_FILE: cannot read %s: %s\n",
			        cfg->jwt_public_key_file, strerror(errno ? errno : EIO));
			return false;
		}
		return check_pem(cfg, err);
	case PW_KEYS_JWKS_FILE:
		if (pw_util_read_file(cfg->jwt_jwks_file, PW_JWK_SET_MAX_BYTES,
		                      (char **)&cfg->jwt_key, &cfg->jwt_key_len) != PW_OK) {
			fprintf(err, "JWT_JWKS_FILE: cannot read %s: %s\n", cfg->jwt_jwks_file,
			        strerror(errno ? errno : EIO));
			return false;
		}
		return check_jwks(cfg, err);
	case PW_KEYS_JWKS_URL:
		/* Fetched when the worker starts, not here: migrate and patientctl never need it.
		 */
		return check_key_url("JWT_JWKS_URL", cfg->jwt_jwks_url, err);
	case PW_KEYS_OIDC:
		return check_oidc(cfg, err);
	}
	return false;
}

/* ---- pw_config_load, step by step: each writes one line per problem it finds ------------ */

/* Every setting from its variable; unset or empty (unless CFG_EMPTY_OFF) is the default. */
static bool load_environment(pw_config *cfg, FILE *err)
{
	bool ok = true;

	for (size_t i = 0; i < NROWS; i++) {
		const char *v = getenv(rows[i].var);
		if (v == NULL || (*v == '\0' && !(rows[i].flags & CFG_EMPTY_OFF)))
			v = rows[i].def;
		if (v != NULL && !set_value(cfg, &rows[i], v, err))
			ok = false;
	}
	return ok;
}

/* --name=value or --name value over the environment. Arguments that do not start with "--"
 * are someone else's (the command's positional arguments) and are skipped. */
static bool load_flags(pw_config *cfg, int argc, char **argv, FILE *err)
{
	bool ok = true;

	for (int a = 1; a < argc; a++) {
		const char *v = NULL;
		const cfg_row *r = flag_row(argv[a], &v);
		if (r == NULL) {
			if (strncmp(argv[a], "--", 2) == 0) {
				fprintf(err, "%s: unknown option (see --help)\n", argv[a]);
				ok = false;
			}
			continue;
		}
		if (v == NULL) {
			if (a + 1 >= argc) {
				fprintf(err, "%s: flag needs a value\n", r->var);
				ok = false;
				continue;
			}
			v = argv[++a];
		}
		if (!set_value(cfg, r, v, err))
			ok = false;
	}
	return ok;
}

/* What the table says of each string: required by a group the command needs, a topic name. */
static bool check_rows(const pw_config *cfg, unsigned need, FILE *err)
{
	bool ok = true;

	for (size_t i = 0; i < NROWS; i++) {
		const cfg_row *r = &rows[i];
		if (r->type != CFG_STR)
			continue;
		const char *v = str_value(cfg, r);
		if (v == NULL && (r->need & need)) {
			fprintf(err, "%s: required but not set\n", r->var);
			ok = false;
		}
		if (v != NULL && (r->flags & CFG_TOPIC) && !valid_topic(v)) {
			fprintf(err, "%s: '%s' is not a valid Kafka topic name\n", r->var, v);
			ok = false;
		}
	}
	return ok;
}

/* Where the worker connects and listens, and the role it takes. */
static bool check_connections(const pw_config *cfg, unsigned need, FILE *err)
{
	bool ok = true;

	if ((need & PW_CFG_NEED_KAFKA) && cfg->kafka_brokers &&
	    !valid_brokers(cfg->kafka_brokers)) {
		fprintf(err, "KAFKA_BROKERS: '%s' is not a host:port[,host:port...] list\n",
		        cfg->kafka_brokers);
		ok = false;
	}
	if ((need & PW_CFG_NEED_DB) && cfg->database_url && !valid_conninfo(cfg->database_url)) {
		fprintf(err, "DATABASE_URL: not a valid libpq connection string or URI\n");
		ok = false;
	}
	if (cfg->http_addr && !valid_listen_addr(cfg->http_addr)) {
		fprintf(err, "HTTP_ADDR: '%s' is not host:port (empty switches it off)\n",
		        cfg->http_addr);
		ok = false;
	}
	if (cfg->database_role && strlen(cfg->database_role) > 63) {
		fprintf(err, "DATABASE_ROLE: longer than 63 bytes\n");
		ok = false;
	}
	return ok;
}

/* The level takes effect here, so what start-up logs next is filtered by it. */
static bool apply_log_level(const pw_config *cfg, FILE *err)
{
	pw_log_level level;

	if (cfg->log_level == NULL || pw_log_parse_level(cfg->log_level, &level) != PW_OK) {
		fprintf(err, "LOG_LEVEL: must be debug, info, warn or error\n");
		return false;
	}
	pw_log_min_level = level;
	return true;
}

/* The one key source (exactly one may be set, when the command verifies tokens); with
 * none, the one JWT_ALG implies, so that the message names the setting that is missing. */
static bool pick_source(pw_config *cfg, unsigned need, FILE *err)
{
	const char *const names[] = {"JWT_SECRET", "JWT_PUBLIC_KEY_FILE", "JWT_JWKS_FILE",
	                             "JWT_JWKS_URL", "JWT_OIDC_ISSUER"};
	const char *const set[] = {cfg->jwt_secret, cfg->jwt_public_key_file, cfg->jwt_jwks_file,
	                           cfg->jwt_jwks_url, cfg->jwt_oidc_issuer};
	int first = -1;

	for (int i = 0; i < 5; i++) {
		if (set[i] == NULL)
			continue;
		if (first >= 0 && (need & PW_CFG_NEED_JWT)) {
			fprintf(err, "%s: only one key source may be set, and %s is set too\n",
			        names[i], names[first]);
			return false;
		}
		if (first < 0)
			first = i;
	}
	if (first >= 0)
		cfg->jwt_source = (pw_config_key_source)first;
	else
		cfg->jwt_source =
		    cfg->jwt_alg_name == NULL || strcmp(cfg->jwt_alg_name, "HS256") == 0
		        ? PW_KEYS_SECRET
		        : PW_KEYS_PEM;
	return true;
}

static bool alg_of(const char *name, size_t len, pw_config_jwt_alg *alg)
{
	static const char *const names[] = {"HS256", "RS256", "ES256", "EdDSA"};

	for (int i = 0; i < 4; i++)
		if (strlen(names[i]) == len && strncmp(name, names[i], len) == 0) {
			*alg = (pw_config_jwt_alg)i;
			return true;
		}
	return false;
}

/* JWT_ALG into cfg->jwt_alg (the first listed) and cfg->jwt_algs; unset is HS256 with
 * JWT_SECRET, else RS256. When the command verifies tokens: a list only with a key set,
 * HS256 only with JWT_SECRET. */
static bool set_alg(pw_config *cfg, unsigned need, FILE *err)
{
	bool key_set = cfg->jwt_source >= PW_KEYS_JWKS_FILE;
	const char *list = cfg->jwt_alg_name;
	int n = 0;

	if (list == NULL)
		list = cfg->jwt_source == PW_KEYS_SECRET ? "HS256" : "RS256";
	cfg->jwt_algs = 0;
	for (const char *p = list;; p++) {
		size_t len = strcspn(p, ",");
		pw_config_jwt_alg alg;
		if (!alg_of(p, len, &alg)) {
			fprintf(err, "JWT_ALG: '%s' is not one of HS256, RS256, ES256, EdDSA%s\n",
			        list,
			        key_set ? " (or a comma-separated list of the last three)" : "");
			return false;
		}
		if (n++ == 0)
			cfg->jwt_alg = alg;
		cfg->jwt_algs |= PW_ALG_BIT(alg);
		p += len;
		if (*p == '\0')
			break;
	}
	if (!(need & PW_CFG_NEED_JWT))
		goto named;
	if (n > 1 && !key_set) {
		fprintf(err, "JWT_ALG: a list of algorithms needs a key set (JWT_JWKS_FILE, "
		             "JWT_JWKS_URL or JWT_OIDC_ISSUER)\n");
		return false;
	}
	if ((cfg->jwt_algs & PW_ALG_BIT(PW_ALG_HS256)) && cfg->jwt_source != PW_KEYS_SECRET) {
		fprintf(err,
		        "JWT_ALG: HS256 needs JWT_SECRET (a public key cannot be an HMAC key)\n");
		return false;
	}
	if (cfg->jwt_source == PW_KEYS_SECRET && cfg->jwt_alg != PW_ALG_HS256) {
		fprintf(
		    err,
		    "JWT_PUBLIC_KEY_FILE: required when JWT_ALG=%s (or a key set; JWT_SECRET is "
		    "for HS256 only)\n",
		    list);
		return false;
	}
named:
	/* The effective value, for the log and --help's reader. */
	if (cfg->jwt_alg_name == NULL && (cfg->jwt_alg_name = strdup(list)) == NULL) {
		fprintf(err, "JWT_ALG: out of memory\n");
		return false;
	}
	return true;
}

/* The algorithm, then its key when the command verifies tokens (not for an unknown
 * algorithm: which key it needs is unknown too), then the owner claim. */
static bool check_jwt(pw_config *cfg, unsigned need, FILE *err)
{
	bool ok = pick_source(cfg, need, err) && set_alg(cfg, need, err);

	if (ok && (need & PW_CFG_NEED_JWT) && !load_key(cfg, err))
		ok = false;
	if (cfg->jwt_owner_claim == NULL) {
		fprintf(err, "JWT_OWNER_CLAIM: must not be empty\n");
		ok = false;
	}
	return ok;
}

pw_status pw_config_load(pw_config *cfg, int argc, char **argv, unsigned need, FILE *err)
{
	bool ok = true;

	memset(cfg, 0, sizeof(*cfg));
	/* Every step runs whatever the previous ones found, so one start reports every bad
	 * setting. */
	ok &= load_environment(cfg, err);
	ok &= load_flags(cfg, argc, argv, err);
	ok &= check_rows(cfg, need, err);
	ok &= check_connections(cfg, need, err);
	ok &= apply_log_level(cfg, err);
	ok &= check_jwt(cfg, need, err);
	return ok ? PW_OK : PW_E_CONFIG;
}

void pw_config_free(pw_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < NROWS; i++)
		if (rows[i].type == CFG_STR)
			free(*str_field(cfg, &rows[i]));
	if (cfg->jwt_key != NULL) {
		memset(cfg->jwt_key, 0, cfg->jwt_key_len);
		free(cfg->jwt_key);
	}
	memset(cfg, 0, sizeof(*cfg));
}

bool pw_config_is_setting(const char *var)
{
	for (size_t i = 0; i < NROWS; i++)
		if (strcmp(rows[i].var, var) == 0)
			return true;
	return false;
}

void pw_config_print_help(FILE *out)
{
	fprintf(out, "Settings (environment variable, or --flag=value with the name in lower "
	             "case and '-' for '_'):\n");
	for (size_t i = 0; i < NROWS; i++) {
		const cfg_row *r = &rows[i];
		fprintf(out, "  %-20s %s%s (default: %s)\n", r->var, r->help,
		        r->need ? " [required]" : "", r->def ? r->def : "unset");
	}
}

void pw_config_log(const pw_config *cfg)
{
	char line[2048];
	size_t n = 0;

	for (size_t i = 0; i < NROWS && n < sizeof(line); i++) {
		const cfg_row *r = &rows[i];
		const char *sep = i ? " " : "";
		int w;
		if (r->type == CFG_INT) {
			w = snprintf(line + n, sizeof(line) - n, "%s%s=%d", sep, r->var,
			             int_value(cfg, r));
		} else {
			const char *v = str_value(cfg, r);
			if (v != NULL && (r->flags & CFG_SECRET))
				v = "(set)";
			w = snprintf(line + n, sizeof(line) - n, "%s%s=%s", sep, r->var,
			             v ? v : "(unset)");
		}
		if (w < 0)
			break;
		n += (size_t)w;
	}
	PW_LOG_INFO(NULL, "configuration: %s", line);
}
