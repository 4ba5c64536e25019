/* The worker's database session: one connection, switched to DATABASE_ROLE and checked
 * so that row-level security binds it; transactions scoped to one owner at a time; the
 * statements it runs, prepared at every connect, bound by name (pw_sql); errors sorted
 * into "try again later" and "this command failed". Knows no table but what connect checks. */
#ifndef PW_DB_H
#define PW_DB_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "pw_config.h"
#include "pw_patient.h"
#include "pw_sql.h"
#include "pw_status.h"
#include "pw_util.h"

typedef struct pw_db pw_db;

/* Allocates the session for the statements it will run (stmts: n pointers, which must
 * outlive it, as must cfg); compiles them; does not connect. PW_E_INVALID with errstr
 * when a statement does not compile (a bug), PW_E_NOMEM. */
PW_MUST_CHECK pw_status pw_db_create(const pw_config *cfg, const pw_sql_stmt *const *stmts,
                                     size_t n, pw_db **out, char *errstr, size_t errstr_size);
void pw_db_destroy(pw_db *db); /* NULL is fine */

/* The session's application_name from its next connect on (default "patient-worker"), so
 * pg_stat_activity tells the lanes and sessions apart; a URL that sets one wins. */
void pw_db_set_name(pw_db *db, const char *name);

/* Connects (or reconnects), switches to DATABASE_ROLE, checks that the session cannot
 * bypass row-level security and that the schema is there, and prepares the statements.
 * PW_E_RETRY: not reachable now, try later. PW_E_CONFIG: reachable but unusable (role
 * missing, not migrated, RLS bypassed); errstr says which. Blocks up to the connect
 * timeout. */
PW_MUST_CHECK pw_status pw_db_connect(pw_db *db, char *errstr, size_t errstr_size);

/* True when the session is connected (as far as libpq knows). */
bool pw_db_connected(const pw_db *db);

/* Every call below blocks on the server. Failures are PW_E_RETRY (the connection is gone,
 * or the server says try again: serialization, deadlock, shutting down, out of resources)
 * or PW_E_INTERNAL (anything else: a bug, a constraint we did not expect), with errstr
 * filled; after either, the open transaction is aborted and needs pw_db_rollback. */

PW_MUST_CHECK pw_status pw_db_begin(pw_db *db, char *errstr, size_t errstr_size);
PW_MUST_CHECK pw_status pw_db_commit(pw_db *db, char *errstr, size_t errstr_size);
/* A transaction whose commit does not wait for its WAL to reach the disk
 * (synchronous_commit off for it alone), in the one round trip of a BEGIN. Only for one
 * that changes no patient (a query, a refused command: its audit row alone), which a
 * replay of its command topic writes again if a crash of the database server loses it;
 * see README, "Queries under a flood". */
PW_MUST_CHECK pw_status pw_db_begin_unflushed(pw_db *db, char *errstr, size_t errstr_size);
/* Ends the open transaction, if the connection still stands; nothing to report. */
void pw_db_rollback(pw_db *db);

/* The tenant of the open transaction: SET LOCAL app.owner_id, which row-level security
 * compares every row with (on Citus, on the workers too). "" matches no row. */
PW_MUST_CHECK pw_status pw_db_set_owner(pw_db *db, const char *owner, char *errstr,
                                        size_t errstr_size);

/* True when the database is a Citus coordinator (the citus extension is installed), as
 * seen at the last connect: some statements are planned differently there. */
bool pw_db_citus(const pw_db *db);

/* Statements without parameters, e.g. `SET LOCAL ...` (text must be a constant; several,
 * separated by `;`, go in one round trip). */
PW_MUST_CHECK pw_status pw_db_exec_text(pw_db *db, const char *sql, char *errstr,
                                        size_t errstr_size);

/* A statement made at run time (its text depends on the data's shape, e.g. a multi-row
 * VALUES list), sent unprepared with its n parameters ($1..$n, as text; NULL is SQL
 * NULL). On PW_OK *res holds the result, the caller's to PQclear; res NULL: no result
 * wanted (an INSERT's, an UPDATE's). */
PW_MUST_CHECK pw_status pw_db_exec_built(pw_db *db, const char *sql, int n,
                                         const char *const *values, PGresult **res, char *errstr,
                                         size_t errstr_size);

/* Runs s (one of the statements given to pw_db_create) with its parameters read from
 * args (the struct its pw_sql_param rows describe). On PW_OK *res holds the result (rows
 * or none); the caller PQclears it. */
PW_MUST_CHECK pw_status pw_db_exec(pw_db *db, const pw_sql_stmt *s, const void *args,
                                   PGresult **res, char *errstr, size_t errstr_size);

/* Finds columns by name: cols[i] is the number of the column called names[i].
 * PW_E_INTERNAL when one is missing (the statement and its reader disagree). */
PW_MUST_CHECK pw_status pw_db_columns(const PGresult *r, const char *const *names, size_t n,
                                      int *cols);

/* Row `row` of a result that selects the patient columns by their names (id, version,
 * nombre, apellido_paterno, apellido_materno, dni, fecha_nacimiento, sexo, owner_id,
 * created_at, updated_at),
 * copied into *out (free with pw_patient_clear). PW_E_INTERNAL for a missing column,
 * PW_E_NOMEM. */
PW_MUST_CHECK pw_status pw_db_patient(const PGresult *r, int row, pw_patient *out);

/* PostgreSQL array literals, `{"a","b",NULL}`, for statements that take a batch as
 * parallel arrays. Start from an empty buffer; each element is quoted and escaped, NULL
 * stays NULL; close before use (an empty array is `{}`). PW_E_NOMEM past the buffer's
 * limit. */
PW_MUST_CHECK pw_status pw_db_array_add(pw_util_buf *a, const char *v);
PW_MUST_CHECK pw_status pw_db_array_close(pw_util_buf *a);

#endif
