#!/usr/bin/env bash
# The container image and docker/compose.yaml, really run (podman, as root; no Docker
# engine runs on the test machines): scripts/test.sh calls this with the test stack up.
#
#   1. podman's settings for this machine, in a file of ours (CONTAINERS_CONF; /etc is
#      left alone): rlimits podman may set here, runc (crun refuses hybrid cgroups),
#      netavark with aardvark-dns (compose's services find each other by name);
#   2. the debian:12 and debian:12-slim bases, which no registry can give us here:
#      debootstrap --variant=minbase bookworm of Debian's archive, cached as a tarball in
#      $BUILD/container/ (a machine that keeps files builds it once), imported and tagged;
#   3. docker/Dockerfile built unchanged (--format docker keeps its HEALTHCHECK), then the
#      image: --help runs, user 10001, no compiler, its size printed;
#   4. a worker container (host network) against the test stack with a login that is not
#      a superuser: healthy through its own HEALTHCHECK, a create (201) and a get (200)
#      answered, exit 0 within its grace period on `podman stop`;
#   5. docker/compose.yaml unchanged, by Debian's docker-compose 1.29 through podman's
#      Docker API, with stand-ins for apache/kafka and postgres built from tests/docker/:
#      the one-shots exit 0, both worker replicas become healthy, patientctl (the tools
#      profile) gets a 201, and after `stop` every container has exited 0.
#
# podman runs health checks from systemd timers, and there is no systemd here: a loop
# below runs `podman healthcheck run` for every running container every 2 s instead, as
# the timers would. Every wait is bounded.
set -eu
set -o pipefail
cd "$(dirname "$0")/.."

BUILD=${PW_BUILD_DIR:-build}
mkdir -p "$BUILD/container"
C=$(cd "$BUILD/container" && pwd)
STACK_CACHE=${PW_STACK_CACHE:-${HOME:-/root}/.cache/patient-worker}
: "${KAFKA_BROKERS:?KAFKA_BROKERS: run with the test stack up (scripts/test.sh)}"
: "${DATABASE_URL:?DATABASE_URL: run with the test stack up (scripts/test.sh)}"
PROJECT=pwct
IMAGE=patient-worker:dev
started=$(date +%s)

log() { echo "container-test: $*"; }
fail() {
	echo "container-test: FAIL: $*" >&2
	exit 1
}
# elapsed SINCE: seconds from SINCE to now.
elapsed() { echo $(($(date +%s) - $1)); }

for tool in podman runc debootstrap docker-compose psql; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

export CONTAINERS_CONF=$C/containers.conf
nofile=$(ulimit -Hn)
cat >"$CONTAINERS_CONF" <<EOF
# Written by scripts/container-test.sh for its own podman runs.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]
[engine]
runtime = "runc"
[network]
network_backend = "netavark"
EOF

SERVICE_PID=
HEALTH_PID=
cleanup() {
	set +e
	[ -z "$HEALTH_PID" ] || kill "$HEALTH_PID" 2>/dev/null
	if [ -n "$SERVICE_PID" ]; then
		timeout 120 docker-compose -f docker/compose.yaml -p "$PROJECT" --profile tools \
			down -v -t 20 >>"$C/compose.log" 2>&1
		kill "$SERVICE_PID" 2>/dev/null
	fi
	podman rm -f -t 0 pwct-worker >/dev/null 2>&1
}
trap cleanup EXIT

# ---- 2. the base images --------------------------------------------------------------------

base_images() {
	local tar=$C/debian-12-minbase.tar t0
	if podman image exists debian:12 && podman image exists debian:12-slim; then
		return 0
	fi
	if [ ! -s "$tar" ]; then
		t0=$(date +%s)
		log "debootstrap --variant=minbase bookworm (once; cached as $tar)"
		rm -rf "$C/rootfs"
		timeout 900 debootstrap --variant=minbase bookworm "$C/rootfs" \
			http://deb.debian.org/debian >"$C/debootstrap.log" 2>&1 || {
			tail -20 "$C/debootstrap.log" >&2
			fail "debootstrap failed (log: $C/debootstrap.log)"
		}
		# As the official images: no package cache, no lists (the Dockerfile runs apt-get
		# update), and, as in -slim, no documentation.
		rm -rf "$C"/rootfs/var/cache/apt/archives/*.deb "$C"/rootfs/var/lib/apt/lists/* \
			"$C"/rootfs/usr/share/doc/* "$C"/rootfs/usr/share/man/* "$C"/rootfs/usr/share/info/*
		tar -C "$C/rootfs" -cf "$tar.part" . && mv "$tar.part" "$tar"
		rm -rf "$C/rootfs"
		log "base made in $(elapsed "$t0") s"
	fi
	podman import --quiet --change 'CMD ["bash"]' "$tar" debian:12 >/dev/null
	podman tag debian:12 debian:12-slim
}

# build NAME CONTEXT [podman build options]: a local image, never pulled.
build() {
	local name=$1 ctx=$2 t0
	shift 2
	t0=$(date +%s)
	timeout 1800 podman build --format docker --pull=never --network host -t "$name" "$@" \
		"$ctx" >"$C/build-${name//[\/:]/_}.log" 2>&1 || {
		tail -30 "$C/build-${name//[\/:]/_}.log" >&2
		fail "building $name failed"
	}
	log "built $name in $(elapsed "$t0") s"
}

# ---- 3. the image ----------------------------------------------------------------------------

check_image() {
	local out user uid size
	out=$(podman run --rm --no-healthcheck "$IMAGE" --help 2>&1) || fail "patient-worker --help failed: $out"
	case $out in *"patient-worker"*run*) ;; *) fail "--help says: $out" ;; esac
	user=$(podman image inspect -f '{{.Config.User}}' "$IMAGE")
	[ "$user" = 10001:10001 ] || fail "the image's user is '$user', not 10001:10001"
	uid=$(podman run --rm --no-healthcheck --entrypoint id "$IMAGE" -u)
	[ "$uid" = 10001 ] || fail "the container runs as uid $uid"
	podman run --rm --no-healthcheck --entrypoint sh "$IMAGE" -c \
		'for c in cc gcc c++ g++ clang ld as make cmake; do command -v $c && exit 1; done; exit 0' ||
		fail "the image has a compiler or build tool (above)"
	podman image inspect -f '{{json .Config.Healthcheck}}' "$IMAGE" | grep -q healthcheck ||
		fail "the image has no HEALTHCHECK"
	size=$(podman image inspect -f '{{.Size}}' "$IMAGE")
	log "image $IMAGE: $((size / 1000000)) MB, user 10001, no compiler, HEALTHCHECK kept"
}

# ---- 4. one worker container against the test stack ------------------------------------------

# A TCP port nobody listens on.
free_port() {
	local port
	for _ in $(seq 200); do
		port=$((15000 + RANDOM % 17000))
		ss -Hltn "sport = :$port" | grep -q . || {
			echo "$port"
			return 0
		}
	done
	fail "no free port"
}

# await_healthy NAME SECONDS: runs the container's HEALTHCHECK until it passes.
await_healthy() {
	local t0
	t0=$(date +%s)
	until podman healthcheck run "$1" >/dev/null 2>&1; do
		[ "$(elapsed "$t0")" -lt "$2" ] || {
			podman logs --tail 30 "$1" >&2
			fail "$1 not healthy within $2 s"
		}
		sleep 1
	done
	log "$1 healthy after $(elapsed "$t0") s: $(podman inspect -f '{{.State.Health.Status}}' "$1")"
}

worker_container() {
	local id login url port t0 rc out pid
	id=$(date +%s)-$$
	login=pwct_login
	# The stack's superuser makes a login like docker/postgres-init's: a NOINHERIT member
	# of patients_app and nothing else.
	PGOPTIONS="-c client_min_messages=warning" psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qc "
		DROP ROLE IF EXISTS $login;
		CREATE ROLE $login LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT
		  PASSWORD 'pwct-password' IN ROLE patients_app;" >/dev/null
	url="postgresql://$login:pwct-password@${DATABASE_URL#*@}"
	export TOPIC_CREATE=pwct.$id.create TOPIC_QUERY=pwct.$id.query
	export TOPIC_REPLIES=pwct.$id.replies TOPIC_DLQ=pwct.$id.dlq
	export JWT_SECRET=container-test-secret-0123456789abcdef
	for t in "$TOPIC_CREATE" "$TOPIC_QUERY"; do
		scripts/stack.sh kafka-topics --create --topic "$t" \
			--partitions 2 --replication-factor 1 --config message.timestamp.type=LogAppendTime >/dev/null
	done
	for t in "$TOPIC_REPLIES" "$TOPIC_DLQ"; do
		scripts/stack.sh kafka-topics --create --topic "$t" \
			--partitions 2 --replication-factor 1 >/dev/null
	done
	port=$(free_port)
	podman run -d --name pwct-worker --network host \
		-e KAFKA_BROKERS="$KAFKA_BROKERS" -e KAFKA_GROUP_ID="pwct.$id" \
		-e DATABASE_URL="$url" -e DATABASE_ROLE=patients_app \
		-e JWT_ALG=HS256 -e JWT_SECRET -e CURSOR_SECRET=container-test-cursor-0123456789 \
		-e TOPIC_CREATE -e TOPIC_QUERY -e TOPIC_REPLIES -e TOPIC_DLQ \
		-e HTTP_ADDR="127.0.0.1:$port" "$IMAGE" >/dev/null 2>"$C/worker-run.log" ||
		fail "podman run: $(cat "$C/worker-run.log")"
	await_healthy pwct-worker 120
	out=$("$BUILD/patientctl" create --sub "container-$id@example.com" --nombre Ana \
		--apellido-paterno Quispe --dni 44556677 --fecha-nacimiento 1990-04-12 --timeout 30) ||
		fail "create: $out"
	[ "$(printf '%s' "$out" | jq -r '.status')" = 201 ] || fail "create answered: $out"
	pid=$(printf '%s' "$out" | jq -r '.data.id')
	out=$("$BUILD/patientctl" get --sub "container-$id@example.com" --id "$pid" --timeout 30) ||
		fail "get: $out"
	[ "$(printf '%s' "$out" | jq -r '.status')" = 200 ] || fail "get answered: $out"
	log "worker container: create 201 (patient $pid), get 200"
	t0=$(date +%s)
	podman stop -t 15 pwct-worker >/dev/null
	rc=$(podman inspect -f '{{.State.ExitCode}}' pwct-worker)
	[ "$rc" = 0 ] || {
		podman logs --tail 30 pwct-worker >&2
		fail "the worker container exited $rc on podman stop"
	}
	log "worker container stopped in $(elapsed "$t0") s, exit 0"
	podman rm pwct-worker >/dev/null
	psql "$DATABASE_URL" -qc "REASSIGN OWNED BY $login TO postgres; DROP OWNED BY $login; DROP ROLE $login" >/dev/null
}

# ---- 5. docker/compose.yaml ----------------------------------------------------------------

compose() { timeout 900 docker-compose -f docker/compose.yaml -p "$PROJECT" "$@"; }

# Every container of the project: "name exited(true|false) exit-code" lines.
project_ps() {
	podman ps -a --filter "label=com.docker.compose.project=$PROJECT" \
		--format '{{.Names}} {{.Exited}} {{.ExitCode}}'
}

stand_ins() {
	rm -rf "$C/kafka-ctx"
	cp -r tests/docker/kafka "$C/kafka-ctx"
	cp -r "$STACK_CACHE/kafka-lib" "$C/kafka-ctx/libs"
	build docker.io/apache/kafka:3.9.1 "$C/kafka-ctx" -f "$C/kafka-ctx/Containerfile"
	build docker.io/library/postgres:15-bookworm tests/docker/postgres \
		-f tests/docker/postgres/Containerfile
}

# What systemd's timers would do for podman: each running container's health check.
health_ticker() {
	while :; do
		for c in $(podman ps -q --filter "label=com.docker.compose.project=$PROJECT"); do
			podman healthcheck run "$c" >/dev/null 2>&1 || true
		done
		sleep 2
	done
}

compose_run() {
	local sock=$C/podman.sock t0 healthy out
	rm -f "$sock"
	podman system service --time=0 "unix://$sock" >"$C/service.log" 2>&1 &
	SERVICE_PID=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break || sleep 0.1; done
	[ -S "$sock" ] || fail "podman system service did not listen within 10 s"
	export DOCKER_HOST=unix://$sock
	health_ticker &
	HEALTH_PID=$!
	t0=$(date +%s)
	compose up -d --no-build >"$C/compose.log" 2>&1 || {
		tail -40 "$C/compose.log" >&2
		project_ps >&2
		fail "docker-compose up failed"
	}
	until [ "$(podman ps -q --filter "label=com.docker.compose.service=worker" \
		--filter health=healthy | wc -l)" = 2 ]; do
		[ "$(elapsed "$t0")" -lt 240 ] || {
			project_ps >&2
			compose logs --tail 20 worker >&2 || true
			fail "the two worker replicas were not healthy within 240 s"
		}
		sleep 2
	done
	log "compose: both worker replicas healthy $(elapsed "$t0") s after up"
	for s in topics migrate; do
		out=$(podman ps -a --filter "label=com.docker.compose.service=$s" \
			--format '{{.Exited}} {{.ExitCode}}')
		[ "$out" = "true 0" ] || fail "compose: $s is '$out' (exited, code), not exited 0"
	done
	compose ps | tee "$C/compose-ps.txt"
	out=$(compose --profile tools run --rm patientctl create --sub alice@example.com \
		--nombre Ana --apellido-paterno Quispe --dni 11223344 --fecha-nacimiento 1990-04-12 \
		--timeout 30 2>>"$C/compose.log") || fail "compose: patientctl create: $out"
	[ "$(printf '%s' "$out" | jq -r '.status')" = 201 ] || fail "compose: patientctl got: $out"
	log "compose: patientctl (tools profile) create answered 201"
	compose stop -t 20 >>"$C/compose.log" 2>&1 || fail "docker-compose stop failed"
	kill "$HEALTH_PID" 2>/dev/null || true
	HEALTH_PID=
	out=$(project_ps)
	echo "$out"
	# A JVM ends with 143 (128 + SIGTERM) when SIGTERM stops it, after its shutdown hooks:
	# Kafka's broker does, in the official image as in the stand-in. 137 would mean killed.
	echo "$out" | awk '$2 != "true" || ($3 != 0 && !($1 ~ /_kafka_/ && $3 == 143)) { bad = 1 }
		END { exit bad }' || fail "compose: a container did not exit 0 (above)"
	compose --profile tools down -v >>"$C/compose.log" 2>&1 || fail "docker-compose down failed"
	kill "$SERVICE_PID" 2>/dev/null || true
	SERVICE_PID=
	log "compose: every container exited 0 (the broker 143: its SIGTERM exit); down"
}

base_images
build "$IMAGE" . -f docker/Dockerfile --ignorefile docker/Dockerfile.dockerignore
check_image
worker_container
stand_ins
compose_run
log "passed in $(elapsed "$started") s"
