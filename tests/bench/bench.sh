#!/usr/bin/env bash
# Bulk-ingestion benchmark (issues 4, 11, 14): prints one figure per line, "name value",
# also saved to $BUILD/bench.out (and to $BUILD/bench-runs/RUN/ with the worker logs).
# Asserts nothing.
#   tests/bench/bench.sh [--creates N] [--sessions "1 2 4"] [--baseline REF|none]
#   tests/bench/bench.sh --citus [--creates N]
#
# N (default 100000) commands per load, from one producer, over 100 tenants; a load's
# rate is from the first send to the last reply read. Figures:
#   raw_pg_rows_per_s, raw_equivalent_per_s   the patients table alone (500-row INSERTs
#       as the worker's role), and the worker's database path (pw_command_run, 500 creates
#       a call, no Kafka, no tokens), with raw_equivalent_wal_bytes_per_create
#   e2e_creates_per_s_{1,2}w_sS               create-only, 1 or 2 workers, S database
#       sessions each (DB_WRITE_SESSIONS, for each S of --sessions), nothing beside it
#   e2e_commands_per_s_mixed_{1,2}w_sS         70% creates, 20% updates, 10% deletes
#   wal_bytes_per_command_LABEL               WAL the server wrote during that load, per
#       command (pg_current_wal_lsn before and after)
#   e2e_creates_per_s_1w, query_*              one worker, default sessions, sequential
#       gets beside it: query p50/p99 idle and during the load (own producer, consumer
#       and reply topic); the same for the mixed load (label mixed)
#   e2e_creates_per_s_distinct_{hs256,rs256,es256,eddsa}   a distinct token per command
#   e2e_creates_per_s_baseline_1w             the same create-only one-worker load
#       through the worker of commit REF (default fb5e1ea, main before issue 14),
#       built from git, on a database of its own migrated by that commit; "none": skipped
#   ratios: to raw, to the baseline, distinct to cached; each worker's peak RSS and CPU.
# --citus (issue 16; README, Scaling): only these, in one run, one worker, default
# settings: e2e_creates_per_s_{postgres,citus}_1w and e2e_commands_per_s_mixed_{postgres,
# citus}_1w, on the stack's PostgreSQL and on a Citus cluster (coordinator + two workers,
# scripts/stack.sh PW_CITUS=1) started beside it on the same Kafka, and their ratio; and
# citus_plan_* (tests/bench/citus_plans.sh).
#
# Uses the stack in the environment when KAFKA_BROKERS and DATABASE_URL are set
# (eval "$(scripts/stack.sh env)"; DATABASE_URL must be a role that may create
# databases, for the baseline), else starts one in $BUILD/bench-stack and stops it at
# the end. Refuses the librdkafka mock broker. Every wait is bounded.
set -eu
set -o pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${PW_BUILD_DIR:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

creates=100000
sessions="1 2 4"
baseline=fb5e1ea
citus=0
while [ $# -gt 0 ]; do
	case $1 in
	--citus)
		citus=1
		shift
		;;
	--sessions | --baseline)
		[ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
		if [ "$1" = --sessions ]; then sessions=$2; else baseline=$2; fi
		shift 2
		;;
	--creates)
		[ $# -ge 2 ] || { echo "--creates needs a number" >&2; exit 2; }
		creates=$2
		shift 2
		;;
	--creates=*)
		creates=${1#*=}
		shift
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
case $creates in '' | *[!0-9]* | 0)
	echo "--creates: a positive number, not '$creates'" >&2
	exit 2
	;;
esac
for n in $sessions; do
	case $n in '' | *[!0-9]* | 0)
		echo "--sessions: numbers of sessions (1-16), not '$sessions'" >&2
		exit 2
		;;
	esac
done

say() { printf 'bench: %s\n' "$*" >&2; }

say "building ($BUILD, RelWithDebInfo)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target patient-worker pw_bulk >/dev/null
# Everything of this run (binaries, logs, keys, figures) in its own directory, so a
# rebuild of $BUILD or another bench run at the same time changes nothing here; the
# figures are copied to $BUILD/bench.out at the end.
run=bulk$(date +%s)$$
RUNDIR=$BUILD/bench-runs/$run
BIN=$RUNDIR/bin
mkdir -p "$BIN"
cp "$BUILD/patient-worker" "$BUILD/tests/pw_bulk" "$BIN/"
WORKER=$BIN/patient-worker
BULK=$BIN/pw_bulk

own_stack=0
workers=()
cleanup() {
	local pid
	for pid in "${workers[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${workers[@]}"; do
		stop_pid "$pid" >/dev/null 2>&1 || true
	done
	rm -rf "${BIN:?}" "${RUNDIR:?}/base-src" "${RUNDIR:?}/base-build"
	if [ -d "${RUNDIR:?}/citus-stack" ]; then
		say "stopping the Citus cluster we started"
		PW_STACK_DIR=$RUNDIR/citus-stack scripts/stack.sh down >/dev/null 2>&1 || true
	fi
	[ -z "${BASE_DB:-}" ] || psql -X -q "${DATABASE_URL%/*}/postgres" \
		-c "DROP DATABASE IF EXISTS $BASE_DB" >/dev/null 2>&1 || true
	if [ $own_stack = 1 ]; then
		say "stopping the stack we started"
		scripts/stack.sh down >/dev/null 2>&1 || true
	fi
	true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# SIGTERM, then up to 30 s for the worker to finish its records, then SIGKILL.
stop_pid() {
	local pid=$1 _
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "worker $pid did not stop in 30 s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

if [ -z "${KAFKA_BROKERS:-}" ] || [ -z "${DATABASE_URL:-}" ]; then
	export PW_STACK_DIR=$BUILD/bench-stack
	own_stack=1
	say "starting a stack in $PW_STACK_DIR"
	timeout 900 scripts/stack.sh up >/dev/null
	eval "$(scripts/stack.sh env)"
fi
if [ "${PW_BROKER_KIND:-}" = mock ]; then
	say "REFUSING to run on the librdkafka mock broker (PW_BROKER_KIND=mock): the mock keeps"
	say "only ~5 MB per partition and drops what a lagging consumer has not read yet, so a"
	say "100,000-create load would lose commands and the figures would mean nothing."
	say "Install Java 17 and Maven (scripts/install-deps.sh) for a real Kafka broker."
	exit 1
fi
broker_kind=${PW_BROKER_KIND:-kafka (external, kind not given)}

# Topics through the Kafka CLI of the stack when there is one, else the admin API.
have_cli=0
if [ -n "${PW_STACK_DIR:-}" ] && scripts/stack.sh status >/dev/null 2>&1 &&
	[ -n "${PW_KAFKA_LIB:-}" ]; then
	have_cli=1
fi
mk_topic() { # NAME PARTITIONS [logappend]
	local cfg=()
	[ "${3:-}" = logappend ] && cfg=(--config message.timestamp.type=LogAppendTime)
	if [ $have_cli = 1 ]; then
		local err
		err=$(timeout 120 scripts/stack.sh kafka-topics --create --topic "$1" \
			--partitions "$2" --replication-factor 1 "${cfg[@]}" 2>&1 >/dev/null) ||
			{
				printf '%s\n' "$err" >&2
				return 1
			}
	else
		timeout 60 "$BULK" topic "$1" "$2" ${3:+"$3"}
	fi
}

OUT=$RUNDIR/bench.out
: >"$OUT"
fig() { printf '%s %s\n' "$1" "$2" | tee -a "$OUT"; }
val() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$OUT"; }
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.3f}" 'BEGIN { if (b > 0) printf f "\n", a / b; else print "n/a" }'; }

# The worker settings in force: the environment's, else the binary's defaults.
setting() {
	local v=${!1:-} d
	if [ -n "$v" ]; then
		echo "$v (environment)"
		return
	fi
	d=$("$WORKER" --help 2>&1 | awk -v k="$1" '$1 == k && match($0, /\(default: [^)]*\)$/) {
		print substr($0, RSTART + 10, RLENGTH - 11) }')
	if [ -n "$d" ]; then
		echo "$d (default)"
	else
		echo "n/a (not a setting of this build)"
	fi
}

fig bench_run "$run"
fig bench_commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo '+uncommitted')"
fig bench_date "$(date -u +%FT%TZ)"
fig worker_binary_sha256 "$(sha256sum "$WORKER" | cut -c1-16)"
fig machine_nproc "$(nproc)"
fig machine_mem_total_kib "$(awk '/^MemTotal/ { print $2 }' /proc/meminfo)"
fig machine_cpu_model "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
fig broker_kind "$broker_kind"
fig creates "$creates"
fig tenants 100
for s in BATCH_MAX BATCH_WAIT_MS JWT_CACHE_SIZE MAX_INFLIGHT DB_WRITE_SESSIONS; do
	fig "worker_$(echo "$s" | tr '[:upper:]' '[:lower:]')" "$(setting "$s")"
done

say "migrating"
timeout 300 "$WORKER" migrate >/dev/null 2>"$RUNDIR/migrate.log" ||
	{
		cat "$RUNDIR/migrate.log" >&2
		exit 1
	}

# The Citus cluster beside the stack's PostgreSQL, on the same Kafka; after the figures'
# helpers below are defined, the two loads alone.
if [ $citus = 1 ]; then
	[ -f /usr/lib/postgresql/15/lib/citus.so ] ||
		{ say "--citus: no Citus installed into PostgreSQL 15 (README, Scaling)"; exit 1; }
	say "starting a Citus cluster in $RUNDIR/citus-stack"
	(unset DATABASE_URL && PW_CITUS=1 PW_STACK_DIR=$RUNDIR/citus-stack \
		timeout 600 scripts/stack.sh up >/dev/null)
	CITUS_URL=$(PW_STACK_DIR=$RUNDIR/citus-stack scripts/stack.sh env |
		sed -n "s/^export DATABASE_URL='\(.*\)'$/\1/p")
	DATABASE_URL=$CITUS_URL timeout 300 "$WORKER" migrate >/dev/null 2>"$RUNDIR/migrate-citus.log" ||
		{ cat "$RUNDIR/migrate-citus.log" >&2; exit 1; }
	fig citus_version "$(psql -X -qtA "$CITUS_URL" -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'")"
	fig citus_workers "$(psql -X -qtA "$CITUS_URL" -c "SELECT count(*) FROM citus_get_active_worker_nodes()")"
	fig citus_shard_count "$(psql -X -qtA "$CITUS_URL" -c "SELECT shard_count FROM citus_tables WHERE table_name = 'patients'::regclass")"
	# How Citus plans each of the worker's statements (subplans, tasks, nodes).
	DATABASE_URL=$CITUS_URL tests/bench/citus_plans.sh | tee -a "$OUT"
fi

if [ $citus = 0 ]; then
say "raw PostgreSQL: $creates rows in 500-row INSERTs"
timeout 3600 "$BULK" raw --rows "$creates" --run "$run" --label raw | tee -a "$OUT"
say "the worker's database path: $creates creates through pw_command_run, 500 per call"
timeout 3600 "$BULK" equivalent --items "$creates" --run "$run" --label eq | tee -a "$OUT"
fi

export JWT_SECRET=${JWT_SECRET:-bench-secret-0123456789-0123456789-abcdef}
export LOG_LEVEL=warn
key=$RUNDIR/rs256.key
pub=$RUNDIR/rs256.pub

# The server's WAL position: what a load made it write is the difference.
wal_lsn() { psql -X -qtA "$DATABASE_URL" -c "SELECT pg_current_wal_lsn()"; }
wal_diff() { psql -X -qtA "$DATABASE_URL" -c "SELECT pg_wal_lsn_diff('$2', '$1')"; }

max_rss=0
# e2e LABEL TOPICLABEL WORKERS [pw_bulk options...] -- [worker env, as env(1) takes it...]
e2e() {
	local label=$1 tl=$2 n=$3 opts=() wenv=() pids=() k pid
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	wenv=("$@")
	local p=$run.$tl
	export TOPIC_CREATE=$p.create TOPIC_QUERY=$p.query TOPIC_REPLIES=$p.replies
	export TOPIC_DLQ=$p.dlq KAFKA_GROUP_ID=$p
	say "e2e $label: topics $p.*"
	mk_topic "$TOPIC_CREATE" 4 logappend &
	pids+=($!)
	mk_topic "$TOPIC_QUERY" 4 logappend &
	pids+=($!)
	mk_topic "$TOPIC_REPLIES" 4 &
	pids+=($!)
	mk_topic "$TOPIC_REPLIES.q" 1 &
	pids+=($!)
	mk_topic "$TOPIC_DLQ" 1 &
	pids+=($!)
	for pid in "${pids[@]}"; do
		wait "$pid" || {
			say "cannot create the topics of $label"
			exit 1
		}
	done
	workers=()
	for k in $(seq 1 "$n"); do
		# Several workers on one host: no metrics listener (HTTP_ADDR empty).
		env "${wenv[@]}" HTTP_ADDR= "$WORKER" run 2>"$RUNDIR/worker-$label-$k.log" &
		workers+=($!)
	done
	sleep 1
	for k in $(seq 1 "$n"); do
		kill -0 "${workers[$((k - 1))]}" 2>/dev/null || {
			say "worker $k of $label exited at start:"
			tail -5 "$RUNDIR/worker-$label-$k.log" >&2
			exit 1
		}
	done
	say "e2e $label: $creates commands, $n worker(s)"
	local lsn0 lsn1
	lsn0=$(wal_lsn)
	timeout 7200 "$BULK" e2e --creates "$creates" --run "$run" --label "$label" \
		--members $((2 * n)) "${opts[@]}" | tee -a "$OUT"
	lsn1=$(wal_lsn)
	fig "wal_bytes_per_command_$label" "$(div "$(wal_diff "$lsn0" "$lsn1")" "$creates" %.0f)"
	# CPU and peak RSS just before stopping.
	local cpu=0 c r
	for k in $(seq 1 "$n"); do
		pid=${workers[$((k - 1))]}
		if ! "$BULK" proc "$pid" >"$RUNDIR/proc.out"; then
			say "worker $k of $label is gone; see $RUNDIR/worker-$label-$k.log"
			continue
		fi
		c=$(awk '$1 == "cpu_s" { print $2 }' "$RUNDIR/proc.out")
		r=$(awk '$1 == "vmhwm_kib" { printf "%.1f", $2 / 1024 }' "$RUNDIR/proc.out")
		fig "worker_cpu_s_${label}_w$k" "$c"
		fig "worker_peak_rss_mib_${label}_w$k" "$r"
		cpu=$(awk -v a="$cpu" -v b="$c" 'BEGIN { print a + b }')
		max_rss=$(awk -v a="$max_rss" -v b="$r" 'BEGIN { print (b > a ? b : a) }')
	done
	fig "worker_cpu_s_per_1000_creates_$label" "$(div "$cpu" "$(div "$creates" 1000 %.6f)")"
	# A shared stack may have its database restarted under us: such a run is flagged.
	fig "worker_db_outages_$label" "$(cat "$RUNDIR/worker-$label-"*.log |
		grep -c 'database unreachable' || true)"
	for pid in "${workers[@]}"; do
		stop_pid "$pid"
	done
	workers=()
}

# The worker of commit $baseline, built from this repository's history, against a
# database of its own that it migrates: today's figures beside the same load through it.
base_run() {
	local src=$RUNDIR/base-src bld=$RUNDIR/base-build
	say "baseline: building the worker of $baseline"
	mkdir -p "$src"
	git -C "$ROOT" archive "$baseline" | tar -x -C "$src" ||
		{ say "cannot check out $baseline"; exit 1; }
	cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$RUNDIR/base-build.log" 2>&1 &&
		cmake --build "$bld" -j"$(nproc)" --target patient-worker >>"$RUNDIR/base-build.log" 2>&1 ||
		{ tail -20 "$RUNDIR/base-build.log" >&2; exit 1; }
	cp "$bld/patient-worker" "$BIN/patient-worker-base"
	BASE_DB=pw_bench_base_$$
	psql -X -q -v ON_ERROR_STOP=1 "${DATABASE_URL%/*}/postgres" -c "CREATE DATABASE $BASE_DB" >/dev/null
	DATABASE_URL=${DATABASE_URL%/*}/$BASE_DB timeout 300 "$BIN/patient-worker-base" migrate \
		>/dev/null 2>"$RUNDIR/base-migrate.log" || { cat "$RUNDIR/base-migrate.log" >&2; exit 1; }
	fig baseline_commit "$(git -C "$ROOT" rev-parse --short "$baseline")"
	WORKER=$BIN/patient-worker-base DATABASE_URL=${DATABASE_URL%/*}/$BASE_DB \
		e2e baseline_1w base 1
}

if [ $citus = 1 ]; then
	e2e postgres_1w pg 1
	e2e mixed_postgres_1w mpg 1 --mix
	# The coordinator's WAL is not where the rows go: wal_bytes_per_command_*citus* is
	# the coordinator's alone (two-phase commit records, mostly).
	DATABASE_URL=$CITUS_URL e2e citus_1w ci 1
	DATABASE_URL=$CITUS_URL e2e mixed_citus_1w mci 1 --mix
	fig ratio_citus_to_postgres_creates "$(div "$(val e2e_creates_per_s_citus_1w)" "$(val e2e_creates_per_s_postgres_1w)")"
	fig ratio_citus_to_postgres_mixed "$(div "$(val e2e_commands_per_s_mixed_citus_1w)" "$(val e2e_commands_per_s_mixed_postgres_1w)")"
	cp "$OUT" "$BUILD/bench-citus.out"
	say "figures saved to $BUILD/bench-citus.out (and $OUT, with the worker logs)"
	exit 0
fi

default_sessions=$(setting DB_WRITE_SESSIONS | awk '{ print $1 }')
if [ "$baseline" != none ]; then
	base_run
fi
# Create-only and mixed, one and two workers, each number of sessions: nothing beside.
for n in $sessions; do
	e2e "1w_s$n" "c1s$n" 1 -- DB_WRITE_SESSIONS="$n"
	e2e "2w_s$n" "c2s$n" 2 -- DB_WRITE_SESSIONS="$n"
	e2e "mixed_1w_s$n" "m1s$n" 1 --mix -- DB_WRITE_SESSIONS="$n"
	e2e "mixed_2w_s$n" "m2s$n" 2 --mix -- DB_WRITE_SESSIONS="$n"
done
# With sequential gets beside it, default settings: the query figures under load.
e2e 1w 1w 1 --gets 500 --query-reply-to "$run.1w.replies.q"
e2e mixed mix 1 --mix --gets 500 --query-reply-to "$run.mix.replies.q"
# A distinct token per command, one worker, default settings.
e2e distinct_hs256 dhs 1 --distinct
say "generating RSA, P-256 and Ed25519 keys in $RUNDIR"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$key" 2>/dev/null
openssl pkey -in "$key" -pubout -out "$pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$RUNDIR/es256.key" 2>/dev/null
openssl pkey -in "$RUNDIR/es256.key" -pubout -out "$RUNDIR/es256.pub"
openssl genpkey -algorithm ED25519 -out "$RUNDIR/eddsa.key" 2>/dev/null
openssl pkey -in "$RUNDIR/eddsa.key" -pubout -out "$RUNDIR/eddsa.pub"
e2e distinct_rs256 drs 1 --distinct --alg RS256 --key "$key" -- \
	-u JWT_SECRET JWT_ALG=RS256 JWT_PUBLIC_KEY_FILE="$pub"
e2e distinct_es256 des 1 --distinct --alg ES256 --key "$RUNDIR/es256.key" -- \
	-u JWT_SECRET JWT_ALG=ES256 JWT_PUBLIC_KEY_FILE="$RUNDIR/es256.pub"
e2e distinct_eddsa ded 1 --distinct --alg EdDSA --key "$RUNDIR/eddsa.key" -- \
	-u JWT_SECRET JWT_ALG=EdDSA JWT_PUBLIC_KEY_FILE="$RUNDIR/eddsa.pub"

raw=$(val raw_pg_rows_per_s)
eq=$(val raw_equivalent_per_s)
one=$(val "e2e_creates_per_s_1w_s$default_sessions")
for l in 1w 1w_s$default_sessions 2w_s$default_sessions; do
	fig "ratio_to_raw_$l" "$(div "$(val "e2e_creates_per_s_$l")" "$raw")"
	fig "ratio_to_equivalent_$l" "$(div "$(val "e2e_creates_per_s_$l")" "$eq")"
done
if [ "$baseline" != none ]; then
	fig ratio_to_baseline_1w "$(div "$one" "$(val e2e_creates_per_s_baseline_1w)")"
	fig wal_per_create_to_baseline "$(div "$(val "wal_bytes_per_command_1w_s$default_sessions")" \
		"$(val wal_bytes_per_command_baseline_1w)")"
fi
for a in hs256 rs256 es256 eddsa; do
	fig "ratio_distinct_${a}_to_cached" "$(div "$(val "e2e_creates_per_s_distinct_$a")" "$one")"
done
for q in idle_gets idle_ok idle_p50_ms idle_p99_ms load_gets load_ok load_p50_ms load_p99_ms; do
	fig "query_$q" "$(val "query_${q}_1w")"
done
fig query_p99_load_to_idle "$(div "$(val query_load_p99_ms_1w)" "$(val query_idle_p99_ms_1w)")"
# Issue 11's targets: mixed >= half the create-only rate (both one worker, gets beside
# them); query p99 during the mixed load <= 3x its idle p99.
fig ratio_mixed_to_creates "$(div "$(val e2e_commands_per_s_mixed)" "$(val e2e_creates_per_s_1w)")"
fig query_p99_mixed_to_idle "$(div "$(val query_load_p99_ms_mixed)" "$(val query_idle_p99_ms_mixed)")"
fig ratio_to_raw "$(div "$one" "$raw")"
fig worker_peak_rss_mib "$max_rss"
cp "$OUT" "$BUILD/bench.out"
say "figures saved to $BUILD/bench.out (and $OUT, with the worker logs)"
