/* `patient-worker migrate`: applies the embedded migrations. */
#include "pw_migrate.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "pw_log.h"

/* Any fixed number: every replica must ask for the same lock. */
#define MIGRATE_LOCK_KEY "7245917731"

static int sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return -1;
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* Runs one statement; on failure copies the server's message into errstr. */
static int exec_ok(PGconn *c, const char *sql, int nparams, const char *const *params, char *errstr,
                   size_t errstr_size, PGresult **keep)
{
	PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType s = PQresultStatus(r);
	int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
	if (!ok)
		snprintf(errstr, errstr_size, "%s", PQerrorMessage(c));
	if (ok && keep != NULL)
		*keep = r;
	else
		PQclear(r);
	return ok;
}

/* One migration, unless it was applied already (then its text must not have changed):
 * the file and its row in pw_schema_migrations in one transaction. *applied tells. */
static pw_status apply_one(PGconn *c, const pw_migration *m, bool *applied, char *errstr,
                           size_t errstr_size)
{
	char sum[65];
	const char *p[2] = {m->name, sum};
	PGresult *r = NULL;

	*applied = false;
	if (sha256_hex(m->sql, m->len, sum) != 0)
		return PW_E_INTERNAL;
	if (!exec_ok(c, "SELECT checksum FROM pw_schema_migrations WHERE name = $1", 1, p, errstr,
	             errstr_size, &r))
		return PW_E_INTERNAL;
	bool known = PQntuples(r) == 1, same = known && strcmp(PQgetvalue(r, 0, 0), sum) == 0;
	if (known && !same)
		snprintf(errstr, errstr_size,
		         "migration %s was changed after it was applied (checksum %.12s... in the "
		         "database, %.12s... now); add a new migration instead of editing an "
		         "applied one",
		         m->name, PQgetvalue(r, 0, 0), sum);
	PQclear(r);
	if (known)
		return same ? PW_OK : PW_E_INVALID;
	if (!exec_ok(c, "BEGIN", 0, NULL, errstr, errstr_size, NULL))
		return PW_E_INTERNAL;
	/* PQexec: a migration file holds several statements. */
	r = PQexec(c, m->sql);
	bool ran = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ran)
		snprintf(errstr, errstr_size, "migration %s failed: %s", m->name,
		         PQerrorMessage(c));
	PQclear(r);
	if (!ran ||
	    !exec_ok(c, "INSERT INTO pw_schema_migrations (name, checksum) VALUES ($1, $2)", 2, p,
	             errstr, errstr_size, NULL) ||
	    !exec_ok(c, "COMMIT", 0, NULL, errstr, errstr_size, NULL)) {
		PQclear(PQexec(c, "ROLLBACK"));
		return PW_E_INTERNAL;
	}
	PW_LOG_INFO(NULL, "migration %s applied", m->name);
	*applied = true;
	return PW_OK;
}

pw_status pw_migrate_run(const char *database_url, int *applied, char *errstr, size_t errstr_size)
{
	const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *vals[] = {"10", "patient-worker-migrate", database_url, NULL};
	pw_status st = PW_E_INTERNAL;
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	bool locked = false;

	*applied = 0;
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		snprintf(errstr, errstr_size, "cannot connect to the database: %s",
		         c ? PQerrorMessage(c) : "out of memory");
		st = PW_E_RETRY;
		goto out;
	}
	if (!exec_ok(c, "SET client_min_messages = warning", 0, NULL, errstr, errstr_size, NULL))
		goto out;
	if (!exec_ok(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL, errstr,
	             errstr_size, NULL))
		goto out;
	locked = true;
	if (!exec_ok(c,
	             "CREATE TABLE IF NOT EXISTS pw_schema_migrations ("
	             " name text PRIMARY KEY, checksum text NOT NULL,"
	             " applied_at timestamptz NOT NULL DEFAULT now())",
	             0, NULL, errstr, errstr_size, NULL))
		goto out;
	st = PW_OK;
	for (size_t i = 0; st == PW_OK && i < pw_migrate_count; i++) {
		bool done;
		st = apply_one(c, &pw_migrate_files[i], &done, errstr, errstr_size);
		*applied += done;
	}
out:
	if (locked && PQstatus(c) == CONNECTION_OK)
		PQclear(PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
	PQfinish(c);
	return st;
}
