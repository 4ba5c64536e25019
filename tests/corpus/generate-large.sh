#!/bin/sh
# Regenerates the corpus records too large or too repetitive to write by hand. The
# outputs are kept in the tree; run this only to change them (from tests/corpus/).
set -eu
cd "$(dirname "$0")"

# n copies of a string, without a newline.
rep() {
	i=0
	while [ "$i" -lt "$2" ]; do
		printf '%s' "$1"
		i=$((i + 1))
	done
}

# 10,000 nested arrays inside the payload (jansson stops at 2,048 levels).
{
	printf '{"request_id":"@RID@","type":"patient.create","token":"@TOKEN@","payload":'
	rep '[' 10000
	rep ']' 10000
	printf '}'
} >001-deep-nesting-10000-arrays.rec

# 10,000 nested objects as the value of request_id.
{
	printf '{"request_id":'
	rep '{"a":' 10000
	printf '1'
	rep '}' 10000
	printf '}'
} >002-deep-nesting-10000-objects.rec

# A 900 KiB nombre: far over MAX_MESSAGE_BYTES (64 KiB) yet under the broker's and the
# producers' default 1 MB record limit, so it reaches the worker at all.
{
	printf '{"request_id":"@RID@","type":"patient.create","token":"@TOKEN@","payload":{"nombre":"'
	rep 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' 7200
	printf '","apellido_paterno":"Q","dni":"C003","fecha_nacimiento":"1990-04-12"}}'
} >003-too-large-900kib-nombre.rec

# A 100 KiB token (base64url letters): the record is over 64 KiB.
{
	printf '{"request_id":"@RID@","type":"patient.create","token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.'
	rep 'QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB' 800
	printf '.c2lnbmF0dXJl","payload":{}}'
} >004-too-large-100kib-token.rec

# A 60 KiB token in a record under 64 KiB: it reaches the token check, and fails it.
{
	printf '{"request_id":"@RID@","type":"patient.create","token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.'
	rep 'QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB' 480
	printf '.c2lnbmF0dXJl","payload":{"nombre":"Ana","apellido_paterno":"Q","dni":"C005","fecha_nacimiento":"1990-04-12"}}'
} >005-token-60kib.rec

# Exactly 65,536 bytes (the limit: accepted) and 65,537 (one over: too_large). No
# placeholders, so their sizes are the sizes sent; a fixed request id is unique in the
# test's own topics. Padded with spaces inside the object.
pad() {
	head=$1
	size=$2
	tail='}'
	n=$((size - ${#head} - ${#tail}))
	printf '%s' "$head"
	rep '                                                                                                                                ' $((n / 128))
	rep ' ' $((n % 128))
	printf '%s' "$tail"
}
pad '{"request_id":"corpus-006-size-65536","type":"patient.create","payload":{}' 65536 >006-size-exactly-65536-no-token.rec
pad '{"request_id":"corpus-007-size-65537","type":"patient.create","payload":{}' 65537 >007-too-large-65537-bytes.rec
