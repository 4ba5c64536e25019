/* patient.update and patient.delete end to end, against the real broker, database and
 * worker: every status of each, soft deletes as get, list and update see them, the dni a
 * delete frees, retries answered as the first time after later changes, another owner's
 * patient left untouched (checked in SQL as the admin user), and the audit rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <jansson.h>

#include "pw_check_main.h"
#include "pw_testkit.h"

/* How many times each request id was sent in this test (each test runs in its own
 * process): a retry's reply is the n-th record with that key. */
static struct {
	char rid[64];
	int n;
} sent[128];

static int count_sent(const char *rid)
{
	size_t i = 0;

	while (i < sizeof(sent) / sizeof(sent[0]) && sent[i].n > 0 && strcmp(sent[i].rid, rid) != 0)
		i++;
	ck_assert_uint_lt(i, sizeof(sent) / sizeof(sent[0]));
	snprintf(sent[i].rid, sizeof(sent[i].rid), "%s", rid);
	return ++sent[i].n;
}

/* The nth reply keyed rid on the reply topic (caller frees), waiting up to 60 s. */
static char *nth_reply(const char *rid, int nth)
{
	rd_kafka_t *c = tk_reader(tk_shared.replies);
	tk_records recs = {0};
	const tk_record *r = NULL;
	time_t end = time(NULL) + 60;

	while (r == NULL && time(NULL) < end) {
		int seen = 0;
		tk_read(c, &recs, recs.n + 1, 1);
		for (size_t i = 0; i < recs.n && r == NULL; i++)
			if (recs.v[i].key && strcmp(recs.v[i].key, rid) == 0 && ++seen == nth)
				r = &recs.v[i];
	}
	if (r == NULL)
		tk_dump_log(&tk_shared);
	ck_assert_msg(r != NULL, "no reply #%d to %s within 60 s", nth, rid);
	char *v = strdup(r->value);
	tk_records_free(&recs);
	rd_kafka_destroy(c);
	return v;
}

/* Sends a command and returns its reply (caller frees). rid NULL: a fresh request id. */
static char *command(const char *topic, const char *rid, const char *type, const char *tok,
                     const char *payload)
{
	char fresh[64], text[2048];

	if (rid == NULL) {
		tk_unique(fresh, sizeof(fresh), "ch-");
		rid = fresh;
	}
	snprintf(text, sizeof(text),
	         "{\"request_id\":\"%s\",\"type\":\"%s\",\"token\":\"%s\",\"payload\":%s}", rid,
	         type, tok, payload);
	int nth = count_sent(rid);
	tk_send(tk_shared_producer, topic, NULL, text, strlen(text), NULL);
	return nth_reply(rid, nth);
}

static char *write_cmd(const char *rid, const char *type, const char *tok, const char *payload)
{
	return command(tk_shared.create, rid, type, tok, payload);
}

/* Creates a patient with dni and returns its id. */
static long long create(const char *tok, const char *dni, const char *rid)
{
	char payload[256];

	snprintf(payload, sizeof(payload),
	         "{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\",\"dni\":\"%s\","
	         "\"fecha_nacimiento\":\"1990-04-12\"}",
	         dni);
	char *r = write_cmd(rid, "patient.create", tok, payload);
	tk_assert_json(r, "status", "201");
	tk_assert_json(r, "data.version", "1");
	char *id = tk_json_get(r, "data.id");
	long long v = atoll(id);
	free(id);
	free(r);
	return v;
}

static char *update(const char *rid, const char *tok, long long id, int version, const char *fields)
{
	char payload[512];

	snprintf(payload, sizeof(payload), "{\"id\":%lld,\"version\":%d,%s}", id, version, fields);
	return write_cmd(rid, "patient.update", tok, payload);
}

static char *delete (const char *rid, const char *tok, long long id, int version)
{
	char payload[128];

	snprintf(payload, sizeof(payload), "{\"id\":%lld,\"version\":%d}", id, version);
	return write_cmd(rid, "patient.delete", tok, payload);
}

static char *get(const char *tok, long long id)
{
	char payload[64];

	snprintf(payload, sizeof(payload), "{\"id\":%lld}", id);
	return command(tk_shared.query, NULL, "patient.get", tok, payload);
}

/* The admin's view of a patient row: "nombre/dni/version/deleted?" */
static char *row_of(long long id)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT nombre || '/' || dni || '/' || version || '/' ||"
	         " (deleted_at IS NOT NULL) FROM patients WHERE id = %lld",
	         id);
	return tk_sql(sql);
}

static void expect_row(long long id, const char *want)
{
	char *got = row_of(id);
	ck_assert_msg(got != NULL && strcmp(got, want) == 0, "patient %lld: %s, want %s", id,
	              got ? got : "(no row)", want);
	free(got);
}

START_TEST(every_status_of_update_and_delete)
{
	char *o = tk_owner("chg");
	char *tok = tk_token(o, 3600, NULL);
	long long p = create(tok, "CH1", NULL), q = create(tok, "CH2", NULL);
	char *r;

	r = update(NULL, tok, p, 1, "\"nombre\":\"  Ana Mar\\u00eda \"");
	tk_assert_json(r, "status", "200");
	tk_assert_json(r, "data.version", "2");
	tk_assert_json(r, "data.nombre",
	               "Ana Mar\xc3\xad"
	               "a");
	tk_assert_json(r, "data.apellido_paterno", "Quispe");
	char *created = tk_json_get(r, "data.created_at"),
	     *updated = tk_json_get(r, "data.updated_at");
	ck_assert_msg(strcmp(updated, created) > 0, "updated_at %s not after %s", updated, created);
	free(created);
	free(updated);
	free(r);

	r = update(NULL, tok, p, 1, "\"sexo\":\"F\""); /* stale: nothing changes */
	tk_assert_json(r, "status", "409");
	tk_assert_json(r, "error.code", "version_conflict");
	tk_assert_json(r, "error.current_version", "2");
	free(r);
	expect_row(p, "Ana Mar\xc3\xad"
	              "a/CH1/2/false");

	r = update(NULL, tok, p, 2, "\"dni\":\"CH2\""); /* q's */
	tk_assert_json(r, "status", "409");
	tk_assert_json(r, "error.code", "conflict");
	tk_assert_json(r, "error.fields.dni", "already registered");
	free(r);

	r = update(NULL, tok, 9223372036854775000LL, 1, "\"sexo\":\"F\"");
	tk_assert_json(r, "status", "404");
	tk_assert_json(r, "error.code", "not_found");
	free(r);

	r = update(NULL, tok, p, 2, "\"apellido_materno\":\"Rojas\",\"sexo\":\"X\"");
	tk_assert_json(r, "status", "200");
	tk_assert_json(r, "data.version", "3");
	tk_assert_json(r, "data.apellido_materno", "Rojas");
	free(r);
	r = update(NULL, tok, p, 3, "\"apellido_materno\":null");
	tk_assert_json(r, "data.version", "4");
	char *materno = tk_json_get(r, "data.apellido_materno");
	ck_assert_msg(materno == NULL || strcmp(materno, "null") == 0, "materno %s", materno);
	free(materno);
	free(r);

	r = delete (NULL, tok, p, 3); /* stale */
	tk_assert_json(r, "status", "409");
	tk_assert_json(r, "error.current_version", "4");
	free(r);
	r = delete (NULL, tok, p, 4);
	tk_assert_json(r, "status", "200");
	tk_assert_json(r, "data.deleted", "true");
	tk_assert_json(r, "data.version", "5");
	char *at = tk_json_get(r, "data.deleted_at");
	ck_assert_msg(at != NULL && strlen(at) == 24, "deleted_at %s", at);
	free(at);
	free(r);

	/* Gone for its owner, but the row stays. */
	r = get(tok, p);
	tk_assert_json(r, "status", "404");
	free(r);
	r = command(tk_shared.query, NULL, "patient.list", tok, "{\"dni\":\"CH1\"}");
	tk_assert_json(r, "status", "200");
	ck_assert_ptr_nonnull(strstr(r, "\"items\":[]"));
	free(r);
	r = update(NULL, tok, p, 5, "\"sexo\":\"M\"");
	tk_assert_json(r, "status", "404");
	free(r);
	r = delete (NULL, tok, p, 5);
	tk_assert_json(r, "status", "404");
	free(r);
	expect_row(p, "Ana Mar\xc3\xad"
	              "a/CH1/5/true");

	/* Its dni is free: a new patient takes it; q, untouched, is still version 1. */
	long long p2 = create(tok, "CH1", NULL);
	ck_assert(p2 != p);
	expect_row(q, "Ana/CH2/1/false");
	free(tok);
	free(o);
}
END_TEST

/* Owner B names A's patient: 404 for both commands, as if it did not exist, and A's row
 * is unchanged (read as the admin, around row-level security). */
START_TEST(another_owners_patient_is_not_found)
{
	char *a = tk_owner("cha"), *b = tk_owner("chb");
	char *ta = tk_token(a, 3600, NULL), *tb = tk_token(b, 3600, NULL);
	long long p = create(ta, "CHX", NULL);
	char *r;

	r = update(NULL, tb, p, 1, "\"nombre\":\"Mallory\"");
	tk_assert_json(r, "status", "404");
	free(r);
	r = delete (NULL, tb, p, 1);
	tk_assert_json(r, "status", "404");
	free(r);
	expect_row(p, "Ana/CHX/1/false");
	/* B can use the same dni for its own patient: unique per owner. */
	create(tb, "CHX", NULL);
	free(ta);
	free(tb);
	free(a);
	free(b);
}
END_TEST

/* A retried write gets its first reply, byte for byte, whatever changed since; the same
 * request id with another payload or type is an idempotency conflict. */
START_TEST(retries_answer_as_the_first_time)
{
	char *o = tk_owner("chr");
	char *tok = tk_token(o, 3600, NULL);
	char rc[64], r1[64], r2[64], rd[64];
	long long p;

	tk_unique(rc, sizeof(rc), "chr-c-");
	tk_unique(r1, sizeof(r1), "chr-1-");
	tk_unique(r2, sizeof(r2), "chr-2-");
	tk_unique(rd, sizeof(rd), "chr-d-");
	p = create(tok, "CHR", rc);
	char *first_create = get(tok, p); /* version 1 */
	char *u1 = update(r1, tok, p, 1, "\"nombre\":\"Uno\"");
	char *u2 = update(r2, tok, p, 2, "\"nombre\":\"Dos\"");
	char *d = delete (rd, tok, p, 3);
	tk_assert_json(u1, "status", "200");
	tk_assert_json(u2, "status", "200");
	tk_assert_json(d, "status", "200");

	char *again = update(r1, tok, p, 1, "\"nombre\":\"Uno\"");
	ck_assert_str_eq(again, u1);
	free(again);
	again = delete (rd, tok, p, 3);
	ck_assert_str_eq(again, d);
	free(again);
	again = update(r1, tok, p, 1, "\"nombre\":\"Otro\"");
	tk_assert_json(again, "error.code", "idempotency_conflict");
	free(again);
	again = delete (r2, tok, p, 2); /* an update's request id, as a delete */
	tk_assert_json(again, "error.code", "idempotency_conflict");
	free(again);
	again = update(rc, tok, p, 1, "\"nombre\":\"Tres\""); /* a create's request id */
	tk_assert_json(again, "error.code", "idempotency_conflict");
	free(again);
	/* The create, repeated, shows the patient as it was created. */
	char payload[256];
	snprintf(payload, sizeof(payload),
	         "{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\",\"dni\":\"CHR\","
	         "\"fecha_nacimiento\":\"1990-04-12\"}");
	again = write_cmd(rc, "patient.create", tok, payload);
	tk_assert_json(again, "status", "201");
	tk_assert_json(again, "data.version", "1");
	tk_assert_json(again, "data.nombre", "Ana");
	free(again);
	expect_row(p, "Dos/CHR/4/true");

	/* The audit trail: one row per command, the fields an update changed. */
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "SELECT string_agg(command_type || ':' || status || ':' ||"
	         " coalesce(changed_fields::text, '-'), ' ' ORDER BY answered_at, source_offset)"
	         " FROM patient_audit WHERE owner_id = '%s' AND command_type <> 'patient.get'",
	         o);
	char *trail = tk_sql(sql);
	ck_assert_str_eq(trail, "patient.create:201:- patient.update:200:{nombre}"
	                        " patient.update:200:{nombre} patient.delete:200:-"
	                        " patient.update:200:- patient.delete:200:- patient.update:409:-"
	                        " patient.delete:409:- patient.update:409:- patient.create:201:-");
	free(trail);
	free(first_create);
	free(u1);
	free(u2);
	free(d);
	free(tok);
	free(o);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("changes");
	TCase *tc = tcase_create("contract");
	tk_shared_fixtures(tc);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, every_status_of_update_and_delete);
	tcase_add_test(tc, another_owners_patient_is_not_found);
	tcase_add_test(tc, retries_answer_as_the_first_time);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
