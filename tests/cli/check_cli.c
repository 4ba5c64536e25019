/* Command-line tests: runs the built patient-worker and patientctl as child processes,
 * each with an environment built from nothing (PATH plus what the case needs), and checks
 * exit statuses, the line naming a bad setting, --help, and that no secret is printed.
 * A bad setting must stop the worker within 5 s, before it connects anywhere: the broker
 * and database addresses point at a local listener that must receive no connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "cli_run.h"
#include "pw_check_main.h"
#include "pw_config.h"
#include "pw_jwt.h"
#include "pw_status.h"
#include "pw_util.h"

#define DEADLINE_MS 5000
#define MAX_ARGS    CLI_MAX_ARGS
#define MAX_ENV     32

/* Present in every base environment; must never appear in any output. */
#define BASE_SECRET  "base-jwt-secret-0123456789-abcdefghij"
#define BASE_DB_PASS "base-db-pass-7c1e"
/* Exactly 32 bytes: the shortest secret HS256 accepts. */
#define SECRET_32 "0123456789abcdef0123456789abcdef"
/* 31 bytes: one short. */
#define SECRET_31 "0123456789abcdef0123456789abcde"

static const char *const contract_vars[] = {
    "KAFKA_BROKERS",   "KAFKA_GROUP_ID",      "DATABASE_URL", "DATABASE_ROLE", "JWT_ALG",
    "JWT_SECRET",      "JWT_PUBLIC_KEY_FILE", "JWT_ISSUER",   "JWT_AUDIENCE",  "JWT_LEEWAY_S",
    "JWT_OWNER_CLAIM", "JWT_REQUIRE_SCOPE",   "TOPIC_CREATE", "TOPIC_QUERY",   "TOPIC_REPLIES",
    "TOPIC_DLQ",       "MAX_MESSAGE_BYTES",
};
#define NCONTRACT (sizeof(contract_vars) / sizeof(contract_vars[0]))

/* Settings the worker reads that are not in the contract table; cleared in-process too. */
static const char *const extra_vars[] = {"MAX_INFLIGHT", "SHUTDOWN_TIMEOUT_MS", "LOG_LEVEL"};
#define NEXTRA (sizeof(extra_vars) / sizeof(extra_vars[0]))

typedef struct env_list {
	char *v[MAX_ENV + 1];
	size_t n;
} env_list;

static const char *env_or_die(const char *name)
{
	const char *v = getenv(name);

	ck_assert_msg(v != NULL && *v != '\0', "%s is not set (ctest sets it)", name);
	return v;
}

/* Replaces "@FIX@" at the start of value by the fixture folder, "@PORT@" anywhere by port. */
static char *expand(const char *spec, int port)
{
	char buf[1024];
	const char *fix = "@FIX@", *pt = "@PORT@";
	const char *eq = strchr(spec, '=');
	size_t n = 0;

	if (eq != NULL && strncmp(eq + 1, fix, strlen(fix)) == 0) {
		n = (size_t)snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(eq + 1 - spec), spec,
		                     env_or_die("PW_FIXTURES"), eq + 1 + strlen(fix));
	} else {
		n = (size_t)snprintf(buf, sizeof(buf), "%s", spec);
	}
	ck_assert(n < sizeof(buf));
	char *p = strstr(buf, pt);
	if (p != NULL) {
		char tail[1024];
		snprintf(tail, sizeof(tail), "%s", p + strlen(pt));
		snprintf(p, sizeof(buf) - (size_t)(p - buf), "%d%s", port, tail);
	}
	char *s = strdup(buf);
	ck_assert(s != NULL);
	return s;
}

static size_t name_len(const char *spec)
{
	const char *eq = strchr(spec, '=');

	return eq ? (size_t)(eq - spec) : strlen(spec);
}

/* "VAR=value" sets or replaces VAR; "VAR" alone removes it. */
static void env_apply(env_list *e, const char *spec, int port)
{
	size_t len = name_len(spec);

	for (size_t i = 0; i < e->n; i++) {
		if (name_len(e->v[i]) == len && strncmp(e->v[i], spec, len) == 0) {
			free(e->v[i]);
			e->v[i] = e->v[--e->n];
			e->v[e->n] = NULL;
			break;
		}
	}
	if (strchr(spec, '=') == NULL)
		return;
	ck_assert(e->n < MAX_ENV);
	e->v[e->n++] = expand(spec, port);
	e->v[e->n] = NULL;
}

static void env_init(env_list *e)
{
	const char *path = getenv("PATH");
	char buf[4096];

	memset(e, 0, sizeof(*e));
	snprintf(buf, sizeof(buf), "PATH=%s", path && *path ? path : "/usr/bin:/bin");
	env_apply(e, buf, 0);
}

static void env_free(env_list *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	memset(e, 0, sizeof(*e));
}

/* A listener on 127.0.0.1 that no correct run may connect to before exiting. */
static int listen_local(int *port)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert(s >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
	ck_assert(listen(s, 16) == 0);
	ck_assert(getsockname(s, (struct sockaddr *)&a, &alen) == 0);
	ck_assert(fcntl(s, F_SETFL, O_NONBLOCK) == 0);
	*port = ntohs(a.sin_port);
	return s;
}

static int was_connected(int s)
{
	int c = accept(s, NULL, NULL);

	if (c >= 0) {
		close(c);
		return 1;
	}
	return 0;
}

/* ---- patient-worker run: every missing or wrong setting is named, exit 2 ---- */

typedef struct bad_case {
	const char *name;
	const char *args[MAX_ARGS]; /**< after the binary; NULL-terminated */
	const char *env[10];        /**< applied over the base environment */
	const char *want_line;      /**< some stderr line starts with this */
	const char *not_line;       /**< no stderr line starts with this (optional) */
	const char *forbid[3];      /**< must appear in neither stdout nor stderr */
} bad_case;

static const bad_case bad_cases[] = {
    {"missing KAFKA_BROKERS", {"run"}, {"KAFKA_BROKERS"}, "KAFKA_BROKERS", NULL, {NULL}},
    {"missing DATABASE_URL", {"run"}, {"DATABASE_URL"}, "DATABASE_URL", NULL, {NULL}},
    {"missing JWT_SECRET, JWT_ALG=HS256",
     {"run"},
     {"JWT_ALG=HS256", "JWT_SECRET"},
     "JWT_SECRET",
     NULL,
     {NULL}},
    {"missing JWT_SECRET, JWT_ALG unset (HS256)",
     {"run"},
     {"JWT_SECRET"},
     "JWT_SECRET",
     NULL,
     {NULL}},
    {"missing JWT_PUBLIC_KEY_FILE, JWT_ALG=RS256",
     {"run"},
     {"JWT_ALG=RS256", "JWT_SECRET"},
     "JWT_PUBLIC_KEY_FILE",
     NULL,
     {NULL}},
    {"JWT_ALG=HS512", {"run"}, {"JWT_ALG=HS512"}, "JWT_ALG", NULL, {NULL}},
    {"JWT_ALG=none", {"run"}, {"JWT_ALG=none"}, "JWT_ALG", NULL, {NULL}},
    {"JWT_SECRET of 31 bytes", {"run"}, {"JWT_SECRET=" SECRET_31}, "JWT_SECRET", NULL, {NULL}},
    {"RS256 with not_a_key.pem",
     {"run"},
     {"JWT_ALG=RS256", "JWT_PUBLIC_KEY_FILE=@FIX@/not_a_key.pem"},
     "JWT_PUBLIC_KEY_FILE",
     NULL,
     {NULL}},
    {"RS256 with a missing key file",
     {"run"},
     {"JWT_ALG=RS256", "JWT_PUBLIC_KEY_FILE=@FIX@/no_such_key.pem"},
     "JWT_PUBLIC_KEY_FILE",
     NULL,
     {NULL}},
    {"RS256 with an EC key",
     {"run"},
     {"JWT_ALG=RS256", "JWT_PUBLIC_KEY_FILE=@FIX@/ec_public.pem"},
     "JWT_PUBLIC_KEY_FILE",
     NULL,
     {NULL}},
    {"ES256 with an RSA key",
     {"run"},
     {"JWT_ALG=ES256", "JWT_PUBLIC_KEY_FILE=@FIX@/rsa_public.pem"},
     "JWT_PUBLIC_KEY_FILE",
     NULL,
     {NULL}},
    {"KAFKA_BROKERS=localhost (no port)",
     {"run"},
     {"KAFKA_BROKERS=localhost"},
     "KAFKA_BROKERS",
     NULL,
     {NULL}},
    {"JWT_LEEWAY_S=abc", {"run"}, {"JWT_LEEWAY_S=abc"}, "JWT_LEEWAY_S", NULL, {NULL}},
    {"TOPIC_CREATE='bad topic'", {"run"}, {"TOPIC_CREATE=bad topic"}, "TOPIC_CREATE", NULL, {NULL}},
    {"LOG_LEVEL=loud", {"run"}, {"LOG_LEVEL=loud"}, "LOG_LEVEL", NULL, {NULL}},
    {"MAX_MESSAGE_BYTES=0", {"run"}, {"MAX_MESSAGE_BYTES=0"}, "MAX_MESSAGE_BYTES", NULL, {NULL}},
    {"DATABASE_URL=postgresql://[",
     {"run"},
     {"DATABASE_URL=postgresql://["},
     "DATABASE_URL",
     NULL,
     {NULL}},
    {"DATABASE_URL=host (no '=')", {"run"}, {"DATABASE_URL=host"}, "DATABASE_URL", NULL, {NULL}},
    {"DATABASE_URL=host='x (unterminated quote)",
     {"run"},
     {"DATABASE_URL=host='x"},
     "DATABASE_URL",
     NULL,
     {NULL}},
    {"unknown flag --no-such-flag",
     {"run", "--no-such-flag"},
     {NULL},
     "--no-such-flag",
     NULL,
     {NULL}},
    {"--jwt-alg=HS512 over JWT_ALG=HS256",
     {"run", "--jwt-alg=HS512"},
     {"JWT_ALG=HS256"},
     "JWT_ALG",
     NULL,
     {NULL}},
    {"--jwt-alg HS512 (separate value) over JWT_ALG=HS256",
     {"run", "--jwt-alg", "HS512"},
     {"JWT_ALG=HS256"},
     "JWT_ALG",
     NULL,
     {NULL}},
    {"--jwt-alg=HS256 over JWT_ALG=HS512, LOG_LEVEL=loud",
     {"run", "--jwt-alg=HS256"},
     {"JWT_ALG=HS512", "LOG_LEVEL=loud"},
     "LOG_LEVEL",
     "JWT_ALG",
     {NULL}},
    {"secrets: short JWT_SECRET, DB password, LOG_LEVEL=loud",
     {"run"},
     {"JWT_SECRET=short-secret-value", "DATABASE_URL=postgresql://u:hunter2-pass@127.0.0.1:1/db",
      "LOG_LEVEL=loud"},
     "LOG_LEVEL",
     NULL,
     {"short-secret-value", "hunter2-pass"}},
    {"secrets: short JWT_SECRET, malformed DATABASE_URL with password",
     {"run"},
     {"JWT_SECRET=short-secret-value", "DATABASE_URL=postgresql://u:hunter2-pass@["},
     "DATABASE_URL",
     NULL,
     {"short-secret-value", "hunter2-pass"}},
    {"secrets: JWT_ALG=none with a short JWT_SECRET",
     {"run"},
     {"JWT_ALG=none", "JWT_SECRET=short-secret-value",
      "DATABASE_URL=postgresql://u:hunter2-pass@127.0.0.1:1/db"},
     "JWT_ALG",
     NULL,
     {"short-secret-value", "hunter2-pass"}},
};
#define NBAD (sizeof(bad_cases) / sizeof(bad_cases[0]))

static void base_env(env_list *e, int port)
{
	env_init(e);
	env_apply(e, "KAFKA_BROKERS=127.0.0.1:@PORT@", port);
	env_apply(e, "DATABASE_URL=postgresql://pw:" BASE_DB_PASS "@127.0.0.1:@PORT@/pw", port);
	env_apply(e, "JWT_SECRET=" BASE_SECRET, port);
}

static void check_no_secret(const char *row, const cli_result *r, const char *secret)
{
	ck_assert_msg(strstr(r->err, secret) == NULL, "[%s] stderr leaks '%s':\n%.600s", row,
	              secret, r->err);
	ck_assert_msg(strstr(r->out, secret) == NULL, "[%s] stdout leaks '%s':\n%.600s", row,
	              secret, r->out);
}

START_TEST(test_bad_setting)
{
	const bad_case *c = &bad_cases[_i];
	env_list e;
	cli_result r;
	int port;
	int ls = listen_local(&port);

	base_env(&e, port);
	for (size_t i = 0; i < sizeof(c->env) / sizeof(c->env[0]) && c->env[i]; i++)
		env_apply(&e, c->env[i], port);
	cli_run(env_or_die("PW_WORKER_BIN"), c->args, e.v, DEADLINE_MS, &r);

	ck_assert_msg(!r.timed_out, "[%s] still running after %d ms (killed); stderr:\n%.600s",
	              c->name, DEADLINE_MS, r.err);
	ck_assert_msg(cli_exit_code(&r) == 2, "[%s] exit %d (status 0x%x), want 2; stderr:\n%.600s",
	              c->name, cli_exit_code(&r), (unsigned)r.status, r.err);
	ck_assert_msg(cli_has_line(r.err, c->want_line),
	              "[%s] no stderr line starts with '%s'; stderr:\n%.600s", c->name,
	              c->want_line, r.err);
	if (c->not_line)
		ck_assert_msg(!cli_has_line(r.err, c->not_line),
		              "[%s] a stderr line starts with '%s' (should not); stderr:\n%.600s",
		              c->name, c->not_line, r.err);
	for (size_t i = 0; i < sizeof(c->forbid) / sizeof(c->forbid[0]) && c->forbid[i]; i++)
		check_no_secret(c->name, &r, c->forbid[i]);
	check_no_secret(c->name, &r, BASE_SECRET);
	check_no_secret(c->name, &r, BASE_DB_PASS);
	ck_assert_msg(!was_connected(ls), "[%s] connected to the broker/database before exiting",
	              c->name);
	close(ls);
	cli_result_free(&r);
	env_free(&e);
}
END_TEST

/* ---- patient-worker commands: --help, no arguments, unknown command ---- */

typedef struct cmd_case {
	const char *name;
	const char *args[MAX_ARGS];
	int want_exit;
	int want_vars_on_stdout; /**< stdout names every variable of the contract */
} cmd_case;

static const cmd_case cmd_cases[] = {
    {"--help", {"--help"}, 0, 1},
    {"run --help", {"run", "--help"}, 0, 1},
    {"no arguments", {NULL}, 2, 0},
    {"unknown command", {"frobnicate"}, 2, 0},
};
#define NCMD (sizeof(cmd_cases) / sizeof(cmd_cases[0]))

START_TEST(test_worker_command)
{
	const cmd_case *c = &cmd_cases[_i];
	env_list e;
	cli_result r;

	env_init(&e);
	cli_run(env_or_die("PW_WORKER_BIN"), c->args, e.v, DEADLINE_MS, &r);
	ck_assert_msg(!r.timed_out, "[%s] still running after %d ms (killed)", c->name,
	              DEADLINE_MS);
	ck_assert_msg(cli_exit_code(&r) == c->want_exit, "[%s] exit %d, want %d; stderr:\n%.600s",
	              c->name, cli_exit_code(&r), c->want_exit, r.err);
	for (size_t i = 0; c->want_vars_on_stdout && i < NCONTRACT; i++)
		ck_assert_msg(strstr(r.out, contract_vars[i]) != NULL,
		              "[%s] stdout does not list %s:\n%.2000s", c->name, contract_vars[i],
		              r.out);
	cli_result_free(&r);
	env_free(&e);
}
END_TEST

/* ---- patientctl token ---- */

static void clear_settings(void)
{
	for (size_t i = 0; i < NCONTRACT; i++)
		unsetenv(contract_vars[i]);
	for (size_t i = 0; i < NEXTRA; i++)
		unsetenv(extra_vars[i]);
}

START_TEST(test_token_verifies)
{
	const char *args[] = {"token", "--sub", "a@example.com", NULL};
	env_list e;
	cli_result r;
	pw_config cfg;
	pw_jwt_verifier *v = NULL;
	pw_jwt_claims claims;
	char why[256] = "";
	char *argv0[] = {"check_cli", NULL};

	env_init(&e);
	env_apply(&e, "JWT_SECRET=" SECRET_32, 0);
	cli_run(env_or_die("PW_CTL_BIN"), args, e.v, DEADLINE_MS, &r);
	ck_assert_msg(!r.timed_out, "[token] still running after %d ms (killed)", DEADLINE_MS);
	ck_assert_msg(cli_exit_code(&r) == 0, "[token] exit %d, want 0; stderr:\n%.600s",
	              cli_exit_code(&r), r.err);
	ck_assert_msg(r.out_len > 1 && r.out[r.out_len - 1] == '\n',
	              "[token] stdout is not one line: '%.600s'", r.out);
	r.out[--r.out_len] = '\0';
	ck_assert_msg(strchr(r.out, '\n') == NULL, "[token] stdout has several lines: '%.600s'",
	              r.out);

	clear_settings();
	ck_assert(setenv("JWT_SECRET", SECRET_32, 1) == 0);
	ck_assert_msg(pw_config_load(&cfg, 1, argv0, PW_CFG_NEED_JWT, stderr) == PW_OK,
	              "[token] pw_config_load refused the test configuration");
	ck_assert(pw_jwt_verifier_create(&cfg, &v) == PW_OK);
	memset(&claims, 0, sizeof(claims));
	pw_status st = pw_jwt_verify(v, r.out, (int64_t)time(NULL), &claims, why, sizeof(why));
	ck_assert_msg(st == PW_OK, "[token] minted token refused by the verifier: %s", why);
	ck_assert_str_eq(claims.owner, "a@example.com");
	pw_jwt_verifier_destroy(v);
	pw_config_free(&cfg);
	cli_result_free(&r);
	env_free(&e);
}
END_TEST

START_TEST(test_token_without_secret)
{
	const char *args[] = {"token", "--sub", "a@example.com", NULL};
	env_list e;
	cli_result r;

	env_init(&e);
	cli_run(env_or_die("PW_CTL_BIN"), args, e.v, DEADLINE_MS, &r);
	ck_assert_msg(!r.timed_out, "[token, no JWT_SECRET] still running after %d ms (killed)",
	              DEADLINE_MS);
	ck_assert_msg(cli_exit_code(&r) == 2,
	              "[token, no JWT_SECRET] exit %d, want 2; stderr:\n%.600s", cli_exit_code(&r),
	              r.err);
	ck_assert_msg(cli_has_line(r.err, "JWT_SECRET"),
	              "[token, no JWT_SECRET] no stderr line starts with JWT_SECRET:\n%.600s",
	              r.err);
	ck_assert_msg(r.out_len == 0, "[token, no JWT_SECRET] printed something: '%.600s'", r.out);
	cli_result_free(&r);
	env_free(&e);
}
END_TEST

/* ---- patientctl: usage and setting errors, before any connection ---- */

/* A token-like value in PW_TOKEN: no output may show it. */
#define CTL_TOKEN_SECRET "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.secret-token-signature"

/* Files the load cases name, made once per run in a fresh folder ("@DIR@/..."). */
static char ctl_dir[256];

static void ctl_files_up(void)
{
	static const struct {
		const char *name, *text;
	} files[] = {
	    {"rows.csv", "nombre,apellido_paterno,dni,fecha_nacimiento\nAna,Quispe,1,1990-04-12\n"},
	    {"rows.txt", "nombre\nAna\n"},
	    {"dup_header.csv", "nombre,dni,nombre\nAna,1,Eva\n"},
	    {"empty_header.csv", "nombre,,dni\nAna,x,1\n"},
	    {"empty.csv", ""},
	    {"bad_header.csv", "nombre,\"dni\"x\nAna,1\n"},
	};
	char path[512];

	snprintf(ctl_dir, sizeof(ctl_dir), "/tmp/pw-cli-XXXXXX");
	ck_assert(mkdtemp(ctl_dir) != NULL);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", ctl_dir, files[i].name);
		FILE *f = fopen(path, "w");
		ck_assert(f != NULL);
		ck_assert(fputs(files[i].text, f) >= 0 || files[i].text[0] == '\0');
		ck_assert(fclose(f) == 0);
	}
}

static void ctl_files_down(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ctl_dir);
	if (ctl_dir[0] != '\0' && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", ctl_dir);
}

typedef struct ctl_case {
	const char *name;
	const char *args[MAX_ARGS]; /**< "@DIR@/x" is a file of ctl_files_up */
	const char *env[6];         /**< applied over the base environment */
	const char *want_line;      /**< the one stderr line starts with this */
} ctl_case;

#define LONG_ID                                                                                    \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const ctl_case ctl_cases[] = {
    {"no arguments", {NULL}, {NULL}, "patientctl"},
    {"unknown command", {"frob"}, {NULL}, "frob"},
    {"unknown option", {"get", "--id", "1", "--no-such-flag"}, {NULL}, "--no-such-flag"},
    {"unknown option with a value", {"get", "--id", "1", "--colour=red"}, {NULL}, "--colour"},
    {"a worker-only setting", {"get", "--id", "1", "--database-url=x"}, {NULL}, "--database-url"},
    {"stray argument", {"get", "--id", "1", "extra"}, {NULL}, "extra"},
    {"get without --id", {"get"}, {NULL}, "--id"},
    {"get --id abc", {"get", "--id", "abc"}, {NULL}, "--id"},
    {"get --id 0", {"get", "--id", "0"}, {NULL}, "--id"},
    {"get --id without a value", {"get", "--id"}, {NULL}, "--id"},
    {"an option of another command",
     {"get", "--id", "1", "--timeout=5", "--ttl", "1h"},
     {NULL},
     "--ttl"},
    {"create without a payload", {"create"}, {NULL}, "--payload"},
    {"create --payload [1]", {"create", "--payload", "[1]"}, {NULL}, "--payload"},
    {"create --payload not JSON", {"create", "--payload", "{nombre"}, {NULL}, "--payload"},
    {"create --payload with a key twice",
     {"create", "--payload", "{\"dni\":\"1\",\"dni\":\"2\"}"},
     {NULL},
     "--payload"},
    {"--token and --sub",
     {"create", "--dni", "1", "--token", "t", "--sub", "a@x"},
     {NULL},
     "--token"},
    {"no identity", {"create", "--dni", "1"}, {"PW_TOKEN"}, "--token"},
    {"--timeout 0", {"get", "--id", "1", "--timeout", "0"}, {NULL}, "--timeout"},
    {"--timeout abc", {"get", "--id", "1", "--timeout=abc"}, {NULL}, "--timeout"},
    {"--request-id with a space",
     {"get", "--id", "1", "--request-id", "a b"},
     {NULL},
     "--request-id"},
    {"--request-id of 129", {"get", "--id", "1", "--request-id", LONG_ID}, {NULL}, "--request-id"},
    {"--reply-topic elsewhere",
     {"get", "--id", "1", "--reply-topic", "other"},
     {NULL},
     "--reply-topic"},
    {"--reply-topic prefix without a dot",
     {"get", "--id", "1", "--reply-topic", "patients.repliesX"},
     {NULL},
     "--reply-topic"},
    {"--reply-topic ending in a dot",
     {"get", "--id", "1", "--reply-topic", "patients.replies."},
     {NULL},
     "--reply-topic"},
    {"--reply-topic under another TOPIC_REPLIES",
     {"get", "--id", "1", "--reply-topic", "patients.replies.x"},
     {"TOPIC_REPLIES=team.replies"},
     "--reply-topic"},
    {"list --limit ten", {"list", "--limit", "ten"}, {NULL}, "--limit"},
    {"list --payload", {"list", "--payload", "{}"}, {NULL}, "--payload"},
    {"load without a file", {"load"}, {NULL}, "load"},
    {"load two files", {"load", "@DIR@/rows.csv", "@DIR@/empty.csv"}, {NULL}, "@DIR@/empty.csv"},
    {"load a missing file", {"load", "@DIR@/missing.csv"}, {NULL}, "@DIR@/missing.csv"},
    {"load .txt", {"load", "@DIR@/rows.txt"}, {NULL}, "--format"},
    {"load - without --format", {"load", "-", "--id-prefix", "p"}, {NULL}, "--format"},
    {"load - without --id-prefix", {"load", "-", "--format", "csv"}, {NULL}, "--id-prefix"},
    {"load --format xml", {"load", "@DIR@/rows.csv", "--format", "xml"}, {NULL}, "--format"},
    {"load --inflight 0", {"load", "@DIR@/rows.csv", "--inflight", "0"}, {NULL}, "--inflight"},
    {"load --id-prefix a:b",
     {"load", "@DIR@/rows.csv", "--id-prefix", "a:b"},
     {NULL},
     "--id-prefix"},
    {"load --id", {"load", "@DIR@/rows.csv", "--id", "1"}, {NULL}, "--id"},
    {"load --request-id", {"load", "@DIR@/rows.csv", "--request-id", "x"}, {NULL}, "--request-id"},
    {"load a header with a name twice",
     {"load", "@DIR@/dup_header.csv"},
     {NULL},
     "@DIR@/dup_header.csv"},
    {"load a header with an empty name",
     {"load", "@DIR@/empty_header.csv"},
     {NULL},
     "@DIR@/empty_header.csv"},
    {"load an empty CSV", {"load", "@DIR@/empty.csv"}, {NULL}, "@DIR@/empty.csv"},
    {"load a header that is not CSV",
     {"load", "@DIR@/bad_header.csv"},
     {NULL},
     "@DIR@/bad_header.csv"},
    {"load a journal that cannot be written",
     {"load", "@DIR@/rows.csv", "--journal", "@DIR@/no/such/dir/rows.done"},
     {NULL},
     "@DIR@/no/such/dir/rows.done"},
    {"missing KAFKA_BROKERS", {"get", "--id", "1"}, {"KAFKA_BROKERS"}, "KAFKA_BROKERS"},
    {"--kafka-brokers=localhost",
     {"get", "--id", "1", "--kafka-brokers=localhost"},
     {NULL},
     "KAFKA_BROKERS"},
    {"TOPIC_QUERY='bad topic'", {"get", "--id", "1"}, {"TOPIC_QUERY=bad topic"}, "TOPIC_QUERY"},
    {"--sub without JWT_SECRET",
     {"get", "--id", "1", "--sub", "a@x"},
     {"JWT_SECRET"},
     "JWT_SECRET"},
    {"--sub with a short JWT_SECRET",
     {"get", "--id", "1", "--sub", "a@x"},
     {"JWT_SECRET=" SECRET_31},
     "JWT_SECRET"},
    {"--sub with JWT_ALG=RS256",
     {"get", "--id", "1", "--sub", "a@x"},
     {"JWT_ALG=RS256", "JWT_PUBLIC_KEY_FILE=@FIX@/rsa_public.pem"},
     "JWT_ALG"},
    {"token without --sub", {"token"}, {NULL}, "--sub"},
    {"token --ttl 5x", {"token", "--sub", "a@x", "--ttl", "5x"}, {NULL}, "--ttl"},
    {"token --ttl 0", {"token", "--sub", "a@x", "--ttl", "0"}, {NULL}, "--ttl"},
    {"token --ttl 367d", {"token", "--sub", "a@x", "--ttl", "367d"}, {NULL}, "--ttl"},
    {"token --token", {"token", "--sub", "a@x", "--token", "t"}, {NULL}, "--token"},
    {"token --timeout", {"token", "--sub", "a@x", "--timeout", "3"}, {NULL}, "--timeout"},
    {"token with JWT_ALG=ES256", {"token", "--sub", "a@x"}, {"JWT_ALG=ES256"}, "JWT_ALG"},
};
#define NCTL (sizeof(ctl_cases) / sizeof(ctl_cases[0]))

/* "@DIR@/x" -> ctl_dir/x; anything else is itself. Caller frees. */
static char *ctl_arg(const char *a)
{
	char buf[1024];

	if (strncmp(a, "@DIR@", 5) == 0)
		snprintf(buf, sizeof(buf), "%s%s", ctl_dir, a + 5);
	else
		snprintf(buf, sizeof(buf), "%s", a);
	char *s = strdup(buf);
	ck_assert(s != NULL);
	return s;
}

static void ctl_base_env(env_list *e, int port)
{
	env_init(e);
	env_apply(e, "KAFKA_BROKERS=127.0.0.1:@PORT@", port);
	env_apply(e, "JWT_SECRET=" BASE_SECRET, port);
	env_apply(e, "PW_TOKEN=" CTL_TOKEN_SECRET, port);
}

START_TEST(test_ctl_usage)
{
	const ctl_case *c = &ctl_cases[_i];
	char *args[MAX_ARGS + 1] = {NULL};
	env_list e;
	cli_result r;
	int port;
	int ls = listen_local(&port);

	for (size_t i = 0; i < MAX_ARGS && c->args[i]; i++)
		args[i] = ctl_arg(c->args[i]);
	char *want = ctl_arg(c->want_line);
	ctl_base_env(&e, port);
	for (size_t i = 0; i < sizeof(c->env) / sizeof(c->env[0]) && c->env[i]; i++)
		env_apply(&e, c->env[i], port);
	cli_run(env_or_die("PW_CTL_BIN"), (const char *const *)args, e.v, DEADLINE_MS, &r);

	ck_assert_msg(!r.timed_out, "[%s] still running after %d ms (killed)", c->name,
	              DEADLINE_MS);
	ck_assert_msg(cli_exit_code(&r) == 2, "[%s] exit %d, want 2; stderr:\n%.600s", c->name,
	              cli_exit_code(&r), r.err);
	ck_assert_msg(cli_has_line(r.err, want), "[%s] no stderr line starts with '%s':\n%.600s",
	              c->name, want, r.err);
	ck_assert_msg(r.err_len > 0 && strchr(r.err, '\n') == r.err + r.err_len - 1,
	              "[%s] stderr is not one line:\n%.600s", c->name, r.err);
	ck_assert_msg(r.out_len == 0, "[%s] printed on stdout: '%.600s'", c->name, r.out);
	check_no_secret(c->name, &r, BASE_SECRET);
	check_no_secret(c->name, &r, CTL_TOKEN_SECRET);
	ck_assert_msg(!was_connected(ls), "[%s] connected to the broker before exiting", c->name);
	close(ls);
	for (size_t i = 0; args[i]; i++)
		free(args[i]);
	free(want);
	cli_result_free(&r);
	env_free(&e);
}
END_TEST

/* ---- patientctl --help: every option of the command, and the settings ---- */

typedef struct help_case {
	const char *args[4];
	const char *want[24];
} help_case;

#define SHARED_OPTS "--token", "--sub", "--reply-topic", "--timeout", "--help"
#define ENV_NAMES                                                                                  \
	"KAFKA_BROKERS", "JWT_SECRET", "JWT_ALG", "TOPIC_CREATE", "TOPIC_QUERY", "TOPIC_REPLIES",  \
	    "PW_TOKEN", "Exit status"

static const help_case help_cases[] = {
    {{"--help"},
     {"token",
      "create",
      "get",
      "list",
      "load",
      "--ttl",
      "--scope",
      "--payload",
      "--nombre",
      "--apellido-paterno",
      "--apellido-materno",
      "--dni",
      "--fecha-nacimiento",
      "--sexo",
      "--id",
      "--limit",
      "--cursor",
      "--q",
      "--format",
      "--inflight",
      "--id-prefix",
      "--journal",
      "--errors",
      NULL}},
    {{"help"}, {SHARED_OPTS, "--request-id", ENV_NAMES, NULL}},
    {{"token", "--help"}, {"--sub", "--ttl", "--scope", "--help", "HS256", ENV_NAMES, NULL}},
    {{"create", "--help"},
     {SHARED_OPTS, "--payload", "--nombre", "--apellido-paterno", "--apellido-materno", "--dni",
      "--fecha-nacimiento", "--sexo", "--request-id", ENV_NAMES, NULL}},
    {{"get", "--id", "x", "--help"}, {SHARED_OPTS, "--id", "--request-id", ENV_NAMES, NULL}},
    {{"list", "--help"},
     {SHARED_OPTS, "--limit", "--cursor", "--dni", "--q", "--request-id", ENV_NAMES, NULL}},
    {{"load", "--help"},
     {SHARED_OPTS, "--format", "--inflight", "--id-prefix", "--journal", "--errors", ENV_NAMES,
      NULL}},
    {{"help", "load"}, {"--format", "--inflight", "--id-prefix", NULL}},
};
#define NHELP (sizeof(help_cases) / sizeof(help_cases[0]))

START_TEST(test_ctl_help)
{
	const help_case *c = &help_cases[_i];
	env_list e;
	cli_result r;

	env_init(&e); /* no broker, no secret: help needs neither */
	cli_run(env_or_die("PW_CTL_BIN"), c->args, e.v, DEADLINE_MS, &r);
	ck_assert_msg(!r.timed_out && cli_exit_code(&r) == 0, "[%s %s] exit %d; stderr:\n%.600s",
	              c->args[0], c->args[1] ? c->args[1] : "", cli_exit_code(&r), r.err);
	for (size_t i = 0; c->want[i]; i++)
		ck_assert_msg(strstr(r.out, c->want[i]) != NULL,
		              "[%s %s] help does not name %s:\n%s", c->args[0],
		              c->args[1] ? c->args[1] : "", c->want[i], r.out);
	ck_assert_msg(r.err_len == 0, "[%s] help wrote on stderr: %s", c->args[0], r.err);
	cli_result_free(&r);
	env_free(&e);
}
END_TEST

/* The claims of a token, decoded without verifying (the verifier checks separately). */
static json_t *claims_of(const char *token)
{
	const char *d1 = strchr(token, '.');
	const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	unsigned char buf[4096];

	ck_assert_msg(d2 != NULL, "not a JWT: %s", token);
	size_t n = 0;
	ck_assert(pw_util_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf, sizeof(buf), &n) ==
	              PW_OK &&
	          n > 0);
	json_t *c = json_loadb((const char *)buf, n, 0, NULL);
	ck_assert(json_is_object(c));
	return c;
}

/* --ttl and --scope land in the claims; the configured owner claim, iss and aud are set,
 * and the worker's own verifier, configured the same way, accepts the token. */
START_TEST(test_token_claims)
{
	const char *args[] = {"token", "--sub",   "b@example.com", "--ttl",
	                      "2d",    "--scope", "patients:read", NULL};
	env_list e;
	cli_result r;
	pw_config cfg;
	pw_jwt_verifier *v = NULL;
	pw_jwt_claims claims;
	char why[256] = "";
	char *argv0[] = {"check_cli", NULL};

	env_init(&e);
	env_apply(&e, "JWT_SECRET=" SECRET_32, 0);
	env_apply(&e, "JWT_OWNER_CLAIM=email", 0);
	env_apply(&e, "JWT_ISSUER=https://issuer.example", 0);
	env_apply(&e, "JWT_AUDIENCE=patients", 0);
	cli_run(env_or_die("PW_CTL_BIN"), args, e.v, DEADLINE_MS, &r);
	ck_assert_msg(cli_exit_code(&r) == 0, "[token --ttl 2d] exit %d: %s", cli_exit_code(&r),
	              r.err);
	ck_assert(r.out_len > 1 && r.out[r.out_len - 1] == '\n');
	r.out[--r.out_len] = '\0';

	json_t *c = claims_of(r.out);
	json_int_t iat = json_integer_value(json_object_get(c, "iat"));
	json_int_t exp = json_integer_value(json_object_get(c, "exp"));
	ck_assert_int_eq(exp - iat, 2 * 86400);
	ck_assert_str_eq(json_string_value(json_object_get(c, "scope")), "patients:read");
	ck_assert_str_eq(json_string_value(json_object_get(c, "sub")), "b@example.com");
	ck_assert_str_eq(json_string_value(json_object_get(c, "email")), "b@example.com");
	ck_assert_str_eq(json_string_value(json_object_get(c, "iss")), "https://issuer.example");
	ck_assert_str_eq(json_string_value(json_object_get(c, "aud")), "patients");
	json_decref(c);

	clear_settings();
	ck_assert(setenv("JWT_SECRET", SECRET_32, 1) == 0);
	ck_assert(setenv("JWT_OWNER_CLAIM", "email", 1) == 0);
	ck_assert(setenv("JWT_ISSUER", "https://issuer.example", 1) == 0);
	ck_assert(setenv("JWT_AUDIENCE", "patients", 1) == 0);
	ck_assert(pw_config_load(&cfg, 1, argv0, PW_CFG_NEED_JWT, stderr) == PW_OK);
	ck_assert(pw_jwt_verifier_create(&cfg, &v) == PW_OK);
	memset(&claims, 0, sizeof(claims));
	pw_status st = pw_jwt_verify(v, r.out, (int64_t)time(NULL), &claims, why, sizeof(why));
	ck_assert_msg(st == PW_OK, "[token] refused by the verifier: %s", why);
	ck_assert_str_eq(claims.owner, "b@example.com");
	ck_assert(claims.scope_read && !claims.scope_write);
	pw_jwt_verifier_destroy(v);
	pw_config_free(&cfg);
	cli_result_free(&r);
	env_free(&e);
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("worker-config");

	/* Each case may take up to DEADLINE_MS before it is killed. */
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_bad_setting, 0, (int)NBAD);
	tcase_add_loop_test(tc, test_worker_command, 0, (int)NCMD);
	suite_add_tcase(s, tc);

	tc = tcase_create("patientctl");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_token_verifies);
	tcase_add_test(tc, test_token_without_secret);
	tcase_add_test(tc, test_token_claims);
	tcase_add_loop_test(tc, test_ctl_help, 0, (int)NHELP);
	suite_add_tcase(s, tc);

	tc = tcase_create("patientctl-usage");
	/* The files live in the runner's process, so every forked case sees them. */
	tcase_add_unchecked_fixture(tc, ctl_files_up, ctl_files_down);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_ctl_usage, 0, (int)NCTL);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(cli_suite());
}
