#!/usr/bin/env bash
# Query latency benchmark: p50/p99 round trip of sequential patient.get on an idle
# worker, then while a bulk load of creates is being ingested. Prints figures; asserts
# nothing. The measuring is pw_bulk's (e2e with --gets), as in tests/bench/bench.sh.
#   tests/bench/query_latency.sh [--gets N] [--load N]     (defaults 500, 20000)
# Uses the stack in the environment (eval "$(scripts/stack.sh env)"), else starts a
# throwaway one and stops it at the end.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${PW_BUILD_DIR:-build}
gets=500
load=20000
while [ $# -gt 0 ]; do
	case $1 in
	--gets) gets=${2:?--gets needs a number}; shift 2 ;;
	--load) load=${2:?--load needs a number}; shift 2 ;;
	*) echo "unknown option $1 (--gets N, --load N)" >&2; exit 2 ;;
	esac
done
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target patient-worker pw_bulk >/dev/null

own_stack=0
if [ -z "${KAFKA_BROKERS:-}" ] || [ -z "${DATABASE_URL:-}" ]; then
	export PW_STACK_DIR=$PWD/$BUILD/bench-stack
	own_stack=1
	scripts/stack.sh up >/dev/null
	eval "$(scripts/stack.sh env)"
fi
worker=
cleanup() {
	[ -n "$worker" ] && kill -TERM "$worker" 2>/dev/null && wait "$worker" 2>/dev/null
	[ $own_stack = 1 ] && scripts/stack.sh down >/dev/null 2>&1
	true
}
trap cleanup EXIT

run=bench$$
export TOPIC_CREATE=$run.create TOPIC_QUERY=$run.query TOPIC_REPLIES=$run.replies
export TOPIC_DLQ=$run.dlq KAFKA_GROUP_ID=$run
export JWT_SECRET=${JWT_SECRET:-bench-secret-0123456789-0123456789-abcdef}
export LOG_LEVEL=warn
BULK=$BUILD/tests/pw_bulk
"$BULK" topic "$TOPIC_CREATE" 4 logappend
"$BULK" topic "$TOPIC_QUERY" 4 logappend
"$BULK" topic "$TOPIC_REPLIES" 4
# The gets' replies on a topic of their own, so they are not read among the creates'.
"$BULK" topic "$TOPIC_REPLIES.q" 1
"$BULK" topic "$TOPIC_DLQ" 1

"$BUILD/patient-worker" migrate >/dev/null 2>&1
log=$BUILD/bench-worker.log
HTTP_ADDR= "$BUILD/patient-worker" run 2>"$log" &
worker=$!

echo "machine $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m)"
echo "broker ${PW_BROKER_KIND:-external}"
"$BULK" e2e --creates "$load" --run "$run" --label q --tenants 1 --members 2 \
	--gets "$gets" --query-reply-to "$TOPIC_REPLIES.q" | tee "$BUILD/bench-queries.out" |
	grep -E '^(query_|e2e_creates_per_s|e2e_elapsed_s)'
