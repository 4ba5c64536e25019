/* Database access for the worker: one session, prepared statements, one transaction per
 * command scoped with set_config('app.owner_id', owner, true), and its audit row. */
#include "pw_db.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "pw_log.h"
#include "pw_reply.h"

struct pw_db {
	const pw_config *cfg;
	PGconn *conn;
};

typedef struct stmt {
	const char *name;
	const char *sql;
	int nparams;
} stmt;

enum { S_OWNER, S_CLAIM, S_STORED, S_INSERT, S_RECORD, S_GET, S_AUDIT, S_COUNT };

/* The patient as the contract returns it, in SELECT order (see patient_json). */
#define PATIENT_COLS                                                                               \
	"id, nombre, apellido_paterno, apellido_materno, dni, fecha_nacimiento::text, sexo,"       \
	" owner_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static const stmt stmts[S_COUNT] = {
    [S_OWNER] = {"pw_owner", "SELECT set_config('app.owner_id', $1, true)", 1},
    /* Claiming the request id first serialises two workers handed the same command:
     * the second waits on the key, then reads the first one's stored reply. */
    [S_CLAIM] = {"pw_claim",
                 "INSERT INTO patient_create_requests (owner_id, request_id, payload_hash)"
                 " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
                 3},
    [S_STORED] = {"pw_stored",
                  "SELECT payload_hash, reply, status, patient_id FROM patient_create_requests"
                  " WHERE owner_id = $1 AND request_id = $2",
                  2},
    [S_INSERT] = {"pw_insert",
                  "INSERT INTO patients (owner_id, nombre, apellido_paterno, apellido_materno,"
                  " dni, fecha_nacimiento, sexo, request_id, source_topic, source_partition,"
                  " source_offset) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                  " ON CONFLICT (owner_id, dni) DO NOTHING RETURNING " PATIENT_COLS,
                  11},
    [S_RECORD] = {"pw_record",
                  "UPDATE patient_create_requests SET status = $3, reply = $4, patient_id = $5"
                  " WHERE owner_id = $1 AND request_id = $2",
                  5},
    [S_GET] = {"pw_get", "SELECT " PATIENT_COLS " FROM patients WHERE owner_id = $1 AND id = $2",
               2},
    [S_AUDIT] = {"pw_audit",
                 "INSERT INTO patient_audit (owner_id, request_id, command_type, status,"
                 " patient_ids, source_topic, source_partition, source_offset, command_time)"
                 " VALUES (nullif($1, ''), $2, $3, $4, $5, $6, $7, $8, to_timestamp($9))"
                 " ON CONFLICT DO NOTHING",
                 9},
};

pw_status pw_db_create(const pw_config *cfg, pw_db **out)
{
	pw_db *db = calloc(1, sizeof(*db));
	*out = NULL;
	if (db == NULL)
		return PW_E_NOMEM;
	db->cfg = cfg;
	*out = db;
	return PW_OK;
}

void pw_db_destroy(pw_db *db)
{
	if (db == NULL)
		return;
	PQfinish(db->conn);
	free(db);
}

int pw_db_connected(const pw_db *db)
{
	return db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK;
}

struct pg_conn *pw_db_conn(pw_db *db)
{
	return db->conn;
}

/* Transient: the connection is gone, or the server says try again (serialization,
 * deadlock, shutting down, out of resources). Everything else is a bug or a schema
 * problem, answered 500 for this command only. */
static pw_status classify(PGconn *c, const PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (PQstatus(c) != CONNECTION_OK || state == NULL)
		return PW_E_RETRY;
	if (strncmp(state, "08", 2) == 0 || strcmp(state, "40001") == 0 ||
	    strcmp(state, "40P01") == 0 || strncmp(state, "57P", 3) == 0 ||
	    strncmp(state, "53", 2) == 0)
		return PW_E_RETRY;
	return PW_E_INTERNAL;
}

static void notice_to_log(void *arg, const char *message)
{
	(void)arg;
	PW_LOG_DEBUG(NULL, "postgres: %.*s", (int)strcspn(message, "\n"), message);
}

/* Runs a statement that must succeed; on failure fills errstr and classifies. */
static pw_status run(PGconn *c, const char *sql, PGresult **keep, char *errstr, size_t errstr_size)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType s = PQresultStatus(r);
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
		if (keep)
			*keep = r;
		else
			PQclear(r);
		return PW_OK;
	}
	pw_status st = classify(c, r);
	snprintf(errstr, errstr_size, "%s", PQerrorMessage(c));
	PQclear(r);
	return st;
}

pw_status pw_db_connect(pw_db *db, char *errstr, size_t errstr_size)
{
	/* Earlier keywords are overridden by what the URL itself says. */
	const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *vals[] = {"3", "patient-worker", db->cfg->database_url, NULL};
	pw_status st = PW_E_RETRY;
	PGresult *r = NULL;
	char *role = NULL;
	char sql[256];

	PQfinish(db->conn);
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		snprintf(errstr, errstr_size, "cannot connect: %s",
		         db->conn ? PQerrorMessage(db->conn) : "out of memory");
		goto out;
	}
	PQsetNoticeProcessor(db->conn, notice_to_log, NULL);
	role = PQescapeIdentifier(db->conn, db->cfg->database_role, strlen(db->cfg->database_role));
	if (role == NULL) {
		st = PW_E_NOMEM;
		goto out;
	}
	snprintf(sql, sizeof(sql), "SET ROLE %s", role);
	st = run(db->conn, sql, NULL, errstr, errstr_size);
	if (st != PW_OK) {
		if (st != PW_E_RETRY)
			st = PW_E_CONFIG;
		goto out;
	}
	/* FORCE ROW LEVEL SECURITY binds the owner too, but an owner could switch it off
	 * and a superuser or BYPASSRLS role ignores it: refuse to serve as any of them. */
	st = run(db->conn,
	         "SELECT r.rolsuper, r.rolbypassrls,"
	         " coalesce(c.relowner = r.oid, false), c.oid IS NOT NULL,"
	         " to_regclass('public.patient_audit') IS NOT NULL"
	         " FROM pg_roles r LEFT JOIN pg_class c ON c.oid = to_regclass('public.patients')"
	         " WHERE r.rolname = current_user",
	         &r, errstr, errstr_size);
	if (st != PW_OK)
		goto out;
	st = PW_E_CONFIG;
	if (PQntuples(r) != 1) {
		snprintf(errstr, errstr_size, "DATABASE_ROLE: current role not found");
		goto out;
	}
	if (strcmp(PQgetvalue(r, 0, 3), "t") != 0 || strcmp(PQgetvalue(r, 0, 4), "t") != 0) {
		snprintf(errstr, errstr_size,
		         "the schema is missing or old: run `patient-worker migrate` first");
		goto out;
	}
	if (strcmp(PQgetvalue(r, 0, 0), "t") == 0 || strcmp(PQgetvalue(r, 0, 1), "t") == 0 ||
	    strcmp(PQgetvalue(r, 0, 2), "t") == 0) {
		snprintf(errstr, errstr_size,
		         "DATABASE_ROLE: role '%s' is a superuser, has BYPASSRLS or owns the "
		         "patients table, so row-level security would not bind it",
		         db->cfg->database_role);
		goto out;
	}
	PQclear(r);
	r = NULL;
	for (int i = 0; i < S_COUNT; i++) {
		r = PQprepare(db->conn, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			st = classify(db->conn, r);
			if (st != PW_E_RETRY)
				st = PW_E_CONFIG;
			snprintf(errstr, errstr_size, "prepare %s: %s", stmts[i].name,
			         PQerrorMessage(db->conn));
			goto out;
		}
		PQclear(r);
		r = NULL;
	}
	st = PW_OK;
out:
	PQclear(r);
	PQfreemem(role);
	if (st != PW_OK && db->conn != NULL) {
		PQfinish(db->conn);
		db->conn = NULL;
	}
	return st;
}

static PGresult *exec_prepared(pw_db *db, int s, const char *const *params)
{
	return PQexecPrepared(db->conn, stmts[s].name, stmts[s].nparams, params, NULL, NULL, 0);
}

static int result_ok(const PGresult *r)
{
	ExecStatusType s = PQresultStatus(r);
	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

/* Row i of a result selected with PATIENT_COLS, as the contract's patient object. */
static json_t *patient_json(const PGresult *r, int i)
{
	return json_pack("{s:I, s:s, s:s, s:s?, s:s, s:s, s:s, s:s, s:s}", "id",
	                 (json_int_t)strtoll(PQgetvalue(r, i, 0), NULL, 10), "nombre",
	                 PQgetvalue(r, i, 1), "apellido_paterno", PQgetvalue(r, i, 2),
	                 "apellido_materno", PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3),
	                 "dni", PQgetvalue(r, i, 4), "fecha_nacimiento", PQgetvalue(r, i, 5),
	                 "sexo", PQgetvalue(r, i, 6), "owner_id", PQgetvalue(r, i, 7), "created_at",
	                 PQgetvalue(r, i, 8));
}

static char *data_reply(const char *request_id, int status, json_t *data)
{
	char *s = data ? pw_reply_data(request_id, status, data) : NULL;
	json_decref(data);
	return s;
}

/* What a command did, for its audit row and its reply. */
typedef struct outcome {
	int status;
	char *reply;
	char ids[4096]; /**< patient ids as a Postgres array literal, "{1,2}" */
} outcome;

static void ids_add(outcome *o, const char *id)
{
	size_t n = strlen(o->ids);
	if (n == 0)
		n = (size_t)snprintf(o->ids, sizeof(o->ids), "{");
	else
		o->ids[n - 1] = ','; /* replace the closing brace */
	snprintf(o->ids + n, sizeof(o->ids) - n, "%s}", id);
}

/* The create's work. PW_OK with o filled, or a failure with the result in *fail. */
static pw_status do_create(pw_db *db, const pw_db_item *it, outcome *o, PGresult **fail)
{
	const pw_patient_input *in = it->in;
	const char *claim_p[3] = {it->owner, it->request_id, in->payload_hash};
	PGresult *r = exec_prepared(db, S_CLAIM, claim_p);

	if (!result_ok(r))
		goto fail;
	if (PQntuples(r) == 0) {
		/* Answered before (committed, since the claim waited for it). */
		PQclear(r);
		r = exec_prepared(db, S_STORED, claim_p);
		if (!result_ok(r) || PQntuples(r) != 1 || PQgetisnull(r, 0, 1))
			goto fail;
		if (strcmp(PQgetvalue(r, 0, 0), in->payload_hash) == 0) {
			o->reply = strdup(PQgetvalue(r, 0, 1));
			o->status = atoi(PQgetvalue(r, 0, 2));
			if (!PQgetisnull(r, 0, 3))
				ids_add(o, PQgetvalue(r, 0, 3));
		} else {
			o->reply = pw_reply_error(it->request_id, 409, "idempotency_conflict",
			                          "this request_id was already used with a "
			                          "different payload",
			                          NULL);
			o->status = 409;
		}
		PQclear(r);
		return o->reply ? PW_OK : PW_E_NOMEM;
	}
	PQclear(r);

	char part[16], off[24];
	snprintf(part, sizeof(part), "%" PRId32, it->src_partition);
	snprintf(off, sizeof(off), "%" PRId64, it->src_offset);
	const char *p[11] = {it->owner,
	                     in->nombre,
	                     in->apellido_paterno,
	                     in->apellido_materno,
	                     in->dni,
	                     in->fecha_nacimiento,
	                     in->sexo,
	                     it->request_id,
	                     it->src_topic,
	                     part,
	                     off};
	r = exec_prepared(db, S_INSERT, p);
	if (!result_ok(r))
		goto fail;
	const char *patient_id = NULL;
	if (PQntuples(r) == 1) {
		o->status = 201;
		o->reply = data_reply(it->request_id, 201, patient_json(r, 0));
		patient_id = PQgetvalue(r, 0, 0);
		ids_add(o, patient_id);
	} else {
		json_t *f = json_pack("{s:s}", "dni", "already registered");
		o->status = 409;
		o->reply = f ? pw_reply_error(it->request_id, 409, "conflict",
		                              "a patient with this dni already exists", f)
		             : NULL;
		json_decref(f);
	}
	if (o->reply == NULL) {
		PQclear(r);
		return PW_E_NOMEM;
	}
	char status_s[8];
	snprintf(status_s, sizeof(status_s), "%d", o->status);
	const char *rp[5] = {it->owner, it->request_id, status_s, o->reply, patient_id};
	PGresult *u = exec_prepared(db, S_RECORD, rp);
	PQclear(r);
	r = u;
	if (!result_ok(r))
		goto fail;
	PQclear(r);
	return PW_OK;
fail:
	*fail = r;
	return PW_E_INTERNAL;
}

static pw_status do_get(pw_db *db, const pw_db_item *it, outcome *o, PGresult **fail)
{
	char id[24];
	snprintf(id, sizeof(id), "%" PRId64, it->query->id);
	const char *p[2] = {it->owner, id};
	PGresult *r = exec_prepared(db, S_GET, p);

	if (!result_ok(r)) {
		*fail = r;
		return PW_E_INTERNAL;
	}
	if (PQntuples(r) == 1) {
		o->status = 200;
		o->reply = data_reply(it->request_id, 200, patient_json(r, 0));
		ids_add(o, PQgetvalue(r, 0, 0));
	} else {
		/* The same answer whether another owner has this id or nobody does. */
		o->status = 404;
		o->reply =
		    pw_reply_error(it->request_id, 404, "not_found", "no such patient", NULL);
	}
	PQclear(r);
	return o->reply ? PW_OK : PW_E_NOMEM;
}

/* LIKE pattern for a literal prefix: escape the escape character, % and _. */
static char *prefix_pattern(const char *q)
{
	char *out = malloc(2 * strlen(q) + 2);
	char *w = out;
	if (out == NULL)
		return NULL;
	for (const char *p = q; *p; p++) {
		if (*p == '\\' || *p == '%' || *p == '_')
			*w++ = '\\';
		*w++ = *p;
	}
	*w++ = '%';
	*w = '\0';
	return out;
}

static pw_status do_list(pw_db *db, const pw_db_item *it, outcome *o, PGresult **fail)
{
	const pw_query *q = it->query;
	char sql[1024], after[24], limit[16];
	const char *p[4] = {it->owner, after, NULL, NULL};
	int n = 2;
	char *pattern = NULL;
	json_t *items = NULL, *data = NULL;
	PGresult *r = NULL;
	pw_status st = PW_E_NOMEM;

	snprintf(after, sizeof(after), "%" PRId64, q->after_id);
	/* One more row than asked tells whether there is a next page. */
	snprintf(limit, sizeof(limit), "%d", q->limit + 1);
	int w = snprintf(sql, sizeof(sql),
	                 "SELECT " PATIENT_COLS " FROM patients WHERE owner_id = $1 AND id > $2");
	if (q->has_dni) {
		p[n++] = q->dni;
		w += snprintf(sql + w, sizeof(sql) - (size_t)w, " AND dni = $%d", n);
	}
	if (q->q != NULL) {
		if ((pattern = prefix_pattern(q->q)) == NULL)
			goto out;
		p[n++] = pattern;
		/* The expressions match the prefix indexes of migration 003. */
		w += snprintf(sql + w, sizeof(sql) - (size_t)w,
		              " AND (lower(nombre) LIKE lower($%d) OR lower(apellido_paterno)"
		              " LIKE lower($%d) OR lower(apellido_materno) LIKE lower($%d))",
		              n, n, n);
	}
	snprintf(sql + w, sizeof(sql) - (size_t)w, " ORDER BY id LIMIT %s", limit);
	/* Unnamed, not prepared: planned with the values, so the LIKE prefix becomes an
	 * index range (a generic plan could not know the prefix). */
	r = PQexecParams(db->conn, sql, n, NULL, p, NULL, NULL, 0);
	if (!result_ok(r)) {
		*fail = r;
		r = NULL;
		st = PW_E_INTERNAL;
		goto out;
	}
	int rows = PQntuples(r);
	int shown = rows > q->limit ? q->limit : rows;
	if ((items = json_array()) == NULL)
		goto out;
	for (int i = 0; i < shown; i++) {
		if (json_array_append_new(items, patient_json(r, i)) != 0)
			goto out;
		ids_add(o, PQgetvalue(r, i, 0));
	}
	json_t *next = json_null();
	if (rows > q->limit) {
		char cursor[PW_CURSOR_LEN + 1];
		if (pw_cursor_encode(it->cursor_key, it->owner, q->has_dni ? q->dni : NULL, q->q,
		                     strtoll(PQgetvalue(r, shown - 1, 0), NULL, 10), cursor,
		                     sizeof(cursor)) != PW_OK)
			goto out;
		next = json_string(cursor);
	}
	data = json_pack("{s:O, s:o}", "items", items, "next_cursor", next);
	o->status = 200;
	o->reply = data_reply(it->request_id, 200, data);
	data = NULL;
	st = o->reply ? PW_OK : PW_E_NOMEM;
out:
	json_decref(items);
	json_decref(data);
	PQclear(r);
	free(pattern);
	return st;
}

/* One command in its own transaction, with its audit row. On PW_OK the item is done. */
static pw_status run_one(pw_db *db, pw_db_item *it, char *errstr, size_t errstr_size)
{
	outcome o = {0};
	PGresult *fail = NULL;
	pw_status st;
	const char *owner_p[1] = {it->owner};

	st = run(db->conn, "BEGIN", NULL, errstr, errstr_size);
	if (st != PW_OK)
		return st;
	PGresult *r = exec_prepared(db, S_OWNER, owner_p);
	if (!result_ok(r)) {
		fail = r;
		st = PW_E_INTERNAL;
		goto failed;
	}
	PQclear(r);
	switch (it->kind) {
	case PW_DB_CREATE:
		st = do_create(db, it, &o, &fail);
		break;
	case PW_DB_GET:
		st = do_get(db, it, &o, &fail);
		break;
	case PW_DB_LIST:
		st = do_list(db, it, &o, &fail);
		break;
	case PW_DB_AUDIT_ONLY:
		o.status = it->status;
		st = PW_OK;
		break;
	}
	if (st != PW_OK)
		goto failed;
	{
		char status_s[8], part[16], off[24], t[24];
		snprintf(status_s, sizeof(status_s), "%d", o.status);
		snprintf(part, sizeof(part), "%" PRId32, it->src_partition);
		snprintf(off, sizeof(off), "%" PRId64, it->src_offset);
		snprintf(t, sizeof(t), "%" PRId64, it->command_time);
		const char *p[9] = {it->owner,
		                    it->request_id,
		                    it->command_type,
		                    status_s,
		                    o.ids[0] ? o.ids : "{}",
		                    it->src_topic,
		                    part,
		                    off,
		                    t};
		r = exec_prepared(db, S_AUDIT, p);
		if (!result_ok(r)) {
			fail = r;
			st = PW_E_INTERNAL;
			goto failed;
		}
		PQclear(r);
	}
	st = run(db->conn, "COMMIT", NULL, errstr, errstr_size);
	if (st != PW_OK)
		goto out;
	if (it->kind != PW_DB_AUDIT_ONLY) {
		it->reply = o.reply;
		it->status = o.status;
		o.reply = NULL;
	}
	it->done = 1;
	goto out;
failed:
	if (fail != NULL || st == PW_E_INTERNAL) {
		st = classify(db->conn, fail);
		snprintf(errstr, errstr_size, "%s", PQerrorMessage(db->conn));
	}
	PQclear(fail);
	if (PQstatus(db->conn) == CONNECTION_OK)
		PQclear(PQexec(db->conn, "ROLLBACK"));
out:
	free(o.reply);
	return st;
}

pw_status pw_db_run(pw_db *db, pw_db_item *items, size_t n, char *errstr, size_t errstr_size)
{
	if (!pw_db_connected(db)) {
		snprintf(errstr, errstr_size, "not connected");
		return PW_E_RETRY;
	}
	for (size_t i = 0; i < n; i++) {
		pw_db_item *it = &items[i];
		if (it->done)
			continue;
		pw_status st = run_one(db, it, errstr, errstr_size);
		if (st == PW_E_RETRY)
			return st;
		if (st == PW_E_NOMEM)
			return st;
		if (st != PW_OK) {
			pw_log_ctx ctx = PW_LOG_CTX_INIT;
			ctx.request_id = it->request_id;
			ctx.owner = it->owner[0] ? it->owner : NULL;
			PW_LOG_ERROR(&ctx, "%s failed: %s", it->command_type, errstr);
			/* Answered without an audit row: the transaction that would have
			 * held it failed. The log line above is the trace. */
			free(it->reply);
			it->reply =
			    pw_reply_error(it->request_id, 500, "internal", "internal error", NULL);
			it->status = 500;
			if (it->reply == NULL)
				return PW_E_NOMEM;
			it->done = 1;
		}
	}
	return PW_OK;
}

void pw_db_items_clear(pw_db_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].reply);
		items[i].reply = NULL;
		items[i].status = 0;
		items[i].done = 0;
	}
}
