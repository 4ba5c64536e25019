#!/bin/sh
# Migration 007 on a database that has audit rows (issue 13): 001-006 applied to a
# throwaway database, rows of two owners and one refused token written the old way, then
# 007. Every row is still in the patient_audit view, unchanged; the owners' rows are in
# patient_audit_tenant, the refused one in patient_audit_refused. Needs DATABASE_URL (a
# role that may create databases) and psql.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
base=${DATABASE_URL%/*}
db=pw_audit_move_$$
fail() {
	echo "audit-move: FAIL: $*" >&2
	exit 1
}
q() { psql -X -q -v ON_ERROR_STOP=1 -tA "$base/$db" "$@"; }
psql -X -q -v ON_ERROR_STOP=1 "$base/postgres" -c "CREATE DATABASE $db"
trap 'psql -X -q "$base/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
for f in "$src"/migrations/00[1-6]_*.sql; do q -f "$f" >/dev/null; done
rows="('t', 0, 1, 'a@x', 'r1', 'patient.create', 201, '{7}', '2026-01-01Z', NULL),
      ('t', 0, 2, NULL, 'r2', NULL, 401, '{}', '2026-01-02Z', NULL),
      ('t', 1, 3, 'b@x', 'r3', 'patient.update', 200, '{8}', '2026-01-03Z', '{nombre}')"
cols="source_topic, source_partition, source_offset, owner_id, request_id, command_type,
      status, patient_ids, command_time, changed_fields"
q -c "INSERT INTO patient_audit ($cols) VALUES $rows"
before=$(q -c "SELECT $cols FROM patient_audit ORDER BY source_offset")
q -1 -f "$src/migrations/007_audit_by_owner.sql" >/dev/null
after=$(q -c "SELECT $cols FROM patient_audit ORDER BY source_offset")
[ "$before" = "$after" ] || fail "the view differs from the old table:
before: $before
after:  $after"
[ "$(q -c "SELECT string_agg(owner_id, ',' ORDER BY owner_id) FROM patient_audit_tenant")" = "a@x,b@x" ] ||
	fail "patient_audit_tenant does not hold the two owners' rows"
[ "$(q -c "SELECT string_agg(request_id, ',') FROM patient_audit_refused")" = "r2" ] ||
	fail "patient_audit_refused does not hold the refused row"
echo "audit-move: 3 audit rows moved by migration 007, the view unchanged"
