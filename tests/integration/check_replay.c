/* Replay: the command topic is the system of record; replaying it (creates, updates,
 * deletes, a retry and a stale update) changes nothing, and --verify proves the database
 * agrees with it (and says so when a row is edited, revived or lost behind its back). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <librdkafka/rdkafka.h>

#include "pw_check_main.h"
#include "pw_testkit.h"

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	static char buf[8192];
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		fclose(f);
	return buf;
}

static void assert_line(const char *report, const char *line)
{
	ck_assert_msg(strstr(report, line) != NULL, "report lacks \"%s\":\n%s", line, report);
}

START_TEST(replay_changes_nothing_and_verify_catches_a_lost_row)
{
	enum { N = 500 };
	tk_world w;
	char *o = tk_owner("replay");
	char *tok = tk_token(o, 3600, NULL);
	char prefix[64], dni[32], sql[512], out[512];
	const char **keys = calloc(N, sizeof(*keys));
	char(*ids)[96] = calloc(N, sizeof(*ids));
	tk_records recs = {0};
	rd_kafka_t *p = tk_producer();

	tk_world_init(&w, 4);
	tk_worker_start(&w, NULL);
	tk_unique(prefix, sizeof(prefix), "rp");
	for (int i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%s-%d", prefix, i);
		snprintf(dni, sizeof(dni), "RP%d", i);
		keys[i] = ids[i];
		char *cmd = tk_create_cmd(ids[i], tok, dni, NULL);
		rd_kafka_producev(p, RD_KAFKA_V_TOPIC(w.create), RD_KAFKA_V_VALUE(cmd, strlen(cmd)),
		                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		free(cmd);
		rd_kafka_poll(p, 0);
	}
	ck_assert_int_eq(rd_kafka_flush(p, 30000), 0);
	tk_await(&w, w.replies, keys, N, &recs);
	/* Then updates of RP0..RP9 (one of them sent twice), deletes of RP10..RP14, and an
	 * update that names a version that is not current (409, no effect). */
	enum { U = 10, D = 5 };
	const char *ckeys[U + D + 2];
	char cids[U + D + 2][96];
	for (int i = 0; i < U + D + 2; i++) {
		int target = i < U + D ? i : 0;
		char *pid = tk_json_get(tk_find(&recs, ids[target], NULL)->value, "data.id");
		char cmd[2048];
		snprintf(cids[i], sizeof(cids[i]), "%s-c%d", prefix, i < U + D + 1 ? i : 0);
		if (i < U || i == U + D)
			snprintf(
			    cmd, sizeof(cmd),
			    "{\"request_id\":\"%s\",\"type\":\"patient.update\",\"token\":\"%s\","
			    "\"payload\":{\"id\":%s,\"version\":1,\"nombre\":\"U%d\"}}",
			    cids[i], tok, pid, i < U ? i : 99);
		else if (i < U + D)
			snprintf(
			    cmd, sizeof(cmd),
			    "{\"request_id\":\"%s\",\"type\":\"patient.delete\",\"token\":\"%s\","
			    "\"payload\":{\"id\":%s,\"version\":1}}",
			    cids[i], tok, pid);
		else /* the first update again: a retry */
			snprintf(
			    cmd, sizeof(cmd),
			    "{\"request_id\":\"%s\",\"type\":\"patient.update\",\"token\":\"%s\","
			    "\"payload\":{\"id\":%s,\"version\":1,\"nombre\":\"U0\"}}",
			    cids[i], tok, pid);
		free(pid);
		ckeys[i] = cids[i];
		tk_send(p, w.create, NULL, cmd, strlen(cmd), NULL);
	}
	tk_records crecs = {0};
	tk_await(&w, w.replies, ckeys, U + D + 2, &crecs);
	tk_records_free(&crecs);
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 10), 0);

	snprintf(sql, sizeof(sql),
	         "SELECT (SELECT count(*) FROM patients WHERE owner_id = '%s') || '/' ||"
	         " (SELECT count(*) FROM patients WHERE owner_id = '%s' AND deleted_at IS NULL)"
	         " || '/' || (SELECT count(*) FROM patient_audit WHERE owner_id = '%s') || '/' ||"
	         " (SELECT sum(version) FROM patients WHERE owner_id = '%s')",
	         o, o, o, o);
	char *before = tk_sql(sql);
	ck_assert_str_eq(before, "500/495/517/515");

	/* Replay: every create was answered, so nothing changes. */
	snprintf(out, sizeof(out), "%s.replay.out", w.log_path);
	const char *replay[] = {"replay", "--from-beginning", NULL};
	ck_assert_int_eq(tk_run(&w, replay, out, 120), 0);
	assert_line(read_file(out), "answered 2xx/4xx/5xx:          516/1/0");
	char *after = tk_sql(sql);
	ck_assert_str_eq(after, before);

	/* Verify agrees... */
	const char *verify[] = {"replay", "--from-beginning", "--verify", NULL};
	ck_assert_int_eq(tk_run(&w, verify, out, 120), 0);
	const char *rep = read_file(out);
	assert_line(rep, "patients matching the topic:   500");
	assert_line(rep, "writes answered 404/409:       1");
	assert_line(rep, "rows with no command:          0");
	assert_line(rep, "result: consistent");

	/* ...until an updated patient is edited behind the worker's back... */
	snprintf(sql, sizeof(sql),
	         "UPDATE patients SET nombre = 'Tampered' WHERE owner_id = '%s' AND dni = 'RP3'",
	         o);
	free(tk_sql(sql));
	ck_assert_int_eq(tk_run(&w, verify, out, 120), 1);
	rep = read_file(out);
	assert_line(rep, "patients whose row differs:    1");
	assert_line(rep, "result: DISAGREES");
	/* ...or a deleted one comes back... */
	snprintf(sql, sizeof(sql),
	         "UPDATE patients SET nombre = 'U3' WHERE owner_id = '%s' AND dni = 'RP3';"
	         " UPDATE patients SET deleted_at = NULL WHERE owner_id = '%s' AND dni = 'RP12'",
	         o, o);
	free(tk_sql(sql));
	ck_assert_int_eq(tk_run(&w, verify, out, 120), 1);
	assert_line(read_file(out), "patients whose row differs:    1");
	snprintf(sql, sizeof(sql),
	         "UPDATE patients SET deleted_at = now() WHERE owner_id = '%s' AND dni = 'RP12'",
	         o);
	free(tk_sql(sql));
	ck_assert_int_eq(tk_run(&w, verify, out, 120), 0);

	/* ...or a row is lost. A create's audit record is its row (migration 009), so the
	 * create that made it now reads as never answered: still a disagreement, named. */
	snprintf(sql, sizeof(sql), "DELETE FROM patients WHERE owner_id = '%s' AND dni = 'RP7'", o);
	free(tk_sql(sql));
	ck_assert_int_eq(tk_run(&w, verify, out, 120), 1);
	rep = read_file(out);
	assert_line(rep, "patients matching the topic:   499");
	assert_line(rep, "writes never answered:         1");
	assert_line(rep, "result: DISAGREES");

	/* A row no command explains is reported too. */
	snprintf(sql, sizeof(sql),
	         "INSERT INTO patients (owner_id, nombre, apellido_paterno, dni, fecha_nacimiento,"
	         " source_topic, source_partition, source_offset) VALUES ('%s', 'X', 'Y', 'FORGED',"
	         " '2000-01-01', '%s', 0, 999999)",
	         o, w.create);
	free(tk_sql(sql));
	ck_assert_int_eq(tk_run(&w, verify, out, 120), 1);
	assert_line(read_file(out), "rows with no command:          1");

	free(before);
	free(after);
	free(keys);
	free(ids);
	free(tok);
	free(o);
	rd_kafka_destroy(p);
	tk_records_free(&recs);
}
END_TEST

/* A query's audit row commits without waiting for the WAL flush (issue 15), so a crash
 * of the database server can lose the last ones; a replay of the query topic writes them
 * again. Here the row is removed by hand, as such a crash would, and comes back with the
 * same command, status and Kafka source. */
START_TEST(replay_of_the_query_topic_restores_a_lost_audit_row)
{
	tk_world w;
	char *o = tk_owner("replayq");
	char *tok = tk_token(o, 3600, NULL);
	char cid[64], gid[64], cmd[2048], sql[512], out[512];
	tk_records recs = {0};
	rd_kafka_t *p = tk_producer();

	tk_world_init(&w, 1);
	tk_worker_start(&w, NULL);
	tk_unique(cid, sizeof(cid), "rq-c-");
	char *create = tk_create_cmd(cid, tok, "RQ1", NULL);
	tk_send(p, w.create, NULL, create, strlen(create), NULL);
	free(create);
	const char *ckeys[] = {cid};
	tk_await(&w, w.replies, ckeys, 1, &recs);
	char *id = tk_json_get(tk_find(&recs, cid, NULL)->value, "data.id");
	ck_assert_ptr_nonnull(id);
	tk_records_free(&recs);

	tk_unique(gid, sizeof(gid), "rq-g-");
	snprintf(cmd, sizeof(cmd),
	         "{\"request_id\":\"%s\",\"type\":\"patient.get\",\"token\":\"%s\","
	         "\"payload\":{\"id\":%s}}",
	         gid, tok, id);
	tk_send(p, w.query, NULL, cmd, strlen(cmd), NULL);
	const char *gkeys[] = {gid};
	tk_await(&w, w.replies, gkeys, 1, &recs);
	tk_assert_json(tk_find(&recs, gid, NULL)->value, "status", "200");
	tk_records_free(&recs);
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 30), 0);

	snprintf(sql, sizeof(sql),
	         "SELECT command_type || '/' || status || '/' || source_topic || '/' || "
	         "source_partition || '/' || source_offset || '/' || patient_ids::text FROM "
	         "patient_audit_tenant WHERE owner_id = '%s' AND request_id = '%s'",
	         o, gid);
	char *before = tk_sql(sql);
	ck_assert_ptr_nonnull(before);
	char del[512];
	snprintf(del, sizeof(del),
	         "DELETE FROM patient_audit_tenant WHERE owner_id = '%s' AND request_id = '%s'", o,
	         gid);
	free(tk_sql(del));
	ck_assert_ptr_null(tk_sql(sql));

	snprintf(out, sizeof(out), "%s.replayq.out", w.log_path);
	const char *replay[] = {"replay", "--from-beginning", "--topic", w.query, NULL};
	ck_assert_int_eq(tk_run(&w, replay, out, 120), 0);
	char *after = tk_sql(sql);
	ck_assert_msg(after != NULL, "the replay of %s wrote no audit row for %s", w.query, gid);
	ck_assert_str_eq(after, before);

	free(before);
	free(after);
	free(id);
	free(tok);
	free(o);
	rd_kafka_destroy(p);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("replay");
	TCase *tc = tcase_create("replay");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, replay_changes_nothing_and_verify_catches_a_lost_row);
	tcase_add_test(tc, replay_of_the_query_topic_restores_a_lost_audit_row);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
