#!/usr/bin/env bash
# libFuzzer over the record path that needs no network: `scripts/fuzz.sh [SECONDS]`
# builds tests/fuzz/fuzz_*.c with clang (ASan + UBSan + libFuzzer) into build/fuzz/, apart
# from the gcc build, and runs each target for SECONDS (default 60). Seeds: tests/corpus/
# *.rec (envelope), tests/fuzz/seeds/jwt/, tests/fuzz/seeds/cursor/ and
# tests/fuzz/seeds/jwk/ (JWK Sets); they are copied to a temporary directory, where new
# corpus entries go too (never the repo). Exit status is non-zero when any target
# crashes, leaks, times out or runs out of memory; the crashing input's path and the
# command that reproduces it are printed, and the temporary directory is kept.
# PW_FUZZ_TARGETS="jwt cursor" runs a subset.
set -eu
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-60}
case $SECONDS_PER_TARGET in
'' | *[!0-9]*)
	echo "usage: scripts/fuzz.sh [SECONDS]" >&2
	exit 2
	;;
esac
TARGETS=${PW_FUZZ_TARGETS:-envelope jwt cursor jwk}
OUT=build/fuzz

scripts/install-deps.sh

# The common/ files each target links. The token targets link the key ring too (its
# fetch and key archive); the fuzzed paths never reach the network or the database.
sources_for() {
	case $1 in
	envelope)
		echo common/pw_envelope.c common/pw_patient.c common/pw_query.c \
			common/pw_cursor.c common/pw_jwk.c common/pw_jwt.c common/pw_jwt_lru.c \
			common/pw_keyring.c common/pw_keyarchive.c common/pw_fetch.c common/pw_log.c \
			common/pw_util.c
		;;
	jwt)
		echo common/pw_jwk.c common/pw_jwt.c common/pw_jwt_lru.c common/pw_keyring.c \
			common/pw_keyarchive.c common/pw_fetch.c common/pw_log.c common/pw_util.c
		;;
	cursor) echo common/pw_cursor.c common/pw_util.c ;;
	jwk) echo common/pw_jwk.c common/pw_util.c ;;
	*)
		echo "fuzz: unknown target $1" >&2
		return 1
		;;
	esac
}

# Errors abort (-fno-sanitize-recover), so libFuzzer reports UBSan findings as crashes.
CFLAGS="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
	-g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wno-unused-parameter -Werror
	-I common"
mkdir -p "$OUT"
for t in $TARGETS; do
	src=$(sources_for "$t")
	# shellcheck disable=SC2086,SC2046  # word splitting of the lists is intended
	clang $CFLAGS -o "$OUT/fuzz_$t" "tests/fuzz/fuzz_$t.c" $src \
		$(pkg-config --cflags --libs jansson libcrypto libcurl libpq)
	echo "fuzz: built $OUT/fuzz_$t"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/pw-fuzz.XXXXXX")
rc=0
summary=""
for t in $TARGETS; do
	corpus=$work/corpus/$t
	mkdir -p "$corpus" "$work/artifacts"
	case $t in
	envelope)
		cp tests/corpus/*.rec "$corpus"/
		# Above MAX_MESSAGE_BYTES (65536), so the too_large check is reached; the
		# 900 KiB seed is read truncated to this.
		max_len=70000
		;;
	jwk)
		cp "tests/fuzz/seeds/$t"/* "$corpus"/
		# The seed of 65 small keys (one over PW_JWK_SET_MAX_KEYS) is ~5 KiB, and a
		# set of a few RSA keys grows past 4096 bytes: room for both.
		max_len=8192
		;;
	*)
		cp "tests/fuzz/seeds/$t"/* "$corpus"/
		max_len=4096
		;;
	esac
	log=$work/fuzz_$t.log
	echo "fuzz: running fuzz_$t for ${SECONDS_PER_TARGET}s ($(find "$corpus" -type f | wc -l) seeds)"
	trc=0
	"$OUT/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=1024 \
		-max_len="$max_len" -print_final_stats=1 \
		-artifact_prefix="$work/artifacts/fuzz_$t-" "$corpus" >"$log" 2>&1 || trc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	found=$(find "$work/artifacts" -type f -name "fuzz_$t-*" | sort)
	if [ "$trc" -ne 0 ] || [ -n "$found" ]; then
		rc=1
		summary="$summary
fuzz_$t: FAILED (exit $trc) after ${execs:-?} executions; log $log"
		echo "fuzz: fuzz_$t FAILED (exit $trc); the end of its log:" >&2
		tail -60 "$log" >&2
		for f in $found; do
			summary="$summary
  input: $f
  reproduce: $OUT/fuzz_$t $f"
		done
	else
		summary="$summary
fuzz_$t: ok, ${execs:-?} executions, corpus $(find "$corpus" -type f | wc -l) files"
	fi
done

echo "fuzz: summary (${SECONDS_PER_TARGET}s per target):$summary"
if [ "$rc" -ne 0 ]; then
	echo "fuzz: crash inputs, logs and corpus kept in $work" >&2
else
	rm -rf "$work"
fi
exit "$rc"
