#!/bin/sh
# The stand-in's entrypoint (tests/docker/postgres/Containerfile): as root, gives the data
# directory to postgres and runs again as postgres; on an empty directory, initdb with
# the POSTGRES_* settings, the init scripts against a server on its socket only (so TCP
# health checks fail until it is done), then the server on every address.
set -eu
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	# setpriv execs (runuser would stay as the parent and not pass SIGINT on).
	exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$0" "$@"
fi
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	pw=$(mktemp)
	printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" >"$pw"
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of options
	initdb -D "$PGDATA" -U "$user" --pwfile="$pw" --auth-local=trust \
		--auth-host=scram-sha-256 ${POSTGRES_INITDB_ARGS:-}
	rm -f "$pw"
	echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
	pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
	if [ "$db" != postgres ]; then
		psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -c "CREATE DATABASE \"$db\""
	fi
	export POSTGRES_USER="$user" POSTGRES_DB="$db"
	for f in /docker-entrypoint-initdb.d/*; do
		case $f in
		*.sh) if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
		*.sql) psql -v ON_ERROR_STOP=1 -U "$user" -d "$db" -f "$f" ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop
fi
exec "$@" -D "$PGDATA" -c listen_addresses='*'
