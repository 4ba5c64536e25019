/* The batched create path against the database (no Kafka): a mixed batch of new
 * creates, repeats, dni conflicts, idempotency conflicts, invalid commands and several
 * owners gets, record by record, the replies that one-at-a-time processing gives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <libpq-fe.h>

#include "pw_check_main.h"
#include "pw_command.h"
#include "pw_config.h"
#include "pw_patient.h"
#include "pw_reply.h"
#include "pw_testkit.h"

typedef struct cmd {
	int owner;         /**< 0, 1, 2: mapped to this run's owners */
	const char *rid;   /**< request id */
	const char *dni;   /**< NULL: an invalid command (answered 400 before the database) */
	const char *extra; /**< more payload JSON, or NULL */
} cmd;

/* Two batches: the second repeats and contradicts requests of the first. */
static const cmd first[] = {
    {0, "r1", "A", NULL},   /* new */
    {0, "r2", "B", NULL},   /* new */
    {0, "r1", "A", NULL},   /* the same request again, in the same batch */
    {0, "r3", "A", NULL},   /* dni of r1: conflict */
    {0, "r2", "C", NULL},   /* r2 with another payload: idempotency conflict */
    {1, "r1", "A", NULL},   /* another owner: its own r1 and its own dni A */
    {1, "bad", NULL, NULL}, /* invalid */
    {2, "r9", "Z", "{\"sexo\": \"X\", \"apellido_materno\": \"Ñuñez\"}"},
    {0, "r3", "A", NULL},                        /* the conflict again */
    {0, "r4", "D", NULL},                        /* new... */
    {0, "r4", "F", NULL},                        /* ...then contradicted in the same batch */
    {1, "r2", "B", "{\"nombre\": \"  Ana  \"}"}, /* trimmed: same as "Ana" */
};
static const cmd second[] = {
    {0, "r1", "A", NULL}, /* repeat across batches */
    {0, "r3", "E", NULL}, /* r3 was answered 409; another payload: idempotency conflict */
    {0, "r3", "A", NULL}, /* the conflict, once more */
    {1, "r5", "G", NULL}, /* new */
    {2, "r9", "Z", "{\"sexo\": \"X\", \"apellido_materno\": \"Ñuñez\"}"}, /* repeat */
    {1, "r2", "B", NULL}, /* repeat of the trimmed one */
};

typedef struct run {
	char owners[3][128];
	char topic[96];
	int64_t offset;
	pw_db *db;
	pw_config cfg;
	char *replies[32];
	int statuses[32];
	size_t n;
} run;

static void run_init(run *r, const char *tag)
{
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < 3; i++) {
		char *o = tk_owner(tag);
		snprintf(r->owners[i], sizeof(r->owners[i]), "%s", o);
		free(o);
	}
	tk_unique(r->topic, sizeof(r->topic), "batch-topic-");
	tk_env("DATABASE_URL");
	ck_assert_int_eq(pw_config_load(&r->cfg, 0, NULL, PW_CFG_NEED_DB, stderr), PW_OK);
	char err[512];
	ck_assert_msg(pw_command_db(&r->cfg, &r->db, err, sizeof(err)) == PW_OK, "%s", err);
	ck_assert_msg(pw_db_connect(r->db, err, sizeof(err)) == PW_OK, "connect: %s", err);
}

static void run_free(run *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->replies[i]);
	pw_db_destroy(r->db);
	pw_config_free(&r->cfg);
}

/* Runs cmds as one pw_command_run call (batch) or one call per command. */
static void run_cmds(run *r, const cmd *cmds, size_t n, int batch)
{
	pw_command items[16];
	pw_patient_input in[16];
	int64_t now = (int64_t)time(NULL);
	char err[512];

	memset(items, 0, sizeof(items));
	memset(in, 0, sizeof(in));
	for (size_t i = 0; i < n; i++) {
		const cmd *c = &cmds[i];
		pw_command *it = &items[i];
		it->owner = r->owners[c->owner];
		it->request_id = c->rid;
		it->command_type = "patient.create";
		it->src_topic = r->topic;
		it->src_partition = 0;
		it->src_offset = r->offset++;
		it->command_time = now;
		if (c->dni == NULL) {
			it->kind = PW_COMMAND_REFUSED;
			it->status = 400;
			it->reply = pw_reply_error(c->rid, 400, "validation_failed", "bad", NULL);
			continue;
		}
		char text[512];
		snprintf(text, sizeof(text),
		         "{\"nombre\": \"Ana\", \"apellido_paterno\": \"Quispe\", \"dni\": \"%s\","
		         " \"fecha_nacimiento\": \"1990-04-12\"}",
		         c->dni);
		json_t *p = json_loads(text, 0, NULL);
		if (c->extra) {
			json_t *e = json_loads(c->extra, 0, NULL);
			json_object_update(p, e);
			json_decref(e);
		}
		json_t *fields = NULL;
		ck_assert_int_eq(pw_patient_validate(p, now, &in[i], &fields), PW_OK);
		json_decref(p);
		it->kind = PW_COMMAND_CREATE;
		it->in = &in[i];
	}
	if (batch) {
		ck_assert_msg(pw_command_run(r->db, NULL, items, n, err, sizeof(err)) == PW_OK,
		              "batch: %s", err);
	} else {
		for (size_t i = 0; i < n; i++)
			ck_assert_msg(pw_command_run(r->db, NULL, &items[i], 1, err, sizeof(err)) ==
			                  PW_OK,
			              "one: %s", err);
	}
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(items[i].done, "item %zu not done", i);
		r->replies[r->n] = items[i].reply;
		r->statuses[r->n++] = items[i].status;
		pw_patient_input_clear(&in[i]);
	}
}

/* The reply with this run's owners, ids and times replaced by stable names, so two runs
 * compare: ids become their order of first appearance. */
static char *normalise(const run *r, const char *reply, char ids[][24], int *nids)
{
	json_t *j = json_loads(reply, 0, NULL);
	json_t *d = json_object_get(j, "data");
	ck_assert_ptr_nonnull(j);
	if (json_is_object(d)) {
		char id[24];
		snprintf(id, sizeof(id), "%lld",
		         (long long)json_integer_value(json_object_get(d, "id")));
		int k = 0;
		while (k < *nids && strcmp(ids[k], id) != 0)
			k++;
		if (k == *nids)
			snprintf(ids[(*nids)++], 24, "%s", id);
		json_object_set_new(d, "id", json_integer(k));
		json_object_set_new(d, "created_at", json_string("T"));
		json_object_set_new(d, "updated_at", json_string("T"));
		const char *o = json_string_value(json_object_get(d, "owner_id"));
		for (int i = 0; i < 3; i++)
			if (o && strcmp(o, r->owners[i]) == 0) {
				json_object_set_new(d, "owner_id", json_integer(i)); /* frees o */
				break;
			}
	}
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return s;
}

START_TEST(mixed_batches_answer_as_one_at_a_time)
{
	run b, o;
	char bid[64][24], oid[64][24];
	int nb = 0, no = 0;

	run_init(&b, "batch");
	run_init(&o, "single");
	run_cmds(&b, first, sizeof(first) / sizeof(first[0]), 1);
	run_cmds(&b, second, sizeof(second) / sizeof(second[0]), 1);
	run_cmds(&o, first, sizeof(first) / sizeof(first[0]), 0);
	run_cmds(&o, second, sizeof(second) / sizeof(second[0]), 0);
	ck_assert_uint_eq(b.n, o.n);
	for (size_t i = 0; i < b.n; i++) {
		char *x = normalise(&b, b.replies[i], bid, &nb);
		char *y = normalise(&o, o.replies[i], oid, &no);
		ck_assert_msg(strcmp(x, y) == 0, "command %zu: batch %s, one at a time %s", i, x,
		              y);
		ck_assert_int_eq(b.statuses[i], o.statuses[i]);
		free(x);
		free(y);
	}
	/* The outcomes themselves, in order (first batch, then second). */
	static const int want[] = {201, 201, 201, 409, 409, 201, 400, 201, 409,
	                           201, 409, 201, 201, 409, 409, 201, 201, 201};
	for (size_t i = 0; i < b.n; i++)
		ck_assert_msg(b.statuses[i] == want[i], "command %zu: status %d, want %d", i,
		              b.statuses[i], want[i]);
	ck_assert_ptr_nonnull(strstr(b.replies[4], "idempotency_conflict"));
	ck_assert_ptr_nonnull(strstr(b.replies[3], "\"conflict\""));
	ck_assert_ptr_nonnull(strstr(b.replies[13], "idempotency_conflict"));
	ck_assert_ptr_nonnull(strstr(b.replies[14], "\"conflict\""));
	/* Repeats carry the first reply's bytes. */
	ck_assert_str_eq(b.replies[0], b.replies[2]);
	ck_assert_str_eq(b.replies[0], b.replies[12]);
	ck_assert_str_eq(b.replies[7], b.replies[16]);
	ck_assert_str_eq(b.replies[11], b.replies[17]);
	/* One row per new create, one audit row per command. */
	char sql[1024];
	snprintf(
	    sql, sizeof(sql),
	    "SELECT (SELECT count(*) FROM patients WHERE owner_id IN ('%s','%s','%s')) || '/' ||"
	    " (SELECT count(*) FROM patient_audit WHERE source_topic = '%s')",
	    b.owners[0], b.owners[1], b.owners[2], b.topic);
	char *counts = tk_sql(sql);
	ck_assert_str_eq(counts, "7/18");
	free(counts);
	run_free(&b);
	run_free(&o);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("batch");
	TCase *tc = tcase_create("batch");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, mixed_batches_answer_as_one_at_a_time);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
