#!/bin/bash
# Runs once, when the postgres container initialises an empty data directory (the
# image's /docker-entrypoint-initdb.d hook), as the superuser, before any migrate.
#
# The worker must not log in as the superuser: it SETs ROLE patients_app, and the
# checks in common/pw_db.c only look at that effective role, but a superuser session
# can RESET ROLE at any time, so a compromised or buggy worker would be one statement
# away from every tenant. Here it gets its own login, patient_worker, that is nothing
# but a member of patients_app: no superuser, no BYPASSRLS, owns no table (the tables
# belong to the migrating superuser), and NOINHERIT, so it can touch no table until it
# has switched to patients_app.
#
# patients_app is created here with the attributes migrations/001_roles.sql gives it
# (001 skips an existing role), because the login can only join a role that exists.
# Should the two ever drift apart, the worker's start-up check still refuses a role
# that bypasses row-level security.
#
# Sourced or executed by the entrypoint; so no `exit` and no `set` here.

if [ -z "${WORKER_DB_PASSWORD:-}" ]; then
	echo "10-worker-login.sh: WORKER_DB_PASSWORD is empty; refusing to create a login without a password" >&2
	false
else
	psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
		-v worker_password="$WORKER_DB_PASSWORD" <<'EOSQL'
CREATE ROLE patients_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE ROLE patient_worker LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT
  PASSWORD :'worker_password' IN ROLE patients_app;
EOSQL
fi
