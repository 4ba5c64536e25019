/* patient.create end to end: real broker, real database, the worker as shipped. */
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

/* One worker serves the contract cases; each case has its own owners and request ids,
 * so cases never see each other's data. */

static void await_keys(const char *topic, const char *const *keys, size_t n, tk_records *out)
{
	tk_await(&tk_shared, topic, keys, n, out);
}

static const tk_record *reply_for(const char *request_id, tk_records *recs)
{
	const char *keys[] = {request_id};
	await_keys(tk_shared.replies, keys, 1, recs);
	return tk_find(recs, request_id, NULL);
}

static void send_cmd(const char *topic, const char *value)
{
	tk_send(tk_shared_producer, topic, NULL, value, strlen(value), NULL);
}

START_TEST(create_201_owner_from_token)
{
	char *alice = tk_owner("alice");
	char *tok = tk_token(alice, 3600, NULL);
	char rid[64];
	tk_records recs = {0};
	tk_unique(rid, sizeof(rid), "r-");
	char *cmd = tk_create_cmd(rid, tok, "45678912", "{\"owner_id\": \"mallory@example.com\"}");
	send_cmd(tk_shared.create, cmd);
	const tk_record *r = reply_for(rid, &recs);
	tk_assert_json(r->value, "status", "201");
	tk_assert_json(r->value, "request_id", rid);
	tk_assert_json(r->value, "data.owner_id", alice);
	tk_assert_json(r->value, "data.dni", "45678912");
	tk_assert_json(r->value, "data.nombre", "Ana");
	tk_assert_json(r->value, "data.sexo", "M");
	tk_assert_json(r->value, "data.apellido_materno", "null");
	ck_assert_str_eq(r->hdr_status, "201");
	ck_assert_str_eq(r->hdr_request_id, rid);
	char *id = tk_json_get(r->value, "data.id");
	char sql[512];
	snprintf(sql, sizeof(sql), "SELECT owner_id FROM patients WHERE id = %s", id);
	char *stored_owner = tk_sql(sql);
	ck_assert_str_eq(stored_owner, alice);
	free(stored_owner);
	free(id);
	free(cmd);
	free(tok);
	free(alice);
	tk_records_free(&recs);
}
END_TEST

START_TEST(create_repeat_is_idempotent)
{
	char *o = tk_owner("idem");
	char *tok = tk_token(o, 3600, NULL);
	char rid[64], sql[512];
	tk_records recs = {0};
	size_t count = 0;
	tk_unique(rid, sizeof(rid), "r-");
	char *cmd = tk_create_cmd(rid, tok, "111", NULL);
	send_cmd(tk_shared.create, cmd);
	reply_for(rid, &recs);
	send_cmd(tk_shared.create, cmd);
	rd_kafka_t *c = tk_reader(tk_shared.replies);
	for (time_t end = time(NULL) + 60; time(NULL) < end && count < 2;) {
		tk_read(c, &recs, recs.n + 1, 1);
		tk_find(&recs, rid, &count);
	}
	rd_kafka_destroy(c);
	ck_assert_msg(count >= 2, "the repeat got no reply");
	/* Every reply for the request is the same bytes, id included. */
	const tk_record *first = tk_find(&recs, rid, NULL);
	for (size_t i = 0; i < recs.n; i++)
		if (recs.v[i].key && strcmp(recs.v[i].key, rid) == 0)
			ck_assert_str_eq(recs.v[i].value, first->value);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM patients WHERE owner_id = '%s'", o);
	char *n = tk_sql(sql);
	ck_assert_str_eq(n, "1");
	free(n);
	free(cmd);
	free(tok);
	free(o);
	tk_records_free(&recs);
}
END_TEST

START_TEST(create_same_request_other_payload_409)
{
	char *o = tk_owner("idc");
	char *tok = tk_token(o, 3600, NULL);
	char rid[64];
	tk_records recs = {0};
	tk_unique(rid, sizeof(rid), "r-");
	char *a = tk_create_cmd(rid, tok, "222", NULL);
	char *b = tk_create_cmd(rid, tok, "333", NULL);
	send_cmd(tk_shared.create, a);
	reply_for(rid, &recs);
	tk_records_free(&recs);
	send_cmd(tk_shared.create, b);
	size_t count = 0;
	rd_kafka_t *c = tk_reader(tk_shared.replies);
	for (time_t end = time(NULL) + 60; time(NULL) < end && count < 2;) {
		tk_read(c, &recs, recs.n + 1, 1);
		tk_find(&recs, rid, &count);
	}
	rd_kafka_destroy(c);
	ck_assert_msg(count == 2, "want 2 replies for %s, got %zu", rid, count);
	const tk_record *second = NULL;
	for (size_t i = 0; i < recs.n; i++)
		if (recs.v[i].key && strcmp(recs.v[i].key, rid) == 0)
			second = &recs.v[i];
	tk_assert_json(second->value, "status", "409");
	tk_assert_json(second->value, "error.code", "idempotency_conflict");
	free(a);
	free(b);
	free(tok);
	free(o);
	tk_records_free(&recs);
}
END_TEST

START_TEST(create_dni_unique_per_owner)
{
	char *a = tk_owner("dnia"), *b = tk_owner("dnib");
	char *ta = tk_token(a, 3600, NULL), *tb = tk_token(b, 3600, NULL);
	char r1[64], r2[64], r3[64];
	tk_records recs = {0};
	tk_unique(r1, sizeof(r1), "r-");
	tk_unique(r2, sizeof(r2), "r-");
	tk_unique(r3, sizeof(r3), "r-");
	char *c1 = tk_create_cmd(r1, ta, "DNI-77", NULL);
	char *c2 = tk_create_cmd(r2, ta, "DNI-77", NULL);
	char *c3 = tk_create_cmd(r3, tb, "DNI-77", NULL);
	send_cmd(tk_shared.create, c1);
	reply_for(r1, &recs);
	send_cmd(tk_shared.create, c2);
	send_cmd(tk_shared.create, c3);
	const char *keys[] = {r1, r2, r3};
	await_keys(tk_shared.replies, keys, 3, &recs);
	tk_assert_json(tk_find(&recs, r1, NULL)->value, "status", "201");
	tk_assert_json(tk_find(&recs, r2, NULL)->value, "status", "409");
	tk_assert_json(tk_find(&recs, r2, NULL)->value, "error.code", "conflict");
	tk_assert_json(tk_find(&recs, r2, NULL)->value, "error.fields.dni", "already registered");
	tk_assert_json(tk_find(&recs, r3, NULL)->value, "status", "201");
	free(c1);
	free(c2);
	free(c3);
	free(ta);
	free(tb);
	free(a);
	free(b);
	tk_records_free(&recs);
}
END_TEST

/* Token, type and payload problems get replies, in the contract's order. */
START_TEST(create_errors_are_replied)
{
	char *o = tk_owner("err");
	char *tok = tk_token(o, 3600, NULL);
	char *expired = tk_token(o, -3600, NULL);
	char *no_sub = tk_token(NULL, 3600, NULL);
	char *wrong_key = NULL;
	char r[7][64];
	tk_records recs = {0};
	for (int i = 0; i < 7; i++)
		tk_unique(r[i], sizeof(r[i]), "e-");
	{
		/* Same claims, signed with another secret. */
		char *t = strdup(tok);
		t[strlen(t) - 2] = t[strlen(t) - 2] == 'A' ? 'B' : 'A';
		wrong_key = t;
	}
	char *c0 = tk_create_cmd(r[0], NULL, "1", NULL);
	char *c1 = tk_create_cmd(r[1], expired, "1", NULL);
	char *c2 = tk_create_cmd(r[2], wrong_key, "1", NULL);
	char *c3 = tk_create_cmd(r[3], no_sub, "1", NULL);
	char *c4 = tk_create_cmd(r[4], tok, "bad dni!", "{\"sexo\": \"Z\", \"color\": 1}");
	char c5[1024], c6[1024];
	/* A create on the query topic, and a get of an id the owner does not have. */
	char *c5a = tk_create_cmd(r[5], tok, "1", NULL);
	snprintf(c5, sizeof(c5), "%s", c5a);
	snprintf(c6, sizeof(c6),
	         "{\"request_id\":\"%s\",\"type\":\"patient.get\",\"token\":\"%s\","
	         "\"payload\":{\"id\":1}}",
	         r[6], tok);
	send_cmd(tk_shared.create, c0);
	send_cmd(tk_shared.create, c1);
	send_cmd(tk_shared.create, c2);
	send_cmd(tk_shared.create, c3);
	send_cmd(tk_shared.create, c4);
	send_cmd(tk_shared.query, c5);
	send_cmd(tk_shared.query, c6);
	const char *keys[] = {r[0], r[1], r[2], r[3], r[4], r[5], r[6]};
	await_keys(tk_shared.replies, keys, 7, &recs);
	for (int i = 0; i < 4; i++) {
		tk_assert_json(tk_find(&recs, r[i], NULL)->value, "status", "401");
		tk_assert_json(tk_find(&recs, r[i], NULL)->value, "error.code", "unauthorized");
		/* The reply never echoes the token. */
		ck_assert_ptr_null(strstr(tk_find(&recs, r[i], NULL)->value, "eyJ"));
	}
	const char *v = tk_find(&recs, r[4], NULL)->value;
	tk_assert_json(v, "status", "400");
	tk_assert_json(v, "error.code", "validation_failed");
	tk_assert_json(v, "error.fields.dni", "must hold only letters, digits and '-'");
	tk_assert_json(v, "error.fields.sexo", "must be M, F or X");
	tk_assert_json(v, "error.fields.color", "unknown field");
	tk_assert_json(tk_find(&recs, r[5], NULL)->value, "error.code", "invalid_request");
	/* No such patient for this owner. */
	tk_assert_json(tk_find(&recs, r[6], NULL)->value, "status", "404");
	tk_assert_json(tk_find(&recs, r[6], NULL)->value, "error.code", "not_found");
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM patients WHERE owner_id = '%s'", o);
	char *n = tk_sql(sql);
	ck_assert_str_eq(n, "0");
	free(n);
	free(c0);
	free(c1);
	free(c2);
	free(c3);
	free(c4);
	free(c5a);
	free(tok);
	free(expired);
	free(no_sub);
	free(wrong_key);
	free(o);
	tk_records_free(&recs);
}
END_TEST

START_TEST(create_token_from_authorization_header)
{
	char *o = tk_owner("hdr");
	char *tok = tk_token(o, 3600, NULL);
	char rid[64], bearer[2048];
	tk_records recs = {0};
	tk_unique(rid, sizeof(rid), "r-");
	char *cmd = tk_create_cmd(rid, NULL, "444", NULL);
	snprintf(bearer, sizeof(bearer), "Bearer %s", tok);
	const char *hdrs[] = {"authorization", bearer, NULL};
	tk_send(tk_shared_producer, tk_shared.create, NULL, cmd, strlen(cmd), hdrs);
	const tk_record *r = reply_for(rid, &recs);
	tk_assert_json(r->value, "status", "201");
	tk_assert_json(r->value, "data.owner_id", o);
	free(cmd);
	free(tok);
	free(o);
	tk_records_free(&recs);
}
END_TEST

/* Every dead-letter case lands on the DLQ with its headers, key and value unchanged,
 * and the valid command sent after them is still answered. */
START_TEST(dead_letters_then_valid_command)
{
	char *o = tk_owner("dlq");
	char *tok = tk_token(o, 3600, NULL);
	char k[6][64], rid[64];
	char big[70000];
	memset(big, 'x', sizeof(big));
	memcpy(big, "{\"request_id\":\"", 15);
	const char *values[6] = {
	    big,
	    "{\"request_id\": \"x\", ",
	    "[1, 2, 3]",
	    "{\"type\": \"patient.create\", \"payload\": {}}",
	    "{\"request_id\": \"has space\", \"type\": \"patient.create\"}",
	    "{\"request_id\": \"ok-id\", \"reply_to\": \"elsewhere\", \"payload\": {}}",
	};
	size_t lens[6] = {sizeof(big)};
	const char *codes[6] = {"too_large",          "malformed_json",     "not_an_object",
	                        "missing_request_id", "invalid_request_id", "reply_to_refused"};
	tk_records recs = {0};
	for (int i = 0; i < 6; i++) {
		tk_unique(k[i], sizeof(k[i]), "dl-");
		if (i > 0)
			lens[i] = strlen(values[i]);
		tk_send(tk_shared_producer, tk_shared.create, k[i], values[i], lens[i], NULL);
	}
	tk_unique(rid, sizeof(rid), "r-");
	char *cmd = tk_create_cmd(rid, tok, "555", NULL);
	send_cmd(tk_shared.create, cmd);
	reply_for(rid, &recs);
	tk_records dl = {0};
	const char *keys[] = {k[0], k[1], k[2], k[3], k[4], k[5]};
	await_keys(tk_shared.dlq, keys, 6, &dl);
	for (int i = 0; i < 6; i++) {
		const tk_record *d = tk_find(&dl, k[i], NULL);
		ck_assert_msg(d->hdr_error && strcmp(d->hdr_error, codes[i]) == 0,
		              "case %d: error header %s, want %s", i, d->hdr_error, codes[i]);
		ck_assert_msg(d->hdr_source && strncmp(d->hdr_source, tk_shared.create,
		                                       strlen(tk_shared.create)) == 0,
		              "case %d: source header %s", i, d->hdr_source);
		ck_assert_uint_eq(d->value_len, lens[i]);
		ck_assert_msg(memcmp(d->value, values[i], lens[i]) == 0, "case %d: value changed",
		              i);
	}
	free(cmd);
	free(tok);
	free(o);
	tk_records_free(&recs);
	tk_records_free(&dl);
}
END_TEST

/* A reply_to inside the prefix whose topic does not exist: reply_undeliverable. */
START_TEST(reply_undeliverable_goes_to_dlq)
{
	char *o = tk_owner("undl");
	char *tok = tk_token(o, 3600, NULL);
	char rid[64], key[64], cmd[2048];
	tk_records dl = {0};
	tk_unique(rid, sizeof(rid), "r-");
	tk_unique(key, sizeof(key), "k-");
	snprintf(cmd, sizeof(cmd),
	         "{\"request_id\":\"%s\",\"type\":\"patient.create\",\"token\":\"%s\","
	         "\"reply_to\":\"%s.nobody-listens\",\"payload\":{\"nombre\":\"Ana\","
	         "\"apellido_paterno\":\"Q\",\"dni\":\"9\",\"fecha_nacimiento\":\"1990-01-01\"}}",
	         rid, tok, tk_shared.replies);
	tk_send(tk_shared_producer, tk_shared.create, key, cmd, strlen(cmd), NULL);
	const char *keys[] = {key};
	await_keys(tk_shared.dlq, keys, 1, &dl);
	ck_assert_str_eq(tk_find(&dl, key, NULL)->hdr_error, "reply_undeliverable");
	ck_assert_str_eq(tk_find(&dl, key, NULL)->value, cmd);
	free(tok);
	free(o);
	tk_records_free(&dl);
}
END_TEST

/* Row-level security on its own: as patients_app, owner B sees none of A's rows. */
START_TEST(rls_hides_other_owners)
{
	char *a = tk_owner("rlsa");
	char *tok = tk_token(a, 3600, NULL);
	char rid[64], sql[1024];
	tk_records recs = {0};
	tk_unique(rid, sizeof(rid), "r-");
	char *cmd = tk_create_cmd(rid, tok, "666", NULL);
	send_cmd(tk_shared.create, cmd);
	tk_assert_json(reply_for(rid, &recs)->value, "status", "201");
	snprintf(sql, sizeof(sql),
	         "BEGIN; SET LOCAL ROLE patients_app;"
	         " SET LOCAL app.owner_id = 'bob-%s@example.com';"
	         " SELECT count(*) FROM patients WHERE owner_id = '%s';",
	         rid, a);
	/* tk_sql returns the first row of the last result of the batch. */
	char *n = tk_sql(sql);
	ck_assert_str_eq(n, "0");
	free(n);
	snprintf(sql, sizeof(sql),
	         "BEGIN; SET LOCAL ROLE patients_app;"
	         " SET LOCAL app.owner_id = '%s';"
	         " SELECT count(*) FROM patients WHERE owner_id = '%s';",
	         a, a);
	n = tk_sql(sql);
	ck_assert_str_eq(n, "1");
	free(n);
	/* Unset: nothing at all. */
	n = tk_sql("BEGIN; SET LOCAL ROLE patients_app; SELECT count(*) FROM patients;");
	ck_assert_str_eq(n, "0");
	free(n);
	free(cmd);
	free(tok);
	free(a);
	tk_records_free(&recs);
}
END_TEST

/* A worker killed in the middle of 1,000 creates and started again: every request is
 * answered and exactly 1,000 rows exist. Its own tk_shared: the kill must not disturb the
 * other cases. */
START_TEST(kill_mid_load_loses_nothing)
{
	tk_world w;
	enum { N = 1000 };
	char *o = tk_owner("kill");
	char *tok = tk_token(o, 3600, NULL);
	char prefix[64], rid[96], dni[32], sql[256];
	tk_records recs = {0};
	rd_kafka_t *p = tk_producer();

	/* Small batches, so the kill lands between transactions as well as inside one. */
	const char *env[] = {"BATCH_MAX=20", NULL};
	tk_world_init(&w, 4);
	tk_worker_start(&w, env);
	tk_unique(prefix, sizeof(prefix), "k");
	rd_kafka_t *c = tk_reader(w.replies);
	for (int i = 0; i < N; i++) {
		snprintf(rid, sizeof(rid), "%s-%d", prefix, i);
		snprintf(dni, sizeof(dni), "%d", 100000 + i);
		char *cmd = tk_create_cmd(rid, tok, dni, NULL);
		rd_kafka_producev(p, RD_KAFKA_V_TOPIC(w.create), RD_KAFKA_V_VALUE(cmd, strlen(cmd)),
		                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		free(cmd);
		rd_kafka_poll(p, 0);
		if (i == N / 2) {
			/* The worker dies in the middle of the 1,000: once it has answered
			 * some, while the rest are still being sent. */
			ck_assert_int_eq(rd_kafka_flush(p, 30000), 0);
			for (time_t end = time(NULL) + 60; time(NULL) < end && recs.n < 1;)
				tk_read(c, &recs, 1, 1);
			ck_assert_msg(recs.n >= 1, "no progress before the kill");
			tk_worker_stop(&w, SIGKILL, 5);
		}
	}
	ck_assert_int_eq(rd_kafka_flush(p, 30000), 0);
	tk_worker_start(&w, env);
	for (time_t end = time(NULL) + 120; time(NULL) < end;) {
		size_t answered = 0;
		for (int i = 0; i < N; i++) {
			snprintf(rid, sizeof(rid), "%s-%d", prefix, i);
			answered += tk_find(&recs, rid, NULL) != NULL;
		}
		if (answered == N)
			break;
		tk_read(c, &recs, recs.n + 1000, 1);
	}
	rd_kafka_destroy(c);
	for (int i = 0; i < N; i++) {
		snprintf(rid, sizeof(rid), "%s-%d", prefix, i);
		size_t count;
		const tk_record *first = tk_find(&recs, rid, &count);
		if (first == NULL)
			tk_dump_log(&w);
		ck_assert_msg(first != NULL, "%s never answered", rid);
		tk_assert_json(first->value, "status", "201");
		/* Answered twice after the kill: the same reply both times. */
		for (size_t j = 0; j < recs.n; j++)
			if (recs.v[j].key && strcmp(recs.v[j].key, rid) == 0)
				ck_assert_str_eq(recs.v[j].value, first->value);
	}
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM patients WHERE owner_id = '%s'", o);
	char *n = tk_sql(sql);
	ck_assert_str_eq(n, "1000");
	free(n);
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 15), 0);
	rd_kafka_destroy(p);
	free(tok);
	free(o);
	tk_records_free(&recs);
}
END_TEST

/* On Citus, a session whose SET LOCAL would not reach the workers (where row-level
 * security runs: every read would be empty, every write refused) is refused at start,
 * with one line naming the setting. */
START_TEST(citus_without_set_propagation_refused)
{
	if (!tk_citus()) {
		fprintf(stderr, "citus_without_set_propagation_refused: not run (not Citus)\n");
		return;
	}
	const char *url = tk_env("DATABASE_URL");
	char env_url[1024];
	snprintf(env_url, sizeof(env_url),
	         "DATABASE_URL=%s%soptions=-c%%20citus.propagate_set_commands%%3Dnone", url,
	         strchr(url, '?') ? "&" : "?");
	const char *env[] = {env_url, NULL};

	tk_assert_refused_at_start(env, "citus.propagate_set_commands is 'none', must be 'local'");
}
END_TEST

/* SIGTERM: exit 0, offsets committed, so a new worker of the group answers nothing
 * twice. */
START_TEST(sigterm_exits_zero_and_commits)
{
	tk_world w;
	char *o = tk_owner("term");
	char *tok = tk_token(o, 3600, NULL);
	char rid[64], rid2[64];
	tk_records recs = {0};
	rd_kafka_t *p = tk_producer();

	tk_world_init(&w, 2);
	tk_worker_start(&w, NULL);
	tk_unique(rid, sizeof(rid), "r-");
	char *cmd = tk_create_cmd(rid, tok, "777", NULL);
	tk_send(p, w.create, NULL, cmd, strlen(cmd), NULL);
	rd_kafka_t *c = tk_reader(w.replies);
	for (time_t end = time(NULL) + 60; time(NULL) < end && tk_find(&recs, rid, NULL) == NULL;)
		tk_read(c, &recs, recs.n + 1, 1);
	ck_assert_ptr_nonnull(tk_find(&recs, rid, NULL));
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 10), 0);

	tk_worker_start(&w, NULL);
	tk_unique(rid2, sizeof(rid2), "r-");
	char *cmd2 = tk_create_cmd(rid2, tok, "778", NULL);
	tk_send(p, w.create, NULL, cmd2, strlen(cmd2), NULL);
	for (time_t end = time(NULL) + 60; time(NULL) < end && tk_find(&recs, rid2, NULL) == NULL;)
		tk_read(c, &recs, recs.n + 1, 1);
	ck_assert_ptr_nonnull(tk_find(&recs, rid2, NULL));
	size_t count;
	tk_find(&recs, rid, &count);
	ck_assert_msg(count == 1, "first command answered %zu times: offset not committed", count);
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 10), 0);
	rd_kafka_destroy(c);
	rd_kafka_destroy(p);
	free(cmd);
	free(cmd2);
	free(tok);
	free(o);
	tk_records_free(&recs);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("create");
	TCase *tc = tcase_create("contract");
	tk_shared_fixtures(tc);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, create_201_owner_from_token);
	tcase_add_test(tc, create_repeat_is_idempotent);
	tcase_add_test(tc, create_same_request_other_payload_409);
	tcase_add_test(tc, create_dni_unique_per_owner);
	tcase_add_test(tc, create_errors_are_replied);
	tcase_add_test(tc, create_token_from_authorization_header);
	tcase_add_test(tc, dead_letters_then_valid_command);
	tcase_add_test(tc, reply_undeliverable_goes_to_dlq);
	tcase_add_test(tc, rls_hides_other_owners);
	tcase_add_test(tc, citus_without_set_propagation_refused);
	suite_add_tcase(s, tc);

	TCase *faults = tcase_create("faults");
	tcase_set_timeout(faults, 300);
	tcase_add_test(faults, kill_mid_load_loses_nothing);
	tcase_add_test(faults, sigterm_exits_zero_and_commits);
	suite_add_tcase(s, faults);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
