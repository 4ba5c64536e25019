#!/usr/bin/env bash
# clang-format over the C sources: `scripts/format.sh` rewrites, `scripts/format.sh check`
# fails (listing the files) when any file is not formatted.
set -eu
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = check ]; then
	clang-format --dry-run --Werror "${files[@]}"
	echo "format: ${#files[@]} files clean"
else
	clang-format -i "${files[@]}"
fi
