/* Unit tests of pw_config: defaults, every refused setting named in the error output,
 * --flags over the environment, and secrets kept out of every output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "pw_check_main.h"
#include "pw_config.h"
#include "pw_status.h"

#ifndef PW_FIXTURES_DIR
#define PW_FIXTURES_DIR "tests/fixtures"
#endif

#define BROKERS "localhost:9092"
#define DB_PASS "S3cr3t-DB-pass-9f2"
#define DB_URL  "postgresql://worker:" DB_PASS "@db:5432/patients"
#define SECRET  "Sup3r-Secret-Value-For-HS256-tests-0123456789"

static const char *const all_vars[] = {
    "KAFKA_BROKERS",     "KAFKA_GROUP_ID", "DATABASE_URL",        "DATABASE_ROLE",
    "JWT_ALG",           "JWT_SECRET",     "JWT_PUBLIC_KEY_FILE", "JWT_ISSUER",
    "JWT_AUDIENCE",      "JWT_LEEWAY_S",   "JWT_OWNER_CLAIM",     "JWT_REQUIRE_SCOPE",
    "TOPIC_CREATE",      "TOPIC_QUERY",    "TOPIC_REPLIES",       "TOPIC_DLQ",
    "MAX_MESSAGE_BYTES", "MAX_INFLIGHT",   "SHUTDOWN_TIMEOUT_MS", "LOG_LEVEL",
    "BATCH_MAX",         "BATCH_WAIT_MS",  "JWT_CACHE_SIZE",      "CURSOR_SECRET",
    "HTTP_ADDR",
};
#define NVARS (sizeof(all_vars) / sizeof(all_vars[0]))

static const char *fixtures(void)
{
	const char *d = getenv("PW_FIXTURES");
	return d && *d ? d : PW_FIXTURES_DIR;
}

/* Clears every setting, then sets the three a full start needs. */
static void base_env(void)
{
	for (size_t i = 0; i < NVARS; i++)
		unsetenv(all_vars[i]);
	setenv("KAFKA_BROKERS", BROKERS, 1);
	setenv("DATABASE_URL", DB_URL, 1);
	setenv("JWT_SECRET", SECRET, 1);
}

/* "VAR=value" sets VAR ("@FIX@" at the start of value is the fixture folder);
 * "VAR" alone unsets it. */
static void apply_env(const char *spec)
{
	char name[64];
	const char *eq = strchr(spec, '=');

	if (eq == NULL) {
		unsetenv(spec);
		return;
	}
	ck_assert((size_t)(eq - spec) < sizeof(name));
	memcpy(name, spec, (size_t)(eq - spec));
	name[eq - spec] = '\0';
	if (strncmp(eq + 1, "@FIX@", 5) == 0) {
		char path[1024];
		snprintf(path, sizeof(path), "%s%s", fixtures(), eq + 6);
		setenv(name, path, 1);
	} else {
		setenv(name, eq + 1, 1);
	}
}

/* Loads with output captured into *out (caller frees). */
static pw_status load(pw_config *cfg, int argc, char **argv, unsigned need, char **out)
{
	size_t len = 0;
	FILE *err = open_memstream(out, &len);
	pw_status st;

	ck_assert_ptr_nonnull(err);
	st = pw_config_load(cfg, argc, argv, need, err);
	fclose(err);
	return st;
}

static int names_a_setting(const char *line, size_t n)
{
	for (size_t i = 0; i < NVARS; i++) {
		size_t vl = strlen(all_vars[i]);
		for (size_t k = 0; k + vl <= n; k++)
			if (memcmp(line + k, all_vars[i], vl) == 0)
				return 1;
	}
	return 0;
}

START_TEST(test_defaults)
{
	pw_config cfg;
	char *out = NULL;

	base_env();
	ck_assert_int_eq(load(&cfg, 0, NULL, PW_CFG_NEED_ALL, &out), PW_OK);
	ck_assert_msg(out[0] == '\0', "output on success: %s", out);
	ck_assert_str_eq(cfg.kafka_brokers, BROKERS);
	ck_assert_str_eq(cfg.database_url, DB_URL);
	ck_assert_str_eq(cfg.group_id, "patient-worker");
	ck_assert_str_eq(cfg.database_role, "patients_app");
	ck_assert_str_eq(cfg.jwt_alg_name, "HS256");
	ck_assert_int_eq(cfg.jwt_alg, PW_ALG_HS256);
	ck_assert_ptr_null(cfg.jwt_issuer);
	ck_assert_ptr_null(cfg.jwt_audience);
	ck_assert_int_eq(cfg.jwt_leeway_s, 30);
	ck_assert_str_eq(cfg.jwt_owner_claim, "sub");
	ck_assert_int_eq(cfg.jwt_require_scope, 0);
	ck_assert_str_eq(cfg.topic_create, "patients.create");
	ck_assert_str_eq(cfg.topic_query, "patients.query");
	ck_assert_str_eq(cfg.topic_replies, "patients.replies");
	ck_assert_str_eq(cfg.topic_dlq, "patients.dlq");
	ck_assert_int_eq(cfg.max_message_bytes, 65536);
	ck_assert_int_eq(cfg.batch_max, 500);
	ck_assert_int_eq(cfg.batch_wait_ms, 5);
	ck_assert_int_eq(cfg.jwt_cache_size, 10000);
	ck_assert_ptr_null(cfg.cursor_secret);
	ck_assert_str_eq(cfg.http_addr, "127.0.0.1:9464");
	ck_assert_ptr_nonnull(cfg.jwt_key);
	ck_assert_uint_eq(cfg.jwt_key_len, strlen(SECRET));
	ck_assert_msg(memcmp(cfg.jwt_key, SECRET, strlen(SECRET)) == 0 &&
	                  cfg.jwt_key[cfg.jwt_key_len] == '\0',
	              "jwt_key is not the secret, NUL-terminated");
	pw_config_free(&cfg);
	ck_assert_ptr_null(cfg.kafka_brokers);
	ck_assert_ptr_null(cfg.jwt_key);
	pw_config_free(NULL);
	free(out);
}
END_TEST

/* HTTP_ADDR set but empty switches the listener off (several workers on one host),
 * where other empty settings mean their default. */
START_TEST(test_http_addr_empty_is_off)
{
	pw_config cfg;
	char *out = NULL;
	char *argv[] = {"x", "--http-addr="};

	base_env();
	setenv("HTTP_ADDR", "", 1);
	setenv("LOG_LEVEL", "", 1);
	ck_assert_int_eq(load(&cfg, 1, argv, PW_CFG_NEED_ALL, &out), PW_OK);
	ck_assert_ptr_null(cfg.http_addr);
	ck_assert_str_eq(cfg.log_level, "info");
	pw_config_free(&cfg);
	free(out);
	out = NULL;
	unsetenv("HTTP_ADDR");
	ck_assert_int_eq(load(&cfg, 2, argv, PW_CFG_NEED_ALL, &out), PW_OK);
	ck_assert_ptr_null(cfg.http_addr);
	pw_config_free(&cfg);
	free(out);
}
END_TEST

START_TEST(test_set_values)
{
	pw_config cfg;
	char *out = NULL;

	base_env();
	setenv("KAFKA_GROUP_ID", "g2", 1);
	setenv("DATABASE_ROLE", "app_role", 1);
	setenv("JWT_ISSUER", "https://issuer.example", 1);
	setenv("JWT_AUDIENCE", "patients-api", 1);
	setenv("JWT_LEEWAY_S", "5", 1);
	setenv("JWT_OWNER_CLAIM", "email", 1);
	setenv("JWT_REQUIRE_SCOPE", "1", 1);
	setenv("TOPIC_CREATE", "c.create", 1);
	setenv("TOPIC_QUERY", "c.query", 1);
	setenv("TOPIC_REPLIES", "c.replies", 1);
	setenv("TOPIC_DLQ", "c.dlq", 1);
	setenv("MAX_MESSAGE_BYTES", "1024", 1);
	setenv("BATCH_MAX", "100", 1);
	setenv("BATCH_WAIT_MS", "2", 1);
	setenv("JWT_CACHE_SIZE", "0", 1);
	setenv("CURSOR_SECRET", "cursor-secret-value", 1);
	ck_assert_int_eq(load(&cfg, 0, NULL, PW_CFG_NEED_ALL, &out), PW_OK);
	ck_assert_int_eq(cfg.batch_max, 100);
	ck_assert_int_eq(cfg.batch_wait_ms, 2);
	ck_assert_int_eq(cfg.jwt_cache_size, 0);
	ck_assert_str_eq(cfg.cursor_secret, "cursor-secret-value");
	ck_assert_str_eq(cfg.group_id, "g2");
	ck_assert_str_eq(cfg.database_role, "app_role");
	ck_assert_str_eq(cfg.jwt_issuer, "https://issuer.example");
	ck_assert_str_eq(cfg.jwt_audience, "patients-api");
	ck_assert_int_eq(cfg.jwt_leeway_s, 5);
	ck_assert_str_eq(cfg.jwt_owner_claim, "email");
	ck_assert_int_eq(cfg.jwt_require_scope, 1);
	ck_assert_str_eq(cfg.topic_create, "c.create");
	ck_assert_str_eq(cfg.topic_query, "c.query");
	ck_assert_str_eq(cfg.topic_replies, "c.replies");
	ck_assert_str_eq(cfg.topic_dlq, "c.dlq");
	ck_assert_int_eq(cfg.max_message_bytes, 1024);
	pw_config_free(&cfg);
	free(out);
}
END_TEST

START_TEST(test_public_keys)
{
	static const struct {
		const char *alg;
		const char *file;
		pw_config_jwt_alg want;
	} rows[] = {
	    {"RS256", "/rsa_public.pem", PW_ALG_RS256},
	    {"ES256", "/ec_public.pem", PW_ALG_ES256},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_config cfg;
		char *out = NULL, path[1024];

		base_env();
		unsetenv("JWT_SECRET");
		setenv("JWT_ALG", rows[i].alg, 1);
		snprintf(path, sizeof(path), "%s%s", fixtures(), rows[i].file);
		setenv("JWT_PUBLIC_KEY_FILE", path, 1);
		pw_status st = load(&cfg, 0, NULL, PW_CFG_NEED_ALL, &out);
		ck_assert_msg(st == PW_OK, "row %s: status %d: %s", rows[i].alg, st, out);
		ck_assert_msg(cfg.jwt_alg == rows[i].want, "row %s: jwt_alg %d", rows[i].alg,
		              cfg.jwt_alg);
		ck_assert_msg(cfg.jwt_key != NULL &&
		                  strstr((const char *)cfg.jwt_key, "-----BEGIN PUBLIC KEY-----") &&
		                  cfg.jwt_key[cfg.jwt_key_len] == '\0',
		              "row %s: jwt_key is not the PEM text", rows[i].alg);
		pw_config_free(&cfg);
		free(out);
	}
}
END_TEST

typedef struct cfg_case {
	const char *name;
	const char *env[4]; /**< applied after base_env(), see apply_env() */
	const char *argv[6];
	unsigned need;
	int ok;
	const char *named[2]; /**< settings the error output must name */
	const char *secret;   /**< a value the output must not hold */
} cfg_case;

#define ALL PW_CFG_NEED_ALL

static const cfg_case cases[] = {
    {"everything required set", {NULL}, {NULL}, ALL, 1, {NULL}, NULL},
    {"migrate needs no broker, no key",
     {"KAFKA_BROKERS", "JWT_SECRET"},
     {NULL},
     PW_CFG_NEED_DB,
     1,
     {NULL},
     NULL},
    {"no key needed without NEED_JWT",
     {"JWT_SECRET"},
     {NULL},
     PW_CFG_NEED_KAFKA | PW_CFG_NEED_DB,
     1,
     {NULL},
     NULL},
    {"JWT_SECRET of 32 bytes",
     {"JWT_SECRET=0123456789abcdef0123456789abcdef"},
     {NULL},
     ALL,
     1,
     {NULL},
     NULL},
    {"JWT_LEEWAY_S=0", {"JWT_LEEWAY_S=0"}, {NULL}, ALL, 1, {NULL}, NULL},
    {"JWT_LEEWAY_S=600", {"JWT_LEEWAY_S=600"}, {NULL}, ALL, 1, {NULL}, NULL},
    {"two brokers", {"KAFKA_BROKERS=kafka-1:9092,kafka-2:19092"}, {NULL}, ALL, 1, {NULL}, NULL},
    {"topic with . _ -", {"TOPIC_REPLIES=acme.replies_v2-x"}, {NULL}, ALL, 1, {NULL}, NULL},
    {"HTTP_ADDR every address", {"HTTP_ADDR=0.0.0.0:9464"}, {NULL}, ALL, 1, {NULL}, NULL},
    {"HTTP_ADDR IPv6", {"HTTP_ADDR=[::1]:9464"}, {NULL}, ALL, 1, {NULL}, NULL},
    {"HTTP_ADDR empty: no listener", {"HTTP_ADDR="}, {NULL}, ALL, 1, {NULL}, NULL},
    {"HTTP_ADDR without port", {"HTTP_ADDR=localhost"}, {NULL}, ALL, 0, {"HTTP_ADDR"}, NULL},
    {"HTTP_ADDR two addresses", {"HTTP_ADDR=a:1,b:2"}, {NULL}, ALL, 0, {"HTTP_ADDR"}, NULL},
    {"HTTP_ADDR port 0", {"HTTP_ADDR=127.0.0.1:0"}, {NULL}, ALL, 0, {"HTTP_ADDR"}, NULL},

    {"KAFKA_BROKERS missing", {"KAFKA_BROKERS"}, {NULL}, ALL, 0, {"KAFKA_BROKERS"}, NULL},
    {"KAFKA_BROKERS without port",
     {"KAFKA_BROKERS=localhost"},
     {NULL},
     ALL,
     0,
     {"KAFKA_BROKERS"},
     NULL},
    {"KAFKA_BROKERS port not a number",
     {"KAFKA_BROKERS=localhost:abc"},
     {NULL},
     ALL,
     0,
     {"KAFKA_BROKERS"},
     NULL},
    {"KAFKA_BROKERS empty port",
     {"KAFKA_BROKERS=localhost:"},
     {NULL},
     ALL,
     0,
     {"KAFKA_BROKERS"},
     NULL},
    {"KAFKA_BROKERS second without port",
     {"KAFKA_BROKERS=a:9092,b"},
     {NULL},
     ALL,
     0,
     {"KAFKA_BROKERS"},
     NULL},
    {"DATABASE_URL missing", {"DATABASE_URL"}, {NULL}, ALL, 0, {"DATABASE_URL"}, NULL},
    {"DATABASE_URL not parseable, with a password",
     {"DATABASE_URL=host=db password=Pa55-leak-check bogus"},
     {NULL},
     ALL,
     0,
     {"DATABASE_URL"},
     "Pa55-leak-check"},
    {"KAFKA_BROKERS and DATABASE_URL missing",
     {"KAFKA_BROKERS", "DATABASE_URL"},
     {NULL},
     ALL,
     0,
     {"KAFKA_BROKERS", "DATABASE_URL"},
     NULL},
    {"JWT_ALG=HS512", {"JWT_ALG=HS512"}, {NULL}, ALL, 0, {"JWT_ALG"}, NULL},
    {"JWT_ALG=none", {"JWT_ALG=none"}, {NULL}, ALL, 0, {"JWT_ALG"}, NULL},
    {"JWT_ALG=RS512", {"JWT_ALG=RS512"}, {NULL}, ALL, 0, {"JWT_ALG"}, NULL},
    {"JWT_SECRET missing", {"JWT_SECRET"}, {NULL}, ALL, 0, {"JWT_SECRET"}, NULL},
    {"JWT_SECRET of 31 bytes",
     {"JWT_SECRET=short-secret-XYZ-0123456789abcd"},
     {NULL},
     ALL,
     0,
     {"JWT_SECRET"},
     "short-secret-XYZ-0123456789abcd"},
    {"RS256 key file not PEM",
     {"JWT_ALG=RS256", "JWT_PUBLIC_KEY_FILE=@FIX@/not_a_key.pem"},
     {NULL},
     ALL,
     0,
     {"JWT_PUBLIC_KEY_FILE"},
     NULL},
    {"RS256 key file missing",
     {"JWT_ALG=RS256", "JWT_PUBLIC_KEY_FILE=@FIX@/no_such_key.pem"},
     {NULL},
     ALL,
     0,
     {"JWT_PUBLIC_KEY_FILE"},
     NULL},
    {"RS256 key file not set", {"JWT_ALG=RS256"}, {NULL}, ALL, 0, {"JWT_PUBLIC_KEY_FILE"}, NULL},
    {"RS256 with an EC key",
     {"JWT_ALG=RS256", "JWT_PUBLIC_KEY_FILE=@FIX@/ec_public.pem"},
     {NULL},
     ALL,
     0,
     {"JWT_PUBLIC_KEY_FILE"},
     NULL},
    {"ES256 with an RSA key",
     {"JWT_ALG=ES256", "JWT_PUBLIC_KEY_FILE=@FIX@/rsa_public.pem"},
     {NULL},
     ALL,
     0,
     {"JWT_PUBLIC_KEY_FILE"},
     NULL},
    {"JWT_LEEWAY_S=abc", {"JWT_LEEWAY_S=abc"}, {NULL}, ALL, 0, {"JWT_LEEWAY_S"}, NULL},
    {"JWT_LEEWAY_S=-1", {"JWT_LEEWAY_S=-1"}, {NULL}, ALL, 0, {"JWT_LEEWAY_S"}, NULL},
    {"JWT_LEEWAY_S=601", {"JWT_LEEWAY_S=601"}, {NULL}, ALL, 0, {"JWT_LEEWAY_S"}, NULL},
    {"JWT_LEEWAY_S=5s", {"JWT_LEEWAY_S=5s"}, {NULL}, ALL, 0, {"JWT_LEEWAY_S"}, NULL},
    {"JWT_REQUIRE_SCOPE=2", {"JWT_REQUIRE_SCOPE=2"}, {NULL}, ALL, 0, {"JWT_REQUIRE_SCOPE"}, NULL},
    {"MAX_MESSAGE_BYTES=abc",
     {"MAX_MESSAGE_BYTES=abc"},
     {NULL},
     ALL,
     0,
     {"MAX_MESSAGE_BYTES"},
     NULL},
    {"TOPIC_CREATE with a space",
     {"TOPIC_CREATE=bad topic"},
     {NULL},
     ALL,
     0,
     {"TOPIC_CREATE"},
     NULL},
    {"TOPIC_REPLIES with a slash", {"TOPIC_REPLIES=a/b"}, {NULL}, ALL, 0, {"TOPIC_REPLIES"}, NULL},
    {"TOPIC_DLQ '..'", {"TOPIC_DLQ=.."}, {NULL}, ALL, 0, {"TOPIC_DLQ"}, NULL},
    {"TOPIC_QUERY with a colon", {"TOPIC_QUERY=q:1"}, {NULL}, ALL, 0, {"TOPIC_QUERY"}, NULL},
    {"LOG_LEVEL=loud", {"LOG_LEVEL=loud"}, {NULL}, ALL, 0, {"LOG_LEVEL"}, NULL},
    {"flag --jwt-leeway-s=abc",
     {NULL},
     {"patient-worker", "--jwt-leeway-s=abc"},
     ALL,
     0,
     {"JWT_LEEWAY_S"},
     NULL},
    {"flag --kafka-group-id without value",
     {NULL},
     {"patient-worker", "--kafka-group-id"},
     ALL,
     0,
     {"KAFKA_GROUP_ID"},
     NULL},
    {"flag --kafka-brokers=localhost",
     {NULL},
     {"patient-worker", "--kafka-brokers=localhost"},
     ALL,
     0,
     {"KAFKA_BROKERS"},
     NULL},
};

START_TEST(test_cases)
{
	const cfg_case *c = &cases[_i];
	pw_config cfg;
	char *out = NULL;
	int argc = 0;

	base_env();
	for (size_t k = 0; k < 4 && c->env[k]; k++)
		apply_env(c->env[k]);
	while (argc < 6 && c->argv[argc])
		argc++;
	pw_status st = load(&cfg, argc, (char **)c->argv, c->need, &out);
	if (c->ok) {
		ck_assert_msg(st == PW_OK, "case '%s': status %d: %s", c->name, st, out);
		ck_assert_msg(out[0] == '\0', "case '%s': output on success: %s", c->name, out);
	} else {
		ck_assert_msg(st == PW_E_CONFIG, "case '%s': status %d, want PW_E_CONFIG", c->name,
		              st);
		for (size_t k = 0; k < 2 && c->named[k]; k++)
			ck_assert_msg(strstr(out, c->named[k]) != NULL,
			              "case '%s': output does not name %s: %s", c->name,
			              c->named[k], out);
		/* One line per problem, each naming a setting. */
		ck_assert_msg(out[0] != '\0' && out[strlen(out) - 1] == '\n',
		              "case '%s': output not whole lines: '%s'", c->name, out);
		for (const char *line = out; *line;) {
			const char *nl = strchr(line, '\n');
			size_t n = nl ? (size_t)(nl - line) : strlen(line);
			ck_assert_msg(names_a_setting(line, n),
			              "case '%s': line names no setting: %.*s", c->name, (int)n,
			              line);
			line += n + (nl ? 1 : 0);
		}
	}
	ck_assert_msg(strstr(out, SECRET) == NULL, "case '%s': output holds JWT_SECRET", c->name);
	ck_assert_msg(strstr(out, DB_PASS) == NULL, "case '%s': output holds the DB password",
	              c->name);
	if (c->secret)
		ck_assert_msg(strstr(out, c->secret) == NULL, "case '%s': output holds '%s'",
		              c->name, c->secret);
	pw_config_free(&cfg);
	free(out);
}
END_TEST

START_TEST(test_flags_override_env)
{
	pw_config cfg;
	char *out = NULL;
	char *argv[] = {"patient-worker", "run", "--jwt-leeway-s=5", "--kafka-group-id", "x",
	                "extra",          NULL};

	base_env();
	setenv("JWT_LEEWAY_S", "20", 1);
	setenv("KAFKA_GROUP_ID", "from-env", 1);
	setenv("TOPIC_DLQ", "env.dlq", 1);
	ck_assert_int_eq(load(&cfg, 6, argv, PW_CFG_NEED_ALL, &out), PW_OK);
	ck_assert_int_eq(cfg.jwt_leeway_s, 5);
	ck_assert_str_eq(cfg.group_id, "x");
	ck_assert_str_eq(cfg.topic_dlq, "env.dlq"); /* no flag: the environment's value */
	ck_assert_str_eq(argv[1], "run");
	ck_assert_str_eq(argv[5], "extra");
	pw_config_free(&cfg);
	free(out);

	/* A flag can also supply a required setting the environment lacks. */
	char *argv2[] = {"patient-worker", "--kafka-brokers=kafka:9092", "--database-url",
	                 "postgresql://db/x", NULL};
	unsetenv("KAFKA_BROKERS");
	unsetenv("DATABASE_URL");
	ck_assert_int_eq(load(&cfg, 4, argv2, PW_CFG_NEED_ALL, &out), PW_OK);
	ck_assert_str_eq(cfg.kafka_brokers, "kafka:9092");
	ck_assert_str_eq(cfg.database_url, "postgresql://db/x");
	pw_config_free(&cfg);
	free(out);
}
END_TEST

/* pw_config_log writes to stderr: catch fd 2 in a file (the test runs in its own process). */
START_TEST(test_log_masks_secrets)
{
	pw_config cfg;
	char *out = NULL;
	FILE *cap = tmpfile();
	char buf[8192];
	size_t n;

	base_env();
	ck_assert_ptr_nonnull(cap);
	ck_assert_int_eq(load(&cfg, 0, NULL, PW_CFG_NEED_ALL, &out), PW_OK);
	int saved = dup(STDERR_FILENO);
	ck_assert(saved >= 0);
	fflush(stderr);
	ck_assert(dup2(fileno(cap), STDERR_FILENO) >= 0);
	pw_config_log(&cfg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(cap);
	n = fread(buf, 1, sizeof(buf) - 1, cap);
	buf[n] = '\0';
	fclose(cap);
	ck_assert_msg(strstr(buf, "JWT_LEEWAY_S") != NULL, "configuration not logged: %s", buf);
	ck_assert_msg(strstr(buf, SECRET) == NULL, "log holds JWT_SECRET: %s", buf);
	ck_assert_msg(strstr(buf, DB_PASS) == NULL, "log holds the DB password: %s", buf);
	pw_config_free(&cfg);
	free(out);
}
END_TEST

START_TEST(test_help)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	ck_assert_ptr_nonnull(f);
	pw_config_print_help(f);
	fclose(f);
	for (size_t i = 0; i < NVARS; i++)
		ck_assert_msg(strstr(out, all_vars[i]) != NULL, "--help does not list %s",
		              all_vars[i]);
	ck_assert_msg(strstr(out, "patients.replies") != NULL, "--help lacks the defaults");
	free(out);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("load");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_http_addr_empty_is_off);
	tcase_add_test(tc, test_set_values);
	tcase_add_test(tc, test_public_keys);
	tcase_add_loop_test(tc, test_cases, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_flags_override_env);
	suite_add_tcase(s, tc);

	tc = tcase_create("output");
	tcase_add_test(tc, test_log_masks_secrets);
	tcase_add_test(tc, test_help);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(config_suite());
}
