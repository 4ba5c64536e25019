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
#   index_bytes_per_create_NAME the index's size after the run of all_, per create
#   heap_bytes_per_create_TABLE the table's heap, per create
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
	q -c "CHECKPOINT"
	out=$(DATABASE_URL=$base/$db "$BUILD/tests/pw_bulk" equivalent --items "$items" \
		--run "wc$$" --tenants 100)
	echo "${label}_creates_per_s $(echo "$out" | sed -n 's/^raw_equivalent_per_s //p')"
	echo "${label}_wal_bytes_per_create $(echo "$out" | sed -n 's/^raw_equivalent_wal_bytes_per_create //p')"
	[ "$(echo "$out" | sed -n 's/^raw_equivalent_201 //p')" = "$items" ] ||
		say "WARNING: not every create was a 201 in $label"
}

echo "items $items"
measure all
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
