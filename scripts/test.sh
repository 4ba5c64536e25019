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
ctest --test-dir "$BUILD" -LE citus --output-on-failure ${PW_CTEST_ARGS:-} || rc=$?

# The integration tests again on a Citus cluster of their own (coordinator + two workers,
# tests/citus/citus.sh), wherever Citus is installed into PostgreSQL 15. CI reaches
# neither Citus's Debian packages nor its source, so there they are skipped, with this line.
if [ -f /usr/lib/postgresql/15/lib/citus.so ]; then
	citus_started=$(date +%s)
	ctest --test-dir "$BUILD" -L citus --output-on-failure || rc=1
	echo "test: Citus tests done in $(($(date +%s) - citus_started)) s"
else
	echo "test: Citus tests SKIPPED: no Citus installed into PostgreSQL 15 (README, Scaling: scripts/citus-build.sh)"
fi

# Interop with a real identity provider: Keycloak (tests/keycloak/pom.xml, cached in
# $BUILD/keycloak/) issues the tokens and rotates its keys; the worker must follow.
# Needs the stack above and Java 21+ (the Temurin 25 JDK); it fails, never skips, when
# something is missing. PW_KEYCLOAK_TEST=0 skips it, and says so.
if [ "${PW_KEYCLOAK_TEST:-1}" = 1 ]; then
	kc_started=$(date +%s)
	PW_BUILD_DIR=$BUILD tests/keycloak/keycloak-test.sh || rc=1
	echo "test: Keycloak interop test done in $(($(date +%s) - kc_started)) s"
else
	echo "test: Keycloak interop test SKIPPED (PW_KEYCLOAK_TEST=$PW_KEYCLOAK_TEST)"
fi

# The container image and docker/compose.yaml, built and run for real with podman (no
# Docker engine here): needs the stack above and the network to Debian's archive the
# first time (the debian:12 base is made with debootstrap, cached in $BUILD/container/).
# PW_CONTAINER_TEST=0 skips it, and says so.
if [ "${PW_CONTAINER_TEST:-1}" = 1 ]; then
	ct_started=$(date +%s)
	PW_BUILD_DIR=$BUILD scripts/container-test.sh || rc=1
	echo "test: container test done in $(($(date +%s) - ct_started)) s"
else
	echo "test: container test SKIPPED (PW_CONTAINER_TEST=$PW_CONTAINER_TEST)"
fi

# Valgrind memcheck over the unit tests (and patientctl's, which need no broker either),
# in one process each (CK_FORK=no): any error
# or definite leak fails the run. No suppressions are needed today.
for t in "$BUILD"/tests/unit/check_* "$BUILD"/tests/cli/check_ctl_unit; do
	[ -x "$t" ] || continue # the logs of an earlier run sit beside them
	if ! CK_FORK=no PW_FIXTURES=$PWD/tests/fixtures valgrind -q --error-exitcode=9 \
		--leak-check=full --errors-for-leak-kinds=definite,indirect "$t" >"$t.valgrind.log" 2>&1; then
		echo "test: valgrind found errors in $(basename "$t"):" >&2
		tail -40 "$t.valgrind.log" >&2
		rc=1
	fi
done
echo "test: valgrind memcheck over the unit tests done"

# The same tests again with AddressSanitizer and UndefinedBehaviorSanitizer, worker
# binary included (PW_SANITIZE_PASS=0 skips it). Any report fails the run: the
# sanitizers abort the process, and the workers' logs are searched as well, since a
# worker's stderr goes to its log.
if [ "${PW_SANITIZE_PASS:-1}" = 1 ]; then
	SAN=$BUILD-asan
	cmake -S . -B "$SAN" -DCMAKE_BUILD_TYPE=Debug -DPW_WERROR=ON \
		"-DPW_SANITIZE=address;undefined" >/dev/null
	cmake --build "$SAN" -j"$(nproc)" >/dev/null
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --test-dir "$SAN" -LE citus --output-on-failure ${PW_CTEST_ARGS:-} || rc=1
	if grep -l -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' -e 'runtime error:' \
		"$SAN"/worker-*.log 2>/dev/null; then
		echo "test: sanitizer reports in the worker logs above" >&2
		rc=1
	fi
fi
# libFuzzer over the record path that needs no network (envelope, token, cursor), 60 s
# a target by default; a crash fails the run and names the input that caused it.
if [ "${PW_FUZZ_SECONDS:-60}" != 0 ]; then
	scripts/fuzz.sh "${PW_FUZZ_SECONDS:-60}" || rc=1
fi
echo "test: finished in $(($(date +%s) - started)) s with status $rc"
exit $rc
