#!/bin/sh
# How Citus plans each statement of the worker (issue 16): EXPLAIN of sql/*.sql as the
# worker's role, scoped to one owner as the worker scopes it, on the Citus coordinator
# DATABASE_URL (a migrated database). Prints one line per statement:
#   citus_plan_NAME subplans=S tasks=T nodes=N
# S: distributed subplans (each a round trip whose result the coordinator collects and
# sends on; 0 for a router-planned statement), T: tasks in all, N: distinct worker nodes.
# "subplans=0 tasks=1 nodes=1" is a statement that goes whole to the owner's shard.
# Rolled back: nothing is written. Asserts nothing.
#   DATABASE_URL=... tests/bench/citus_plans.sh
set -eu
cd "$(dirname "$0")/../.."
: "${DATABASE_URL:?DATABASE_URL: the Citus coordinator}"

owner=plans@example.com
q="'"

# psql variables, one \set each: the statements' :name placeholders become these texts,
# strings as quoted literals (a quote doubled inside psql's own quotes).
vars() {
	for kv in "owner=$owner" source_topic=t request_id=r payload_hash=h \
		command_type=patient.update nombre=n apellido_paterno=p apellido_materno=m dni=d \
		fecha_nacimiento=2000-01-01 sexo=F patient_ids='{1}' ords='{1,2}' \
		request_ids='{r1,r2}' payload_hashes='{h,h}' nombres='{a,b}' \
		apellidos_paternos='{a,b}' apellidos_maternos='{a,b}' dnis='{d1,d2}' \
		fechas_nacimiento='{2000-01-01,2000-01-01}' sexos='{M,F}' partitions='{0,0}' \
		offsets='{1,2}' command_times='{1,2}' ids='{1,2}'; do
		printf '\\set %s %s%s%s%s%s%s\n' "${kv%%=*}" "$q" "$q" "$q" "${kv#*=}" "$q" "$q$q"
	done
	for kv in id=1 version=1 set_nombre=true set_apellido_paterno=false \
		set_apellido_materno=false set_dni=false set_fecha_nacimiento=false set_sexo=false \
		source_partition=0 source_offset=1 command_time=1 status=200 after_id=0 \
		dni_filter=NULL pattern=NULL limit=51; do
		printf '\\set %s %s\n' "${kv%%=*}" "${kv#*=}"
	done
}

# The worker's statements on Citus: create_prior, the VALUES insert (built at run time;
# a two-row one here, as common/pw_creates_routed.c makes it) and create_rows for creates,
# change_decide for updates and deletes (its writes are single-row statements by key),
# get, list, audit; and plain PostgreSQL's create_batch and change, for comparison.
insert=$(mktemp)
cat >"$insert" <<'EOF'
INSERT INTO patients (owner_id, nombre, apellido_paterno, apellido_materno, dni,
  fecha_nacimiento, sexo, request_id, payload_hash, source_topic, source_partition,
  source_offset, command_time)
VALUES (:owner, 'a', 'b', NULL, 'd1'::text, '2000-01-01'::date, 'F', 'r1', 'h'::text, 't',
        0::int, 1::bigint, to_timestamp(1::float8)),
       (:owner, 'a', 'b', NULL, 'd2'::text, '2000-01-01'::date, 'F', 'r2', 'h'::text, 't',
        0::int, 2::bigint, to_timestamp(2::float8))
ON CONFLICT DO NOTHING RETURNING id, request_id, payload_hash, dni, source_partition,
  source_offset
EOF
change=$(mktemp)
decide=$(mktemp)
trap 'rm -f "$insert" "$change" "$decide"' EXIT
cat sql/parts/change_read.sql sql/parts/change_write.sql >"$change"
cat sql/parts/change_read.sql sql/parts/change_decide.sql >"$decide"
for name in create_prior create_values create_rows change_decide create_batch change get list \
	audit; do
	case $name in
	create_values) f=$insert ;;
	change) f=$change ;;
	change_decide) f=$decide ;;
	*) f=sql/$name.sql ;;
	esac
	plan=$( (
		vars
		echo "BEGIN; SET LOCAL ROLE patients_app;"
		echo "SET LOCAL app.owner_id = '$owner';"
		echo "EXPLAIN (COSTS OFF)"
		# list's :dni is a filter that may be NULL, change's a value.
		if [ "$name" = list ]; then
			sed -e '/^--/d' -e 's/:dni\([^_a-z]\)/:dni_filter\1/g' "$f"
		else
			sed -e '/^--/d' "$f"
		fi
		echo ";"
		echo "ROLLBACK;"
	) | psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" 2>&1) ||
		{
			printf 'citus_plan_%s failed: %s\n' "$name" "$(printf '%s\n' "$plan" | grep ERROR | head -1)"
			continue
		}
	printf 'citus_plan_%s %s\n' "$name" "$(printf '%s\n' "$plan" | awk '
		/Distributed Subplan/ { s++ }
		/Task Count:/ { t += $NF }
		/Node: host=/ { n[$2 " " $3] = 1 }
		END { k = 0; for (x in n) k++; printf "subplans=%d tasks=%d nodes=%d", s, t, k }')"
done
