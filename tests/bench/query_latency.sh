#!/usr/bin/env bash
# Query latency benchmark: p50/p99 round trip of 500 sequential patient.get on an idle
# worker, then while 20,000 creates are being ingested. Prints figures; asserts nothing.
#   tests/bench/query_latency.sh [--gets N] [--load N]
# Uses the stack in $PW_STACK_DIR when it is up (eval "$(scripts/stack.sh env)"),
# else starts a throwaway one and stops it at the end.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${PW_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target patient-worker pw_bench >/dev/null

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
scripts/stack.sh kafka-topics --create --topic "$TOPIC_CREATE" --partitions 4 \
	--replication-factor 1 --config message.timestamp.type=LogAppendTime >/dev/null
scripts/stack.sh kafka-topics --create --topic "$TOPIC_QUERY" --partitions 4 \
	--replication-factor 1 --config message.timestamp.type=LogAppendTime >/dev/null
scripts/stack.sh kafka-topics --create --topic "$TOPIC_REPLIES" --partitions 4 \
	--replication-factor 1 >/dev/null
scripts/stack.sh kafka-topics --create --topic "$TOPIC_DLQ" --partitions 1 \
	--replication-factor 1 >/dev/null

"$BUILD/patient-worker" migrate >/dev/null 2>&1
log=$BUILD/bench-worker.log
HTTP_ADDR= "$BUILD/patient-worker" run 2>"$log" &
worker=$!

echo "machine $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m)"
echo "broker ${PW_BROKER_KIND:-external}"
"$BUILD/tests/pw_bench" queries "$@" | tee "$BUILD/bench-queries.out"
owner=$(awk '$1 == "query_load_owner" {print $2}' "$BUILD/bench-queries.out")
# How far the bulk load had come when the gets finished is printed by pw_bench; this
# is the whole load's end, for reference.
for _ in $(seq 1 600); do
	n=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM patients WHERE owner_id = '$owner'")
	[ "$n" -ge "$(awk '$1 == "query_load_creates" {print $2 + 1}' "$BUILD/bench-queries.out")" ] && break
	sleep 0.5
done
echo "query_load_rows_at_end $n"
