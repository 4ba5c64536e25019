/* The create batch: group by owner, bind the owner's commands as parallel arrays, read each
 * command's outcome back by its ordinal. */
#include "pw_creates.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The statement's parameters: the owner, the source topic, then one array per input
 * column (a PostgreSQL array literal each), in the order of enum column. */
typedef struct create_args {
	const char *owner, *source_topic;
	const char *ords, *request_ids, *payload_hashes, *nombres, *apellidos_paternos,
	    *apellidos_maternos, *dnis, *fechas_nacimiento, *sexos, *partitions, *offsets,
	    *command_times;
} create_args;

#define P(f) PW_SQL_PARAM(create_args, f)
static const pw_sql_param create_params[] = {P(owner),
                                             P(source_topic),
                                             P(ords),
                                             P(request_ids),
                                             P(payload_hashes),
                                             P(nombres),
                                             P(apellidos_paternos),
                                             P(apellidos_maternos),
                                             P(dnis),
                                             P(fechas_nacimiento),
                                             P(sexos),
                                             P(partitions),
                                             P(offsets),
                                             P(command_times)};
#undef P

const pw_sql_stmt pw_creates_stmt = {"pw_create", pw_sql_text_create_batch, create_params,
                                     sizeof(create_params) / sizeof(create_params[0])};

enum column {
	C_ORD,
	C_REQ,
	C_HASH,
	C_NOMBRE,
	C_AP,
	C_AM,
	C_DNI,
	C_FECHA,
	C_SEXO,
	C_PART,
	C_OFF,
	C_TIME,
	C_N
};

/* An item's place in the batch, sorted by owner, topic, then arrival: each run of one
 * owner and topic is one statement. */
typedef struct slot {
	const char *owner, *topic;
	size_t idx;
} slot;

typedef struct batch {
	pw_creates_item *items;
	size_t n;
	slot *order;
	bool *decided; /**< per item */
	size_t undecided;
	pw_util_buf cols[C_N];
} batch;

static int by_owner(const void *x, const void *y)
{
	const slot *a = x, *b = y;
	int c = strcmp(a->owner, b->owner);

	if (c == 0)
		c = strcmp(a->topic, b->topic);
	return c != 0 ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

static bool same_group(const slot *a, const slot *b)
{
	return strcmp(a->owner, b->owner) == 0 && strcmp(a->topic, b->topic) == 0;
}

/* One item as one element of every input array. */
static pw_status add_member(batch *b, size_t i)
{
	const pw_creates_item *it = &b->items[i];
	char ord[24], part[16], off[24], t[24];
	pw_status st = PW_OK;

	snprintf(ord, sizeof(ord), "%zu", i);
	snprintf(part, sizeof(part), "%" PRId32, it->src_partition);
	snprintf(off, sizeof(off), "%" PRId64, it->src_offset);
	snprintf(t, sizeof(t), "%" PRId64, it->command_time);
	const char *v[C_N] = {
	    [C_ORD] = ord,
	    [C_REQ] = it->request_id,
	    [C_HASH] = it->in->payload_hash,
	    [C_NOMBRE] = it->in->nombre,
	    [C_AP] = it->in->apellido_paterno,
	    [C_AM] = it->in->apellido_materno,
	    [C_DNI] = it->in->dni,
	    [C_FECHA] = it->in->fecha_nacimiento,
	    [C_SEXO] = it->in->sexo,
	    [C_PART] = part,
	    [C_OFF] = off,
	    [C_TIME] = t,
	};
	for (int k = 0; k < C_N && st == PW_OK; k++)
		st = pw_db_array_add(&b->cols[k], v[k]);
	return st;
}

/* One result row: the outcome of the item it names. PW_E_INTERNAL for an outcome the
 * statement does not give; PW_OK with the item left undecided for a NULL status. */
static pw_status decide(batch *b, const PGresult *r, int row, const int *col)
{
	enum { ORD, STATUS, STORED, SNAPSHOT };
	size_t i = (size_t)strtoull(PQgetvalue(r, row, col[ORD]), NULL, 10);
	pw_creates_item *it;

	if (i >= b->n)
		return PW_E_INTERNAL;
	if (b->decided[i])
		return PW_OK; /* only undecided items are sent; nothing to take from it */
	it = &b->items[i];
	if (PQgetisnull(r, row, col[STATUS]))
		return PW_OK; /* a concurrent writer: asked again in the next round */
	int status = atoi(PQgetvalue(r, row, col[STATUS]));
	if (status > 0 && !PQgetisnull(r, row, col[STORED])) {
		it->result = PW_CREATES_STORED;
		it->stored_status = status;
		if ((it->stored_reply = strdup(PQgetvalue(r, row, col[STORED]))) == NULL)
			return PW_E_NOMEM;
	} else if (status == 201 && !PQgetisnull(r, row, col[SNAPSHOT])) {
		/* Its patient has changed since: the state the first reply showed. */
		json_t *o = json_loads(PQgetvalue(r, row, col[SNAPSHOT]), 0, NULL);
		pw_status st = o ? pw_patient_from_json(o, &it->patient) : PW_E_INTERNAL;
		json_decref(o);
		if (st != PW_OK)
			return st == PW_E_NOMEM ? st : PW_E_INTERNAL;
		it->result = PW_CREATES_CREATED;
	} else if (status == 201) {
		pw_status st = pw_db_patient(r, row, &it->patient);
		if (st != PW_OK || it->patient.nombre == NULL) /* no row to show */
			return st != PW_OK ? st : PW_E_INTERNAL;
		it->result = PW_CREATES_CREATED;
	} else if (status == 409) {
		it->result = PW_CREATES_CONFLICT;
	} else if (status == -409) {
		it->result = PW_CREATES_IDEMPOTENCY_CONFLICT;
	} else {
		return PW_E_INTERNAL;
	}
	b->decided[i] = true;
	b->undecided--;
	return PW_OK;
}

/* The statement over the still undecided items of one group, order[0..n). */
static pw_status run_group(pw_db *db, batch *b, const slot *group, size_t n, char *errstr,
                           size_t errstr_size)
{
	static const char *const names[] = {"ord", "status", "stored", "snapshot"};
	PGresult *r = NULL;
	size_t members = 0;
	int col[4];
	pw_status st = PW_OK;

	for (int k = 0; k < C_N; k++)
		pw_util_buf_reset(&b->cols[k]);
	for (size_t m = 0; m < n && st == PW_OK; m++)
		if (!b->decided[group[m].idx]) {
			st = add_member(b, group[m].idx);
			members++;
		}
	for (int k = 0; k < C_N && st == PW_OK; k++)
		st = pw_db_array_close(&b->cols[k]);
	if (st != PW_OK || members == 0)
		return st;
	create_args a = {group->owner,       group->topic,      b->cols[C_ORD].p,
	                 b->cols[C_REQ].p,   b->cols[C_HASH].p, b->cols[C_NOMBRE].p,
	                 b->cols[C_AP].p,    b->cols[C_AM].p,   b->cols[C_DNI].p,
	                 b->cols[C_FECHA].p, b->cols[C_SEXO].p, b->cols[C_PART].p,
	                 b->cols[C_OFF].p,   b->cols[C_TIME].p};
	st = pw_db_set_owner(db, group->owner, errstr, errstr_size);
	if (st == PW_OK)
		st = pw_db_exec(db, &pw_creates_stmt, &a, &r, errstr, errstr_size);
	if (st == PW_OK && pw_db_columns(r, names, 4, col) != PW_OK)
		st = PW_E_INTERNAL;
	for (int row = 0; st == PW_OK && row < PQntuples(r); row++)
		st = decide(b, r, row, col);
	if (st == PW_E_INTERNAL && errstr[0] == '\0')
		snprintf(errstr, errstr_size, "create outcome not understood");
	PQclear(r);
	return st;
}

/* Up to three rounds over every owner: a round leaves a command undecided only when a
 * concurrent transaction wrote the same request or dni, which the next round sees. */
static pw_status run_rounds(pw_db *db, batch *b, char *errstr, size_t errstr_size)
{
	for (int round = 0; round < 3 && b->undecided > 0; round++) {
		for (size_t s = 0; s < b->n;) {
			size_t e = s + 1;
			while (e < b->n && same_group(&b->order[s], &b->order[e]))
				e++;
			pw_status st = run_group(db, b, &b->order[s], e - s, errstr, errstr_size);
			if (st != PW_OK)
				return st;
			s = e;
		}
	}
	if (b->undecided > 0) {
		/* Three statements in a row saw a conflict with no visible cause: give up on
		 * the batch rather than guess an answer. */
		snprintf(errstr, errstr_size, "%zu creates stayed undecided", b->undecided);
		return PW_E_INTERNAL;
	}
	return PW_OK;
}

pw_status pw_creates_run(pw_db *db, pw_creates_item *items, size_t n, char *errstr,
                         size_t errstr_size)
{
	batch b = {items, n,    calloc(n ? n : 1, sizeof(slot)), calloc(n ? n : 1, sizeof(bool)),
	           n,     {{0}}};
	pw_status st = PW_E_NOMEM;

	errstr[0] = '\0';
	pw_creates_clear(items, n);
	if (b.order == NULL || b.decided == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		b.order[i] = (slot){items[i].owner, items[i].src_topic, i};
	qsort(b.order, n, sizeof(*b.order), by_owner);

	/* A generic plan for the statement: its input is arrays, whose values never make
	 * another plan better, while planning it anew for each owner (the default for a
	 * statement whose custom plans look cheaper) costs more than running it. Twice the
	 * creates per second with 100 tenants (tests/bench). Local to this transaction: the
	 * list query wants custom plans (its q prefix picks the indexes). */
	st = pw_db_exec_text(db, "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan", errstr,
	                     errstr_size); /* one round trip */
	if (st == PW_OK)
		st = run_rounds(db, &b, errstr, errstr_size);
	if (st == PW_OK)
		st = pw_db_commit(db, errstr, errstr_size);
out:
	if (st != PW_OK) {
		pw_db_rollback(db);
		pw_creates_clear(items, n);
	}
	for (int k = 0; k < C_N; k++)
		pw_util_buf_free(&b.cols[k]);
	free(b.order);
	free(b.decided);
	return st;
}

void pw_creates_clear(pw_creates_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].stored_reply);
		pw_patient_clear(&items[i].patient);
		items[i].stored_reply = NULL;
		items[i].stored_status = 0;
		items[i].result = 0;
	}
}
