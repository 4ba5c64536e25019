/* Database access for the worker: one session, prepared statements, one transaction per
 * create scoped with set_config('app.owner_id', owner, true). */
#include "pw_db.h"

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

enum { S_OWNER, S_CLAIM, S_STORED, S_INSERT, S_RECORD, S_COUNT };

static const stmt stmts[S_COUNT] = {
    [S_OWNER] = {"pw_owner", "SELECT set_config('app.owner_id', $1, true)", 1},
    /* Claiming the request id first serialises two workers handed the same command:
     * the second waits on the key, then reads the first one's stored reply. */
    [S_CLAIM] = {"pw_claim",
                 "INSERT INTO patient_create_requests (owner_id, request_id, payload_hash)"
                 " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
                 3},
    [S_STORED] = {"pw_stored",
                  "SELECT payload_hash, reply FROM patient_create_requests"
                  " WHERE owner_id = $1 AND request_id = $2",
                  2},
    [S_INSERT] = {"pw_insert",
                  "INSERT INTO patients (owner_id, nombre, apellido_paterno, apellido_materno,"
                  " dni, fecha_nacimiento, sexo) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                  " ON CONFLICT (owner_id, dni) DO NOTHING"
                  " RETURNING id, to_char(created_at AT TIME ZONE 'UTC',"
                  " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
                  7},
    [S_RECORD] = {"pw_record",
                  "UPDATE patient_create_requests SET status = $3, reply = $4, patient_id = $5"
                  " WHERE owner_id = $1 AND request_id = $2",
                  5},
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
	         " coalesce(c.relowner = r.oid, false), c.oid IS NOT NULL"
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
	if (strcmp(PQgetvalue(r, 0, 3), "t") != 0) {
		snprintf(errstr, errstr_size,
		         "the patients table does not exist: run `patient-worker migrate` first");
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

static char *patient_reply(const pw_create_item *it, const char *id, const char *created_at)
{
	const pw_patient_input *in = it->in;
	json_t *d =
	    json_pack("{s:I, s:s, s:s, s:s?, s:s, s:s, s:s, s:s, s:s}", "id",
	              (json_int_t)strtoll(id, NULL, 10), "nombre", in->nombre, "apellido_paterno",
	              in->apellido_paterno, "apellido_materno", in->apellido_materno, "dni",
	              in->dni, "fecha_nacimiento", in->fecha_nacimiento, "sexo", in->sexo,
	              "owner_id", it->owner, "created_at", created_at);
	char *s = d ? pw_reply_data(it->request_id, 201, d) : NULL;
	json_decref(d);
	return s;
}

static char *conflict_reply(const char *request_id)
{
	json_t *f = json_pack("{s:s}", "dni", "already registered");
	char *s = f ? pw_reply_error(request_id, 409, "conflict",
	                             "a patient with this dni already exists", f)
	            : NULL;
	json_decref(f);
	return s;
}

/* One create in its own transaction. On PW_OK the item has its reply. */
static pw_status create_one(pw_db *db, pw_create_item *it, char *errstr, size_t errstr_size)
{
	const pw_patient_input *in = it->in;
	pw_status st;
	PGresult *r = NULL;
	char *reply = NULL;
	int status = 0;
	const char *owner_p[1] = {it->owner};
	const char *claim_p[3] = {it->owner, it->request_id, in->payload_hash};

	st = run(db->conn, "BEGIN", NULL, errstr, errstr_size);
	if (st != PW_OK)
		goto out;
	r = exec_prepared(db, S_OWNER, owner_p);
	if (!result_ok(r))
		goto fail;
	PQclear(r);
	r = exec_prepared(db, S_CLAIM, claim_p);
	if (!result_ok(r))
		goto fail;
	if (PQntuples(r) == 0) {
		/* Answered before (committed, since the claim waited for it). */
		PQclear(r);
		r = exec_prepared(db, S_STORED, claim_p);
		if (!result_ok(r) || PQntuples(r) != 1 || PQgetisnull(r, 0, 1))
			goto fail;
		if (strcmp(PQgetvalue(r, 0, 0), in->payload_hash) == 0) {
			reply = strdup(PQgetvalue(r, 0, 1));
			status = 0; /* parsed from the stored reply below */
		} else {
			reply = pw_reply_error(it->request_id, 409, "idempotency_conflict",
			                       "this request_id was already used with a different "
			                       "payload",
			                       NULL);
			status = 409;
		}
		PQclear(r);
		r = NULL;
		if (reply == NULL) {
			st = PW_E_NOMEM;
			goto rollback;
		}
		if (status == 0) {
			json_t *j = json_loads(reply, 0, NULL);
			json_t *s = json_object_get(j, "status");
			status = json_is_integer(s) ? (int)json_integer_value(s) : 500;
			json_decref(j);
		}
		st = run(db->conn, "COMMIT", NULL, errstr, errstr_size);
		if (st != PW_OK)
			goto out;
		goto answered;
	}
	PQclear(r);
	{
		const char *p[7] = {it->owner,
		                    in->nombre,
		                    in->apellido_paterno,
		                    in->apellido_materno,
		                    in->dni,
		                    in->fecha_nacimiento,
		                    in->sexo};
		r = exec_prepared(db, S_INSERT, p);
	}
	if (!result_ok(r))
		goto fail;
	const char *patient_id = NULL;
	if (PQntuples(r) == 1) {
		reply = patient_reply(it, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
		status = 201;
		patient_id = PQgetvalue(r, 0, 0);
	} else {
		reply = conflict_reply(it->request_id);
		status = 409;
	}
	if (reply == NULL) {
		st = PW_E_NOMEM;
		goto rollback;
	}
	{
		char status_s[8];
		snprintf(status_s, sizeof(status_s), "%d", status);
		const char *p[5] = {it->owner, it->request_id, status_s, reply, patient_id};
		PGresult *u = exec_prepared(db, S_RECORD, p);
		int ok = result_ok(u);
		PQclear(r);
		r = u;
		if (!ok)
			goto fail;
	}
	PQclear(r);
	r = NULL;
	st = run(db->conn, "COMMIT", NULL, errstr, errstr_size);
	if (st != PW_OK)
		goto out;
answered:
	it->reply = reply;
	it->status = status;
	reply = NULL;
	st = PW_OK;
	goto out;
fail:
	st = classify(db->conn, r);
	snprintf(errstr, errstr_size, "%s", PQerrorMessage(db->conn));
rollback:
	if (PQstatus(db->conn) == CONNECTION_OK)
		PQclear(PQexec(db->conn, "ROLLBACK"));
out:
	PQclear(r);
	free(reply);
	return st;
}

pw_status pw_db_create_batch(pw_db *db, pw_create_item *items, size_t n, char *errstr,
                             size_t errstr_size)
{
	if (!pw_db_connected(db)) {
		snprintf(errstr, errstr_size, "not connected");
		return PW_E_RETRY;
	}
	for (size_t i = 0; i < n; i++) {
		pw_create_item *it = &items[i];
		if (it->reply != NULL)
			continue;
		pw_status st = create_one(db, it, errstr, errstr_size);
		if (st == PW_E_RETRY)
			return st;
		if (st != PW_OK) {
			pw_log_ctx ctx = PW_LOG_CTX_INIT;
			ctx.request_id = it->request_id;
			ctx.owner = it->owner;
			PW_LOG_ERROR(&ctx, "create failed: %s", errstr);
			it->reply =
			    pw_reply_error(it->request_id, 500, "internal", "internal error", NULL);
			it->status = 500;
			if (it->reply == NULL)
				return PW_E_NOMEM;
		}
	}
	return PW_OK;
}

void pw_db_items_clear(pw_create_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].reply);
		items[i].reply = NULL;
		items[i].status = 0;
	}
}
