/* The worker's settings and outages end to end: scopes, tokens judged at the broker's
 * append time, a role that would bypass row-level security, PostgreSQL going away. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <librdkafka/rdkafka.h>

#include "pw_check_main.h"
#include "pw_testkit.h"

static char *status_of(const tk_record *r)
{
	return tk_json_get(r->value, "status");
}

/* Reads w's reply topic until every request id has a reply, failing otherwise. */
static void await(const tk_world *w, tk_records *recs, char ids[][64], size_t n)
{
	const char **keys = calloc(n, sizeof(*keys));
	for (size_t i = 0; i < n; i++)
		keys[i] = ids[i];
	tk_await(w, w->replies, keys, n, recs);
	free(keys);
}

static void expect_status(const tk_records *recs, const char *id, const char *want)
{
	char *got = status_of(tk_find(recs, id, NULL));
	ck_assert_msg(got && strcmp(got, want) == 0, "%s: status %s, want %s", id, got, want);
	free(got);
}

/* JWT_REQUIRE_SCOPE=1: creates need patients:write. */
START_TEST(scope_required_for_creates)
{
	tk_world w;
	const char *env[] = {"JWT_REQUIRE_SCOPE=1", NULL};
	char *o = tk_owner("scope");
	char *none = tk_token(o, 3600, NULL);
	char *read = tk_token(o, 3600, "{\"scope\": \"patients:read\"}");
	char *write = tk_token(o, 3600, "{\"scope\": \"openid patients:write\"}");
	char ids[3][64];
	tk_records recs = {0};
	rd_kafka_t *p = tk_producer();

	tk_world_init(&w, 2);
	tk_worker_start(&w, env);
	const char *toks[3] = {none, read, write};
	for (int i = 0; i < 3; i++) {
		char dni[16];
		tk_unique(ids[i], sizeof(ids[i]), "s-");
		snprintf(dni, sizeof(dni), "S%d", i);
		char *cmd = tk_create_cmd(ids[i], toks[i], dni, NULL);
		tk_send(p, w.create, NULL, cmd, strlen(cmd), NULL);
		free(cmd);
	}
	await(&w, &recs, ids, 3);
	expect_status(&recs, ids[0], "403");
	expect_status(&recs, ids[1], "403");
	expect_status(&recs, ids[2], "201");
	char *code = tk_json_get(tk_find(&recs, ids[0], NULL)->value, "error.code");
	ck_assert_str_eq(code, "forbidden");
	free(code);
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 10), 0);
	rd_kafka_destroy(p);
	free(none);
	free(read);
	free(write);
	free(o);
	tk_records_free(&recs);
}
END_TEST

/* Tokens are judged at the broker's append time: a command accepted while its token
 * was valid is answered 201 even though the token has expired by the time the worker
 * (started later: the group starts at the earliest record) reads it; a token already
 * expired at append time is refused. */
START_TEST(token_judged_at_append_time)
{
	tk_world w;
	const char *env[] = {"JWT_LEEWAY_S=0", NULL};
	char *o = tk_owner("late");
	char *soon = tk_token(o, 3, NULL);
	char *gone = tk_token(o, -2, NULL);
	char ids[2][64];
	tk_records recs = {0};
	rd_kafka_t *p = tk_producer();

	tk_world_init(&w, 2);
	tk_unique(ids[0], sizeof(ids[0]), "l-");
	tk_unique(ids[1], sizeof(ids[1]), "l-");
	char *a = tk_create_cmd(ids[0], soon, "L1", NULL);
	char *b = tk_create_cmd(ids[1], gone, "L2", NULL);
	tk_send(p, w.create, NULL, a, strlen(a), NULL);
	tk_send(p, w.create, NULL, b, strlen(b), NULL);
	time_t valid_until = time(NULL) + 3;
	/* Not a guess: wait until the token has certainly expired, then start. */
	while (time(NULL) <= valid_until + 1)
		sleep(1);
	tk_worker_start(&w, env);
	await(&w, &recs, ids, 2);
	expect_status(&recs, ids[0], "201");
	expect_status(&recs, ids[1], "401");
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 10), 0);
	rd_kafka_destroy(p);
	free(a);
	free(b);
	free(soon);
	free(gone);
	free(o);
	tk_records_free(&recs);
}
END_TEST

/* A session that would bypass row-level security is refused at start, with one line. */
START_TEST(superuser_role_refused)
{
	const char *env[] = {"DATABASE_ROLE=postgres", NULL};

	tk_assert_refused_at_start(env, "DATABASE_ROLE: role 'postgres' is a superuser");
}
END_TEST

/* DB_WRITE_SESSIONS=4 over 8 partitions, small batches: batches of different partitions
 * are written at once, and still each partition's commands take effect in their order.
 * Every patient gets update, update, delete, keyed by its id (one partition), all of
 * them read by the worker as one backlog; one out of order would be a version_conflict
 * (409). */
START_TEST(write_sessions_keep_each_partitions_order)
{
	tk_world w;
	enum { N = 120 };
	const char *env[] = {"DB_WRITE_SESSIONS=4", "BATCH_MAX=16", NULL};
	char(*ids)[64] = calloc(N * 4, sizeof(*ids));
	long long *pid = calloc(N, sizeof(*pid));
	char *o = tk_owner("sessions");
	char *tok = tk_token(o, 3600, NULL);
	tk_records recs = {0};
	rd_kafka_t *p = tk_producer();

	tk_world_init(&w, 8);
	tk_worker_start(&w, env);
	ck_assert_msg(tk_log_wait(&w, "create lane ready: 4 database sessions", 30),
	              "the create lane did not say it has 4 sessions");
	for (int i = 0; i < N; i++) {
		char dni[16];
		tk_unique(ids[i], sizeof(ids[i]), "s-");
		snprintf(dni, sizeof(dni), "S%d", i);
		char *cmd = tk_create_cmd(ids[i], tok, dni, NULL);
		tk_send(p, w.create, NULL, cmd, strlen(cmd), NULL);
		free(cmd);
	}
	await(&w, &recs, ids, N);
	for (int i = 0; i < N; i++) {
		expect_status(&recs, ids[i], "201");
		char *id = tk_json_get(tk_find(&recs, ids[i], NULL)->value, "data.id");
		ck_assert_ptr_nonnull(id);
		pid[i] = atoll(id);
		free(id);
	}
	/* The worker reads them as one backlog: batches of every session at once. */
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 10), 0);
	for (int i = 0; i < N; i++)
		for (int step = 1; step <= 3; step++) {
			char *rid = ids[step * N + i], key[32], cmd[512];
			tk_unique(rid, 64, "s-");
			snprintf(key, sizeof(key), "patient:%lld", pid[i]);
			snprintf(cmd, sizeof(cmd),
			         "{\"request_id\":\"%s\",\"type\":\"%s\",\"token\":\"%s\","
			         "\"payload\":{\"id\":%lld,\"version\":%d%s}}",
			         rid, step == 3 ? "patient.delete" : "patient.update", tok, pid[i],
			         step, step == 3 ? "" : ",\"nombre\":\"Beto\"");
			tk_send(p, w.create, key, cmd, strlen(cmd), NULL);
		}
	tk_worker_start(&w, env);
	tk_records_free(&recs);
	recs = (tk_records){0};
	await(&w, &recs, ids + N, 3 * N);
	for (int i = N; i < 4 * N; i++)
		expect_status(&recs, ids[i], "200");
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM patients WHERE owner_id = '%s' AND version = 4"
	         " AND deleted_at IS NOT NULL",
	         o);
	char *n = tk_sql(sql);
	ck_assert_str_eq(n, "120");
	free(n);
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 10), 0);
	rd_kafka_destroy(p);
	free(tok);
	free(o);
	free(pid);
	free(ids);
	tk_records_free(&recs);
}
END_TEST

/* PostgreSQL stops: the worker pauses, answers no 500, and when PostgreSQL returns it
 * answers every command once, creating each row once. */
START_TEST(database_outage_pauses_and_resumes)
{
	tk_world w;
	enum { N = 100 };
	char(*ids)[64] = calloc(N, sizeof(*ids));
	char *o = tk_owner("outage");
	char *tok = tk_token(o, 3600, NULL);
	tk_records recs = {0};
	rd_kafka_t *p = tk_producer();

	tk_world_init(&w, 4);
	tk_worker_start(&w, NULL);
	/* Half before the outage, half during it. */
	for (int i = 0; i < N; i++) {
		char dni[16];
		tk_unique(ids[i], sizeof(ids[i]), "o-");
		snprintf(dni, sizeof(dni), "O%d", i);
		char *cmd = tk_create_cmd(ids[i], tok, dni, NULL);
		tk_send(p, w.create, NULL, cmd, strlen(cmd), NULL);
		free(cmd);
		if (i == N / 2) {
			await(&w, &recs, ids, 1);
			tk_stack("pg-stop");
		}
	}
	int paused = tk_log_wait(&w, "database unreachable, pausing", 30);
	/* Keep the outage going for a few reconnect attempts, then check that nothing
	 * sent during it was answered (no 500, no guess). */
	sleep(3);
	{
		tk_records during = {0};
		rd_kafka_t *c = tk_reader(w.replies);
		tk_read(c, &during, N, 2);
		rd_kafka_destroy(c);
		for (int i = N / 2 + 1; i < N; i++)
			ck_assert_msg(tk_find(&during, ids[i], NULL) == NULL,
			              "%s answered while the database was down", ids[i]);
		tk_records_free(&during);
	}
	tk_stack("pg-start");
	ck_assert_msg(paused, "the worker did not log that it paused");
	await(&w, &recs, ids, N);
	ck_assert_msg(tk_log_wait(&w, "database reachable again, resuming", 30),
	              "the worker did not log that it resumed");
	for (size_t i = 0; i < recs.n; i++) {
		char *st = status_of(&recs.v[i]);
		ck_assert_msg(st && strcmp(st, "201") == 0, "reply %s: %s", recs.v[i].key,
		              recs.v[i].value);
		free(st);
	}
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM patients WHERE owner_id = '%s'", o);
	char *n = tk_sql(sql);
	ck_assert_str_eq(n, "100");
	free(n);
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 10), 0);
	rd_kafka_destroy(p);
	free(tok);
	free(o);
	free(ids);
	tk_records_free(&recs);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("worker");
	TCase *tc = tcase_create("settings");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, scope_required_for_creates);
	tcase_add_test(tc, token_judged_at_append_time);
	tcase_add_test(tc, superuser_role_refused);
	tcase_add_test(tc, write_sessions_keep_each_partitions_order);
	suite_add_tcase(s, tc);
	TCase *outage = tcase_create("outage");
	tcase_set_timeout(outage, 240);
	tcase_add_test(outage, database_outage_pauses_and_resumes);
	suite_add_tcase(s, outage);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
