#!/usr/bin/env bash
# The test command: installs what is missing, builds with -Werror, checks formatting,
# starts the throwaway stack (PostgreSQL 15 + a real Kafka broker), runs every CTest
# test (unit and integration) and stops the stack, whatever happened. Exit status is
# non-zero on any failure.
set -eu
cd "$(dirname "$0")/.."

BUILD=${PW_BUILD_DIR:-build}
started=$(date +%s)

scripts/install-deps.sh
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPW_WERROR=ON ${PW_CMAKE_ARGS:-}
cmake --build "$BUILD" -j"$(nproc)"
scripts/format.sh check

export PW_STACK_DIR=${PW_STACK_DIR:-$PWD/$BUILD/stack}
trap 'scripts/stack.sh down || true' EXIT
scripts/stack.sh up >/dev/null
eval "$(scripts/stack.sh env)"
echo "test: broker is ${PW_BROKER_KIND}"

rc=0
ctest --test-dir "$BUILD" --output-on-failure ${PW_CTEST_ARGS:-} || rc=$?
echo "test: finished in $(($(date +%s) - started)) s with status $rc"
exit $rc
