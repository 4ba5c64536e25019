/* The state a topic's writes imply, built while it is read, compared at the end. */
#include "pw_verify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw_log.h"
#include "pw_util.h"

/* A patient as the topic's writes made it: its fields in the order of the
 * pw_patient_field bits (apellido_materno may be NULL). */
typedef struct model {
	int64_t id;
	char *owner;
	char *f[PW_PATIENT_FIELDS];
	int64_t version;
	bool deleted;
} model;

/* An update or delete answered 200, to apply after the whole topic was read. */
typedef struct change {
	int64_t id;
	int64_t version; /**< the version it named */
	char *owner, *request_id;
	bool del;
	unsigned fields;
	char *f[PW_PATIENT_FIELDS];
	size_t seq; /**< the order it was read in */
} change;

/* As many elements as memory could hold: the topic decides, not a setting. */
#define GROW_MAX(e) (SIZE_MAX / 2 / sizeof(e))

struct pw_verify {
	PGconn *c;
	model *patients;
	size_t np, capp;
	change *changes;
	size_t nc, capc;
	pw_verify_counts k;
};

pw_status pw_verify_create(PGconn *c, pw_verify **out)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return PW_E_NOMEM;
	(*out)->c = c;
	return PW_OK;
}

static void free_fields(char **f)
{
	for (int i = 0; i < PW_PATIENT_FIELDS; i++)
		free(f[i]);
}

void pw_verify_destroy(pw_verify *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->np; i++) {
		free(v->patients[i].owner);
		free_fields(v->patients[i].f);
	}
	for (size_t i = 0; i < v->nc; i++) {
		free(v->changes[i].owner);
		free(v->changes[i].request_id);
		free_fields(v->changes[i].f);
	}
	free(v->patients);
	free(v->changes);
	free(v);
}

/* Copies the n strings of src into dst (NULL stays NULL). */
static pw_status copy_fields(char **dst, const char *const *src)
{
	for (int i = 0; i < PW_PATIENT_FIELDS; i++)
		if (src[i] != NULL && (dst[i] = strdup(src[i])) == NULL)
			return PW_E_NOMEM;
	return PW_OK;
}

static void fields_of(const pw_patient_input *in, const char **f)
{
	const char *v[PW_PATIENT_FIELDS] = {in->nombre, in->apellido_paterno, in->apellido_materno,
	                                    in->dni,    in->fecha_nacimiento, in->sexo};
	memcpy(f, v, sizeof(v));
}

/* The answer recorded for the owner's record: its status and first patient id; false when
 * it has no audit row (never answered). By the audit's key, owner first; a create's own
 * audit row is its patient row (migration 009), found by owner and request id. */
static pw_status audit_of(pw_verify *v, const char *owner, const char *request_id,
                          const char *topic, int32_t partition, int64_t offset, bool *answered,
                          int *status, int64_t *id)
{
	char part[16], off[24];
	const char *p[5] = {owner, topic, part, off, request_id};
	PGresult *r;

	snprintf(part, sizeof(part), "%" PRId32, partition);
	snprintf(off, sizeof(off), "%" PRId64, offset);
	r = PQexecParams(v->c,
	                 "SELECT status, coalesce(patient_ids[1], 0) FROM patient_audit_tenant"
	                 " WHERE owner_id = $1 AND source_topic = $2 AND source_partition = $3"
	                 " AND source_offset = $4"
	                 " UNION ALL SELECT 201, id FROM patients"
	                 " WHERE owner_id = $1 AND request_id = $5 AND source_topic = $2"
	                 " AND source_partition = $3 AND source_offset = $4"
	                 " AND command_time IS NOT NULL",
	                 5, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "replay: verify query failed: %s", PQerrorMessage(v->c));
		PQclear(r);
		return PW_E_INTERNAL;
	}
	*answered = PQntuples(r) == 1;
	if (*answered) {
		*status = atoi(PQgetvalue(r, 0, 0));
		*id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	}
	PQclear(r);
	return PW_OK;
}

static pw_status add_patient(pw_verify *v, const pw_handler_outcome *o, int64_t id)
{
	const char *f[PW_PATIENT_FIELDS];
	model *m;

	if (pw_util_grow((void **)&v->patients, &v->capp, v->np + 1, sizeof(*m), GROW_MAX(*m)) !=
	    PW_OK)
		return PW_E_NOMEM;
	m = &v->patients[v->np++];
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->version = 1;
	fields_of(&o->in, f);
	if ((m->owner = strdup(o->owner)) == NULL)
		return PW_E_NOMEM;
	return copy_fields(m->f, f);
}

static pw_status add_change(pw_verify *v, const pw_handler_outcome *o)
{
	bool del = o->command == PW_COMMAND_DELETE;
	const char *f[PW_PATIENT_FIELDS];
	change *c;

	if (pw_util_grow((void **)&v->changes, &v->capc, v->nc + 1, sizeof(*c), GROW_MAX(*c)) !=
	    PW_OK)
		return PW_E_NOMEM;
	c = &v->changes[v->nc];
	memset(c, 0, sizeof(*c));
	c->seq = v->nc++;
	c->del = del;
	c->id = del ? o->del.id : o->update.id;
	c->version = del ? o->del.version : o->update.version;
	c->fields = del ? 0 : o->update.fields;
	if ((c->owner = strdup(o->owner)) == NULL ||
	    (c->request_id = strdup(o->request_id)) == NULL)
		return PW_E_NOMEM;
	if (del)
		return PW_OK;
	fields_of(&o->update.values, f);
	for (int i = 0; i < PW_PATIENT_FIELDS; i++)
		if (!(c->fields & (1u << i)))
			f[i] = NULL;
	return copy_fields(c->f, f);
}

pw_status pw_verify_record(pw_verify *v, const pw_handler_outcome *o, const char *topic,
                           int32_t partition, int64_t offset)
{
	bool answered = false;
	int status = 0;
	int64_t id = 0;
	pw_status st =
	    audit_of(v, o->owner, o->request_id, topic, partition, offset, &answered, &status, &id);

	if (st != PW_OK)
		return st;
	if (!answered) {
		v->k.unanswered++;
		PW_LOG_WARN(NULL,
		            "verify: %s %s of %s (%s/%" PRId32 "/%" PRId64 ") was never answered",
		            o->command_type, o->request_id, o->owner, topic, partition, offset);
		return PW_OK;
	}
	if (status == 404 || status == 409) {
		v->k.refused++;
		return PW_OK;
	}
	if (o->command == PW_COMMAND_CREATE && status == 201 && id > 0)
		return add_patient(v, o, id);
	if (o->command != PW_COMMAND_CREATE && status == 200)
		return add_change(v, o);
	v->k.unanswered++;
	PW_LOG_WARN(NULL, "verify: %s %s of %s was answered %d", o->command_type, o->request_id,
	            o->owner, status);
	return PW_OK;
}

/* ---- after the whole topic ------------------------------------------------------------------ */

static int by_id(const void *x, const void *y)
{
	const model *a = x, *b = y;
	return (a->id > b->id) - (a->id < b->id);
}

/* Repeats of a request first, in reading order: only the first has an effect. */
static int by_request(const void *x, const void *y)
{
	const change *a = x, *b = y;
	int c = strcmp(a->owner, b->owner);

	if (c == 0)
		c = strcmp(a->request_id, b->request_id);
	return c != 0 ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

/* Each patient's changes in the order of the versions they named. */
static int by_version(const void *x, const void *y)
{
	const change *a = x, *b = y;

	if (a->id != b->id)
		return (a->id > b->id) - (a->id < b->id);
	return (a->version > b->version) - (a->version < b->version);
}

static model *find(pw_verify *v, int64_t id)
{
	model key = {.id = id};
	return bsearch(&key, v->patients, v->np, sizeof(*v->patients), by_id);
}

/* Drops repeated creates (the same patient id) and repeated changes (the same request). */
static void drop_repeats(pw_verify *v)
{
	size_t w = 0;

	qsort(v->patients, v->np, sizeof(*v->patients), by_id);
	for (size_t i = 0; i < v->np; i++) {
		if (w > 0 && v->patients[w - 1].id == v->patients[i].id) {
			free(v->patients[i].owner);
			free_fields(v->patients[i].f);
			continue;
		}
		v->patients[w++] = v->patients[i];
	}
	v->np = w;
	w = 0;
	qsort(v->changes, v->nc, sizeof(*v->changes), by_request);
	for (size_t i = 0; i < v->nc; i++) {
		change *c = &v->changes[i];
		if (w > 0 && strcmp(v->changes[w - 1].owner, c->owner) == 0 &&
		    strcmp(v->changes[w - 1].request_id, c->request_id) == 0) {
			free(c->owner);
			free(c->request_id);
			free_fields(c->f);
			continue;
		}
		v->changes[w++] = *c;
	}
	v->nc = w;
}

/* Applies one change to its patient (its values move there); false when it follows no
 * version the topic made. */
static bool apply(model *m, change *c)
{
	if (m == NULL || m->deleted || strcmp(m->owner, c->owner) != 0 || m->version != c->version)
		return false;
	for (int i = 0; i < PW_PATIENT_FIELDS; i++)
		if (c->fields & (1u << i)) {
			free(m->f[i]);
			m->f[i] = c->f[i];
			c->f[i] = NULL;
		}
	m->version++;
	m->deleted = c->del;
	return true;
}

static bool same_text(const PGresult *r, int col, const char *want)
{
	if (PQgetisnull(r, 0, col))
		return want == NULL;
	return want != NULL && strcmp(PQgetvalue(r, 0, col), want) == 0;
}

#define ROW_SQL                                                                                    \
	"SELECT nombre, apellido_paterno, apellido_materno, dni, fecha_nacimiento::text, sexo,"    \
	" owner_id, version, (deleted_at IS NOT NULL)::text FROM patients WHERE "

/* One patient against its row. Looked up by owner and id, the primary key (by id alone it
 * is a scan of the table: a verify of 500 patients took over two minutes beside 2.3
 * million other rows); by id alone only when that finds nothing, so a row whose owner
 * was changed behind the worker's back still shows as differing, not as missing. */
static pw_status compare(pw_verify *v, const model *m)
{
	char id[24];
	const char *p[2] = {m->owner, id};
	PGresult *r;

	snprintf(id, sizeof(id), "%" PRId64, m->id);
	r = PQexecParams(v->c, ROW_SQL "owner_id = $1 AND id = $2", 2, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0) {
		PQclear(r);
		r = PQexecParams(v->c, ROW_SQL "id = $1", 1, NULL, p + 1, NULL, NULL, 0);
	}
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "replay: verify query failed: %s", PQerrorMessage(v->c));
		PQclear(r);
		return PW_E_INTERNAL;
	}
	bool same = PQntuples(r) == 1 && same_text(r, 6, m->owner) &&
	            strtoll(PQgetvalue(r, 0, 7), NULL, 10) == m->version &&
	            same_text(r, 8, m->deleted ? "true" : "false");
	for (int i = 0; same && i < PW_PATIENT_FIELDS; i++)
		same = same_text(r, i, m->f[i]);
	if (PQntuples(r) == 0) {
		v->k.missing++;
		PW_LOG_WARN(NULL, "verify: patient %" PRId64 " of %s has no row", m->id, m->owner);
	} else if (!same) {
		v->k.differs++;
		PW_LOG_WARN(NULL, "verify: patient %" PRId64 " of %s differs from its writes",
		            m->id, m->owner);
	} else {
		v->k.match++;
	}
	PQclear(r);
	return PW_OK;
}

/* Rows that claim to come from this topic but that no write of it made. */
static pw_status orphans(pw_verify *v, const char *topic)
{
	const char *p[1] = {topic};
	PGresult *r =
	    PQexecParams(v->c, "SELECT id, owner_id FROM patients WHERE source_topic = $1", 1, NULL,
	                 p, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "replay: verify query failed: %s", PQerrorMessage(v->c));
		PQclear(r);
		return PW_E_INTERNAL;
	}
	for (int i = 0; i < PQntuples(r); i++)
		if (find(v, strtoll(PQgetvalue(r, i, 0), NULL, 10)) == NULL) {
			v->k.orphans++;
			PW_LOG_WARN(NULL, "verify: patient %s of %s has no command on %s",
			            PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), topic);
		}
	PQclear(r);
	return PW_OK;
}

pw_status pw_verify_finish(pw_verify *v, const char *topic)
{
	pw_status st = PW_OK;

	drop_repeats(v);
	qsort(v->changes, v->nc, sizeof(*v->changes), by_version);
	for (size_t i = 0; i < v->nc; i++)
		if (!apply(find(v, v->changes[i].id), &v->changes[i])) {
			v->k.broken++;
			PW_LOG_WARN(NULL,
			            "verify: a change of patient %" PRId64 " names version %" PRId64
			            ", which the topic never made",
			            v->changes[i].id, v->changes[i].version);
		}
	for (size_t i = 0; st == PW_OK && i < v->np; i++)
		st = compare(v, &v->patients[i]);
	return st == PW_OK ? orphans(v, topic) : st;
}

const pw_verify_counts *pw_verify_counts_of(const pw_verify *v)
{
	return &v->k;
}

bool pw_verify_consistent(const pw_verify *v)
{
	const pw_verify_counts *k = &v->k;
	return k->differs == 0 && k->missing == 0 && k->broken == 0 && k->unanswered == 0 &&
	       k->orphans == 0;
}
