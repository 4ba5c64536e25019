/* Command-line tests: runs the built patient-worker and patientctl as child processes,
 * each with an environment built from nothing (PATH plus what the case needs), and checks
 * exit statuses, the line naming a bad setting, --help, and that no secret is printed.
 * A bad setting must stop the worker within 5 s, before it connects anywhere: the broker
 * and database addresses point at a local listener that must receive no connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
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

#include "pw_config.h"
#include "pw_jwt.h"
#include "pw_status.h"

#define DEADLINE_MS 5000
#define OUT_MAX     (1024 * 1024)
#define MAX_ARGS    8
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

typedef struct run_result {
	int timed_out;
	int status; /**< from waitpid */
	char *out;
	char *err;
	size_t out_len, err_len;
} run_result;

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

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
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

static void set_cloexec(int fd)
{
	ck_assert(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0);
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
	if (*len + n > OUT_MAX)
		n = OUT_MAX - *len;
	char *nb = realloc(*buf, *len + n + 1);
	ck_assert(nb != NULL);
	memcpy(nb + *len, data, n);
	*len += n;
	nb[*len] = '\0';
	*buf = nb;
}

/* Runs bin with args (NULL-terminated, argv[0] added) in exactly envp, stdin from
 * /dev/null; waits at most DEADLINE_MS, then kills it and reports timed_out. */
static void run_child(const char *bin, const char *const *args, char *const *envp, run_result *r)
{
	char *argv[MAX_ARGS + 2];
	int op[2], ep[2];
	posix_spawn_file_actions_t fa;
	pid_t pid;
	size_t argc = 0;
	struct timespec t0;

	memset(r, 0, sizeof(*r));
	append(&r->out, &r->out_len, "", 0);
	append(&r->err, &r->err_len, "", 0);
	argv[argc++] = (char *)bin;
	for (size_t i = 0; args[i] != NULL; i++) {
		ck_assert(argc < MAX_ARGS + 1);
		argv[argc++] = (char *)args[i];
	}
	argv[argc] = NULL;

	ck_assert(pipe(op) == 0 && pipe(ep) == 0);
	for (int i = 0; i < 2; i++) {
		set_cloexec(op[i]);
		set_cloexec(ep[i]);
	}
	ck_assert(posix_spawn_file_actions_init(&fa) == 0);
	ck_assert(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) == 0);
	ck_assert(posix_spawn_file_actions_adddup2(&fa, op[1], 1) == 0);
	ck_assert(posix_spawn_file_actions_adddup2(&fa, ep[1], 2) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = posix_spawn(&pid, bin, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(op[1]);
	close(ep[1]);
	ck_assert_msg(rc == 0, "cannot run %s: %s", bin, strerror(rc));

	struct pollfd pf[2] = {{.fd = op[0], .events = POLLIN}, {.fd = ep[0], .events = POLLIN}};
	int open_fds = 2;
	while (open_fds > 0) {
		long left = DEADLINE_MS - elapsed_ms(&t0);
		if (left <= 0)
			break;
		int n = poll(pf, 2, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		ck_assert(n >= 0);
		for (int i = 0; i < 2; i++) {
			if (pf[i].fd < 0 || pf[i].revents == 0)
				continue;
			char chunk[4096];
			ssize_t got = read(pf[i].fd, chunk, sizeof(chunk));
			if (got > 0) {
				if (i == 0)
					append(&r->out, &r->out_len, chunk, (size_t)got);
				else
					append(&r->err, &r->err_len, chunk, (size_t)got);
			} else if (got == 0 || errno != EINTR) {
				close(pf[i].fd);
				pf[i].fd = -1;
				open_fds--;
			}
		}
	}
	for (;;) {
		pid_t w = waitpid(pid, &r->status, WNOHANG);
		if (w == pid)
			break;
		ck_assert(w == 0 || errno == EINTR);
		if (elapsed_ms(&t0) >= DEADLINE_MS) {
			r->timed_out = 1;
			kill(pid, SIGKILL);
			while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	for (int i = 0; i < 2; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
}

static void result_free(run_result *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

/* -1 when the child did not exit normally. */
static int exit_code(const run_result *r)
{
	return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1;
}

/* Does some line of text start with prefix? */
static int has_line(const char *text, const char *prefix)
{
	const char *p = text;

	while (*p) {
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			return 1;
		p = strchr(p, '\n');
		if (p == NULL)
			break;
		p++;
	}
	return 0;
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

static void check_no_secret(const char *row, const run_result *r, const char *secret)
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
	run_result r;
	int port;
	int ls = listen_local(&port);

	base_env(&e, port);
	for (size_t i = 0; i < sizeof(c->env) / sizeof(c->env[0]) && c->env[i]; i++)
		env_apply(&e, c->env[i], port);
	run_child(env_or_die("PW_WORKER_BIN"), c->args, e.v, &r);

	ck_assert_msg(!r.timed_out, "[%s] still running after %d ms (killed); stderr:\n%.600s",
	              c->name, DEADLINE_MS, r.err);
	ck_assert_msg(exit_code(&r) == 2, "[%s] exit %d (status 0x%x), want 2; stderr:\n%.600s",
	              c->name, exit_code(&r), (unsigned)r.status, r.err);
	ck_assert_msg(has_line(r.err, c->want_line),
	              "[%s] no stderr line starts with '%s'; stderr:\n%.600s", c->name,
	              c->want_line, r.err);
	if (c->not_line)
		ck_assert_msg(!has_line(r.err, c->not_line),
		              "[%s] a stderr line starts with '%s' (should not); stderr:\n%.600s",
		              c->name, c->not_line, r.err);
	for (size_t i = 0; i < sizeof(c->forbid) / sizeof(c->forbid[0]) && c->forbid[i]; i++)
		check_no_secret(c->name, &r, c->forbid[i]);
	check_no_secret(c->name, &r, BASE_SECRET);
	check_no_secret(c->name, &r, BASE_DB_PASS);
	ck_assert_msg(!was_connected(ls), "[%s] connected to the broker/database before exiting",
	              c->name);
	close(ls);
	result_free(&r);
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
	run_result r;

	env_init(&e);
	run_child(env_or_die("PW_WORKER_BIN"), c->args, e.v, &r);
	ck_assert_msg(!r.timed_out, "[%s] still running after %d ms (killed)", c->name,
	              DEADLINE_MS);
	ck_assert_msg(exit_code(&r) == c->want_exit, "[%s] exit %d, want %d; stderr:\n%.600s",
	              c->name, exit_code(&r), c->want_exit, r.err);
	for (size_t i = 0; c->want_vars_on_stdout && i < NCONTRACT; i++)
		ck_assert_msg(strstr(r.out, contract_vars[i]) != NULL,
		              "[%s] stdout does not list %s:\n%.2000s", c->name, contract_vars[i],
		              r.out);
	result_free(&r);
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
	run_result r;
	pw_config cfg;
	pw_jwt_verifier *v = NULL;
	pw_claims claims;
	char why[256] = "";
	char *argv0[] = {"check_cli", NULL};

	env_init(&e);
	env_apply(&e, "JWT_SECRET=" SECRET_32, 0);
	run_child(env_or_die("PW_CTL_BIN"), args, e.v, &r);
	ck_assert_msg(!r.timed_out, "[token] still running after %d ms (killed)", DEADLINE_MS);
	ck_assert_msg(exit_code(&r) == 0, "[token] exit %d, want 0; stderr:\n%.600s", exit_code(&r),
	              r.err);
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
	result_free(&r);
	env_free(&e);
}
END_TEST

START_TEST(test_token_without_secret)
{
	const char *args[] = {"token", "--sub", "a@example.com", NULL};
	env_list e;
	run_result r;

	env_init(&e);
	run_child(env_or_die("PW_CTL_BIN"), args, e.v, &r);
	ck_assert_msg(!r.timed_out, "[token, no JWT_SECRET] still running after %d ms (killed)",
	              DEADLINE_MS);
	ck_assert_msg(exit_code(&r) == 2, "[token, no JWT_SECRET] exit %d, want 2; stderr:\n%.600s",
	              exit_code(&r), r.err);
	ck_assert_msg(has_line(r.err, "JWT_SECRET"),
	              "[token, no JWT_SECRET] no stderr line starts with JWT_SECRET:\n%.600s",
	              r.err);
	ck_assert_msg(r.out_len == 0, "[token, no JWT_SECRET] printed something: '%.600s'", r.out);
	result_free(&r);
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
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cli_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
