/* A run of creates on Citus, as statements routed whole to the owner's shard. */
#include "pw_creates_routed.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw_util.h"

typedef struct prior_args {
	const char *owner, *source_topic, *ords, *request_ids, *dnis, *partitions, *offsets;
} prior_args;

#define P(f) PW_SQL_PARAM(prior_args, f)
static const pw_sql_param prior_params[] = {P(owner), P(source_topic), P(ords),   P(request_ids),
                                            P(dnis),  P(partitions),   P(offsets)};
#undef P
const pw_sql_stmt pw_creates_prior_stmt = {"pw_create_prior", pw_sql_text_create_prior,
                                           prior_params,
                                           sizeof(prior_params) / sizeof(prior_params[0])};

typedef struct rows_args {
	const char *owner, *ids;
} rows_args;

static const pw_sql_param rows_params[] = {PW_SQL_PARAM(rows_args, owner),
                                           PW_SQL_PARAM(rows_args, ids)};
const pw_sql_stmt pw_creates_rows_stmt = {"pw_create_rows", pw_sql_text_create_rows, rows_params,
                                          2};

/* One command of the round: what the owner had for it, and what it came to. Strings are
 * borrowed from the round's results. */
typedef struct member {
	size_t i; /**< its place in items, also its ordinal in the statements */
	const char *r_hash, *r_reply, *r_detail;
	int r_status;
	bool has_r, has_p, p_same, dni_taken;
	int64_t p_id;
	const char *p_hash;
	/* the outcome: 0 undecided, 201, 409 (dni), -409 (idempotency), or a kept status */
	int status;
	bool has_id, own_row;
	int64_t id;
} member;

typedef struct round {
	pw_writes_item *items;
	member *m;
	size_t n;
	const char *owner, *topic;
	PGresult *prior, *ins;
} round;

static bool same(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static const char *field(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* "?" in each column's template becomes the next parameter ($first, $first+1, ...); the
 * templates' own $1, $2 stay. Gives "head VALUES (...), (...) tail". */
static pw_status build_values(pw_util_buf *sql, const char *head, const char *const *cols,
                              int ncols, size_t nrows, int first, const char *tail)
{
	pw_status st = pw_util_buf_append(sql, head, strlen(head));
	int next = first;

	st = st == PW_OK ? pw_util_buf_append(sql, " VALUES ", 8) : st;
	for (size_t r = 0; st == PW_OK && r < nrows; r++) {
		st = pw_util_buf_append(sql, r ? ", (" : "(", r ? 3 : 1);
		for (int c = 0; st == PW_OK && c < ncols; c++) {
			const char *t = cols[c], *q = strchr(t, '?');
			char num[16];
			if (c > 0)
				st = pw_util_buf_append(sql, ", ", 2);
			if (st == PW_OK && q == NULL) {
				st = pw_util_buf_append(sql, t, strlen(t));
				continue;
			}
			snprintf(num, sizeof(num), "$%d", next++);
			if (st == PW_OK)
				st = pw_util_buf_append(sql, t, (size_t)(q - t));
			if (st == PW_OK)
				st = pw_util_buf_append(sql, num, strlen(num));
			if (st == PW_OK)
				st = pw_util_buf_append(sql, q + 1, strlen(q + 1));
		}
		if (st == PW_OK)
			st = pw_util_buf_append(sql, ")", 1);
	}
	if (st == PW_OK)
		st = pw_util_buf_append(sql, " ", 1);
	return st == PW_OK ? pw_util_buf_append(sql, tail, strlen(tail)) : st;
}

/* Builds the INSERT (build_values) and runs it over vals[0..nvals); res as for
 * pw_db_exec_built. */
static pw_status run_values(pw_db *db, const char *head, const char *const *cols, int ncols,
                            size_t rows, int first, const char *tail, const char *const *vals,
                            size_t nvals, PGresult **res, char *errstr, size_t errstr_size)
{
	pw_util_buf sql = {0};
	pw_status st;

	if (nvals > 65535) { /* the protocol's limit; BATCH_MAX keeps far below it */
		snprintf(errstr, errstr_size, "create run too large for one statement");
		return PW_E_INTERNAL;
	}
	st = build_values(&sql, head, cols, ncols, rows, first, tail);
	if (st == PW_OK)
		st = pw_db_exec_built(db, sql.p, (int)nvals, vals, res, errstr, errstr_size);
	pw_util_buf_free(&sql);
	return st;
}

/* Step 1: the owner's rows for each member. */
static pw_status read_prior(pw_db *db, round *rd, pw_util_buf cols[5], char *errstr,
                            size_t errstr_size)
{
	static const char *const names[] = {"ord",     "r_hash",        "r_status",
	                                    "r_reply", "r_detail",      "p_id",
	                                    "p_hash",  "p_same_record", "dni_taken"};
	enum { ORD, RH, RS, RR, RD, PID, PH, PS, DT, N };
	int col[N];
	pw_status st = PW_OK;

	for (int k = 0; k < 5; k++)
		pw_util_buf_reset(&cols[k]);
	for (size_t k = 0; k < rd->n && st == PW_OK; k++) {
		const pw_writes_item *it = &rd->items[rd->m[k].i];
		char ord[24], part[16], off[24];
		snprintf(ord, sizeof(ord), "%zu", rd->m[k].i);
		snprintf(part, sizeof(part), "%" PRId32, it->src_partition);
		snprintf(off, sizeof(off), "%" PRId64, it->src_offset);
		const char *v[5] = {ord, it->request_id, it->create->dni, part, off};
		for (int c = 0; c < 5 && st == PW_OK; c++)
			st = pw_db_array_add(&cols[c], v[c]);
	}
	for (int c = 0; c < 5 && st == PW_OK; c++)
		st = pw_db_array_close(&cols[c]);
	if (st != PW_OK)
		return st;
	prior_args a = {rd->owner, rd->topic, cols[0].p, cols[1].p,
	                cols[2].p, cols[3].p, cols[4].p};
	st = pw_db_exec(db, &pw_creates_prior_stmt, &a, &rd->prior, errstr, errstr_size);
	if (st != PW_OK)
		return st;
	if (pw_db_columns(rd->prior, names, N, col) != PW_OK ||
	    (size_t)PQntuples(rd->prior) != rd->n)
		return PW_E_INTERNAL;
	/* Rows come in ordinal order, as the members are. */
	for (size_t k = 0; k < rd->n; k++) {
		const PGresult *r = rd->prior;
		int row = (int)k;
		member *m = &rd->m[k];
		if ((size_t)strtoull(PQgetvalue(r, row, col[ORD]), NULL, 10) != m->i)
			return PW_E_INTERNAL;
		/* payload_hash is NOT NULL: a row there is a kept outcome (its status NULL only
		 * inside the transaction that writes it: undecided, as in create_batch.sql). */
		m->r_hash = field(r, row, col[RH]);
		m->has_r = m->r_hash != NULL;
		m->r_status = PQgetisnull(r, row, col[RS]) ? 0 : atoi(PQgetvalue(r, row, col[RS]));
		m->r_reply = field(r, row, col[RR]);
		m->r_detail = field(r, row, col[RD]);
		m->has_p = !PQgetisnull(r, row, col[PID]);
		m->p_id = m->has_p ? strtoll(PQgetvalue(r, row, col[PID]), NULL, 10) : 0;
		m->p_hash = field(r, row, col[PH]);
		m->p_same = same(field(r, row, col[PS]), "t");
		m->dni_taken = same(field(r, row, col[DT]), "t");
	}
	return PW_OK;
}

/* A command answered before: by a kept outcome, else by the patient its request made. */
static void decide_prior(member *m, const pw_writes_item *it)
{
	const char *hash = it->create->payload_hash;

	if (m->has_r) {
		m->status = same(m->r_hash, hash) ? m->r_status : -409;
		m->has_id = m->has_p;
		m->id = m->p_id;
		m->own_row = m->p_same;
	} else if (m->has_p) {
		m->status = same(m->p_hash, hash) ? 201 : -409;
		m->has_id = true;
		m->id = m->p_id;
		m->own_row = m->p_same;
	}
}

/* Step 2: the members nothing answered yet, inserted where neither their request id nor
 * their dni is taken; *any is false when there was none to insert. */
static pw_status insert_new(pw_db *db, round *rd, bool *any, char *errstr, size_t errstr_size)
{
	static const char *const cols[] = {"$1",
	                                   "?",
	                                   "?",
	                                   "?",
	                                   "?::text",
	                                   "?::date",
	                                   "?",
	                                   "?",
	                                   "?::text",
	                                   "$2",
	                                   "?::int",
	                                   "?::bigint",
	                                   "to_timestamp(?::float8)"};
	const size_t per = 11; /* the "?" above */
	const char **vals = calloc(2 + per * rd->n, sizeof(*vals));
	char(*nums)[3][24] = calloc(rd->n ? rd->n : 1, sizeof(*nums));
	size_t nv = 2, rows = 0;
	pw_status st = PW_E_NOMEM;

	*any = false;
	if (vals == NULL || nums == NULL)
		goto out;
	vals[0] = rd->owner;
	vals[1] = rd->topic;
	for (size_t k = 0; k < rd->n; k++) {
		const member *m = &rd->m[k];
		const pw_writes_item *it = &rd->items[m->i];
		const pw_patient_input *in = it->create;
		if (m->status != 0 || m->has_r || m->has_p)
			continue;
		snprintf(nums[rows][0], sizeof(nums[rows][0]), "%" PRId32, it->src_partition);
		snprintf(nums[rows][1], sizeof(nums[rows][1]), "%" PRId64, it->src_offset);
		snprintf(nums[rows][2], sizeof(nums[rows][2]), "%" PRId64, it->command_time);
		const char *v[] = {in->nombre,     in->apellido_paterno, in->apellido_materno,
		                   in->dni,        in->fecha_nacimiento, in->sexo,
		                   it->request_id, in->payload_hash,     nums[rows][0],
		                   nums[rows][1],  nums[rows][2]};
		memcpy(&vals[nv], v, sizeof(v));
		nv += per;
		rows++;
	}
	st = PW_OK;
	if (rows == 0)
		goto out;
	*any = true;
	/* In ordinal order, as create_batch.sql inserts them: ids are given in that order. */
	st =
	    run_values(db,
	               "INSERT INTO patients (owner_id, nombre, apellido_paterno, apellido_materno,"
	               " dni, fecha_nacimiento, sexo, request_id, payload_hash, source_topic,"
	               " source_partition, source_offset, command_time)",
	               cols, 13, rows, 3,
	               "ON CONFLICT DO NOTHING RETURNING id, request_id, payload_hash, dni,"
	               " source_partition, source_offset",
	               vals, nv, &rd->ins, errstr, errstr_size);
out:
	free(vals);
	free(nums);
	return st;
}

/* Step 3 for the members step 2 was for: create_batch.sql's `decided`. */
static void decide_new(round *rd)
{
	const PGresult *r = rd->ins;
	int nrow = r ? PQntuples(r) : 0;

	for (size_t k = 0; k < rd->n; k++) {
		member *m = &rd->m[k];
		const pw_writes_item *it = &rd->items[m->i];
		if (m->status != 0 || m->has_r || m->has_p)
			continue;
		for (int row = 0; row < nrow; row++) {
			if (!same(PQgetvalue(r, row, 1), it->request_id))
				continue;
			m->status =
			    same(PQgetvalue(r, row, 2), it->create->payload_hash) ? 201 : -409;
			m->has_id = true;
			m->id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
			m->own_row = strtol(PQgetvalue(r, row, 4), NULL, 10) == it->src_partition &&
			             strtoll(PQgetvalue(r, row, 5), NULL, 10) == it->src_offset;
			break;
		}
		if (m->status != 0)
			continue;
		bool dni = m->dni_taken;
		for (int row = 0; !dni && row < nrow; row++)
			dni = same(PQgetvalue(r, row, 3), it->create->dni);
		if (dni)
			m->status = 409;
		/* else: a concurrent writer; asked again in the next round */
	}
}

/* Step 4: the 409s' patient_requests rows (one per request id, the first), and the audit
 * rows of the decided members whose patient row is not their audit record. */
static pw_status write_records(pw_db *db, round *rd, char *errstr, size_t errstr_size)
{
	static const char *const rec_cols[] = {"$1", "?", "?", "409"};
	static const char *const aud_cols[] = {"$1",     "?",           "'patient.create'",
	                                       "?::int", "?::bigint[]", "$2",
	                                       "?::int", "?::bigint",   "to_timestamp(?::float8)"};
	const char **vals = calloc(2 + 6 * rd->n, sizeof(*vals));
	char(*nums)[5][32] = calloc(rd->n ? rd->n : 1, sizeof(*nums));
	size_t nv = 2, rows = 0;
	pw_status st = PW_E_NOMEM;

	if (vals == NULL || nums == NULL)
		goto out;
	vals[0] = rd->owner;
	nv = 1; /* the first statement names the owner alone ($1): its values follow it */
	for (size_t k = 0; k < rd->n; k++) {
		const member *m = &rd->m[k];
		const char *req = rd->items[m->i].request_id;
		bool first = true;
		for (size_t j = 0; j < k && first; j++)
			first = !(rd->m[j].status == 409 && !rd->m[j].has_r &&
			          same(rd->items[rd->m[j].i].request_id, req));
		if (m->status == 409 && !m->has_r && first) {
			vals[nv++] = req;
			vals[nv++] = rd->items[m->i].create->payload_hash;
			rows++;
		}
	}
	st = PW_OK;
	if (rows > 0)
		st = run_values(db,
		                "INSERT INTO patient_requests (owner_id, request_id, payload_hash,"
		                " status)",
		                rec_cols, 4, rows, 2, "ON CONFLICT DO NOTHING", vals, nv, NULL,
		                errstr, errstr_size);
	vals[1] = rd->topic;
	nv = 2;
	rows = 0;
	for (size_t k = 0; st == PW_OK && k < rd->n; k++) {
		const member *m = &rd->m[k];
		const pw_writes_item *it = &rd->items[m->i];
		if (m->status == 0 || m->own_row)
			continue;
		snprintf(nums[rows][0], sizeof(nums[rows][0]), "%d", abs(m->status));
		if (m->status != 201)
			snprintf(nums[rows][1], sizeof(nums[rows][1]), "{}");
		else if (m->has_id)
			snprintf(nums[rows][1], sizeof(nums[rows][1]), "{%" PRId64 "}", m->id);
		else
			snprintf(nums[rows][1], sizeof(nums[rows][1]), "{NULL}");
		snprintf(nums[rows][2], sizeof(nums[rows][2]), "%" PRId32, it->src_partition);
		snprintf(nums[rows][3], sizeof(nums[rows][3]), "%" PRId64, it->src_offset);
		snprintf(nums[rows][4], sizeof(nums[rows][4]), "%" PRId64, it->command_time);
		const char *v[] = {it->request_id, nums[rows][0], nums[rows][1],
		                   nums[rows][2],  nums[rows][3], nums[rows][4]};
		memcpy(&vals[nv], v, sizeof(v));
		nv += 6;
		rows++;
	}
	if (st == PW_OK && rows > 0)
		st = run_values(
		    db,
		    "INSERT INTO patient_audit_tenant (owner_id, request_id, command_type,"
		    " status, patient_ids, source_topic, source_partition, source_offset,"
		    " command_time)",
		    aud_cols, 9, rows, 3, "ON CONFLICT DO NOTHING", vals, nv, NULL, errstr,
		    errstr_size);
out:
	free(vals);
	free(nums);
	return st;
}

/* Steps 3 and 5 for the items: each decided member's outcome, with the 201s' patients
 * read in reply form. *decided counts them. */
static pw_status take_outcomes(pw_db *db, round *rd, size_t *decided, char *errstr,
                               size_t errstr_size)
{
	pw_util_buf ids = {0};
	PGresult *r = NULL;
	pw_status st = PW_OK;
	bool want_rows = false;

	for (size_t k = 0; k < rd->n && st == PW_OK; k++) {
		member *m = &rd->m[k];
		pw_writes_item *it = &rd->items[m->i];
		if (m->status == 0)
			continue;
		(*decided)++;
		if (m->status > 0 && m->r_reply != NULL) {
			it->result = PW_WRITES_STORED;
			it->status = m->status;
			if ((it->stored_reply = strdup(m->r_reply)) == NULL)
				st = PW_E_NOMEM;
		} else if (m->status == 201 && m->r_detail != NULL) {
			/* Its patient has changed since: the state the first reply showed. */
			st = pw_writes_take_detail(it, 201, m->r_detail);
		} else if (m->status == 201) {
			char id[24];
			if (!m->has_id) {
				snprintf(errstr, errstr_size, "create outcome not understood");
				st = PW_E_INTERNAL;
				break;
			}
			snprintf(id, sizeof(id), "%" PRId64, m->id);
			st = pw_db_array_add(&ids, id);
			want_rows = true;
			it->result = PW_WRITES_CREATED;
			it->status = 201;
		} else if (m->status == 409 || m->status == -409) {
			it->result =
			    m->status == 409 ? PW_WRITES_CONFLICT : PW_WRITES_IDEMPOTENCY_CONFLICT;
			it->status = 409;
		} else {
			snprintf(errstr, errstr_size, "create outcome %d not understood",
			         m->status);
			st = PW_E_INTERNAL;
		}
	}
	if (st != PW_OK || !want_rows)
		goto out;
	if ((st = pw_db_array_close(&ids)) != PW_OK)
		goto out;
	rows_args a = {rd->owner, ids.p};
	st = pw_db_exec(db, &pw_creates_rows_stmt, &a, &r, errstr, errstr_size);
	for (size_t k = 0; k < rd->n && st == PW_OK; k++) {
		const member *m = &rd->m[k];
		pw_writes_item *it = &rd->items[m->i];
		if (it->result != PW_WRITES_CREATED || it->patient.nombre != NULL)
			continue;
		int row = 0, col = PQfnumber(r, "id");
		while (row < PQntuples(r) && strtoll(PQgetvalue(r, row, col), NULL, 10) != m->id)
			row++;
		if (col < 0 || row == PQntuples(r)) {
			snprintf(errstr, errstr_size, "created patient %" PRId64 " not found",
			         m->id);
			st = PW_E_INTERNAL;
			break;
		}
		st = pw_db_patient(r, row, &it->patient);
	}
out:
	PQclear(r);
	pw_util_buf_free(&ids);
	return st;
}

pw_status pw_creates_routed_run(pw_db *db, pw_writes_item *items, const size_t *idx, size_t n,
                                char *errstr, size_t errstr_size)
{
	member *m = calloc(n ? n : 1, sizeof(*m));
	pw_util_buf cols[5] = {{0}};
	size_t undecided = n;
	pw_status st = m ? PW_OK : PW_E_NOMEM;

	errstr[0] = '\0';
	/* As create_batch.sql: a round leaves a command undecided only when a concurrent
	 * transaction wrote the same request or dni, which the next round sees. */
	for (int pass = 0; st == PW_OK && pass < 3 && undecided > 0; pass++) {
		round rd = {items, m, 0, items[idx[0]].owner, items[idx[0]].src_topic, NULL, NULL};
		size_t decided = 0;
		bool any;
		for (size_t k = 0; k < n; k++)
			if (items[idx[k]].result == PW_WRITES_UNDECIDED)
				m[rd.n++] = (member){.i = idx[k]};
		st = read_prior(db, &rd, cols, errstr, errstr_size);
		for (size_t k = 0; st == PW_OK && k < rd.n; k++)
			decide_prior(&m[k], &items[m[k].i]);
		if (st == PW_OK)
			st = insert_new(db, &rd, &any, errstr, errstr_size);
		if (st == PW_OK && any)
			decide_new(&rd);
		if (st == PW_OK)
			st = write_records(db, &rd, errstr, errstr_size);
		if (st == PW_OK)
			st = take_outcomes(db, &rd, &decided, errstr, errstr_size);
		PQclear(rd.prior);
		PQclear(rd.ins);
		undecided -= decided;
	}
	if (st == PW_E_INTERNAL && errstr[0] == '\0')
		snprintf(errstr, errstr_size, "create outcome not understood");
	if (st == PW_OK && undecided > 0) {
		snprintf(errstr, errstr_size, "%zu creates stayed undecided", undecided);
		st = PW_E_INTERNAL;
	}
	for (int k = 0; k < 5; k++)
		pw_util_buf_free(&cols[k]);
	free(m);
	return st;
}
