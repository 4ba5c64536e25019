#!/usr/bin/env bash
# Throwaway local stack for patient-worker tests: PostgreSQL 15 + one Kafka
# broker, all on 127.0.0.1 with random free ports, all state under one
# directory that `down` deletes.  No Docker: CI machines have none, so we run
# the Debian PostgreSQL binaries directly and a real Apache Kafka broker from
# jars fetched via Maven Central (scripts/kafka/pom.xml).  If Java/Maven are
# not usable we fall back, LOUDLY, to librdkafka's mock cluster.
#
#   scripts/stack.sh up          start everything, print env lines
#   scripts/stack.sh env         print `export VAR=...` lines (eval them)
#   scripts/stack.sh status      show what runs; exit 0 only if all is up
#   scripts/stack.sh down        stop everything, delete the state dir
#   scripts/stack.sh pg-stop | pg-start        (fault tests; data is kept)
#   scripts/stack.sh kafka-stop | kafka-start [N]  (fault tests; same ports/data;
#                                              N: only node N of a cluster)
#   scripts/stack.sh kafka-kill N              SIGKILL node N (failover tests)
#   scripts/stack.sh kafka-topics ARGS...      Kafka topic CLI (TopicCommand)
#
# Environment knobs:
#   PW_STACK_DIR    state dir (default <repo>/build/stack)
#   PW_STACK_CACHE  download cache (default ~/.cache/patient-worker)
#   PW_FORCE_MOCK=1 use the librdkafka mock cluster even if Kafka would work
#   PW_KAFKA_NODES=3  a KRaft cluster of three nodes (replication factor 3,
#                   min.insync.replicas 2) instead of one broker
#   PW_CITUS=1      PostgreSQL as a Citus cluster: a coordinator (DATABASE_URL) and
#                   two workers, all on 127.0.0.1, from the Citus installed into
#                   PostgreSQL 15 (Citus's Debian package, or scripts/citus-build.sh)
#   KAFKA_BROKERS / DATABASE_URL already set: use those, do not start ours
#   TOPIC_CREATE / TOPIC_QUERY / TOPIC_REPLIES / TOPIC_DLQ: topic names
#
# Every wait is bounded; nothing here may hang a CI run.
set -eu
set -o pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${PW_STACK_DIR:-$REPO_ROOT/build/stack}
case $STATE in /*) ;; *) STATE=$PWD/$STATE ;; esac # paths go into configs
CACHE=${PW_STACK_CACHE:-${HOME:-/root}/.cache/patient-worker}
KAFKA_LIB=$CACHE/kafka-lib
KAFKA_POM=$REPO_ROOT/scripts/kafka/pom.xml
PG_BIN=/usr/lib/postgresql/15/bin
PG_DB=patients

TOPIC_CREATE=${TOPIC_CREATE:-patients.create}
TOPIC_QUERY=${TOPIC_QUERY:-patients.query}
TOPIC_REPLIES=${TOPIC_REPLIES:-patients.replies}
TOPIC_DLQ=${TOPIC_DLQ:-patients.dlq}

KAFKA_READY_TIMEOUT=90 # seconds for the broker to answer metadata
STOP_TIMEOUT=30        # seconds for a graceful stop before SIGKILL

# JVM flags for the short-lived CLI tools: they run for ~2 s, so a small heap
# and the C1-only JIT make them start noticeably faster on 2 cores.
CLI_JAVA_OPTS=(-Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

log() { printf 'stack: %s\n' "$*" >&2; }
die() {
	printf 'stack: ERROR: %s\n' "$*" >&2
	exit 1
}

banner() {
	local line='================================================================'
	printf '\n%s\n  %s\n%s\n\n' "$line" "$*" "$line" >&2
}

# --- small state helpers -----------------------------------------------------
# Each fact lives in its own file under $STATE so shell code (and humans) can
# read it without a parser.
put() { printf '%s\n' "$2" >"$STATE/$1"; }
get() { if [ -f "$STATE/$1" ]; then cat "$STATE/$1"; fi; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# PostgreSQL refuses to run as root, so as root we act as the `postgres`
# system user (created by the postgresql-15 package).  As a normal user we
# simply run it as ourselves.
# The subshell cds to / because postgres may not be allowed into our cwd
# (e.g. /root), which pg_ctl and psql complain about.
as_pg() {
	if is_root; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# True if pid $1 is alive and its command line contains $2 (guards against a
# recycled PID after a reboot or crash).
pid_alive() {
	local pid=$1 marker=$2
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"
}

port_in_use() {
	local port=$1
	if command -v ss >/dev/null 2>&1 && [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
		return 0
	fi
	# Fallback / double check: can we connect?
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# tcp_reachable HOST:PORT - a bounded connect attempt.
tcp_reachable() {
	local host=${1%:*} port=${1##*:}
	# shellcheck disable=SC2016  # $1/$2 are for the inner bash
	timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' sh "$host" "$port" 2>/dev/null
}

# After `eval "$(stack.sh env)"; stack.sh down`, the shell still exports the
# dead stack's KAFKA_BROKERS/DATABASE_URL, and a following `up` would take
# them for external services.  `env` therefore also exports PW_STACK_OWNED
# naming the values it handed out; such a value whose server no longer
# answers is a leftover and is ignored.  Values the user set are always used.
stale_leftover() { # KEY VALUE HOST:PORT
	case " ${PW_STACK_OWNED:-} " in *" $1=$2 "*) ;; *) return 1 ;; esac
	! tcp_reachable "$3"
}

# Pick a free TCP port.  Random base below the Linux ephemeral range
# (32768+) so we do not collide with outgoing client connections; ports handed
# out earlier in this run are skipped because nothing listens on them yet.
PICKED_PORTS=" "
free_port() {
	local tries=0 port
	while [ $tries -lt 200 ]; do
		port=$((15000 + RANDOM % 17000))
		tries=$((tries + 1))
		case $PICKED_PORTS in *" $port "*) continue ;; esac
		if ! port_in_use "$port"; then
			PICKED_PORTS="$PICKED_PORTS$port "
			echo "$port"
			return 0
		fi
	done
	die "no free TCP port found after 200 tries"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll every 0.5 s, bounded.
wait_for() {
	local secs=$1 what=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			log "timed out after ${secs}s waiting for $what"
			return 1
		fi
		sleep 0.5
	done
}

# SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL.  Never hangs.
stop_pid() {
	local pid=$1 marker=$2 what=$3
	pid_alive "$pid" "$marker" || return 0
	log "stopping $what (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + STOP_TIMEOUT))
	while pid_alive "$pid" "$marker"; do
		if [ $SECONDS -ge $deadline ]; then
			log "$what did not stop within ${STOP_TIMEOUT}s; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.5
			break
		fi
		sleep 0.3
	done
}

# Start "$@" detached (own session, so a Ctrl-C in the calling shell or the
# end of the calling script does not take it down), stdin from /dev/null,
# stdout/stderr to files.  The child writes its own PID before exec'ing, so
# the recorded PID is the real server process.
spawn() {
	local pidfile=$1 out=$2 err=$3
	shift 3
	rm -f "$pidfile"
	# shellcheck disable=SC2016  # $$ and $@ are for the inner sh
	setsid sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$pidfile" "$@" \
		</dev/null >"$out" 2>"$err" &
	local i=0
	while [ ! -s "$pidfile" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -s "$pidfile" ] || die "could not start $1"
}

# =============================================================================
# PostgreSQL
# =============================================================================
# Nodes: c (the only one, or Citus's coordinator), and w1, w2 (Citus's workers).
pg_nodes() { if [ "$(get pg_engine)" = citus ]; then echo c w1 w2; else echo c; fi; }
nkey() { if [ "$1" = c ]; then echo "$2"; else echo "$2.$1"; fi; }
pg_data() { get "$(nkey "${1:-c}" pg_data)"; }
pg_port() { get "$(nkey "${1:-c}" pg_port)"; }
pg_psql() { # NODE DB SQL
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(pg_port "$1")" -U postgres -d "$2" -tAc "$3"
}

pg_running() {
	local data
	data=$(pg_data "${1:-c}")
	[ -n "$data" ] && [ -d "$data" ] && as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1
}

pg_all_running() {
	local n
	for n in $(pg_nodes); do pg_running "$n" || return 1; done
}

# Where Citus is: installed into this PostgreSQL by its Debian package
# (postgresql-15-citus-*) or by scripts/citus-build.sh; both put it here.
citus_found() {
	[ -f "$("$PG_BIN/pg_config" --pkglibdir)/citus.so" ] &&
		[ -f "$("$PG_BIN/pg_config" --sharedir)/extension/citus.control" ]
}

pg_setup() {
	[ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 not found in $PG_BIN; run scripts/install-deps.sh"
	if is_root; then
		id postgres >/dev/null 2>&1 || die "system user 'postgres' missing; run scripts/install-deps.sh"
	fi

	# The data dir must be reachable by the postgres user.  Under /root (mode
	# 700) it is not, and the Unix socket path has a ~107-byte limit, so in
	# either case we use a private dir in /tmp and record where it is.
	local base="$STATE/pg"
	mkdir -p "$base"
	is_root && chown postgres: "$base"
	if ! as_pg test -w "$base" || [ ${#base} -gt 80 ]; then
		rmdir "$base" 2>/dev/null || true
		base=$(mktemp -d /tmp/pw-pg.XXXXXX)
		is_root && chown postgres: "$base"
		put pg_tmpdir "$base"
		log "PostgreSQL data lives in $base ($STATE is not usable by the postgres user)"
	fi
	local node
	for node in $(pg_nodes); do pg_setup_node "$node" "$base"; done
}

pg_setup_node() { # NODE BASE
	local node=$1 base=$2 data port
	if [ "$node" = c ]; then data=$base/data; else data=$base/$node; fi
	port=$(free_port)
	put "$(nkey "$node" pg_data)" "$data"
	put "$(nkey "$node" pg_port)" "$port"
	put "$(nkey "$node" pg_log)" "$data.log"

	log "initdb $data"
	# Throwaway test stack: `trust` auth for local socket and loopback TCP, so
	# tests connect as postgres without a password.  Never use this for
	# anything that outlives a test run.  --no-sync: the cluster is disposable.
	as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 \
		--locale=C.UTF-8 --no-sync --no-instructions >"$STATE/initdb.log" 2>&1 ||
		{
			tail -20 "$STATE/initdb.log" >&2
			die "initdb failed"
		}
	as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF

# --- patient-worker throwaway test stack (scripts/stack.sh) ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$data'
shared_buffers = 128MB
max_connections = 100
# Per-statement time and WAL for tests/bench/write_cost.sh (needs a restart to load).
shared_preload_libraries = 'pg_stat_statements'
EOF
	[ "$(get pg_engine)" = citus ] || return 0
	as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF
# --- Citus (PW_CITUS=1): README, "Scaling" ---
shared_preload_libraries = 'citus,pg_stat_statements'
# A transaction that writes on two workers commits with two-phase commit.
max_prepared_transactions = 100
# JIT compiling the worker-side queries cost a create ~700 ms.
jit = off
# SET LOCAL app.owner_id must reach the workers, where row-level security runs; the
# worker refuses to start without it.
citus.propagate_set_commands = 'local'
EOF
}

pg_start() {
	local node
	for node in $(pg_nodes); do pg_start_node "$node"; done
}

pg_start_node() {
	local node=$1 data log
	data=$(pg_data "$node")
	log=$(get "$(nkey "$node" pg_log)")
	if pg_running "$node"; then
		log "PostgreSQL ($node) already running"
		return 0
	fi
	log "starting PostgreSQL ($node) on 127.0.0.1:$(pg_port "$node")"
	as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null ||
		{
			tail -20 "$log" >&2 || true
			die "PostgreSQL did not start (log: $log)"
		}
}

pg_stop() {
	local node
	for node in $(pg_nodes); do pg_stop_node "$node"; done
}

pg_stop_node() {
	local data
	data=$(pg_data "$1")
	pg_running "$1" || return 0
	log "stopping PostgreSQL ($1)"
	as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t "$STOP_TIMEOUT" stop >/dev/null 2>&1 ||
		as_pg "$PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
}

pg_up() {
	if [ -n "${DATABASE_URL:-}" ]; then
		local hp=${DATABASE_URL#*@}
		hp=${hp%%/*}
		if stale_leftover db "$DATABASE_URL" "$hp"; then
			log "ignoring DATABASE_URL=$DATABASE_URL: left over from a stack that is gone"
			unset DATABASE_URL
		fi
	fi
	if [ -n "${DATABASE_URL:-}" ]; then
		log "DATABASE_URL is set: using it, not starting PostgreSQL (unset it for a throwaway one)"
		put pg_mode external
		put database_url "$DATABASE_URL"
		return 0
	fi
	put pg_mode managed
	if [ "${PW_CITUS:-0}" = 1 ]; then
		citus_found || die "PW_CITUS=1 but no Citus in PostgreSQL 15 ($("$PG_BIN/pg_config" --pkglibdir)): install postgresql-15-citus-13.2 from packages.citusdata.com, or build it: scripts/citus-build.sh SRC_DIR"
		put pg_engine citus
	else
		put pg_engine postgres
	fi
	pg_setup
	pg_start
	local node
	for node in $(pg_nodes); do
		# Idempotent: the database may already exist after a partial earlier run.
		if ! pg_psql "$node" postgres "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
			"$PG_BIN/createdb" -h 127.0.0.1 -p "$(pg_port "$node")" -U postgres "$PG_DB"
		fi
	done
	[ "$(get pg_engine)" != citus ] || citus_cluster
	put database_url "postgresql://postgres@127.0.0.1:$(pg_port)/$PG_DB"
}

# The extension in every node's database, then the coordinator learns its workers.
# Connections between nodes authenticate as the stack's do: trust on loopback.
citus_cluster() {
	local node
	for node in $(pg_nodes); do
		pg_psql "$node" "$PG_DB" "CREATE EXTENSION IF NOT EXISTS citus" >/dev/null
	done
	pg_psql c "$PG_DB" "SELECT citus_set_coordinator_host('127.0.0.1', $(pg_port c))" >/dev/null
	for node in w1 w2; do
		pg_psql c "$PG_DB" "SELECT citus_add_node('127.0.0.1', $(pg_port "$node"))" >/dev/null
	done
	log "Citus $(pg_psql c "$PG_DB" "SELECT extversion FROM pg_extension WHERE extname = 'citus'"): coordinator 127.0.0.1:$(pg_port c), workers 127.0.0.1:$(pg_port w1) and :$(pg_port w2)"
}

# =============================================================================
# Kafka (real broker)
# =============================================================================
kafka_java() { java "${CLI_JAVA_OPTS[@]}" -Dlog4j.configuration="file:$STATE/kafka/tools-log4j.properties" -cp "$KAFKA_LIB/*" "$@"; }

# Fill $KAFKA_LIB from Maven Central once; later runs reuse it.  A marker
# with the pom's checksum means a pom change (e.g. version bump) refetches.
ensure_kafka_lib() {
	command -v java >/dev/null 2>&1 || {
		log "java not found"
		return 1
	}
	local sum
	sum=$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)
	if [ "$(cat "$KAFKA_LIB/.complete" 2>/dev/null)" = "$sum" ]; then
		return 0
	fi
	command -v mvn >/dev/null 2>&1 || {
		log "mvn not found; cannot fetch Kafka jars"
		return 1
	}
	mkdir -p "$CACHE"
	local tmp="$KAFKA_LIB.tmp.$$" ver
	# 3.9.1 is the target; 3.9.0 only in case a mirror lacks the newer one.
	for ver in 3.9.1 3.9.0; do
		rm -rf "$tmp"
		log "fetching Apache Kafka $ver jars via Maven (one-time, cached in $KAFKA_LIB)"
		if timeout 600 mvn -B -q -f "$KAFKA_POM" -Dkafka.version="$ver" \
			dependency:copy-dependencies -DoutputDirectory="$tmp" >"$CACHE/mvn.log" 2>&1; then
			# Swap in atomically so a killed run never leaves a half-filled lib.
			rm -rf "$KAFKA_LIB"
			mv "$tmp" "$KAFKA_LIB"
			echo "$sum" >"$KAFKA_LIB/.complete"
			return 0
		fi
		log "Maven failed for Kafka $ver:"
		tail -5 "$CACHE/mvn.log" >&2 || true
	done
	rm -rf "$tmp"
	return 1
}

kafka_version() {
	local jar
	for jar in "$KAFKA_LIB"/kafka_2.13-*.jar; do
		jar=${jar##*/kafka_2.13-}
		echo "${jar%.jar}"
		return 0
	done
}

# PW_KAFKA_NODES=3 at `up` makes a cluster of three combined broker+controller nodes
# (the scale-out test, issue 13); 1 is the single broker every other test uses. The
# count is kept in the state dir, so the later commands need not be told again.
kafka_nodes() {
	local n
	n=$(get kafka_nodes)
	echo "${n:-1}"
}
# Node k's dir: one node keeps the layout of old ($STATE/kafka), a cluster's sit below it.
kdir() { if [ "$(kafka_nodes)" = 1 ]; then echo "$STATE/kafka"; else echo "$STATE/kafka/node$1"; fi; }
node_list() { seq 1 "$(kafka_nodes)"; }

kafka_write_config() {
	local n k dir voters="" brokers="" rf isr
	n=$(kafka_nodes)
	for k in $(node_list); do
		put "kafka_port.$k" "$(free_port)"
		put "kafka_cport.$k" "$(free_port)"
		voters="$voters,$k@127.0.0.1:$(get "kafka_cport.$k")"
		brokers="$brokers,127.0.0.1:$(get "kafka_port.$k")"
	done
	put kafka_brokers "${brokers#,}"
	# One node: every replication factor / ISR must be 1. A cluster: three copies, and a
	# write acknowledged by acks=all is on two of them at least, so losing one node
	# loses no acknowledged record and leaves every partition writable.
	if [ "$n" = 1 ]; then rf=1 isr=1; else rf=$n isr=2; fi
	for k in $(node_list); do
		dir=$(kdir "$k")
		mkdir -p "$dir/data"
		cat >"$dir/server.properties" <<PROPS
# KRaft node $k of $n for the throwaway test stack (scripts/stack.sh).
process.roles=broker,controller
node.id=$k
controller.quorum.voters=${voters#,}
listeners=PLAINTEXT://127.0.0.1:$(get "kafka_port.$k"),CONTROLLER://127.0.0.1:$(get "kafka_cport.$k")
advertised.listeners=PLAINTEXT://127.0.0.1:$(get "kafka_port.$k")
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
# Fewer internal partitions than the defaults (50) => faster first group join.
offsets.topic.num.partitions=4
transaction.state.log.num.partitions=4
# Tests want consumers assigned immediately, and only the topics we create.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.partitions=4
PROPS
		if [ "$n" != 1 ]; then
			# A killed node is fenced (its partitions led elsewhere, it leaves every ISR)
			# after 4 s without a heartbeat rather than 9: the failover tests wait less.
			# Leadership stays where failover put it: the tests choose whom to kill from
			# the leaders they see, and a move back mid-load would be a third failover.
			cat >>"$dir/server.properties" <<PROPS
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
auto.leader.rebalance.enable=false
PROPS
		fi
		# Broker log: INFO to a file (WARN for the chatty request/state loggers).
		cat >"$dir/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.controller=WARN
log4j.logger.kafka.log.LogCleaner=WARN
PROPS
	done
	kafka_write_tools_log4j
}

# A KRaft cluster id is a base64url-encoded 16-byte UUID (22 chars).  Made
# here instead of `StorageTool random-uuid` to save one JVM start.  Like
# Kafka, avoid a leading '-' (it would look like a CLI option).
random_cluster_id() {
	local id
	while :; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)
		case $id in -*) continue ;; *) echo "$id" && return 0 ;; esac
	done
}

# Every node formatted with the one cluster id; the JVMs run in parallel.
kafka_format() {
	local id k dir pids=() rc=0 p
	id=$(random_cluster_id)
	log "formatting KRaft storage (cluster id $id, $(kafka_nodes) node(s))"
	for k in $(node_list); do
		dir=$(kdir "$k")
		kafka_java kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" \
			>"$dir/format.log" 2>&1 &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	if [ $rc -ne 0 ]; then
		for k in $(node_list); do cat "$(kdir "$k")/format.log" >&2; done
		return 1
	fi
}

kafka_pid() { cat "$(kdir "$1")/kafka.pid" 2>/dev/null || true; }
kafka_running() { pid_alive "$(kafka_pid "$1")" kafka.Kafka; }

kafka_spawn() {
	local dir heap=512m
	dir=$(kdir "$1")
	[ "$(kafka_nodes)" = 1 ] || heap=384m # three JVMs on a small machine
	# Fresh log per start so failure reports show this start's errors only.
	[ ! -f "$dir/server.log" ] || mv "$dir/server.log" "$dir/server.log.prev"
	spawn "$dir/kafka.pid" "$dir/stdout.log" "$dir/stderr.log" \
		java -Xms128m -Xmx$heap -XX:+UseG1GC -Djava.awt.headless=true \
		-Dlog4j.configuration="file:$dir/log4j.properties" \
		-Dkafka.logs.dir="$dir" \
		-cp "$KAFKA_LIB/*" kafka.Kafka "$dir/server.properties"
}

# How many brokers the cluster's metadata lists, through the real CLI: proves the
# brokers (not just their sockets) serve, and that they registered with the quorum.
kafka_brokers_listed() {
	timeout 20 java "${CLI_JAVA_OPTS[@]}" -Dlog4j.configuration="file:$STATE/kafka/tools-log4j.properties" \
		-cp "$KAFKA_LIB/*" kafka.admin.BrokerApiVersionsCommand \
		--bootstrap-server "$(get kafka_brokers)" 2>/dev/null | grep -c ' (id: [0-9]* rack: ' || true
}

kafka_fail() {
	local dir
	dir=$(kdir "$2")
	log "$1"
	log "--- errors in $dir/server.log ---"
	grep -E '^\[[^]]*\] (ERROR|FATAL)' "$dir/server.log" 2>/dev/null | tail -10 >&2 || true
	log "--- last 30 lines of $dir/server.log ---"
	tail -30 "$dir/server.log" >&2 2>/dev/null || true
	tail -20 "$dir/stderr.log" >&2 2>/dev/null || true
	die "Kafka broker not ready"
}

# Waits until nodes "$@" listen and the metadata lists every node of the cluster.
kafka_wait_ready() {
	local k port deadline
	deadline=$((SECONDS + KAFKA_READY_TIMEOUT))
	for k in "$@"; do
		port=$(get "kafka_port.$k")
		until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
			kafka_running "$k" || kafka_fail "Kafka node $k exited during startup" "$k"
			[ $SECONDS -lt $deadline ] || kafka_fail "Kafka node $k not listening on 127.0.0.1:$port after ${KAFKA_READY_TIMEOUT}s" "$k"
			sleep 0.5
		done
	done
	until [ "$(kafka_brokers_listed)" -ge "$(kafka_nodes)" ]; do
		for k in "$@"; do
			kafka_running "$k" || kafka_fail "Kafka node $k exited during startup" "$k"
		done
		[ $SECONDS -lt $deadline ] || kafka_fail "the metadata does not list $(kafka_nodes) broker(s) after ${KAFKA_READY_TIMEOUT}s" "$1"
		sleep 1
	done
}

# kafka_start [K]: node K, or every node (started together: a cluster's first
# controller election needs a majority of them).
kafka_start() {
	local k p todo=()
	for k in ${1:-$(node_list)}; do
		if kafka_running "$k"; then
			log "Kafka node $k already running"
			continue
		fi
		# Restarts reuse the ports in server.properties; if something else grabbed
		# one meanwhile, say so instead of timing out on a stranger's socket.
		for p in "$(get "kafka_port.$k")" "$(get "kafka_cport.$k")"; do
			! port_in_use "$p" || die "port $p (from $(kdir "$k")/server.properties) is in use by another process"
		done
		log "starting Kafka node $k on 127.0.0.1:$(get "kafka_port.$k") (controller port $(get "kafka_cport.$k"))"
		kafka_spawn "$k"
		todo+=("$k")
	done
	[ ${#todo[@]} -eq 0 ] || kafka_wait_ready "${todo[@]}"
}

# kafka_stop [K]: SIGTERM (a clean shutdown) to node K, or to every node at once: one
# by one, the last node's shutdown waits for a controller quorum that is gone.
kafka_stop() {
	local k pids=() p
	for k in ${1:-$(node_list)}; do
		stop_pid "$(kafka_pid "$k")" kafka.Kafka "Kafka node $k" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || true; done
}

# kafka_kill K: SIGKILL, as a crashed machine: no clean shutdown, no leadership handed on.
kafka_kill() {
	local pid deadline=$((SECONDS + 10))
	pid=$(kafka_pid "$1")
	pid_alive "$pid" kafka.Kafka || die "Kafka node $1 is not running"
	log "SIGKILL to Kafka node $1 (pid $pid)"
	kill -KILL "$pid"
	while pid_alive "$pid" kafka.Kafka; do
		[ $SECONDS -lt $deadline ] || die "Kafka node $1 (pid $pid) still alive 10 s after SIGKILL"
		sleep 0.1
	done
}

# Topic creation: one CLI call per topic (TopicCommand takes one --topic).
# The JVMs run in parallel: each is ~2 s of mostly startup. No replication factor is
# given: the broker's default.replication.factor applies (3 on a cluster we start).
create_topics() {
	local brokers=$1 pids=() rc=0 t
	local -a specs=(
		"$TOPIC_CREATE 4 message.timestamp.type=LogAppendTime"
		"$TOPIC_QUERY 4 message.timestamp.type=LogAppendTime"
		"$TOPIC_REPLIES 4 -"
		"$TOPIC_DLQ 1 -"
	)
	mkdir -p "$STATE/kafka"
	[ -f "$STATE/kafka/tools-log4j.properties" ] || kafka_write_tools_log4j
	for t in "${specs[@]}"; do
		# shellcheck disable=SC2086  # split "name partitions config"
		set -- $t
		local -a cfg=()
		[ "$3" = - ] || cfg=(--config "$3")
		log "topic $1: $2 partitions${cfg[1]:+, $3}"
		timeout 90 java "${CLI_JAVA_OPTS[@]}" -Dlog4j.configuration="file:$STATE/kafka/tools-log4j.properties" \
			-cp "$KAFKA_LIB/*" org.apache.kafka.tools.TopicCommand --bootstrap-server "$brokers" \
			--create --if-not-exists --topic "$1" --partitions "$2" \
			"${cfg[@]}" >/dev/null &
		pids+=($!)
	done
	for t in "${pids[@]}"; do wait "$t" || rc=1; done
	[ $rc -eq 0 ] || die "creating topics failed"
}

# CLI tools: warnings only, on stderr.
kafka_write_tools_log4j() {
	cat >"$STATE/kafka/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

# =============================================================================
# librdkafka mock cluster (fallback)
# =============================================================================
MOCK_SRC=$REPO_ROOT/tests/support/mock_broker.c

mock_pid() { get mock/mock.pid; }
mock_running() { pid_alive "$(mock_pid)" mock_broker; }

mock_up() {
	local dir=$STATE/mock bin=$STATE/mock_broker
	mkdir -p "$dir"
	if [ ! -x "$bin" ] || [ "$MOCK_SRC" -nt "$bin" ]; then
		log "compiling $MOCK_SRC"
		command -v cc >/dev/null 2>&1 || die "no C compiler; run scripts/install-deps.sh"
		# shellcheck disable=SC2046  # pkg-config output must split
		cc -O1 -o "$bin" "$MOCK_SRC" $(pkg-config --cflags --libs rdkafka) ||
			die "cannot compile mock broker (librdkafka-dev missing? run scripts/install-deps.sh)"
	fi
	spawn "$dir/mock.pid" "$dir/bootstrap" "$dir/mock.log" "$bin" \
		"$TOPIC_CREATE:4" "$TOPIC_QUERY:4" "$TOPIC_REPLIES:4" "$TOPIC_DLQ:1"
	# It prints its bootstrap servers once the cluster exists.
	wait_for 15 "mock broker bootstrap address" test -s "$dir/bootstrap" ||
		{
			cat "$dir/mock.log" >&2
			die "mock broker did not start"
		}
	put kafka_brokers "$(head -1 "$dir/bootstrap")"
	log "WARNING: the mock cannot apply message.timestamp.type=LogAppendTime; timestamps are producer CreateTime"
}

# kafka-stop/kafka-start on the mock: SIGUSR1/SIGUSR2 take its broker down
# and up, keeping port and in-memory data (a restarted process could not).
mock_stop() {
	mock_running || die "mock broker process is gone; run: $0 down && $0 up"
	kill -USR1 "$(mock_pid)"
	touch "$STATE/mock/down"
	log "mock broker set DOWN"
}
mock_start() {
	mock_running || die "mock broker process is gone; run: $0 down && $0 up"
	kill -USR2 "$(mock_pid)"
	rm -f "$STATE/mock/down"
	log "mock broker set UP"
}

# =============================================================================
# Broker selection
# =============================================================================
kafka_up() {
	if [ -n "${KAFKA_BROKERS:-}" ] && stale_leftover kafka "$KAFKA_BROKERS" "${KAFKA_BROKERS%%,*}"; then
		log "ignoring KAFKA_BROKERS=$KAFKA_BROKERS: left over from a stack that is gone"
		unset KAFKA_BROKERS
	fi
	if [ -n "${KAFKA_BROKERS:-}" ]; then
		log "KAFKA_BROKERS is set: using $KAFKA_BROKERS, not starting a broker"
		tcp_reachable "${KAFKA_BROKERS%%,*}" || die "KAFKA_BROKERS=$KAFKA_BROKERS does not accept connections"
		put kafka_mode external
		put kafka_brokers "$KAFKA_BROKERS"
		put broker_kind "${PW_BROKER_KIND:-kafka}"
		if ensure_kafka_lib; then
			create_topics "$KAFKA_BROKERS"
		else
			log "NOTE: no Kafka CLI available; make sure the topics exist on $KAFKA_BROKERS"
		fi
		return 0
	fi
	put kafka_mode managed

	local why=""
	if [ "${PW_FORCE_MOCK:-0}" = 1 ]; then
		why="PW_FORCE_MOCK=1"
	elif ! ensure_kafka_lib; then
		why="Java/Maven/Kafka jars unavailable"
	fi

	# The mock stands in for one broker only: a cluster's tests need the real thing.
	[ -z "$why" ] || [ "${PW_KAFKA_NODES:-1}" = 1 ] ||
		die "PW_KAFKA_NODES=$PW_KAFKA_NODES needs the real Kafka broker ($why)"
	if [ -z "$why" ]; then
		case ${PW_KAFKA_NODES:-1} in 1 | 3) ;; *) die "PW_KAFKA_NODES must be 1 or 3, not '$PW_KAFKA_NODES'" ;; esac
		put kafka_nodes "${PW_KAFKA_NODES:-1}"
		kafka_write_config
		# A broker that has its jars but fails to start is a real problem:
		# fail loudly rather than quietly degrading to the mock.
		kafka_format || die "formatting Kafka storage failed"
		kafka_start
		put broker_kind kafka
		if [ "$(kafka_nodes)" = 1 ]; then
			banner "REAL Apache Kafka $(kafka_version) broker on $(get kafka_brokers)"
		else
			banner "REAL Apache Kafka $(kafka_version) cluster of $(kafka_nodes) nodes on $(get kafka_brokers)"
		fi
		create_topics "$(get kafka_brokers)"
		return 0
	fi

	put broker_kind mock
	banner "WARNING: librdkafka MOCK cluster (not a real broker) - reason: $why"
	mock_up
}

# =============================================================================
# Commands
# =============================================================================
stack_exists() { [ -f "$STATE/up.complete" ]; }

managed() { [ "$(get "$1_mode")" = managed ]; }

service_up() {
	case $1 in
	pg) managed pg || return 0; pg_all_running ;;
	kafka)
		managed kafka || return 0
		if [ "$(get broker_kind)" = mock ]; then
			mock_running && [ ! -f "$STATE/mock/down" ]
		else
			local k
			for k in $(node_list); do kafka_running "$k" || return 1; done
		fi
		;;
	esac
}

cmd_env() {
	stack_exists || die "stack is not up (run: $0 up)"
	local lib=""
	[ -f "$KAFKA_LIB/.complete" ] && lib=$KAFKA_LIB
	q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
	echo "export KAFKA_BROKERS=$(q "$(get kafka_brokers)")"
	echo "export DATABASE_URL=$(q "$(get database_url)")"
	echo "export PW_BROKER_KIND=$(q "$(get broker_kind)")"
	echo "export PW_KAFKA_NODES=$(q "$(kafka_nodes)")"
	echo "export PW_STACK_DIR=$(q "$STATE")"
	echo "export PW_PG_BIN=$(q "$PG_BIN")"
	echo "export PW_PG_DATA=$(q "$(pg_data)")"
	echo "export PW_PG_ENGINE=$(q "$(get pg_engine)")"
	echo "export PW_KAFKA_LIB=$(q "$lib")"
	echo "export PW_KAFKA_TOOLS_LOG4J=$(q "$STATE/kafka/tools-log4j.properties")"
	echo "export TOPIC_CREATE=$(q "$TOPIC_CREATE")"
	echo "export TOPIC_QUERY=$(q "$TOPIC_QUERY")"
	echo "export TOPIC_REPLIES=$(q "$TOPIC_REPLIES")"
	echo "export TOPIC_DLQ=$(q "$TOPIC_DLQ")"
	local owned=""
	managed kafka && owned="kafka=$(get kafka_brokers)"
	managed pg && owned="$owned db=$(get database_url)"
	echo "export PW_STACK_OWNED=$(q "${owned# }")"
}

cmd_up() {
	local t0=$SECONDS
	if stack_exists; then
		# Already set up: restart whatever died (data is kept), else no-op.
		if service_up pg && service_up kafka; then
			log "stack already up in $STATE"
		else
			log "stack exists in $STATE but a service is down; restarting it"
			service_up pg || pg_start
			if ! service_up kafka; then
				# mock_start refuses if the mock process died (its data
				# was in memory only); a real broker restarts on its data.
				if [ "$(get broker_kind)" = mock ]; then mock_start; else kafka_start; fi
			fi
		fi
		cmd_env
		return 0
	fi
	if [ -d "$STATE" ] && [ -n "$(ls -A "$STATE" 2>/dev/null)" ]; then
		log "found a half-built stack in $STATE; cleaning it up first"
		cmd_down
	fi
	mkdir -p "$STATE"
	# On failure keep the logs for diagnosis; the next `up` cleans up anyway.
	trap '[ $? -eq 0 ] || log "up FAILED; logs are in $STATE; clean up with: $0 down"' EXIT

	pg_up
	kafka_up
	date -u +%FT%TZ >"$STATE/up.complete"
	log "stack up in $((SECONDS - t0))s (state: $STATE)"
	cmd_env
}

cmd_down() {
	if [ ! -d "$STATE" ]; then
		log "nothing to stop ($STATE does not exist)"
		return 0
	fi
	# Stop only what we started; external services are left alone.
	[ -n "$(mock_pid)" ] && stop_pid "$(mock_pid)" mock_broker "mock broker"
	if managed kafka; then kafka_stop; fi
	if managed pg && [ -n "$(pg_data)" ]; then pg_stop; fi
	local tmp
	tmp=$(get pg_tmpdir)
	case $tmp in /tmp/pw-pg.?*) rm -rf "$tmp" ;; esac
	rm -rf "$STATE"
	log "stack down"
}

cmd_status() {
	if ! stack_exists; then
		echo "stack: not up ($STATE)"
		return 1
	fi
	local ok=0
	echo "state dir:  $STATE"
	if ! managed pg; then
		echo "postgres:   external ($(get database_url))"
	else
		local node
		for node in $(pg_nodes); do
			if pg_running "$node"; then
				echo "postgres:   $node running  127.0.0.1:$(pg_port "$node")  data=$(pg_data "$node")"
			else
				echo "postgres:   $node STOPPED  data=$(pg_data "$node")"
				ok=1
			fi
		done
		echo "database:   $(get database_url) ($(get pg_engine))"
	fi
	if ! managed kafka; then
		echo "kafka:      external ($(get kafka_brokers))"
	elif [ "$(get broker_kind)" = mock ]; then
		if mock_running && [ -f "$STATE/mock/down" ]; then
			echo "kafka:      MOCK marked DOWN by kafka-stop  $(get kafka_brokers)  pid=$(mock_pid)"
			ok=1
		elif mock_running; then
			echo "kafka:      MOCK running  $(get kafka_brokers)  pid=$(mock_pid)"
		else
			echo "kafka:      MOCK STOPPED"
			ok=1
		fi
	else
		local k
		for k in $(node_list); do
			if kafka_running "$k"; then
				echo "kafka:      node $k running  127.0.0.1:$(get "kafka_port.$k")  pid=$(kafka_pid "$k")  Apache Kafka $(kafka_version)"
			else
				echo "kafka:      node $k STOPPED  (ports $(get "kafka_port.$k")/$(get "kafka_cport.$k"))"
				ok=1
			fi
		done
	fi
	return $ok
}

cmd_pg() {
	stack_exists || die "stack is not up"
	managed pg || die "PostgreSQL is external (DATABASE_URL); cannot $1 it"
	if [ "$1" = stop ]; then pg_stop; else pg_start; fi
}

# cmd_kafka stop|start|kill [NODE]: every node, or node NODE (1..3) of a cluster.
cmd_kafka() {
	stack_exists || die "stack is not up"
	managed kafka || die "Kafka is external (KAFKA_BROKERS); cannot $1 it"
	local node=${2:-}
	if [ -n "$node" ]; then
		[ "$(get broker_kind)" = kafka ] || die "kafka-$1 $node: the mock has no nodes"
		case $node in [1-9]) ;; *) die "kafka-$1: node '$node' is not a number" ;; esac
		[ "$node" -le "$(kafka_nodes)" ] || die "kafka-$1: node $node of $(kafka_nodes)"
	fi
	if [ "$(get broker_kind)" = mock ]; then
		case $1 in stop) mock_stop ;; start) mock_start ;; *) die "kafka-kill needs a real broker" ;; esac
		return 0
	fi
	case $1 in
	stop) kafka_stop "$node" ;;
	# Same server.properties => same ports and data dir as before.
	start) kafka_start "$node" ;;
	kill)
		[ -n "$node" ] || die "kafka-kill needs a node number"
		kafka_kill "$node"
		;;
	esac
}

# Convenience for tests and humans: the Kafka topic CLI against our broker,
# e.g. `scripts/stack.sh kafka-topics --describe --topic patients.create`.
cmd_kafka_topics() {
	stack_exists || die "stack is not up"
	[ -f "$KAFKA_LIB/.complete" ] || die "no Kafka CLI jars in $KAFKA_LIB"
	[ "$(get broker_kind)" != mock ] || log "WARNING: talking to the librdkafka MOCK cluster"
	[ -f "$STATE/kafka/tools-log4j.properties" ] || kafka_write_tools_log4j
	kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$(get kafka_brokers)" "$@"
}

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
env) cmd_env ;;
status) cmd_status ;;
pg-stop) cmd_pg stop ;;
pg-start) cmd_pg start ;;
kafka-stop | kafka-start | kafka-kill) cmd_kafka "${1#kafka-}" "${2:-}" ;;
kafka-topics)
	shift
	cmd_kafka_topics "$@"
	;;
*) usage ;;
esac
