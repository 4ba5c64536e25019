#!/bin/sh
# The integration tests against a Citus cluster (issue 16; `ctest -L citus`): a
# coordinator and two workers of scripts/stack.sh (PW_CITUS=1), beside whatever stack the
# other tests use. The Kafka of the calling environment is reused when KAFKA_BROKERS is
# set (scripts/test.sh sets it), else the Citus stack starts its own broker.
#
#   citus.sh up WORKER_BIN   start the cluster, migrate it (a CTest fixture's setup)
#   citus.sh run TEST_BIN    run one integration test binary against it
#   citus.sh down            stop it, delete its state
#
# Exit 77 (CTest: skipped) with one line when no Citus is installed into PostgreSQL 15.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${PW_CITUS_STACK_DIR:?PW_CITUS_STACK_DIR names the state dir of the Citus stack}

skip_if_no_citus() {
	if ! [ -f /usr/lib/postgresql/15/lib/citus.so ]; then
		echo "citus: skipped: no Citus installed into PostgreSQL 15 (postgresql-15-citus-13.2, or scripts/citus-build.sh SRC_DIR)"
		exit 77
	fi
}

stack() { PW_STACK_DIR=$STATE PW_CITUS=1 "$ROOT/scripts/stack.sh" "$@"; }

case ${1:-} in
up)
	skip_if_no_citus
	[ $# -eq 2 ] || { echo "usage: citus.sh up WORKER_BIN" >&2; exit 2; }
	# A DATABASE_URL of the other stack must not be taken for an external database.
	(unset DATABASE_URL && stack up >/dev/null)
	eval "$(stack env)"
	[ "$PW_PG_ENGINE" = citus ] || { echo "citus: $STATE holds a plain PostgreSQL stack" >&2; exit 1; }
	"$2" migrate
	;;
run)
	skip_if_no_citus
	[ $# -eq 2 ] || { echo "usage: citus.sh run TEST_BIN" >&2; exit 2; }
	eval "$(stack env)"
	exec "$2"
	;;
down)
	[ -d "$STATE" ] || exit 0
	stack down
	;;
*)
	echo "usage: citus.sh up WORKER_BIN | run TEST_BIN | down" >&2
	exit 2
	;;
esac
