#!/usr/bin/env bash
# What a create writes (issue 14, item 1): prints one figure per line, "name value".
# Asserts nothing.
#   tests/bench/write_cost.sh [--items N]     (default 50000)
#
# Each measurement runs the worker's own database path for creates (pw_bulk equivalent:
# pw_command_run, 500 creates per call over 100 tenants, no Kafka, no tokens) against a
# database of its own, freshly migrated, after a CHECKPOINT, on the PostgreSQL in
# DATABASE_URL (a superuser's URL: it creates and drops databases). Figures:
#   all_*                       the schema as the migrations make it
#   without_INDEX_*             the same with one secondary index dropped (the unique
#                               keys stay: the creates' ON CONFLICT needs them)
#   *_creates_per_s             database path throughput
#   *_wal_bytes_per_create      WAL written per create (the server's, nothing else runs)
#   *_stmt_us_per_create        the create statement's execution time per create, and
#   *_stmt_wal_bytes_per_create its WAL (pg_stat_statements; when the server preloads it,
#                               as scripts/stack.sh's does), beside
#   *_other_us_per_create       every other statement's (set_config, SET LOCAL, COMMIT)
#   index_bytes_per_create_NAME the index's size after the run of all_, per create
#   heap_bytes_per_create_TABLE the table's heap, per create
#   wal_RECORD_bytes_per_create the run of all_'s WAL by record type (pg_waldump
#                               --stats=record, with full-page images), when PW_PG_BIN and
#                               PW_PG_DATA name the server's (a stack.sh stack)
# The WAL and time an index costs a create are all_ minus without_.
set -eu
set -o pipefail
cd "$(dirname "$0")/../.."
BUILD=${PW_BUILD_DIR:-build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac

items=50000
while [ $# -gt 0 ]; do
	case $1 in
	--items)
		[ $# -ge 2 ] || { echo "--items needs a number" >&2; exit 2; }
		items=$2
		shift 2
		;;
	-h | --help)
		sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2
		exit 0
		;;
	*)
		echo "unknown option $1 (try --help)" >&2
		exit 2
		;;
	esac
done
case $items in '' | *[!0-9]* | 0)
	echo "--items: a positive number, not '$items'" >&2
	exit 2
	;;
esac
: "${DATABASE_URL:?DATABASE_URL: the PostgreSQL to measure on (eval \"\$(scripts/stack.sh env)\")}"

say() { printf 'write_cost: %s\n' "$*" >&2; }
say "building ($BUILD)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target patient-worker pw_bulk >/dev/null

base=${DATABASE_URL%/*}
db=pw_write_cost_$$
trap 'psql -X -q "$base/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
q() { psql -X -q -v ON_ERROR_STOP=1 -tA "$base/$db" "$@"; }

# A fresh database with the migrations, less index $1 (none when empty); then the run.
measure() {
	local label=$1 drop=${2:-} out
	psql -X -q -v ON_ERROR_STOP=1 "$base/postgres" -c "DROP DATABASE IF EXISTS $db" \
		-c "CREATE DATABASE $db" >/dev/null
	DATABASE_URL=$base/$db "$BUILD/patient-worker" migrate >/dev/null 2>&1 ||
		{ say "migrate failed"; exit 1; }
	[ -z "$drop" ] || q -c "DROP INDEX $drop"
	[ $pgss = 0 ] || q -c "CREATE EXTENSION pg_stat_statements" -c "SELECT pg_stat_statements_reset()" >/dev/null
	q -c "CHECKPOINT"
	lsn0=$(q -c "SELECT pg_current_wal_lsn()")
	out=$(DATABASE_URL=$base/$db "$BUILD/tests/pw_bulk" equivalent --items "$items" \
		--run "wc$$" --tenants 100)
	lsn1=$(q -c "SELECT pg_current_wal_lsn()")
	echo "${label}_creates_per_s $(echo "$out" | sed -n 's/^raw_equivalent_per_s //p')"
	echo "${label}_wal_bytes_per_create $(echo "$out" | sed -n 's/^raw_equivalent_wal_bytes_per_create //p')"
	[ "$(echo "$out" | sed -n 's/^raw_equivalent_201 //p')" = "$items" ] ||
		say "WARNING: not every create was a 201 in $label"
	[ $pgss = 0 ] || q -c "
		SELECT '${label}_stmt_us_per_create ' || round((sum(total_exec_time) FILTER (WHERE c))::numeric * 1000 / $items, 1)
		    || E'\n${label}_stmt_wal_bytes_per_create ' || round((sum(wal_bytes) FILTER (WHERE c)) / $items)
		    || E'\n${label}_other_us_per_create ' || round((sum(total_exec_time) FILTER (WHERE NOT c))::numeric * 1000 / $items, 1)
		FROM (SELECT s.*, s.query LIKE '%INSERT INTO patients (owner_id%' AS c
		      FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		      WHERE d.datname = current_database()
		        AND s.query NOT LIKE '%pg_stat_statements%'
		        AND s.query NOT LIKE '%pg_current_wal_lsn%') x"
}

# The WAL of the last run by record type, per create (pg_waldump reads the server's files).
wal_by_record() {
	"$PW_PG_BIN/pg_waldump" --stats=record -p "$PW_PG_DATA/pg_wal" -s "$lsn0" -e "$lsn1" 2>/dev/null |
		awk -v n="$items" '
			$1 ~ /\// { gsub(/\([^)]*\)/, ""); split($0, f, " ");
			             t = f[1]; gsub(/\//, "_", t); fpi += f[4];
			             if (f[5] / n >= 5) printf "wal_%s_bytes_per_create %.0f\n", t, f[5] / n }
			END { printf "wal_full_page_images_bytes_per_create %.0f\n", fpi / n }'
}

pgss=0
if psql -X -qtA "$base/postgres" -c "SHOW shared_preload_libraries" | grep -qw pg_stat_statements; then
	pgss=1
else
	say "the server does not preload pg_stat_statements: no per-statement figures"
fi
echo "items $items"
measure all
if [ -n "${PW_PG_BIN:-}" ] && [ -d "${PW_PG_DATA:-/nonexistent}/pg_wal" ]; then
	wal_by_record
else
	say "PW_PG_BIN/PW_PG_DATA not set (not a stack.sh server): no WAL by record type"
fi
# Sizes after the full schema's run, per create.
q -c "SELECT 'index_bytes_per_create_' || c.relname || ' ' ||
             round(pg_relation_size(c.oid)::numeric / $items)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid IN ('patients'::regclass, 'patient_requests'::regclass,
                           'patient_audit_tenant'::regclass)
      ORDER BY c.relname"
q -c "SELECT 'heap_bytes_per_create_' || relname || ' ' ||
             round(pg_relation_size(oid)::numeric / $items)
      FROM pg_class WHERE relname IN ('patients', 'patient_requests', 'patient_audit_tenant')
      ORDER BY relname"
# The secondary indexes a create maintains: each dropped in turn.
for ix in $(q -c "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                  WHERE i.indrelid IN ('patients'::regclass, 'patient_audit_tenant'::regclass)
                  AND NOT i.indisunique ORDER BY c.relname"); do
	measure "without_$ix" "$ix"
done
say "done"
