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

enum { S_OWNER, S_CREATE, S_GET, S_AUDIT, S_COUNT };

/* The patient as the contract returns it, in SELECT order (see patient_json). */
#define PATIENT_COLS                                                                               \
	"id, nombre, apellido_paterno, apellido_materno, dni, fecha_nacimiento::text, sexo,"       \
	" owner_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static const stmt stmts[S_COUNT] = {
    [S_OWNER] = {"pw_owner", "SELECT set_config('app.owner_id', $1, true)", 1},
    /* Every create of one owner in one statement. Each input row gets its own outcome:
     * a request answered before (a row carrying its request id, or a recorded 409)
     * gets that answer again, or idempotency_conflict (-409 here) for another payload;
     * a new one is inserted (201) or meets this owner's dni (409, recorded so a later
     * different payload under the same request id is still an idempotency conflict).
     * NULL status: not inserted and no visible reason, i.e. a concurrent transaction
     * wrote the same request or dni; the caller asks again in a new statement, which
     * sees it committed (ON CONFLICT waited for it). The audit rows of the decided
     * ones are written here too. $14 is the source topic. */
    [S_CREATE] = {"pw_create",
                  "WITH input AS ("
                  " SELECT * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[],"
                  " $6::text[], $7::text[], $8::text[], $9::date[], $10::text[], $11::int[],"
                  " $12::bigint[], $13::float8[]) AS t(ord, request_id, payload_hash, nombre,"
                  " apellido_paterno, apellido_materno, dni, fecha_nacimiento, sexo,"
                  " src_partition, src_offset, command_time)),"
                  " prior_rec AS (SELECT i.ord, r.payload_hash, r.status, r.reply FROM input i"
                  " JOIN patient_create_requests r ON r.owner_id = $1"
                  " AND r.request_id = i.request_id),"
                  " prior_row AS (SELECT i.ord, p.id, p.payload_hash FROM input i"
                  " JOIN patients p ON p.owner_id = $1 AND p.request_id = i.request_id),"
                  " ins AS (INSERT INTO patients (owner_id, nombre, apellido_paterno,"
                  " apellido_materno, dni, fecha_nacimiento, sexo, request_id, payload_hash,"
                  " source_topic, source_partition, source_offset)"
                  " SELECT $1, i.nombre, i.apellido_paterno, i.apellido_materno, i.dni,"
                  " i.fecha_nacimiento, i.sexo, i.request_id, i.payload_hash, $14,"
                  " i.src_partition, i.src_offset FROM input i"
                  " WHERE NOT EXISTS (SELECT 1 FROM prior_rec x WHERE x.ord = i.ord)"
                  " AND NOT EXISTS (SELECT 1 FROM prior_row x WHERE x.ord = i.ord)"
                  " ORDER BY i.ord ON CONFLICT DO NOTHING"
                  " RETURNING id, request_id, payload_hash, dni, nombre, apellido_paterno,"
                  " apellido_materno, fecha_nacimiento, sexo, created_at),"
                  " decided AS (SELECT i.ord, i.request_id, i.payload_hash, i.src_partition,"
                  " i.src_offset, i.command_time, rc.reply AS stored,"
                  " CASE WHEN rc.ord IS NOT NULL THEN"
                  "  CASE WHEN rc.payload_hash = i.payload_hash THEN rc.status ELSE -409 END"
                  " WHEN pr.ord IS NOT NULL THEN"
                  "  CASE WHEN pr.payload_hash = i.payload_hash THEN 201 ELSE -409 END"
                  " WHEN n.id IS NOT NULL THEN"
                  "  CASE WHEN n.payload_hash = i.payload_hash THEN 201 ELSE -409 END"
                  " WHEN EXISTS (SELECT 1 FROM ins d WHERE d.dni = i.dni)"
                  "  OR EXISTS (SELECT 1 FROM patients p WHERE p.owner_id = $1"
                  "  AND p.dni = i.dni) THEN 409 END AS status,"
                  " coalesce(pr.id, n.id) AS id"
                  " FROM input i LEFT JOIN prior_rec rc ON rc.ord = i.ord"
                  " LEFT JOIN prior_row pr ON pr.ord = i.ord"
                  " LEFT JOIN ins n ON n.request_id = i.request_id),"
                  " rec AS (INSERT INTO patient_create_requests (owner_id, request_id,"
                  " payload_hash, status) SELECT DISTINCT ON (d.request_id) $1, d.request_id,"
                  " d.payload_hash, 409 FROM decided d WHERE d.status = 409"
                  " AND NOT EXISTS (SELECT 1 FROM prior_rec x WHERE x.ord = d.ord)"
                  " ORDER BY d.request_id, d.ord ON CONFLICT DO NOTHING),"
                  " aud AS (INSERT INTO patient_audit (owner_id, request_id, command_type,"
                  " status, patient_ids, source_topic, source_partition, source_offset,"
                  " command_time) SELECT $1, d.request_id, 'patient.create', abs(d.status),"
                  " CASE WHEN d.status = 201 THEN ARRAY[d.id] ELSE '{}'::bigint[] END, $14,"
                  " d.src_partition, d.src_offset, to_timestamp(d.command_time)"
                  " FROM decided d WHERE d.status IS NOT NULL ON CONFLICT DO NOTHING)"
                  " SELECT d.ord, d.status, d.stored, c.id, c.nombre, c.apellido_paterno,"
                  " c.apellido_materno, c.dni, c.fecha_nacimiento::text, c.sexo, $1,"
                  " to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                  " FROM decided d LEFT JOIN (SELECT id, nombre, apellido_paterno,"
                  " apellido_materno, dni, fecha_nacimiento, sexo, created_at FROM ins"
                  " UNION ALL SELECT p.id, p.nombre, p.apellido_paterno, p.apellido_materno,"
                  " p.dni, p.fecha_nacimiento, p.sexo, p.created_at FROM patients p"
                  " WHERE p.owner_id = $1 AND p.id IN (SELECT id FROM prior_row)) c"
                  " ON c.id = d.id AND d.status = 201 ORDER BY d.ord",
                  14},
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
static json_t *patient_json(const PGresult *r, int i, int c)
{
	return json_pack("{s:I, s:s, s:s, s:s?, s:s, s:s, s:s, s:s, s:s}", "id",
	                 (json_int_t)strtoll(PQgetvalue(r, i, c), NULL, 10), "nombre",
	                 PQgetvalue(r, i, c + 1), "apellido_paterno", PQgetvalue(r, i, c + 2),
	                 "apellido_materno",
	                 PQgetisnull(r, i, c + 3) ? NULL : PQgetvalue(r, i, c + 3), "dni",
	                 PQgetvalue(r, i, c + 4), "fecha_nacimiento", PQgetvalue(r, i, c + 5),
	                 "sexo", PQgetvalue(r, i, c + 6), "owner_id", PQgetvalue(r, i, c + 7),
	                 "created_at", PQgetvalue(r, i, c + 8));
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

/* A Postgres array literal, grown as elements are added. */
typedef struct arr {
	char *p;
	size_t n, cap;
	int oom;
} arr;

static void arr_putn(arr *a, const char *s, size_t n)
{
	if (a->oom)
		return;
	if (a->n + n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap : 256;
		while (a->n + n + 2 > cap)
			cap *= 2;
		char *p = realloc(a->p, cap);
		if (p == NULL) {
			a->oom = 1;
			return;
		}
		a->p = p;
		a->cap = cap;
	}
	memcpy(a->p + a->n, s, n);
	a->n += n;
	a->p[a->n] = '\0';
}

/* Appends one element, quoted and escaped; NULL stays NULL. */
static void arr_add(arr *a, const char *v)
{
	arr_putn(a, a->n == 0 ? "{" : ",", 1);
	if (v == NULL) {
		arr_putn(a, "NULL", 4);
		return;
	}
	arr_putn(a, "\"", 1);
	for (const char *c = v; *c; c++) {
		size_t run = strcspn(c, "\"\\");
		arr_putn(a, c, run);
		c += run;
		if (*c == '\0')
			break;
		arr_putn(a, "\\", 1);
		arr_putn(a, c, 1);
	}
	arr_putn(a, "\"", 1);
}

static void arr_close(arr *a)
{
	if (a->n == 0)
		arr_putn(a, "{", 1);
	arr_putn(a, "}", 1);
}

enum {
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

typedef struct sorted {
	const char *owner, *topic;
	size_t idx;
} sorted;

static int by_owner(const void *x, const void *y)
{
	const sorted *a = x, *b = y;
	int c = strcmp(a->owner, b->owner);
	if (c == 0)
		c = strcmp(a->topic, b->topic);
	return c != 0 ? c : (a->idx > b->idx) - (a->idx < b->idx);
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

/* One row of S_CREATE's result: the reply it decides, or 0 when undecided. */
static int create_row_reply(const PGresult *r, int row, const pw_db_item *it, char **reply)
{
	if (PQgetisnull(r, row, 1))
		return 0;
	int status = atoi(PQgetvalue(r, row, 1));
	if (status > 0 && !PQgetisnull(r, row, 2)) {
		*reply = strdup(PQgetvalue(r, row, 2)); /* stored by the one-at-a-time design */
	} else if (status == 201 && !PQgetisnull(r, row, 3)) {
		*reply = data_reply(it->request_id, 201, patient_json(r, row, 3));
	} else if (status == 409) {
		*reply = conflict_reply(it->request_id);
	} else if (status == -409) {
		*reply = pw_reply_error(it->request_id, 409, "idempotency_conflict",
		                        "this request_id was already used with a different payload",
		                        NULL);
		status = 409;
	} else {
		*reply = NULL;
		return -1; /* not an outcome this statement gives */
	}
	return *reply ? status : -1;
}

/* Runs creates in one transaction: per owner, set the owner and run S_CREATE over all
 * of that owner's items. On PW_OK every item has its reply and is done; on failure none
 * is (the transaction rolled back), so a retry of the whole batch answers each item as
 * this one would have. */
static pw_status create_batch(pw_db *db, pw_db_item **its, size_t n, char *errstr,
                              size_t errstr_size)
{
	sorted *ord = calloc(n, sizeof(*ord));
	char **replies = calloc(n, sizeof(*replies));
	int *status = calloc(n, sizeof(*status));
	arr cols[C_N];
	PGresult *r = NULL;
	pw_status st = PW_E_NOMEM;
	size_t undecided = n;

	memset(cols, 0, sizeof(cols));
	if (ord == NULL || replies == NULL || status == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		ord[i] = (sorted){its[i]->owner, its[i]->src_topic, i};
	qsort(ord, n, sizeof(*ord), by_owner);

	/* A generic plan for S_CREATE: its input is arrays, whose values never make another
	 * plan better, while planning the statement anew for each owner (the default for a
	 * statement whose custom plans look cheaper) costs more than running it. Twice the
	 * creates per second with 100 tenants (tests/bench). Local to this transaction: the
	 * list query wants custom plans (its q prefix picks the indexes). */
	st = run(db->conn, "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan", NULL, errstr,
	         errstr_size);
	if (st != PW_OK)
		goto rollback; /* the SET may have failed inside the open transaction */
	for (int round = 0; round < 3 && undecided > 0; round++) {
		for (size_t g = 0; g < n;) {
			size_t end = g;
			while (end < n && strcmp(ord[end].owner, ord[g].owner) == 0 &&
			       strcmp(ord[end].topic, ord[g].topic) == 0)
				end++;
			int members = 0;
			for (size_t k = 0; k < C_N; k++)
				cols[k].n = 0;
			for (size_t m = g; m < end; m++) {
				size_t i = ord[m].idx;
				const pw_db_item *it = its[i];
				char num[3][32];
				if (replies[i] != NULL)
					continue;
				snprintf(num[0], sizeof(num[0]), "%zu", i);
				snprintf(num[1], sizeof(num[1]), "%" PRId32, it->src_partition);
				snprintf(num[2], sizeof(num[2]), "%" PRId64, it->src_offset);
				char t[32];
				snprintf(t, sizeof(t), "%" PRId64, it->command_time);
				arr_add(&cols[C_ORD], num[0]);
				arr_add(&cols[C_REQ], it->request_id);
				arr_add(&cols[C_HASH], it->in->payload_hash);
				arr_add(&cols[C_NOMBRE], it->in->nombre);
				arr_add(&cols[C_AP], it->in->apellido_paterno);
				arr_add(&cols[C_AM], it->in->apellido_materno);
				arr_add(&cols[C_DNI], it->in->dni);
				arr_add(&cols[C_FECHA], it->in->fecha_nacimiento);
				arr_add(&cols[C_SEXO], it->in->sexo);
				arr_add(&cols[C_PART], num[1]);
				arr_add(&cols[C_OFF], num[2]);
				arr_add(&cols[C_TIME], t);
				members++;
			}
			size_t first = g;
			g = end;
			if (members == 0)
				continue;
			const char *owner_p[1] = {ord[first].owner};
			const char *p[14] = {ord[first].owner};
			for (size_t k = 0; k < C_N; k++) {
				arr_close(&cols[k]);
				if (cols[k].oom) {
					st = PW_E_NOMEM;
					goto rollback;
				}
				p[k + 1] = cols[k].p;
			}
			p[13] = ord[first].topic;
			r = exec_prepared(db, S_OWNER, owner_p);
			if (!result_ok(r))
				goto fail;
			PQclear(r);
			r = exec_prepared(db, S_CREATE, p);
			if (!result_ok(r))
				goto fail;
			for (int row = 0; row < PQntuples(r); row++) {
				size_t i = (size_t)strtoull(PQgetvalue(r, row, 0), NULL, 10);
				if (i >= n || replies[i] != NULL)
					continue;
				int s = create_row_reply(r, row, its[i], &replies[i]);
				if (s < 0) {
					st = PW_E_INTERNAL;
					snprintf(errstr, errstr_size,
					         "create outcome not understood");
					goto rollback;
				}
				if (s > 0) {
					status[i] = s;
					undecided--;
				}
			}
			PQclear(r);
			r = NULL;
		}
	}
	if (undecided > 0) {
		/* Three statements in a row saw a conflict with no visible cause: give up
		 * on the batch rather than guess an answer. */
		st = PW_E_INTERNAL;
		snprintf(errstr, errstr_size, "%zu creates stayed undecided", undecided);
		goto rollback;
	}
	st = run(db->conn, "COMMIT", NULL, errstr, errstr_size);
	if (st != PW_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		free(its[i]->reply);
		its[i]->reply = replies[i];
		its[i]->status = status[i];
		its[i]->done = 1;
		replies[i] = NULL;
	}
	goto out;
fail:
	st = classify(db->conn, r);
	snprintf(errstr, errstr_size, "%s", PQerrorMessage(db->conn));
rollback:
	if (PQstatus(db->conn) == CONNECTION_OK)
		PQclear(PQexec(db->conn, "ROLLBACK"));
out:
	PQclear(r);
	for (size_t k = 0; k < C_N; k++)
		free(cols[k].p);
	for (size_t i = 0; replies != NULL && i < n; i++)
		free(replies[i]);
	free(replies);
	free(status);
	free(ord);
	return st;
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
		o->reply = data_reply(it->request_id, 200, patient_json(r, 0, 0));
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
		if (json_array_append_new(items, patient_json(r, i, 0)) != 0)
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
	case PW_DB_CREATE: /* always through create_batch */
		st = PW_E_INTERNAL;
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

/* 500 for one item whose own transaction failed for a reason retrying cannot fix. */
static pw_status answer_internal(pw_db_item *it, const char *why)
{
	pw_log_ctx ctx = PW_LOG_CTX_INIT;
	ctx.request_id = it->request_id;
	ctx.owner = it->owner[0] ? it->owner : NULL;
	PW_LOG_ERROR(&ctx, "%s failed: %s", it->command_type, why);
	/* Answered without an audit row: the transaction that would have held it failed.
	 * The log line above is the trace. */
	free(it->reply);
	it->reply = pw_reply_error(it->request_id, 500, "internal", "internal error", NULL);
	it->status = 500;
	if (it->reply == NULL)
		return PW_E_NOMEM;
	it->done = 1;
	return PW_OK;
}

pw_status pw_db_run(pw_db *db, pw_db_item *items, size_t n, char *errstr, size_t errstr_size)
{
	pw_db_item **creates = NULL;
	size_t nc = 0;
	pw_status st = PW_OK;

	if (!pw_db_connected(db)) {
		snprintf(errstr, errstr_size, "not connected");
		return PW_E_RETRY;
	}
	creates = calloc(n ? n : 1, sizeof(*creates));
	if (creates == NULL)
		return PW_E_NOMEM;
	for (size_t i = 0; i < n; i++)
		if (!items[i].done && items[i].kind == PW_DB_CREATE)
			creates[nc++] = &items[i];
	if (nc > 0) {
		st = create_batch(db, creates, nc, errstr, errstr_size);
		/* A permanent failure of the batch: find the record behind it one by one,
		 * so one bad record does not fail the others. */
		for (size_t i = 0; st == PW_E_INTERNAL && nc > 1 && i < nc; i++) {
			pw_status one = create_batch(db, &creates[i], 1, errstr, errstr_size);
			if (one == PW_E_INTERNAL)
				one = answer_internal(creates[i], errstr);
			if (one != PW_OK) {
				free(creates);
				return one;
			}
			if (i == nc - 1)
				st = PW_OK;
		}
		if (st == PW_E_INTERNAL && nc == 1)
			st = answer_internal(creates[0], errstr);
		if (st != PW_OK) {
			free(creates);
			return st;
		}
	}
	free(creates);
	for (size_t i = 0; i < n; i++) {
		pw_db_item *it = &items[i];
		if (it->done)
			continue;
		st = run_one(db, it, errstr, errstr_size);
		if (st == PW_E_RETRY || st == PW_E_NOMEM)
			return st;
		if (st != PW_OK && (st = answer_internal(it, errstr)) != PW_OK)
			return st;
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
