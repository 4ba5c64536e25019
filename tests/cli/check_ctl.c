/* patientctl against the local stack: a worker of the test's own (its own topics and
 * group), patientctl run as a child process with the worker's settings, its exit status,
 * stdout and files checked, the database counted. Every wait has a deadline. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "cli_run.h"
#include "pw_check_main.h"
#include "pw_testkit.h"

#define ONE_MS  30000  /* a single command, all told */
#define LOAD_MS 180000 /* a load of 1,000 rows */

extern char **environ;

static char dir[256];

static void dir_up(void)
{
	snprintf(dir, sizeof(dir), "%s/ctl-XXXXXX",
	         getenv("PW_TEST_LOG_DIR") ? getenv("PW_TEST_LOG_DIR") : "/tmp");
	ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
}

/* Runs only when the case passed (a failed one exits first): its files stay for a look. */
static void dir_down(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* Our own environment with the world's topics and the test secret; extra "NAME=value"
 * entries (NULL-terminated, may be NULL) override, and "NAME" alone removes. */
typedef struct envp {
	char *v[512];
	size_t n;
} envp;

static void env_set(envp *e, const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t len = eq ? (size_t)(eq - kv) : strlen(kv);

	for (size_t i = 0; i < e->n; i++)
		if (strncmp(e->v[i], kv, len) == 0 && e->v[i][len] == '=') {
			free(e->v[i]);
			e->v[i] = e->v[--e->n];
			break;
		}
	if (eq == NULL)
		return;
	ck_assert(e->n + 1 < sizeof(e->v) / sizeof(e->v[0]));
	e->v[e->n] = strdup(kv);
	ck_assert(e->v[e->n] != NULL);
	e->v[++e->n] = NULL;
}

static void env_build(envp *e, const tk_world *w, const char *const *extra)
{
	char kv[512];

	memset(e, 0, sizeof(*e));
	for (char **p = environ; *p && e->n + 16 < sizeof(e->v) / sizeof(e->v[0]); p++)
		if (strncmp(*p, "PW_TOKEN=", 9) != 0 && strncmp(*p, "JWT_", 4) != 0)
			env_set(e, *p);
	snprintf(kv, sizeof(kv), "TOPIC_CREATE=%s", w->create);
	env_set(e, kv);
	snprintf(kv, sizeof(kv), "TOPIC_QUERY=%s", w->query);
	env_set(e, kv);
	snprintf(kv, sizeof(kv), "TOPIC_REPLIES=%s", w->replies);
	env_set(e, kv);
	env_set(e, "JWT_SECRET=" TK_SECRET);
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
		env_set(e, extra[i]);
}

static void env_free(envp *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	memset(e, 0, sizeof(*e));
}

/* Runs patientctl with args against world w; fails the test if it outlives deadline_ms. */
static int ctl(const tk_world *w, const char *const *extra_env, long deadline_ms, cli_result *r,
               const char *const *args)
{
	envp e;

	env_build(&e, w, extra_env);
	cli_run(tk_env("PW_CTL_BIN"), args, e.v, deadline_ms, r);
	env_free(&e);
	if (r->timed_out)
		tk_dump_log(w);
	ck_assert_msg(!r->timed_out, "patientctl %s ran over %ld ms; stderr:\n%.2000s", args[0],
	              deadline_ms, r->err);
	/* Nothing on stderr may carry a token (every JWT starts with eyJ). */
	ck_assert_msg(strstr(r->err, "eyJ") == NULL, "stderr shows a token:\n%.2000s", r->err);
	return cli_exit_code(r);
}

#define CTL(w, env, ms, r, ...) ctl((w), (env), (ms), (r), (const char *const[]){__VA_ARGS__, NULL})

static void want_exit(const cli_result *r, int got, int want, const char *what)
{
	ck_assert_msg(got == want, "%s: exit %d, want %d\nstdout: %.2000s\nstderr: %.2000s", what,
	              got, want, r->out, r->err);
}

static long long sql_count(const char *sql)
{
	char *v = tk_sql(sql);
	long long n = v ? atoll(v) : -1;

	free(v);
	return n;
}

/* The owner's patients that a load created (their request ids start with load:). */
static long long count_loaded(const char *owner)
{
	char sql[512];

	snprintf(
	    sql, sizeof(sql),
	    "SELECT count(*) FROM patients WHERE owner_id = '%s' AND request_id LIKE 'load:%%'",
	    owner);
	return sql_count(sql);
}

static long long count_all(const char *owner)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM patients WHERE owner_id = '%s'", owner);
	return sql_count(sql);
}

/* data.items[i].dni of a list reply, or "(none)". Caller frees. */
static char *item_dni(const char *reply, size_t i)
{
	json_t *r = json_loads(reply, 0, NULL);
	json_t *dni = json_object_get(
	    json_array_get(json_object_get(json_object_get(r, "data"), "items"), i), "dni");
	char *s = strdup(json_is_string(dni) ? json_string_value(dni) : "(none)");

	json_decref(r);
	ck_assert(s != NULL);
	return s;
}

static void want_item(const char *reply, size_t i, const char *dni)
{
	char *got = item_dni(reply, i);

	ck_assert_msg(strcmp(got, dni) == 0, "items[%zu].dni is %s, want %s: %s", i, got, dni,
	              reply);
	free(got);
}

/* ---- create, get, list: exit statuses and replies ---- */

START_TEST(round_trips)
{
	tk_world *w = &tk_shared;
	char *o = tk_owner("ctl");
	char *other = tk_owner("ctlx");
	cli_result r;
	char rid[64], idbuf[32];
	int rc;

	rc = CTL(w, NULL, ONE_MS, &r, "create", "--sub", o, "--nombre", "Ana", "--apellido-paterno",
	         "Quispe", "--dni", "D1", "--fecha-nacimiento", "1990-04-12");
	want_exit(&r, rc, 0, "create");
	tk_assert_json(r.out, "status", "201");
	tk_assert_json(r.out, "data.owner_id", o);
	char *id = tk_json_get(r.out, "data.id");
	ck_assert_ptr_nonnull(id);
	snprintf(idbuf, sizeof(idbuf), "%s", id);
	free(id);
	cli_result_free(&r);

	/* The same dni again: 409, exit 1. */
	rc = CTL(w, NULL, ONE_MS, &r, "create", "--sub", o, "--payload",
	         "{\"nombre\":\"Eva\",\"apellido_paterno\":\"Rojas\",\"dni\":\"D1\","
	         "\"fecha_nacimiento\":\"1991-01-01\"}");
	want_exit(&r, rc, 1, "create, dni taken");
	tk_assert_json(r.out, "status", "409");
	tk_assert_json(r.out, "error.code", "conflict");
	cli_result_free(&r);

	/* A payload the worker refuses: 400, exit 1, its reasons on stdout. */
	rc = CTL(w, NULL, ONE_MS, &r, "create", "--sub", o, "--payload",
	         "{\"nombre\":\"Eva\",\"apellido_paterno\":\"Rojas\",\"dni\":\"x y\","
	         "\"fecha_nacimiento\":\"1991-02-30\",\"color\":\"red\"}");
	want_exit(&r, rc, 1, "create, invalid");
	tk_assert_json(r.out, "status", "400");
	tk_assert_json(r.out, "error.code", "validation_failed");
	char *f = tk_json_get(r.out, "error.fields.color");
	ck_assert_ptr_nonnull(f);
	free(f);
	cli_result_free(&r);

	/* --request-id: the same id and payload twice get the same reply, same id. */
	tk_unique(rid, sizeof(rid), "ctl-r-");
	char *first = NULL;
	for (int i = 0; i < 2; i++) {
		rc = CTL(w, NULL, ONE_MS, &r, "create", "--sub", o, "--request-id", rid, "--nombre",
		         "Luz", "--apellido-paterno", "Mamani", "--dni", "D2", "--fecha-nacimiento",
		         "1985-12-31", "--sexo", "F");
		want_exit(&r, rc, 0, "create with --request-id");
		tk_assert_json(r.out, "request_id", rid);
		if (first == NULL)
			first = strdup(r.out);
		else
			ck_assert_str_eq(r.out, first);
		cli_result_free(&r);
	}
	free(first);

	rc = CTL(w, NULL, ONE_MS, &r, "get", "--sub", o, "--id", idbuf);
	want_exit(&r, rc, 0, "get");
	tk_assert_json(r.out, "status", "200");
	tk_assert_json(r.out, "data.dni", "D1");
	cli_result_free(&r);

	rc = CTL(w, NULL, ONE_MS, &r, "get", "--sub", o, "--id", "999999999");
	want_exit(&r, rc, 1, "get, no such id");
	tk_assert_json(r.out, "status", "404");
	cli_result_free(&r);

	/* Another owner asking for our id: the same 404. */
	rc = CTL(w, NULL, ONE_MS, &r, "get", "--sub", other, "--id", idbuf);
	want_exit(&r, rc, 1, "get, another owner's id");
	tk_assert_json(r.out, "error.code", "not_found");
	cli_result_free(&r);

	rc = CTL(w, NULL, ONE_MS, &r, "list", "--sub", o, "--dni", "D1");
	want_exit(&r, rc, 0, "list --dni");
	want_item(r.out, 0, "D1");
	cli_result_free(&r);

	/* Two pages of one, through the cursor; the filter is a name prefix. */
	rc = CTL(w, NULL, ONE_MS, &r, "list", "--sub", o, "--q", "luz", "--limit", "1");
	want_exit(&r, rc, 0, "list --q");
	want_item(r.out, 0, "D2");
	tk_assert_json(r.out, "data.next_cursor", "null");
	cli_result_free(&r);
	rc = CTL(w, NULL, ONE_MS, &r, "list", "--sub", o, "--limit", "1");
	want_exit(&r, rc, 0, "list page 1");
	want_item(r.out, 0, "D1");
	char *cursor = tk_json_get(r.out, "data.next_cursor");
	ck_assert_msg(cursor != NULL && strcmp(cursor, "null") != 0, "no next_cursor: %s", r.out);
	cli_result_free(&r);
	rc = CTL(w, NULL, ONE_MS, &r, "list", "--sub", o, "--limit", "1", "--cursor", cursor);
	want_exit(&r, rc, 0, "list page 2");
	want_item(r.out, 0, "D2");
	cli_result_free(&r);
	free(cursor);

	rc = CTL(w, NULL, ONE_MS, &r, "list", "--sub", o, "--limit", "500");
	want_exit(&r, rc, 1, "list --limit 500");
	tk_assert_json(r.out, "status", "400");
	cli_result_free(&r);

	/* A token given with --token, then in PW_TOKEN; an expired one: 401, exit 1. */
	char *tok = tk_token(o, 600, NULL);
	rc = CTL(w, NULL, ONE_MS, &r, "get", "--token", tok, "--id", idbuf);
	want_exit(&r, rc, 0, "get --token");
	cli_result_free(&r);
	char pw_token[2048];
	snprintf(pw_token, sizeof(pw_token), "PW_TOKEN=%s", tok);
	const char *with_token[] = {pw_token, NULL};
	rc = CTL(w, with_token, ONE_MS, &r, "get", "--id", idbuf);
	want_exit(&r, rc, 0, "get with PW_TOKEN");
	ck_assert_msg(strstr(r.err, tok) == NULL && strstr(r.out, tok) == NULL, "token printed");
	cli_result_free(&r);
	free(tok);
	tok = tk_token(o, -600, NULL);
	rc = CTL(w, NULL, ONE_MS, &r, "get", "--token", tok, "--id", idbuf);
	want_exit(&r, rc, 1, "get, expired token");
	tk_assert_json(r.out, "status", "401");
	cli_result_free(&r);
	free(tok);

	/* A reply topic of our own under the prefix. */
	char mine[sizeof(w->replies) + 8];
	snprintf(mine, sizeof(mine), "%.*s.ctl", (int)sizeof(w->replies) - 1, w->replies);
	tk_create_topic(mine, 1, 0);
	rc = CTL(w, NULL, ONE_MS, &r, "get", "--sub", o, "--id", idbuf, "--reply-topic", mine);
	want_exit(&r, rc, 0, "get --reply-topic");
	tk_assert_json(r.out, "data.dni", "D1");
	cli_result_free(&r);

	free(o);
	free(other);
}
END_TEST

/* ---- load: 1,000 CSV rows, 10 bad; resumed twice ---- */
/* (--timeout 60 on loads: a slow CI machine must not turn a slow reply into a failure.) */

typedef struct bad_row {
	unsigned long line;
	const char *status; /**< "400", "409" or "unparsable" as tk_json_get gives it */
	const char *code;
} bad_row;

/* Writes a CSV of n data rows (CRLF, a byte order mark, quoted cells with commas) where
 * ten rows are bad in ten ways; bad[] gets their first lines. fixed: the same file with
 * the bad rows corrected in place (same lines), except the two dni conflicts. */
static void write_csv(const char *path, int n, int fixed, bad_row bad[10])
{
	FILE *f = fopen(path, "wb");
	unsigned long line = 1;
	int nb = 0;

	ck_assert(f != NULL);
	fputs("\xEF\xBB\xBFnombre,apellido_paterno,apellido_materno,dni,fecha_nacimiento,sexo\r\n",
	      f);
	for (int i = 1; i <= n; i++) {
		line++;
		char dni[32], date[16], nombre[64];
		const char *sexo = i % 3 == 0 ? "F" : i % 3 == 1 ? "M" : "X";
		const char *status = NULL, *code = NULL;
		snprintf(dni, sizeof(dni), "L%06d", i);
		snprintf(date, sizeof(date), "19%02d-%02d-%02d", 40 + i % 60, 1 + i % 12,
		         1 + i % 28);
		snprintf(nombre, sizeof(nombre), "Nombre%d", i);
		switch (i) {
		case 50:
			if (!fixed)
				snprintf(date, sizeof(date), "1990-02-30");
			status = "400", code = "validation_failed";
			break;
		case 150:
			if (!fixed)
				snprintf(date, sizeof(date), "2990-01-01");
			status = "400", code = "validation_failed";
			break;
		case 250:
			if (!fixed)
				snprintf(date, sizeof(date), "x");
			status = "400", code = "validation_failed";
			break;
		case 350:
			if (!fixed)
				snprintf(dni, sizeof(dni), "12 34");
			status = "400", code = "validation_failed";
			break;
		case 450:
			if (!fixed)
				nombre[0] = '\0';
			status = "400", code = "validation_failed";
			break;
		case 550:
			if (!fixed)
				sexo = "Z";
			status = "400", code = "validation_failed";
			break;
		case 650:
		case 750:
			snprintf(dni, sizeof(dni), "DUP-1"); /* the test created it before */
			status = "409", code = "conflict";
			break;
		default:
			break;
		}
		if (i == 850) {
			/* Two physical lines either way: the rows after keep their lines. */
			if (!fixed)
				fprintf(f, "\"Multi\r\nline\",Apaza,,%s,%s,%s\r\n", dni, date,
				        sexo);
			else
				fprintf(f, "Multi,Apaza,,%s,%s,%s\r\n\r\n", dni, date, sexo);
			bad[nb++] = (bad_row){line, "400", "validation_failed"};
			line++;
			continue;
		}
		if (i == 950) {
			fprintf(f, "%s,Apaza,,%s,%s,%s%s\r\n", nombre, dni, date, sexo,
			        fixed ? "" : ",extra");
			bad[nb++] = (bad_row){line, "unparsable", "unparsable"};
			continue;
		}
		fprintf(f, "%s,\"Quispe, Jr\",%s,%s,%s,%s\r\n", nombre,
		        i % 2 ? "\"de la Cruz\"" : "", dni, date, sexo);
		if (status != NULL)
			bad[nb++] = (bad_row){line, status, code};
	}
	ck_assert_int_eq(nb, 10);
	ck_assert(fclose(f) == 0);
}

/* Reads FILE.errors.jsonl: one object per line; checks each against bad[] (by line). */
static size_t check_errors(const char *path, const bad_row *bad, size_t nbad,
                           const char *rid_prefix)
{
	FILE *f = fopen(path, "r");
	char line[65536];
	size_t n = 0;
	int seen[16] = {0};

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		n++;
		char *ln = tk_json_get(line, "line");
		ck_assert_ptr_nonnull(ln);
		unsigned long l = strtoul(ln, NULL, 10);
		size_t k;
		for (k = 0; k < nbad && bad[k].line != l; k++)
			;
		ck_assert_msg(k < nbad, "line %lu is in the errors file but is not bad: %s", l,
		              line);
		ck_assert_msg(!seen[k], "line %lu twice in the errors file", l);
		seen[k] = 1;
		tk_assert_json(line, "status", bad[k].status);
		tk_assert_json(line, "error.code", bad[k].code);
		char want_rid[160];
		snprintf(want_rid, sizeof(want_rid), "%s%lu", rid_prefix, l);
		tk_assert_json(line, "request_id", want_rid);
		/* A row that could not be read shows its text; one that could, its fields (an
		 * update or delete row names its patient by id). */
		char *row = tk_json_get(line, "text");
		if (row == NULL)
			row = tk_json_get(line, "row.dni");
		if (row == NULL)
			row = tk_json_get(line, "row.id");
		ck_assert_msg(row != NULL, "no row or text: %s", line);
		free(row);
		free(ln);
	}
	fclose(f);
	return n;
}

static unsigned long summary_count(const char *out, const char *what)
{
	const char *p = strstr(out, what);
	ck_assert_msg(p != NULL, "no '%s' in the summary: %s", what, out);
	while (p > out && p[-1] == ' ')
		p--;
	while (p > out && p[-1] >= '0' && p[-1] <= '9')
		p--;
	return strtoul(p, NULL, 10);
}

START_TEST(load_csv_resumable)
{
	tk_world *w = &tk_shared;
	char *o = tk_owner("load");
	char path[512], errors[600], journal[600];
	bad_row bad[10];
	cli_result r;
	int rc;

	snprintf(path, sizeof(path), "%s/patients.csv", dir);
	snprintf(errors, sizeof(errors), "%s.errors.jsonl", path);
	snprintf(journal, sizeof(journal), "%s.done", path);
	write_csv(path, 1000, 0, bad);
	rc = CTL(w, NULL, ONE_MS, &r, "create", "--sub", o, "--nombre", "Ya", "--apellido-paterno",
	         "Existe", "--dni", "DUP-1", "--fecha-nacimiento", "1970-01-01");
	want_exit(&r, rc, 0, "create DUP-1");
	cli_result_free(&r);

	rc = CTL(w, NULL, LOAD_MS, &r, "load", path, "--timeout", "60", "--sub", o);
	want_exit(&r, rc, 1, "load (10 bad rows)");
	ck_assert_uint_eq(summary_count(r.out, "rows:"), 1000);
	ck_assert_uint_eq(summary_count(r.out, "created"), 990);
	ck_assert_uint_eq(summary_count(r.out, "skipped"), 0);
	ck_assert_uint_eq(summary_count(r.out, "failed"), 10);
	ck_assert_uint_eq(summary_count(r.out, "unparsable"), 1);
	/* Progress is counts only: no patient field on stderr. */
	ck_assert_msg(strstr(r.err, "Nombre") == NULL && strstr(r.err, "L000") == NULL &&
	                  strstr(r.err, "Quispe") == NULL,
	              "stderr shows patient data:\n%.2000s", r.err);
	ck_assert_msg(strstr(r.err, "rows sent") != NULL, "no progress line:\n%s", r.err);
	cli_result_free(&r);
	ck_assert_int_eq(count_loaded(o), 990);
	ck_assert_uint_eq(check_errors(errors, bad, 10, "load:patients.csv:"), 10);
	ck_assert_int_eq(access(journal, R_OK), 0);

	/* The same file again: nothing new is created, the done rows are not even sent. */
	rc = CTL(w, NULL, LOAD_MS, &r, "load", path, "--timeout", "60", "--sub", o);
	want_exit(&r, rc, 1, "second load");
	ck_assert_uint_eq(summary_count(r.out, "created"), 0);
	ck_assert_uint_eq(summary_count(r.out, "skipped"), 990);
	ck_assert_uint_eq(summary_count(r.out, "failed"), 10);
	cli_result_free(&r);
	ck_assert_int_eq(count_loaded(o), 990);
	ck_assert_uint_eq(check_errors(errors, bad, 10, "load:patients.csv:"), 10);

	/* The eight fixable rows corrected in place: only they are sent and created; the two
	 * dni conflicts are answered as before. */
	bad_row fixed[10];
	write_csv(path, 1000, 1, fixed);
	bad_row left[2] = {{0, "409", "conflict"}, {0, "409", "conflict"}};
	for (int i = 0, k = 0; i < 10; i++)
		if (strcmp(fixed[i].status, "409") == 0)
			left[k++].line = fixed[i].line;
	rc = CTL(w, NULL, LOAD_MS, &r, "load", path, "--timeout", "60", "--sub", o);
	want_exit(&r, rc, 1, "third load (two conflicts left)");
	ck_assert_uint_eq(summary_count(r.out, "created"), 8);
	ck_assert_uint_eq(summary_count(r.out, "skipped"), 990);
	ck_assert_uint_eq(summary_count(r.out, "failed"), 2);
	cli_result_free(&r);
	ck_assert_int_eq(count_loaded(o), 998);
	ck_assert_uint_eq(check_errors(errors, left, 2, "load:patients.csv:"), 2);

	/* Another owner loading the same file is not skipped by this owner's journal. */
	char *o2 = tk_owner("load2");
	rc = CTL(w, NULL, LOAD_MS, &r, "load", path, "--timeout", "60", "--sub", o2, "--id-prefix",
	         "second");
	/* Rows 650 and 750 share a dni that this owner does not have yet: one of them is
	 * created, the other is a conflict (which one depends on the partitions' order). */
	want_exit(&r, rc, 1, "load by another owner");
	ck_assert_uint_eq(summary_count(r.out, "created"), 999);
	ck_assert_uint_eq(summary_count(r.out, "skipped"), 0);
	ck_assert_uint_eq(summary_count(r.out, "failed"), 1);
	cli_result_free(&r);
	ck_assert_int_eq(count_loaded(o2), 999);
	free(o2);
	free(o);
}
END_TEST

START_TEST(load_jsonl)
{
	tk_world *w = &tk_shared;
	char *o = tk_owner("jsonl");
	char path[512], errors[600];
	cli_result r;
	int rc;
	bad_row bad[2] = {{13, "unparsable", "unparsable"}, {31, "400", "validation_failed"}};

	snprintf(path, sizeof(path), "%s/rows.ndjson", dir);
	snprintf(errors, sizeof(errors), "%s.errors.jsonl", path);
	FILE *f = fopen(path, "w");
	ck_assert(f != NULL);
	for (int line = 1; line <= 52; line++) {
		if (line == 7)
			fputs("\n", f); /* blank: not a row */
		else if (line == 13)
			fputs("{\"nombre\": \"cut\n", f);
		else if (line == 31)
			fprintf(f,
			        "{\"nombre\":\"J%d\",\"apellido_paterno\":\"P\",\"dni\":\"J%d\","
			        "\"fecha_nacimiento\":\"1990-13-01\"}\n",
			        line, line);
		else
			fprintf(f,
			        "{\"nombre\":\"J%d\",\"apellido_paterno\":\"P\",\"dni\":\"J%d\","
			        "\"fecha_nacimiento\":\"1990-01-01\",\"apellido_materno\":null}\n",
			        line, line);
	}
	ck_assert(fclose(f) == 0);
	rc = CTL(w, NULL, LOAD_MS, &r, "load", path, "--timeout", "60", "--sub", o, "--inflight",
	         "7");
	want_exit(&r, rc, 1, "load jsonl");
	ck_assert_uint_eq(summary_count(r.out, "rows:"), 51);
	ck_assert_uint_eq(summary_count(r.out, "created"), 49);
	cli_result_free(&r);
	ck_assert_int_eq(count_all(o), 49);
	ck_assert_uint_eq(check_errors(errors, bad, 2, "load:rows.ndjson:"), 2);
	free(o);
}
END_TEST

/* load - : rows piped in, named by --id-prefix; the same stream again is recognised. */
START_TEST(load_stdin)
{
	tk_world *w = &tk_shared;
	char *o = tk_owner("stdin");
	char path[512], prefix[96], journal[600], errors[600];
	cli_result r;
	envp e;

	snprintf(path, sizeof(path), "%s/piped.csv", dir);
	tk_unique(prefix, sizeof(prefix), "pipe-");
	snprintf(journal, sizeof(journal), "%s/%s.done", dir, prefix);
	snprintf(errors, sizeof(errors), "%s/%s.errors.jsonl", dir, prefix);
	FILE *f = fopen(path, "w");
	ck_assert(f != NULL);
	fputs("nombre,apellido_paterno,dni,fecha_nacimiento\n", f);
	for (int i = 0; i < 30; i++)
		fprintf(f, "S%d,P,S%d,1990-01-01\n", i, i);
	ck_assert(fclose(f) == 0);
	const char *args[] = {"load",     "-",     "--format",  "csv",       "--id-prefix",
	                      prefix,     "--sub", o,           "--journal", journal,
	                      "--errors", errors,  "--timeout", "60",        NULL};
	for (int run = 0; run < 2; run++) {
		env_build(&e, w, NULL);
		cli_run_stdin(tk_env("PW_CTL_BIN"), args, e.v, LOAD_MS, path, &r);
		env_free(&e);
		want_exit(&r, cli_exit_code(&r), 0, run ? "load - again" : "load -");
		ck_assert_uint_eq(summary_count(r.out, "rows:"), 30);
		ck_assert_uint_eq(summary_count(r.out, "created"), run ? 0 : 30);
		ck_assert_uint_eq(summary_count(r.out, "skipped"), run ? 30 : 0);
		cli_result_free(&r);
	}
	ck_assert_int_eq(count_all(o), 30);
	free(o);
}
END_TEST

/* ---- nobody answers: exit 3, within the timeout ---- */

START_TEST(timeouts)
{
	tk_world quiet; /* topics, but no worker */
	char *o = tk_owner("quiet");
	char path[512], errors[600], journal[600];
	cli_result r;
	int rc;

	tk_world_init(&quiet, 2);
	rc = CTL(&quiet, NULL, ONE_MS, &r, "get", "--sub", o, "--id", "1", "--timeout", "2");
	want_exit(&r, rc, 3, "get with no worker");
	ck_assert_msg(r.ms >= 1900 && r.ms < 10000, "took %ld ms for --timeout 2", r.ms);
	ck_assert_msg(r.out_len == 0, "printed: %s", r.out);
	cli_result_free(&r);

	snprintf(path, sizeof(path), "%s/quiet.csv", dir);
	snprintf(errors, sizeof(errors), "%s.errors.jsonl", path);
	snprintf(journal, sizeof(journal), "%s.done", path);
	FILE *f = fopen(path, "w");
	ck_assert(f != NULL);
	fputs("nombre,apellido_paterno,dni,fecha_nacimiento\n", f);
	for (int i = 0; i < 20; i++)
		fprintf(f, "Q%d,P,Q%d,1990-01-01\n", i, i);
	ck_assert(fclose(f) == 0);
	rc = CTL(&quiet, NULL, ONE_MS, &r, "load", path, "--sub", o, "--timeout", "2");
	want_exit(&r, rc, 3, "load with no worker");
	ck_assert_uint_eq(summary_count(r.out, "timed out"), 20);
	ck_assert_uint_eq(summary_count(r.out, "created"), 0);
	cli_result_free(&r);
	f = fopen(errors, "r");
	ck_assert(f != NULL);
	char line[4096];
	int n = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		tk_assert_json(line, "status", "timeout");
		n++;
	}
	fclose(f);
	ck_assert_int_eq(n, 20);

	/* A command topic that does not exist: a setting problem, exit 2, before sending. */
	const char *no_topic[] = {"TOPIC_QUERY=pwt.no-such-topic", NULL};
	rc = CTL(&quiet, no_topic, ONE_MS, &r, "get", "--sub", o, "--id", "1");
	want_exit(&r, rc, 2, "get to a missing topic");
	ck_assert_msg(cli_has_line(r.err, "TOPIC_QUERY"), "stderr: %s", r.err);
	cli_result_free(&r);
	free(o);
}
END_TEST

/* ---- update and delete ---- */

/* The value at path of reply (e.g. "data.version") as a number; fails the test if absent. */
static long long json_ll(const char *reply, const char *path)
{
	char *v = tk_json_get(reply, path);
	long long n;

	ck_assert_msg(v != NULL, "no %s in %s", path, reply);
	n = atoll(v);
	free(v);
	return n;
}

START_TEST(update_and_delete)
{
	tk_world *w = &tk_shared;
	char *o = tk_owner("ctlu");
	char *other = tk_owner("ctlux");
	cli_result r;
	char id[32], rid[64];
	int rc;

	rc = CTL(w, NULL, ONE_MS, &r, "create", "--sub", o, "--nombre", "Ana", "--apellido-paterno",
	         "Quispe", "--apellido-materno", "Huaman", "--dni", "U1", "--fecha-nacimiento",
	         "1990-04-12");
	want_exit(&r, rc, 0, "create");
	snprintf(id, sizeof(id), "%lld", json_ll(r.out, "data.id"));
	ck_assert_int_eq(json_ll(r.out, "data.version"), 1);
	cli_result_free(&r);

	rc = CTL(w, NULL, ONE_MS, &r, "update", "--sub", o, "--id", id, "--version", "1",
	         "--nombre", "Ana Maria");
	want_exit(&r, rc, 0, "update");
	tk_assert_json(r.out, "status", "200");
	tk_assert_json(r.out, "data.nombre", "Ana Maria");
	tk_assert_json(r.out, "data.dni", "U1");
	ck_assert_int_eq(json_ll(r.out, "data.version"), 2);
	cli_result_free(&r);

	/* The version seen before that update is stale now: 409, nothing changes. */
	rc = CTL(w, NULL, ONE_MS, &r, "update", "--sub", o, "--id", id, "--version", "1",
	         "--nombre", "Otra");
	want_exit(&r, rc, 1, "stale update");
	tk_assert_json(r.out, "status", "409");
	tk_assert_json(r.out, "error.code", "version_conflict");
	ck_assert_int_eq(json_ll(r.out, "error.current_version"), 2);
	cli_result_free(&r);

	/* Another owner naming our id and version: 404, as for an id nobody has. */
	rc = CTL(w, NULL, ONE_MS, &r, "update", "--sub", other, "--id", id, "--version", "2",
	         "--nombre", "Intruso");
	want_exit(&r, rc, 1, "update by another owner");
	tk_assert_json(r.out, "error.code", "not_found");
	cli_result_free(&r);
	rc = CTL(w, NULL, ONE_MS, &r, "delete", "--sub", other, "--id", id, "--version", "2");
	want_exit(&r, rc, 1, "delete by another owner");
	tk_assert_json(r.out, "error.code", "not_found");
	cli_result_free(&r);

	/* --payload clears a field with null; the same --request-id again gets the same reply. */
	tk_unique(rid, sizeof(rid), "ctl-u-");
	char *first = NULL;
	for (int i = 0; i < 2; i++) {
		rc = CTL(w, NULL, ONE_MS, &r, "update", "--sub", o, "--id", id, "--version", "2",
		         "--request-id", rid, "--payload", "{\"apellido_materno\":null}");
		want_exit(&r, rc, 0, "update clearing apellido_materno");
		tk_assert_json(r.out, "data.apellido_materno", "null");
		ck_assert_int_eq(json_ll(r.out, "data.version"), 3);
		if (first == NULL)
			first = strdup(r.out);
		else
			ck_assert_str_eq(r.out, first);
		cli_result_free(&r);
	}
	free(first);

	rc = CTL(w, NULL, ONE_MS, &r, "update", "--sub", o, "--id", id, "--version", "3", "--sexo",
	         "Q");
	want_exit(&r, rc, 1, "update, invalid sexo");
	tk_assert_json(r.out, "status", "400");
	ck_assert_ptr_nonnull(strstr(r.out, "\"sexo\""));
	cli_result_free(&r);

	rc = CTL(w, NULL, ONE_MS, &r, "delete", "--sub", o, "--id", id, "--version", "3");
	want_exit(&r, rc, 0, "delete");
	tk_assert_json(r.out, "status", "200");
	tk_assert_json(r.out, "data.deleted", "true");
	ck_assert_int_eq(json_ll(r.out, "data.version"), 4);
	cli_result_free(&r);

	/* Gone for its owner: get, update and delete all answer 404. */
	rc = CTL(w, NULL, ONE_MS, &r, "get", "--sub", o, "--id", id);
	want_exit(&r, rc, 1, "get after delete");
	tk_assert_json(r.out, "error.code", "not_found");
	cli_result_free(&r);
	rc = CTL(w, NULL, ONE_MS, &r, "delete", "--sub", o, "--id", id, "--version", "4");
	want_exit(&r, rc, 1, "delete after delete");
	tk_assert_json(r.out, "error.code", "not_found");
	cli_result_free(&r);

	/* A usage error is said before anything is sent: exit 2, one line naming the option. */
	rc = CTL(w, NULL, ONE_MS, &r, "update", "--sub", o, "--id", id, "--nombre", "X");
	want_exit(&r, rc, 2, "update without --version");
	ck_assert_msg(strstr(r.err, "--version") != NULL, "stderr: %s", r.err);
	cli_result_free(&r);

	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM patients WHERE id = %s AND nombre = 'Ana Maria' AND "
	         "apellido_materno IS NULL AND version = 4 AND deleted_at IS NOT NULL",
	         id);
	ck_assert_int_eq(sql_count(sql), 1);
	free(o);
	free(other);
}
END_TEST

/* The id of owner's live patient with dni, from the database. */
static long long id_of(const char *owner, const char *dni)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT coalesce(max(id), 0) FROM patients WHERE owner_id = '%s' AND dni = '%s' "
	         "AND deleted_at IS NULL",
	         owner, dni);
	return sql_count(sql);
}

/* A CSV whose op column mixes updates, deletes and a create with the patients an earlier
 * load made; its failures go to the errors file, and a second run skips what was done. */
START_TEST(load_ops)
{
	tk_world *w = &tk_shared;
	char *o = tk_owner("ops");
	char *other = tk_owner("opsx");
	char path[512], errors[600], sql[256];
	cli_result r;
	int rc;

	snprintf(path, sizeof(path), "%s/first.jsonl", dir);
	FILE *f = fopen(path, "w");
	ck_assert(f != NULL);
	for (int i = 1; i <= 20; i += i == 16 ? 4 : 1) /* O1-O16 and O20 */
		fprintf(f,
		        "{\"nombre\":\"N%d\",\"apellido_paterno\":\"P\",\"dni\":\"O%d\","
		        "\"fecha_nacimiento\":\"1990-01-01\"}\n",
		        i, i);
	ck_assert(fclose(f) == 0);
	rc = CTL(w, NULL, LOAD_MS, &r, "load", path, "--timeout", "60", "--sub", o);
	want_exit(&r, rc, 0, "first load");
	ck_assert_uint_eq(summary_count(r.out, "created"), 17);
	cli_result_free(&r);
	rc = CTL(w, NULL, ONE_MS, &r, "create", "--sub", other, "--nombre", "X",
	         "--apellido-paterno", "Y", "--dni", "OX", "--fecha-nacimiento", "1990-01-01");
	want_exit(&r, rc, 0, "another owner's patient");
	cli_result_free(&r);

	/* Line 1 is the header; lines 2-11 update O1-O10, 12-16 delete O11-O15, 17 names a stale
	 * version of O16, 18 an op nobody knows, 19 is a create (empty op), 20 deletes the
	 * other owner's patient; 21-23 update O20 twice and delete it, each naming the version
	 * the one before makes: they are keyed by patient, so they are answered in order. */
	snprintf(path, sizeof(path), "%s/changes.csv", dir);
	snprintf(errors, sizeof(errors), "%s.errors.jsonl", path);
	f = fopen(path, "w");
	ck_assert(f != NULL);
	fputs("op,id,version,nombre,apellido_paterno,dni,fecha_nacimiento\n", f);
	for (int i = 1; i <= 10; i++) {
		char dni[8];
		snprintf(dni, sizeof(dni), "O%d", i);
		fprintf(f, "update,%lld,1,Nuevo %d,,,\n", id_of(o, dni), i);
	}
	for (int i = 11; i <= 15; i++) {
		char dni[8];
		snprintf(dni, sizeof(dni), "O%d", i);
		fprintf(f, "delete,%lld,1,,,,\n", id_of(o, dni));
	}
	fprintf(f, "update,%lld,7,Tarde,,,\n", id_of(o, "O16"));
	fprintf(f, "archive,%lld,1,,,,\n", id_of(o, "O16"));
	fputs(",,,Nueva,P,O17,1991-02-03\n", f);
	fprintf(f, "delete,%lld,1,,,,\n", id_of(other, "OX"));
	long long o20 = id_of(o, "O20");
	fprintf(f, "update,%lld,1,Primero,,,\nupdate,%lld,2,Segundo,,,\ndelete,%lld,3,,,,\n", o20,
	        o20, o20);
	ck_assert(fclose(f) == 0);

	bad_row bad[3] = {{17, "409", "version_conflict"},
	                  {18, "unparsable", "unparsable"},
	                  {20, "404", "not_found"}};
	for (int run = 0; run < 2; run++) {
		rc = CTL(w, NULL, LOAD_MS, &r, "load", path, "--timeout", "60", "--sub", o);
		want_exit(&r, rc, 1, run == 0 ? "load of changes" : "load of changes again");
		ck_assert_uint_eq(summary_count(r.out, "rows:"), 22);
		ck_assert_uint_eq(summary_count(r.out, "created"), run == 0 ? 1 : 0);
		if (run == 0) {
			ck_assert_uint_eq(summary_count(r.out, "updated"), 12);
			ck_assert_uint_eq(summary_count(r.out, "deleted"), 6);
		} else { /* said only when there are any */
			ck_assert_msg(strstr(r.out, "updated") == NULL, "%s", r.out);
		}
		ck_assert_uint_eq(summary_count(r.out, "skipped"), run == 0 ? 0 : 19);
		ck_assert_uint_eq(summary_count(r.out, "failed"), 3);
		ck_assert_uint_eq(summary_count(r.out, "rejected"), 2);
		ck_assert_uint_eq(summary_count(r.out, "unparsable"), 1);
		cli_result_free(&r);
		ck_assert_uint_eq(check_errors(errors, bad, 3, "load:changes.csv:"), 3);
	}
	/* Each change happened once, and only to this owner's patients. */
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM patients WHERE owner_id = '%s' AND version = 2 AND "
	         "nombre LIKE 'Nuevo %%' AND deleted_at IS NULL",
	         o);
	ck_assert_int_eq(sql_count(sql), 10);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM patients WHERE owner_id = '%s' AND version = 2 AND "
	         "deleted_at IS NOT NULL",
	         o);
	ck_assert_int_eq(sql_count(sql), 5);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM patients WHERE owner_id = '%s' AND version = 1 AND "
	         "deleted_at IS NULL AND dni IN ('O16', 'O17')",
	         o);
	ck_assert_int_eq(sql_count(sql), 2);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM patients WHERE id = %lld AND nombre = 'Segundo' AND "
	         "version = 4 AND deleted_at IS NOT NULL",
	         o20);
	ck_assert_int_eq(sql_count(sql), 1);
	ck_assert_int_gt(id_of(other, "OX"), 0);
	free(o);
	free(other);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc = tcase_create("stack");

	tk_shared_fixtures(tc);
	tcase_add_checked_fixture(tc, dir_up, dir_down);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, round_trips);
	tcase_add_test(tc, update_and_delete);
	tcase_add_test(tc, load_csv_resumable);
	tcase_add_test(tc, load_ops);
	tcase_add_test(tc, load_jsonl);
	tcase_add_test(tc, load_stdin);
	tcase_add_test(tc, timeouts);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
