/* A run of creates: bind the commands as parallel arrays, read each one's outcome back by
 * its ordinal. */
#include "pw_creates.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw_creates_routed.h"

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

/* The run being written: its items and the input arrays, reused for every statement. */
typedef struct batch {
	pw_writes_item *items;
	const size_t *idx; /**< the run's items, by their place in items */
	size_t n;
	size_t undecided;
	pw_util_buf cols[C_N];
} batch;

static bool in_run(const batch *b, size_t i)
{
	for (size_t m = 0; m < b->n; m++)
		if (b->idx[m] == i)
			return true;
	return false;
}

/* One item as one element of every input array; its ordinal is its place in items. */
static pw_status add_member(batch *b, size_t i)
{
	const pw_writes_item *it = &b->items[i];
	const pw_patient_input *in = it->create;
	char ord[24], part[16], off[24], t[24];
	pw_status st = PW_OK;

	snprintf(ord, sizeof(ord), "%zu", i);
	snprintf(part, sizeof(part), "%" PRId32, it->src_partition);
	snprintf(off, sizeof(off), "%" PRId64, it->src_offset);
	snprintf(t, sizeof(t), "%" PRId64, it->command_time);
	const char *v[C_N] = {
	    [C_ORD] = ord,
	    [C_REQ] = it->request_id,
	    [C_HASH] = in->payload_hash,
	    [C_NOMBRE] = in->nombre,
	    [C_AP] = in->apellido_paterno,
	    [C_AM] = in->apellido_materno,
	    [C_DNI] = in->dni,
	    [C_FECHA] = in->fecha_nacimiento,
	    [C_SEXO] = in->sexo,
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
	pw_writes_item *it;
	pw_status st = PW_OK;

	if (!in_run(b, i))
		return PW_E_INTERNAL;
	it = &b->items[i];
	if (it->result != PW_WRITES_UNDECIDED || PQgetisnull(r, row, col[STATUS]))
		return PW_OK; /* NULL: a concurrent writer; asked again in the next round */
	int status = atoi(PQgetvalue(r, row, col[STATUS]));
	if (status > 0 && !PQgetisnull(r, row, col[STORED])) {
		it->result = PW_WRITES_STORED;
		it->status = status;
		if ((it->stored_reply = strdup(PQgetvalue(r, row, col[STORED]))) == NULL)
			st = PW_E_NOMEM;
	} else if (status == 201 && !PQgetisnull(r, row, col[SNAPSHOT])) {
		/* Its patient has changed since: the state the first reply showed. */
		st = pw_writes_take_detail(it, status, PQgetvalue(r, row, col[SNAPSHOT]));
	} else if (status == 201) {
		st = pw_db_patient(r, row, &it->patient);
		if (st == PW_OK && it->patient.nombre == NULL) /* no row to show */
			st = PW_E_INTERNAL;
		it->result = PW_WRITES_CREATED;
		it->status = 201;
	} else if (status == 409 || status == -409) {
		it->result = status == 409 ? PW_WRITES_CONFLICT : PW_WRITES_IDEMPOTENCY_CONFLICT;
		it->status = 409;
	} else {
		st = PW_E_INTERNAL;
	}
	if (st != PW_OK)
		return st;
	b->undecided--;
	return PW_OK;
}

/* The statement over the still undecided items of the run. */
static pw_status run_once(pw_db *db, batch *b, char *errstr, size_t errstr_size)
{
	static const char *const names[] = {"ord", "status", "stored", "snapshot"};
	const pw_writes_item *first = &b->items[b->idx[0]];
	PGresult *r = NULL;
	int col[4];
	pw_status st = PW_OK;

	for (int k = 0; k < C_N; k++)
		pw_util_buf_reset(&b->cols[k]);
	for (size_t m = 0; m < b->n && st == PW_OK; m++)
		if (b->items[b->idx[m]].result == PW_WRITES_UNDECIDED)
			st = add_member(b, b->idx[m]);
	for (int k = 0; k < C_N && st == PW_OK; k++)
		st = pw_db_array_close(&b->cols[k]);
	if (st != PW_OK)
		return st;
	create_args a = {first->owner,       first->src_topic,  b->cols[C_ORD].p,
	                 b->cols[C_REQ].p,   b->cols[C_HASH].p, b->cols[C_NOMBRE].p,
	                 b->cols[C_AP].p,    b->cols[C_AM].p,   b->cols[C_DNI].p,
	                 b->cols[C_FECHA].p, b->cols[C_SEXO].p, b->cols[C_PART].p,
	                 b->cols[C_OFF].p,   b->cols[C_TIME].p};
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

pw_status pw_creates_run(pw_db *db, pw_writes_item *items, const size_t *idx, size_t n,
                         char *errstr, size_t errstr_size)
{
	batch b = {items, idx, n, n, {{0}}};
	pw_status st = PW_OK;

	if (pw_db_citus(db))
		return pw_creates_routed_run(db, items, idx, n, errstr, errstr_size);

	errstr[0] = '\0';
	/* A round leaves a command undecided only when a concurrent transaction wrote the same
	 * request or dni, which the next round sees. */
	for (int round = 0; st == PW_OK && round < 3 && b.undecided > 0; round++)
		st = run_once(db, &b, errstr, errstr_size);
	if (st == PW_OK && b.undecided > 0) {
		/* Three statements in a row saw a conflict with no visible cause: give up on
		 * the batch rather than guess an answer. */
		snprintf(errstr, errstr_size, "%zu creates stayed undecided", b.undecided);
		st = PW_E_INTERNAL;
	}
	for (int k = 0; k < C_N; k++)
		pw_util_buf_free(&b.cols[k]);
	return st;
}
