#!/bin/sh
# Checks schemas/ with a real JSON Schema validator (Debian's python3-jsonschema, draft
# 2020-12, run as a program): each schema is a valid schema, every example under
# schemas/examples/ is valid against its schema (command-*.json: command.schema.json,
# reply-*.json: reply.schema.json), and every one under schemas/examples/invalid/ is
# refused with a validation error (not a crash or an unresolved $ref).
#
# The schemas' $id (https://patient-worker.example/...) is served by nobody, and this
# machine may have no network: a copy without $id is checked with a file:// base, so
# each $ref resolves to the file beside it.
set -eu

src=${1:?usage: validate.sh SOURCE_DIR}
py=/usr/bin/python3 # Debian's, with python3-jsonschema (not a pyenv or venv one)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fails=0

fail() {
	echo "schemas: $*" >&2
	fails=$((fails + 1))
}

if ! "$py" -c 'import jsonschema' 2>/dev/null; then
	echo "schemas: $py cannot import jsonschema (scripts/install-deps.sh installs python3-jsonschema)" >&2
	exit 1
fi

for f in "$src"/schemas/*.schema.json; do
	sed '/"\$id":/d' "$f" >"$tmp/$(basename "$f")"
done

# The schema an example is checked against, by its name.
schema_of() {
	case $(basename "$1") in
	command-*) echo "$tmp/command.schema.json" ;;
	reply-*) echo "$tmp/reply.schema.json" ;;
	*) echo "" ;;
	esac
}

# Runs the validator; its output (one line per error, or a traceback) in $tmp/out.
check() {
	"$py" -W ignore -m jsonschema --base-uri "file://$tmp/" \
		--error-format 'INVALID {error.json_path}: {error.message}
' -i "$1" "$2" >"$tmp/out" 2>&1
}

valid=0
for f in "$src"/schemas/examples/*.json; do
	schema=$(schema_of "$f")
	[ -n "$schema" ] || { fail "$f: no schema for this name"; continue; }
	if check "$f" "$schema"; then
		valid=$((valid + 1))
	else
		fail "$f is not valid against $(basename "$schema"):"
		cat "$tmp/out" >&2
	fi
done

invalid=0
for f in "$src"/schemas/examples/invalid/*.json; do
	schema=$(schema_of "$f")
	[ -n "$schema" ] || { fail "$f: no schema for this name"; continue; }
	if check "$f" "$schema"; then
		fail "$f is valid against $(basename "$schema"), and should not be"
	elif grep -q '^INVALID ' "$tmp/out" && ! grep -q 'Traceback' "$tmp/out"; then
		invalid=$((invalid + 1))
	else
		fail "$f: the validator did not run to a verdict:"
		cat "$tmp/out" >&2
	fi
done

# A glob that matched nothing leaves its pattern: count real files only.
[ "$valid" -ge 9 ] || fail "only $valid valid examples checked (expected at least 9)"
[ "$invalid" -ge 13 ] || fail "only $invalid invalid examples refused (expected at least 13)"
echo "schemas: $valid examples valid, $invalid invalid ones refused"
[ "$fails" -eq 0 ]
