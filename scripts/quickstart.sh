#!/usr/bin/env bash
# From a fresh Debian 12 machine to a worker answering a demo create: installs the
# packages, builds, starts the throwaway stack (PostgreSQL 15 + Kafka), migrates,
# starts one worker in the background, sends one create with a demo token and prints
# the reply. Stop everything with: scripts/quickstart.sh stop
set -eu
cd "$(dirname "$0")/.."

BUILD=${PW_BUILD_DIR:-build}
export PW_STACK_DIR=${PW_STACK_DIR:-$PWD/$BUILD/stack}
PIDFILE=$PW_STACK_DIR/quickstart-worker.pid
LOG=$PW_STACK_DIR/quickstart-worker.log
# A development secret: fine for a local demo, never for anything real.
export JWT_SECRET=${JWT_SECRET:-quickstart-demo-secret-change-me-0123456789}

if [ "${1:-}" = stop ]; then
	if [ -f "$PIDFILE" ]; then
		kill -TERM "$(cat "$PIDFILE")" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
			sleep 0.1
		done
		rm -f "$PIDFILE"
	fi
	scripts/stack.sh down
	exit 0
fi

scripts/install-deps.sh
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPW_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
scripts/stack.sh up >/dev/null
eval "$(scripts/stack.sh env)"
"$BUILD/patient-worker" migrate

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
	echo "quickstart: a worker already runs (pid $(cat "$PIDFILE"))" >&2
else
	"$BUILD/patient-worker" run >>"$LOG" 2>&1 &
	echo $! >"$PIDFILE"
fi
# Bounded wait for the group to hand the worker its partitions.
for _ in $(seq 1 300); do
	grep -q 'partitions assigned' "$LOG" 2>/dev/null && break
	kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
	sleep 0.1
done
grep -q 'partitions assigned' "$LOG" || { echo "quickstart: worker got no partitions in 30 s; see $LOG" >&2; exit 1; }

TOKEN=$("$BUILD/patientctl" token --sub demo@example.com --ttl 3600)
echo "quickstart: sending a demo patient.create for demo@example.com" >&2
rc=0
"$BUILD/patientctl" create --token "$TOKEN" --request-id quickstart-demo-1 --timeout 30 \
	--payload '{"nombre": "Ana", "apellido_paterno": "Quispe", "apellido_materno": null,
	            "dni": "45678912", "fecha_nacimiento": "1990-04-12", "sexo": "F"}' || rc=$?
cat >&2 <<MSG

quickstart: the worker runs in the background (pid $(cat "$PIDFILE"), log $LOG).
  environment:  eval "\$(scripts/stack.sh env)"; export JWT_SECRET=$JWT_SECRET
  another:      $BUILD/patientctl create --sub you@example.com --payload '{...}'
  metrics:      curl -s http://127.0.0.1:9464/metrics   (also /healthz, /readyz)
  stop it all:  scripts/quickstart.sh stop
MSG
# The demo uses a fixed request id: running the quickstart again gets the same reply.
exit $rc
