/* The batched write path against the database (no Kafka): a mixed batch of new creates,
 * repeats, dni conflicts, idempotency conflicts, invalid commands and several owners, and
 * a batch of updates and deletes that depend on each other's order, and one patient's
 * whole life (create, updates, delete, its dni taken again) in one batch get, record by
 * record, the replies that one-at-a-time processing gives. */
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
		json_object_set_new(d, "deleted_at", json_string("T"));
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

/* The batch run's replies equal the one-at-a-time run's, write by write, once owners, ids
 * and times are named alike. */
static void assert_same_replies(const run *b, const run *o)
{
	char bid[32][24], oid[32][24];
	int nb = 0, no = 0;

	ck_assert_uint_eq(b->n, o->n);
	for (size_t i = 0; i < b->n; i++) {
		char *x = normalise(b, b->replies[i], bid, &nb);
		char *y = normalise(o, o->replies[i], oid, &no);
		ck_assert_msg(strcmp(x, y) == 0, "record %zu: batch %s, one at a time %s", i, x, y);
		ck_assert_int_eq(b->statuses[i], o->statuses[i]);
		free(x);
		free(y);
	}
}

START_TEST(mixed_batches_answer_as_one_at_a_time)
{
	run b, o;

	run_init(&b, "batch");
	run_init(&o, "single");
	run_cmds(&b, first, sizeof(first) / sizeof(first[0]), 1);
	run_cmds(&b, second, sizeof(second) / sizeof(second[0]), 1);
	run_cmds(&o, first, sizeof(first) / sizeof(first[0]), 0);
	run_cmds(&o, second, sizeof(second) / sizeof(second[0]), 0);
	assert_same_replies(&b, &o);
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
	/* A create's audit record is the patient row it made (migration 009): the audit
	 * table holds the other 11. */
	char tenant_sql[256];
	snprintf(tenant_sql, sizeof(tenant_sql),
	         "SELECT count(*) FROM patient_audit_tenant WHERE source_topic = '%s'", b.topic);
	counts = tk_sql(tenant_sql);
	ck_assert_str_eq(counts, "11");
	free(counts);
	/* The first batch's records delivered again: the same replies, nothing added. */
	size_t before = b.n, nfirst = sizeof(first) / sizeof(first[0]);
	b.offset = 0;
	run_cmds(&b, first, nfirst, 1);
	for (size_t i = 0; i < nfirst; i++)
		ck_assert_msg(strcmp(b.replies[before + i], b.replies[i]) == 0,
		              "command %zu redelivered: %s, first %s", i, b.replies[before + i],
		              b.replies[i]);
	counts = tk_sql(sql);
	ck_assert_str_eq(counts, "7/18");
	free(counts);
	run_free(&b);
	run_free(&o);
}
END_TEST

/* ---- updates and deletes in one batch ---------------------------------------------------- */

/* A write: its owner, request id, type and payload, where "#k" stands for the id of the
 * k-th patient the set-up created (so both runs name their own patients). */
typedef struct wcmd {
	int owner;
	const char *rid, *type, *payload;
} wcmd;

#define ANA(dni)                                                                                   \
	"{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\",\"dni\":\"" dni "\","                 \
	"\"fecha_nacimiento\":\"1990-04-12\"}"

/* Four patients: #0, #1, #2 of owner 0 (dni D0, D1, D2), #3 of owner 1 (dni D0). */
static const wcmd setup_writes[] = {
    {0, "s0", "patient.create", ANA("D0")},
    {0, "s1", "patient.create", ANA("D1")},
    {0, "s2", "patient.create", ANA("D2")},
    {1, "s3", "patient.create", ANA("D0")},
};

/* One batch whose answers depend on the order of its writes. */
static const wcmd order_writes[] = {
    {0, "u1", "patient.update", "{\"id\":#0,\"version\":1,\"nombre\":\"Ana Mar\\u00eda\"}"},
    {0, "u2", "patient.update", "{\"id\":#0,\"version\":1,\"sexo\":\"F\"}"}, /* stale */
    {0, "u3", "patient.update", "{\"id\":#0,\"version\":2,\"apellido_materno\":\"Rojas\"}"},
    {0, "d1", "patient.delete", "{\"id\":#0,\"version\":3}"},
    {0, "c1", "patient.create", ANA("D0")}, /* D0 was freed by d1 */
    {0, "u4", "patient.update", "{\"id\":#1,\"version\":1,\"dni\":\"D2\"}"}, /* #2 has D2 */
    {0, "d2", "patient.delete", "{\"id\":#2,\"version\":1}"},
    {0, "u5", "patient.update", "{\"id\":#1,\"version\":1,\"dni\":\"D2\"}"},   /* free now */
    {0, "u6", "patient.update", "{\"id\":#3,\"version\":1,\"nombre\":\"X\"}"}, /* owner 1's */
    {1, "u6", "patient.update", "{\"id\":#3,\"version\":1,\"nombre\":\"Y\"}"}, /* its own */
    {0, "d3", "patient.delete", "{\"id\":#0,\"version\":4}"},                  /* deleted already */
    {0, "u1", "patient.update", "{\"id\":#0,\"version\":1,\"nombre\":\"Ana Mar\\u00eda\"}"},
    {0, "u1", "patient.update", "{\"id\":#0,\"version\":1,\"nombre\":\"Otra\"}"},
    {0, "s1", "patient.update", "{\"id\":#1,\"version\":2,\"sexo\":\"X\"}"},     /* a create's id */
    {0, "u7", "patient.update", "{\"id\":#1,\"version\":2,\"nombre\":\"Ana\"}"}, /* no change */
    {0, "s0", "patient.create", ANA("D0")}, /* the first create of #0, repeated */
};

/* Later: each of these again answers as the first time, whatever changed since. */
static const wcmd repeat_writes[] = {
    {0, "u1", "patient.update", "{\"id\":#0,\"version\":1,\"nombre\":\"Ana Mar\\u00eda\"}"},
    {0, "u2", "patient.update", "{\"id\":#0,\"version\":1,\"sexo\":\"F\"}"},
    {0, "d1", "patient.delete", "{\"id\":#0,\"version\":3}"},
    {0, "u4", "patient.update", "{\"id\":#1,\"version\":1,\"dni\":\"D2\"}"},
    {0, "u6", "patient.update", "{\"id\":#3,\"version\":1,\"nombre\":\"X\"}"},
};

/* The payload with "#k" replaced by the k-th set-up patient's id. */
static json_t *payload_of(const char *tmpl, const long long *ids)
{
	char text[512];
	size_t o = 0;

	for (const char *p = tmpl; *p && o + 24 < sizeof(text); p++) {
		if (*p == '#' && p[1] >= '0' && p[1] <= '9')
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%lld", ids[*++p - '0']);
		else
			text[o++] = *p;
	}
	text[o] = '\0';
	json_t *j = json_loads(text, 0, NULL);
	ck_assert_msg(j != NULL, "bad test payload %s", text);
	return j;
}

/* The validated inputs of one write, kept until its command is answered. */
typedef struct winput {
	pw_patient_input in;
	pw_patient_update upd;
	pw_patient_delete del;
} winput;

static void write_command(run *r, const wcmd *c, const long long *ids, int64_t now, winput *w,
                          pw_command *it)
{
	json_t *p = payload_of(c->payload, ids), *fields = NULL;
	pw_status st;

	it->owner = r->owners[c->owner];
	it->request_id = c->rid;
	it->command_type = c->type;
	it->src_topic = r->topic;
	it->src_partition = 0;
	it->src_offset = r->offset++;
	it->command_time = now;
	if (strcmp(c->type, "patient.create") == 0) {
		st = pw_patient_validate(p, now, &w->in, &fields);
		it->kind = PW_COMMAND_CREATE;
		it->in = &w->in;
	} else if (strcmp(c->type, "patient.update") == 0) {
		st = pw_patient_validate_update(p, now, &w->upd, &fields);
		it->kind = PW_COMMAND_UPDATE;
		it->update = &w->upd;
	} else {
		st = pw_patient_validate_delete(p, &w->del, &fields);
		it->kind = PW_COMMAND_DELETE;
		it->del = &w->del;
	}
	ck_assert_msg(st == PW_OK, "write %s refused by validation", c->rid);
	json_decref(p);
}

/* Runs writes as one pw_command_run call (batch) or one call per write. */
static void run_writes(run *r, const wcmd *cmds, size_t n, const long long *ids, int batch)
{
	pw_command items[32];
	winput w[32];
	int64_t now = (int64_t)time(NULL);
	char err[512];

	ck_assert_uint_le(n, 32);
	memset(items, 0, sizeof(items));
	memset(w, 0, sizeof(w));
	for (size_t i = 0; i < n; i++)
		write_command(r, &cmds[i], ids, now, &w[i], &items[i]);
	for (size_t i = 0; i < (batch ? 1 : n); i++)
		ck_assert_msg(pw_command_run(r->db, NULL, &items[i], batch ? n : 1, err,
		                             sizeof(err)) == PW_OK,
		              "%s: %s", batch ? "batch" : "one", err);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(items[i].done, "write %zu not done", i);
		r->replies[r->n] = items[i].reply;
		r->statuses[r->n++] = items[i].status;
		pw_patient_input_clear(&w[i].in);
		pw_patient_update_clear(&w[i].upd);
	}
}

/* The ids the set-up writes got, from their replies. */
static void setup_ids(const run *r, long long *ids)
{
	for (size_t i = 0; i < 4; i++) {
		char *id = tk_json_get(r->replies[i], "data.id");
		ck_assert_ptr_nonnull(id);
		ids[i] = atoll(id);
		free(id);
	}
}

START_TEST(writes_in_order_answer_as_one_at_a_time)
{
	const size_t ns = sizeof(setup_writes) / sizeof(setup_writes[0]);
	const size_t nw = sizeof(order_writes) / sizeof(order_writes[0]);
	const size_t nr = sizeof(repeat_writes) / sizeof(repeat_writes[0]);
	long long bids[4], oids[4];
	run b, o;

	run_init(&b, "wbatch");
	run_init(&o, "wsingle");
	run_writes(&b, setup_writes, ns, NULL, 1);
	run_writes(&o, setup_writes, ns, NULL, 1);
	setup_ids(&b, bids);
	setup_ids(&o, oids);
	run_writes(&b, order_writes, nw, bids, 1);
	run_writes(&o, order_writes, nw, oids, 0);
	run_writes(&b, repeat_writes, nr, bids, 1);
	run_writes(&o, repeat_writes, nr, oids, 0);
	assert_same_replies(&b, &o);
	static const int want[] = {201, 201, 201, 201,                          /* set-up */
	                           200, 409, 200, 200, 201, 409, 200, 200, 404, /* u1 .. u6 */
	                           200, 404, 200, 409, 409, 200, 201,           /* .. s0 */
	                           200, 409, 200, 409, 404};                    /* repeats */
	ck_assert_uint_eq(b.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < b.n; i++)
		ck_assert_msg(b.statuses[i] == want[i], "write %zu: status %d, want %d: %s", i,
		              b.statuses[i], want[i], b.replies[i]);
	const char *s = b.replies[5];
	ck_assert_msg(strstr(s, "\"version_conflict\"") && strstr(s, "\"current_version\":2"), "%s",
	              s);
	ck_assert_msg(strstr(b.replies[9], "\"code\":\"conflict\""), "%s", b.replies[9]);
	ck_assert_msg(strstr(b.replies[7], "\"deleted\":true") &&
	                  strstr(b.replies[7], "\"version\":4"),
	              "%s", b.replies[7]);
	ck_assert_msg(strstr(b.replies[16], "idempotency_conflict"), "%s", b.replies[16]);
	ck_assert_msg(strstr(b.replies[17], "idempotency_conflict"), "%s", b.replies[17]);
	/* Repeats carry the first reply's bytes: of an update after its patient changed
	 * again, of a create after its patient was updated and deleted. */
	ck_assert_str_eq(b.replies[15], b.replies[4]);
	ck_assert_str_eq(b.replies[20], b.replies[4]);
	ck_assert_str_eq(b.replies[21], b.replies[5]);
	ck_assert_str_eq(b.replies[22], b.replies[7]);
	ck_assert_str_eq(b.replies[23], b.replies[9]);
	ck_assert_str_eq(b.replies[24], b.replies[12]);
	ck_assert_str_eq(b.replies[19], b.replies[0]);
	/* The audit rows name the fields an update changed, and nothing for one that changed
	 * none. */
	char sql[1024];
	snprintf(sql, sizeof(sql),
	         "SELECT string_agg(request_id || '=' || coalesce(changed_fields::text, '-'), ' '"
	         " ORDER BY source_offset) FROM patient_audit WHERE source_topic = '%s'"
	         " AND command_type = 'patient.update' AND source_offset < %zu",
	         b.topic, ns + nw);
	char *changed = tk_sql(sql);
	ck_assert_str_eq(changed, "u1={nombre} u2=- u3={apellido_materno} u4=- u5={dni} u6=-"
	                          " u6={nombre} u1=- u1=- s1=- u7={}");
	free(changed);
	/* As a superuser: owner 1's patient #3 was changed only by owner 1. */
	snprintf(sql, sizeof(sql), "SELECT nombre || '/' || version FROM patients WHERE id = %lld",
	         bids[3]);
	char *p3 = tk_sql(sql);
	ck_assert_str_eq(p3, "Y/2");
	free(p3);
	run_free(&b);
	run_free(&o);
}
END_TEST

/* A patient created, changed, deleted and its dni taken again, all in one batch: the
 * create's id is known before it is made only by reading the identity sequence, so the
 * test predicts it (the create is the batch's first use of the sequence; ctest runs the
 * database tests one at a time) and says so if another session took the id meanwhile. */
static const wcmd lifecycle_writes[] = {
    {0, "c1", "patient.create", ANA("D5")},
    {0, "u1", "patient.update", "{\"id\":#0,\"version\":1,\"nombre\":\"Eva\"}"},
    {0, "u2", "patient.update", "{\"id\":#0,\"version\":1,\"sexo\":\"F\"}"}, /* stale */
    {0, "d1", "patient.delete", "{\"id\":#0,\"version\":2}"},
    {0, "u3", "patient.update", "{\"id\":#0,\"version\":3,\"nombre\":\"Ivo\"}"}, /* deleted */
    {0, "c2", "patient.create", ANA("D5")}, /* D5 freed by d1 */
    {0, "u1", "patient.update", "{\"id\":#0,\"version\":1,\"nombre\":\"Eva\"}"}, /* retry */
};

static long long next_patient_id(void)
{
	char *s = tk_sql("SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END"
	                 " FROM patients_id_seq");
	ck_assert_msg(s != NULL, "cannot read patients_id_seq");
	long long id = atoll(s);
	free(s);
	return id;
}

static void run_lifecycle(run *r, long long *id, int batch)
{
	const size_t n = sizeof(lifecycle_writes) / sizeof(lifecycle_writes[0]);

	*id = next_patient_id();
	run_writes(r, lifecycle_writes, n, id, batch);
	char *got = tk_json_get(r->replies[0], "data.id");
	ck_assert_msg(got != NULL && atoll(got) == *id,
	              "the create got id %s, not the predicted %lld: another session created "
	              "patients during the test (run the database tests one at a time)",
	              got ? got : "(none)", *id);
	free(got);
}

START_TEST(create_change_delete_and_reuse_in_one_batch)
{
	long long bid, oid;
	run b, o;

	run_init(&b, "lbatch");
	run_init(&o, "lsingle");
	run_lifecycle(&b, &bid, 1);
	run_lifecycle(&o, &oid, 0);
	assert_same_replies(&b, &o);
	static const int want[] = {201, 200, 409, 200, 404, 201, 200};
	ck_assert_uint_eq(b.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < b.n; i++)
		ck_assert_msg(b.statuses[i] == want[i], "write %zu: status %d, want %d: %s", i,
		              b.statuses[i], want[i], b.replies[i]);
	ck_assert_msg(strstr(b.replies[2], "\"current_version\":2"), "%s", b.replies[2]);
	ck_assert_str_eq(b.replies[6], b.replies[1]);
	/* As a superuser: the first patient deleted at version 3 with the update's name, the
	 * second live with the same dni. */
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "SELECT string_agg(nombre || '/' || version || '/' || (deleted_at IS NULL), ' '"
	         " ORDER BY id) FROM patients WHERE owner_id = '%s' AND dni = 'D5'",
	         b.owners[0]);
	char *rows = tk_sql(sql);
	ck_assert_str_eq(rows, "Eva/3/false Ana/1/true");
	free(rows);
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
	tcase_add_test(tc, writes_in_order_answer_as_one_at_a_time);
	tcase_add_test(tc, create_change_delete_and_reuse_in_one_batch);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
