#!/usr/bin/env bash
# Flood mode (issue 15): does a bulk load make a query wait? Prints one figure per line,
# "name value", also saved to $BUILD/flood.out. Asserts nothing.
#   tests/bench/flood.sh [--creates N] [--tenants T] [--every-ms MS] [--idle-gets G]
#                        [--rounds R] [--no-db-samples]
#
# One worker (its settings from the environment, e.g. DB_WRITE_SESSIONS; its two lanes
# are two members of the group), an unmeasured warm-up flood of N/5 creates, and in each
# of R rounds (default 2):
#   1. the flood alone: N creates (default 100000) over T tenants (default 4), produced as
#      fast as one producer can by a process of their own (pw_bulk e2e); its creates/s
#      (and again after step 2; the gets' cost is taken against the mean of the two);
#   2. the gets: another process (pw_bulk gets) with its own producer (linger 0), reply
#      topic and consumer (otherwise librdkafka's defaults) sends one patient.get every
#      MS ms (default 20), open loop: G (default 500) idle, then the same flood again
#      from the first process, the gets going on until its last reply. Printed: query
#      p50/p90/p99/max idle and during the flood, the share of gets over 100 ms and how
#      many over 250 ms, the create rate with the gets beside it and its ratio to the
#      flood alone, what the query lane's and the create sessions' PostgreSQL backends
#      were doing (pg_stat_activity sampled every 50 ms; --no-db-samples: not), and the
#      query lane's steps during the flood from the worker's
#      patient_worker_step_duration_seconds: count, mean, and the bucket holding p99.
#
# Uses the stack in the environment (eval "$(scripts/stack.sh env)"; DATABASE_URL must
# be allowed to read pg_stat_activity's wait events, as the stack's owner is), else
# starts one in $BUILD/bench-stack and stops it at the end. Every wait is bounded.
set -eu
set -o pipefail
cd "$(dirname "$0")/../.."
BUILD=${PW_BUILD_DIR:-build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
creates=100000
tenants=4
every=20
idle=500
rounds=2
sample=--sample-db
while [ $# -gt 0 ]; do
	if [ "$1" = --no-db-samples ]; then
		sample=
		shift
		continue
	fi
	[ $# -ge 2 ] || { echo "$1 needs a value (try --help)" >&2; exit 2; }
	case $1 in
	--creates) creates=$2 ;;
	--tenants) tenants=$2 ;;
	--every-ms) every=$2 ;;
	--idle-gets) idle=$2 ;;
	--rounds) rounds=$2 ;;
	*)
		sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
	shift 2
done
for v in "$creates" "$tenants" "$every" "$idle" "$rounds"; do
	case $v in '' | *[!0-9]* | 0) echo "flood: '$v' is not a positive number" >&2; exit 2 ;; esac
done
say() { printf 'flood: %s\n' "$*" >&2; }

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target patient-worker pw_bulk >/dev/null
run=flood$(date +%s)$$
RUNDIR=$BUILD/bench-runs/$run
mkdir -p "$RUNDIR"
cp "$BUILD/patient-worker" "$BUILD/tests/pw_bulk" "$RUNDIR/"
WORKER=$RUNDIR/patient-worker
BULK=$RUNDIR/pw_bulk

own_stack=0
worker=
getter=
load=
cleanup() {
	for pid in $load $getter $worker; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in $load $getter $worker; do
		timeout 30 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	done
	rm -f "$WORKER" "$BULK"
	[ $own_stack = 0 ] || scripts/stack.sh down >/dev/null 2>&1 || true
	true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -z "${KAFKA_BROKERS:-}" ] || [ -z "${DATABASE_URL:-}" ]; then
	export PW_STACK_DIR=$BUILD/bench-stack
	own_stack=1
	say "starting a stack in $PW_STACK_DIR"
	timeout 900 scripts/stack.sh up >/dev/null
	eval "$(scripts/stack.sh env)"
fi
if [ "${PW_BROKER_KIND:-}" = mock ]; then
	say "REFUSING the librdkafka mock broker: it drops what a lagging consumer has not read"
	exit 1
fi

export TOPIC_CREATE=$run.create TOPIC_QUERY=$run.query TOPIC_REPLIES=$run.replies
export TOPIC_DLQ=$run.dlq KAFKA_GROUP_ID=$run
export JWT_SECRET=${JWT_SECRET:-bench-secret-0123456789-0123456789-abcdef}
export LOG_LEVEL=${LOG_LEVEL:-warn}
QREPLIES=$TOPIC_REPLIES.q # a reply_to of its own, as a separate client would
for t in "$TOPIC_CREATE:4:logappend" "$TOPIC_QUERY:4:logappend" "$TOPIC_REPLIES:4:" \
	"$QREPLIES:1:" "$TOPIC_DLQ:1:"; do
	IFS=: read -r name parts how <<<"$t"
	timeout 60 "$BULK" topic "$name" "$parts" ${how:+"$how"}
done
timeout 120 "$WORKER" migrate >/dev/null 2>&1

# A port nothing answers on, for the worker's /metrics.
port=
for _ in $(seq 1 50); do
	p=$((20000 + RANDOM % 20000))
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		port=$p
		break
	fi
done
[ -n "$port" ] || { say "no free port for the worker's /metrics"; exit 1; }
HTTP=127.0.0.1:$port
HTTP_ADDR=$HTTP "$WORKER" run 2>"$RUNDIR/worker.log" &
worker=$!

OUT=$RUNDIR/flood.out
: >"$OUT"
fig() { printf '%s %s\n' "$1" "$2" | tee -a "$OUT"; }
val() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$OUT"; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f\n", a / b; else print "n/a" }'; }
scrape() { curl -fsS --max-time 5 "http://$HTTP/metrics" 2>/dev/null || true; }

# The query lane's steps between two scrapes: count, mean ms, and the upper bound of the
# bucket holding the 99th percentile (le in ms; "inf" past the last bucket).
steps() { # BEFORE AFTER SUFFIX
	awk -v sfx="$3" '
	function key(line) { return line }
	FNR == NR { if ($1 ~ /^patient_worker_step_duration_seconds/ && $1 ~ /lane="query"/) b[$1] = $2; next }
	$1 ~ /^patient_worker_step_duration_seconds/ && $1 ~ /lane="query"/ {
		d = $2 - b[$1]
		match($1, /step="[a-z]+"/); step = substr($1, RSTART + 6, RLENGTH - 7)
		if ($1 ~ /_count\{/) cnt[step] = d
		else if ($1 ~ /_sum\{/) sum[step] = d
		else if ($1 ~ /_bucket\{/) {
			match($1, /le="[^"]+"/); le = substr($1, RSTART + 4, RLENGTH - 5)
			n[step]++; les[step, n[step]] = le; cum[step, n[step]] = d
		}
	}
	END {
		split("kafka verify wait database handoff delivery", order, " ")
		for (i = 1; i <= 6; i++) {
			s = order[i]; if (!(s in cnt)) continue
			printf "query_step_%s_count_%s %d\n", s, sfx, cnt[s]
			printf "query_step_%s_mean_ms_%s %.2f\n", s, sfx, cnt[s] ? 1000 * sum[s] / cnt[s] : 0
			p = "n/a"
			for (k = 1; k <= n[s]; k++) if (cnt[s] > 0 && cum[s, k] >= 0.99 * cnt[s]) {
				p = les[s, k] == "+Inf" ? "inf" : 1000 * les[s, k]; break }
			printf "query_step_%s_p99_le_ms_%s %s\n", s, sfx, p
		}
	}' "$1" "$2"
}

fig flood_run "$run"
fig flood_commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo '+uncommitted')"
fig machine "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
fig broker_kind "${PW_BROKER_KIND:-external}"
fig creates "$creates"
fig tenants "$tenants"
fig get_every_ms "$every"
fig db_write_sessions "${DB_WRITE_SESSIONS:-default}"

# Unmeasured: the worker's lanes and sessions at work before the clock starts. The rates
# still vary from flood to flood: the first one after a checkpoint (PostgreSQL's own, every
# 1 GB of WAL here, or one run before this script) writes a full image of every page it
# touches first, and ran at a third to a half of the others; hence the mean of the floods
# alone before and after the one with the gets.
say "warm-up: $((creates / 5)) creates, not measured"
timeout 900 "$BULK" e2e --creates "$((creates / 5))" --run "$run" --label warmup \
	--tenants "$tenants" --members 2 >"$RUNDIR/warmup.out"

for r in $(seq 1 "$rounds"); do
	say "round $r: the flood alone"
	timeout 900 "$BULK" e2e --creates "$creates" --run "$run" --label "alone$r" \
		--tenants "$tenants" --members 2 >"$RUNDIR/alone$r.out"
	fig "creates_per_s_alone_r$r" "$(awk '$1 ~ /^e2e_creates_per_s_/ { print $2 }' "$RUNDIR/alone$r.out")"

	say "round $r: $idle idle gets, then the flood with the gets"
	rm -f "$RUNDIR/ready$r"
	"$BULK" gets --run "$run" --label "g$r" --query-reply-to "$QREPLIES" --gets "$idle" \
		--every-ms "$every" --ready-file "$RUNDIR/ready$r" $sample >"$RUNDIR/gets$r.out" &
	getter=$!
	for _ in $(seq 1 1200); do
		[ -e "$RUNDIR/ready$r" ] && break
		kill -0 "$getter" 2>/dev/null || break
		sleep 0.1
	done
	[ -e "$RUNDIR/ready$r" ] || { say "the idle gets did not finish within 120 s"; exit 1; }
	timeout 900 "$BULK" e2e --creates "$creates" --run "$run" --label "flood$r" \
		--tenants "$tenants" --members 2 --notify "$getter" >"$RUNDIR/flood$r.out" &
	load=$!
	# The worker's step figures from the flood's first send (the gets say when) to its end.
	for _ in $(seq 1 3000); do
		[ -e "$RUNDIR/ready$r.flood" ] && break
		kill -0 "$load" 2>/dev/null || break
		sleep 0.1
	done
	scrape >"$RUNDIR/metrics-before$r"
	wait "$load" || { say "the flood's process failed"; exit 1; }
	load=
	scrape >"$RUNDIR/metrics-after$r"
	timeout 60 tail --pid="$getter" -f /dev/null || { say "the gets did not end within 60 s"; exit 1; }
	wait "$getter" || { say "the gets failed"; exit 1; }
	getter=
	fig "creates_per_s_with_gets_r$r" "$(awk '$1 ~ /^e2e_creates_per_s_/ { print $2 }' "$RUNDIR/flood$r.out")"
	say "round $r: the flood alone again"
	timeout 900 "$BULK" e2e --creates "$creates" --run "$run" --label "after$r" \
		--tenants "$tenants" --members 2 >"$RUNDIR/after$r.out"
	fig "creates_per_s_alone_after_r$r" "$(awk '$1 ~ /^e2e_creates_per_s_/ { print $2 }' "$RUNDIR/after$r.out")"
	# Against the mean of the floods alone before and after it: the tables grow and
	# checkpoints come, so the order of the runs is not taken for the gets' cost.
	alone=$(awk -v a="$(val "creates_per_s_alone_r$r")" -v b="$(val "creates_per_s_alone_after_r$r")" 'BEGIN { print (a + b) / 2 }')
	fig "creates_with_gets_to_alone_r$r" "$(div "$(val "creates_per_s_with_gets_r$r")" "$alone")"
	awk -v r="$r" '{ print $1 "_r" r, $2 }' "$RUNDIR/gets$r.out" | tee -a "$OUT"
	fig "query_p99_flood_to_idle_r$r" "$(div "$(val "query_flood_p99_ms_r$r")" "$(val "query_idle_p99_ms_r$r")")"
	steps "$RUNDIR/metrics-before$r" "$RUNDIR/metrics-after$r" "r$r" | tee -a "$OUT"
done
cp "$OUT" "$BUILD/flood.out"
say "figures in $BUILD/flood.out (and $RUNDIR)"
