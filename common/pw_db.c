/* The database session: connect and check, transactions, statements bound by name. */
#include "pw_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw_log.h"

/* A statement of the session and its text with $n placeholders. */
typedef struct compiled {
	const pw_sql_stmt *stmt;
	char *text;
	int nparams;
} compiled;

struct pw_db {
	const pw_config *cfg;
	PGconn *conn;
	compiled *stmts;
	size_t nstmts;
	char app_name[64]; /**< application_name: which part of the worker, for operators */
	bool citus;        /**< the database has the citus extension (seen at connect) */
};

pw_status pw_db_create(const pw_config *cfg, const pw_sql_stmt *const *stmts, size_t n, pw_db **out,
                       char *errstr, size_t errstr_size)
{
	pw_db *db = calloc(1, sizeof(*db));
	pw_status st = PW_E_NOMEM;

	*out = NULL;
	if (db == NULL || (db->stmts = calloc(n ? n : 1, sizeof(*db->stmts))) == NULL)
		goto out;
	db->cfg = cfg;
	for (size_t i = 0; i < n; i++) {
		compiled *c = &db->stmts[i];
		c->stmt = stmts[i];
		c->nparams = (int)c->stmt->nparams;
		st = pw_sql_compile(c->stmt, &c->text, errstr, errstr_size);
		if (st != PW_OK)
			goto out;
		db->nstmts++;
	}
	*out = db;
	db = NULL;
	st = PW_OK;
out:
	pw_db_destroy(db);
	return st;
}

void pw_db_destroy(pw_db *db)
{
	if (db == NULL)
		return;
	PQfinish(db->conn);
	for (size_t i = 0; i < db->nstmts; i++)
		free(db->stmts[i].text);
	free(db->stmts);
	free(db);
}

bool pw_db_connected(const pw_db *db)
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

/* The common end of every statement: keep a good result, classify a bad one. */
static pw_status finish(pw_db *db, PGresult *r, PGresult **keep, char *errstr, size_t errstr_size)
{
	ExecStatusType s = PQresultStatus(r);
	pw_status st;

	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
		if (keep != NULL)
			*keep = r;
		else
			PQclear(r);
		return PW_OK;
	}
	st = classify(db->conn, r);
	snprintf(errstr, errstr_size, "%s", PQerrorMessage(db->conn));
	PQclear(r);
	return st;
}

pw_status pw_db_exec_text(pw_db *db, const char *sql, char *errstr, size_t errstr_size)
{
	return finish(db, PQexec(db->conn, sql), NULL, errstr, errstr_size);
}

pw_status pw_db_exec_built(pw_db *db, const char *sql, int n, const char *const *values,
                           PGresult **res, char *errstr, size_t errstr_size)
{
	if (res != NULL)
		*res = NULL;
	return finish(db, PQexecParams(db->conn, sql, n, NULL, values, NULL, NULL, 0), res, errstr,
	              errstr_size);
}

pw_status pw_db_begin(pw_db *db, char *errstr, size_t errstr_size)
{
	return pw_db_exec_text(db, "BEGIN", errstr, errstr_size);
}

pw_status pw_db_begin_unflushed(pw_db *db, char *errstr, size_t errstr_size)
{
	return pw_db_exec_text(db, "BEGIN; SET LOCAL synchronous_commit = off", errstr,
	                       errstr_size);
}

pw_status pw_db_commit(pw_db *db, char *errstr, size_t errstr_size)
{
	return pw_db_exec_text(db, "COMMIT", errstr, errstr_size);
}

void pw_db_rollback(pw_db *db)
{
	if (pw_db_connected(db))
		PQclear(PQexec(db->conn, "ROLLBACK"));
}

static const compiled *find(const pw_db *db, const pw_sql_stmt *s)
{
	for (size_t i = 0; i < db->nstmts; i++)
		if (db->stmts[i].stmt == s)
			return &db->stmts[i];
	return NULL;
}

pw_status pw_db_exec(pw_db *db, const pw_sql_stmt *s, const void *args, PGresult **res,
                     char *errstr, size_t errstr_size)
{
	const compiled *c = find(db, s);
	const char *values[32];
	PGresult *r;

	*res = NULL;
	if (c == NULL || s->nparams > sizeof(values) / sizeof(values[0])) {
		snprintf(errstr, errstr_size, "statement %s was not given to pw_db_create",
		         s->name ? s->name : "(unprepared)");
		return PW_E_INTERNAL;
	}
	pw_sql_bind(s, args, values);
	if (s->name != NULL)
		r = PQexecPrepared(db->conn, s->name, c->nparams, values, NULL, NULL, 0);
	else
		r = PQexecParams(db->conn, c->text, c->nparams, NULL, values, NULL, NULL, 0);
	return finish(db, r, res, errstr, errstr_size);
}

/* SET LOCAL takes no parameter, so the owner goes in as a literal escaped by libpq for
 * this connection's settings. Not set_config(): Citus sends SET LOCAL on to the workers,
 * where row-level security runs (with citus.propagate_set_commands = 'local', which
 * check_role demands), and never a set_config() call. */
pw_status pw_db_set_owner(pw_db *db, const char *owner, char *errstr, size_t errstr_size)
{
	static const char head[] = "SET LOCAL app.owner_id = ";
	char *lit = PQescapeLiteral(db->conn, owner, strlen(owner));
	char *sql = NULL;
	pw_status st = PW_E_NOMEM;

	if (lit == NULL) {
		/* Out of memory, or an owner not valid in the connection's encoding. */
		snprintf(errstr, errstr_size, "owner: %s", PQerrorMessage(db->conn));
		st = PW_E_INTERNAL;
		goto out;
	}
	if ((sql = malloc(sizeof(head) + strlen(lit))) == NULL)
		goto out;
	memcpy(sql, head, sizeof(head) - 1);
	strcpy(sql + sizeof(head) - 1, lit);
	st = pw_db_exec_text(db, sql, errstr, errstr_size);
out:
	PQfreemem(lit);
	free(sql);
	return st;
}

bool pw_db_citus(const pw_db *db)
{
	return db->citus;
}

static void notice_to_log(void *arg, const char *message)
{
	(void)arg;
	PW_LOG_DEBUG(NULL, "postgres: %.*s", (int)strcspn(message, "\n"), message);
}

static pw_status switch_role(pw_db *db, char *errstr, size_t errstr_size)
{
	const char *name = db->cfg->database_role;
	char *role = PQescapeIdentifier(db->conn, name, strlen(name));
	char sql[256];
	pw_status st;

	if (role == NULL)
		return PW_E_NOMEM;
	snprintf(sql, sizeof(sql), "SET ROLE %s", role);
	PQfreemem(role);
	st = pw_db_exec_text(db, sql, errstr, errstr_size);
	return st == PW_OK || st == PW_E_RETRY ? st : PW_E_CONFIG;
}

/* FORCE ROW LEVEL SECURITY binds the table owner too, but an owner could switch it off
 * and a superuser or BYPASSRLS role ignores it: refuse to serve as any of them. On Citus,
 * refuse too when SET LOCAL is not sent on to the workers: there row-level security would
 * see no owner, every read would come back empty and every write refused. */
static pw_status check_role(pw_db *db, char *errstr, size_t errstr_size)
{
	static const char *const names[] = {"super", "bypass", "owns",     "patients",
	                                    "audit", "citus",  "propagate"};
	enum { SUPER, BYPASS, OWNS, PATIENTS, AUDIT, CITUS, PROPAGATE };
	int col[7];
	PGresult *r = NULL;
	pw_status st;

	st = finish(db,
	            PQexec(db->conn,
	                   "SELECT r.rolsuper AS super, r.rolbypassrls AS bypass,"
	                   " coalesce(c.relowner = r.oid, false) AS owns,"
	                   " c.oid IS NOT NULL AS patients,"
	                   " to_regclass('public.patient_audit_refused') IS NOT NULL AS audit,"
	                   " EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS citus,"
	                   " coalesce(current_setting('citus.propagate_set_commands', true), '')"
	                   " AS propagate"
	                   " FROM pg_roles r LEFT JOIN pg_class c"
	                   " ON c.oid = to_regclass('public.patients')"
	                   " WHERE r.rolname = current_user"),
	            &r, errstr, errstr_size);
	if (st != PW_OK)
		return st;
	st = PW_E_CONFIG;
	if (PQntuples(r) != 1 || pw_db_columns(r, names, 7, col) != PW_OK) {
		snprintf(errstr, errstr_size, "DATABASE_ROLE: current role not found");
		goto out;
	}
#define YES(c) (strcmp(PQgetvalue(r, 0, col[c]), "t") == 0)
	if (!YES(PATIENTS) || !YES(AUDIT)) {
		snprintf(errstr, errstr_size,
		         "the schema is missing or old: run `patient-worker migrate` first");
		goto out;
	}
	if (YES(SUPER) || YES(BYPASS) || YES(OWNS)) {
		snprintf(errstr, errstr_size,
		         "DATABASE_ROLE: role '%s' is a superuser, has BYPASSRLS or owns the "
		         "patients table, so row-level security would not bind it",
		         db->cfg->database_role);
		goto out;
	}
	db->citus = YES(CITUS);
	if (db->citus && strcmp(PQgetvalue(r, 0, col[PROPAGATE]), "local") != 0) {
		snprintf(errstr, errstr_size,
		         "citus.propagate_set_commands is '%s', must be 'local' on Citus (the "
		         "tenant setting would not reach the workers): README, Scaling",
		         PQgetvalue(r, 0, col[PROPAGATE]));
		goto out;
	}
#undef YES
	st = PW_OK;
out:
	PQclear(r);
	return st;
}

/* Every named statement, on this connection (prepared statements do not survive it). A
 * statement the server refuses means a schema older than the worker. */
static pw_status prepare_all(pw_db *db, char *errstr, size_t errstr_size)
{
	for (size_t i = 0; i < db->nstmts; i++) {
		const compiled *c = &db->stmts[i];
		char err[512];
		if (c->stmt->name == NULL)
			continue;
		pw_status st =
		    finish(db, PQprepare(db->conn, c->stmt->name, c->text, c->nparams, NULL), NULL,
		           err, sizeof(err));
		if (st != PW_OK) {
			snprintf(errstr, errstr_size, "prepare %s: %s", c->stmt->name, err);
			return st == PW_E_RETRY ? st : PW_E_CONFIG;
		}
	}
	return PW_OK;
}

void pw_db_set_name(pw_db *db, const char *name)
{
	snprintf(db->app_name, sizeof(db->app_name), "%s", name);
}

pw_status pw_db_connect(pw_db *db, char *errstr, size_t errstr_size)
{
	/* Earlier keywords are overridden by what the URL itself says. */
	const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *vals[] = {"3", db->app_name[0] ? db->app_name : "patient-worker",
	                      db->cfg->database_url, NULL};
	pw_status st = PW_E_RETRY;

	PQfinish(db->conn);
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		snprintf(errstr, errstr_size, "cannot connect: %s",
		         db->conn ? PQerrorMessage(db->conn) : "out of memory");
		goto out;
	}
	PQsetNoticeProcessor(db->conn, notice_to_log, NULL);
	st = switch_role(db, errstr, errstr_size);
	if (st == PW_OK)
		st = check_role(db, errstr, errstr_size);
	if (st == PW_OK)
		st = prepare_all(db, errstr, errstr_size);
out:
	if (st != PW_OK && db->conn != NULL) {
		PQfinish(db->conn);
		db->conn = NULL;
	}
	return st;
}

pw_status pw_db_columns(const PGresult *r, const char *const *names, size_t n, int *cols)
{
	for (size_t i = 0; i < n; i++)
		if ((cols[i] = PQfnumber(r, names[i])) < 0)
			return PW_E_INTERNAL;
	return PW_OK;
}

pw_status pw_db_patient(const PGresult *r, int row, pw_patient *out)
{
	static const char *const names[] = {
	    "id",        "version",          "nombre", "apellido_paterno", "apellido_materno",
	    "dni",       "fecha_nacimiento", "sexo",   "owner_id",         "created_at",
	    "updated_at"};
	char **fields[] = {NULL,
	                   NULL,
	                   &out->nombre,
	                   &out->apellido_paterno,
	                   &out->apellido_materno,
	                   &out->dni,
	                   &out->fecha_nacimiento,
	                   &out->sexo,
	                   &out->owner_id,
	                   &out->created_at,
	                   &out->updated_at};
	enum { N = sizeof(names) / sizeof(names[0]) };
	int col[N];

	memset(out, 0, sizeof(*out));
	if (pw_db_columns(r, names, N, col) != PW_OK)
		return PW_E_INTERNAL;
	out->id = strtoll(PQgetvalue(r, row, col[0]), NULL, 10);
	out->version = strtoll(PQgetvalue(r, row, col[1]), NULL, 10);
	for (size_t i = 2; i < N; i++) {
		if (PQgetisnull(r, row, col[i]))
			continue; /* only apellido_materno may be NULL */
		if ((*fields[i] = strdup(PQgetvalue(r, row, col[i]))) == NULL) {
			pw_patient_clear(out);
			return PW_E_NOMEM;
		}
	}
	return PW_OK;
}

pw_status pw_db_array_add(pw_util_buf *a, const char *v)
{
	pw_status st = pw_util_buf_append(a, a->len == 0 ? "{" : ",", 1);

	if (st != PW_OK || v == NULL)
		return st != PW_OK ? st : pw_util_buf_append(a, "NULL", 4);
	st = pw_util_buf_append(a, "\"", 1);
	/* Inside quotes only " and \ need a backslash. */
	for (const char *c = v; st == PW_OK && *c != '\0';) {
		size_t run = strcspn(c, "\"\\");
		st = pw_util_buf_append(a, c, run);
		c += run;
		if (st == PW_OK && *c != '\0') {
			char esc[2] = {'\\', *c++};
			st = pw_util_buf_append(a, esc, 2);
		}
	}
	return st == PW_OK ? pw_util_buf_append(a, "\"", 1) : st;
}

pw_status pw_db_array_close(pw_util_buf *a)
{
	if (a->len == 0 && pw_util_buf_append(a, "{", 1) != PW_OK)
		return PW_E_NOMEM;
	return pw_util_buf_append(a, "}", 1);
}
