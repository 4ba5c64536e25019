#!/usr/bin/env bash
# Bulk-ingestion benchmark (issue 4): prints one figure per line, "name value", also
# saved to $BUILD/bench.out (and to $BUILD/bench-runs/RUN/ with the worker logs).
# Asserts nothing.
#   tests/bench/bench.sh [--creates N]      (default 100000)
#
# Figures: raw_pg_rows_per_s (the patients table alone, 500-row INSERTs as the worker's
# role), raw_equivalent_per_s (the worker's database path, pw_command_run, without Kafka or
# tokens), e2e_creates_per_s_{1w,1w_no_queries,2w,distinct_hs256,distinct_rs256} (N
# creates from one producer, first send to last reply; 1w has sequential gets running
# beside it, 1w_no_queries not), their ratios, query p50/p99 idle and during the
# one-worker load, each worker's peak RSS and CPU per 1000 creates; e2e_commands_per_s_mixed
# (N writes, one worker: 70% creates, 20% updates, 10% deletes over the same tenants, with
# gets beside it), its ratio to the one-worker create-only figure, and the query p99
# during it against idle.
#
# Uses the stack in the environment when KAFKA_BROKERS and DATABASE_URL are set
# (eval "$(scripts/stack.sh env)"), else starts one in $BUILD/bench-stack and stops it
# at the end. Refuses the librdkafka mock broker. Every wait is bounded.
set -eu
set -o pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${PW_BUILD_DIR:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

creates=100000
while [ $# -gt 0 ]; do
	case $1 in
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
	rm -rf "${BIN:?}"
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
for s in BATCH_MAX BATCH_WAIT_MS JWT_CACHE_SIZE MAX_INFLIGHT; do
	fig "worker_$(echo "$s" | tr '[:upper:]' '[:lower:]')" "$(setting "$s")"
done

say "migrating"
timeout 300 "$WORKER" migrate >/dev/null 2>"$RUNDIR/migrate.log" ||
	{
		cat "$RUNDIR/migrate.log" >&2
		exit 1
	}

say "raw PostgreSQL: $creates rows in 500-row INSERTs"
timeout 3600 "$BULK" raw --rows "$creates" --run "$run" --label raw | tee -a "$OUT"
say "the worker's database path: $creates creates through pw_command_run, 500 per call"
timeout 3600 "$BULK" equivalent --items "$creates" --run "$run" --label eq | tee -a "$OUT"

export JWT_SECRET=${JWT_SECRET:-bench-secret-0123456789-0123456789-abcdef}
export LOG_LEVEL=warn
key=$RUNDIR/rs256.key
pub=$RUNDIR/rs256.pub

max_rss=0
# e2e LABEL TOPICLABEL WORKERS [pw_bulk options...] -- [worker env...]
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
		env HTTP_ADDR= "${wenv[@]}" "$WORKER" run 2>"$RUNDIR/worker-$label-$k.log" &
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
	say "e2e $label: $creates creates, $n worker(s)"
	timeout 7200 "$BULK" e2e --creates "$creates" --run "$run" --label "$label" \
		--members $((2 * n)) "${opts[@]}" | tee -a "$OUT"
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

# The same one-worker load twice: alone, then with sequential gets running beside it
# (the query figures); the gets cost the create lane, so both rates are printed.
e2e 1w_no_queries 1wn 1
e2e 1w 1w 1 --gets 500 --query-reply-to "$run.1w.replies.q"
e2e 2w 2w 2
e2e mixed mix 1 --mix --gets 500 --query-reply-to "$run.mix.replies.q"
e2e distinct_hs256 dhs 1 --distinct
say "generating an RSA key pair in $RUNDIR"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$key" 2>/dev/null
openssl pkey -in "$key" -pubout -out "$pub"
e2e distinct_rs256 drs 1 --distinct --alg RS256 --key "$key" -- \
	JWT_ALG=RS256 JWT_PUBLIC_KEY_FILE="$pub"

raw=$(val raw_pg_rows_per_s)
eq=$(val raw_equivalent_per_s)
for l in 1w 1w_no_queries 2w; do
	fig "ratio_to_raw_$l" "$(div "$(val "e2e_creates_per_s_$l")" "$raw")"
	fig "ratio_to_equivalent_$l" "$(div "$(val "e2e_creates_per_s_$l")" "$eq")"
done
for q in idle_gets idle_ok idle_p50_ms idle_p99_ms load_gets load_ok load_p50_ms load_p99_ms; do
	fig "query_$q" "$(val "query_${q}_1w")"
done
# Issue 11's targets: mixed >= half the create-only rate (both one worker, gets beside
# them); query p99 during the mixed load <= 3x its idle p99.
fig ratio_mixed_to_creates "$(div "$(val e2e_commands_per_s_mixed)" "$(val e2e_creates_per_s_1w)")"
fig query_p99_mixed_to_idle "$(div "$(val query_load_p99_ms_mixed)" "$(val query_idle_p99_ms_mixed)")"
fig ratio_to_raw "$(val ratio_to_raw_1w)"
fig ratio_to_equivalent "$(val ratio_to_equivalent_1w)"
fig worker_peak_rss_mib "$max_rss"
cp "$OUT" "$BUILD/bench.out"
say "figures saved to $BUILD/bench.out (and $OUT, with the worker logs)"
