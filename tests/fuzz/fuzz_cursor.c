/* libFuzzer target: pagination cursors.
 *
 * The input, as a string, is decoded for a fixed key and owner, without filters and with
 * both filters. A cursor that decodes must be the one encoding gives for its id (no two
 * strings decode to the same cursor). The first 8 bytes of the input, as an id, are also
 * encoded and decoded back: the same id for the same owner and filters, refused for
 * another owner or other filters. Built and run by scripts/fuzz.sh; the seeds in
 * tests/fuzz/seeds/cursor/ were made with FUZZ_CURSOR_SECRET for FUZZ_OWNER. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw_cursor.h"

#define FUZZ_CURSOR_SECRET "patient-worker-fuzz-cursor-secret"
#define FUZZ_OWNER         "ana@example.com"
#define FUZZ_DNI           "12345678"
#define FUZZ_Q             "Qui"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pw_cursor_key key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int generated = 0;

	if (pw_cursor_key_init(&key, FUZZ_CURSOR_SECRET, &generated) != PW_OK || generated) {
		fprintf(stderr, "fuzz_cursor: cannot make the key\n");
		abort();
	}
	return 0;
}

static void decode(const char *cursor, const char *dni, const char *q)
{
	char again[PW_CURSOR_LEN + 1];
	int64_t id = -1;
	pw_status st = pw_cursor_decode(&key, FUZZ_OWNER, dni, q, cursor, &id);

	if (st == PW_E_INVALID)
		return;
	if (st != PW_OK || id < 0)
		abort();
	if (pw_cursor_encode(&key, FUZZ_OWNER, dni, q, id, again, sizeof(again)) != PW_OK ||
	    strcmp(again, cursor) != 0)
		abort();
}

static void round_trip(int64_t id)
{
	char c[PW_CURSOR_LEN + 1];
	int64_t back = -1;

	if (pw_cursor_encode(&key, FUZZ_OWNER, FUZZ_DNI, NULL, id, c, sizeof(c)) != PW_OK)
		abort();
	if (pw_cursor_decode(&key, FUZZ_OWNER, FUZZ_DNI, NULL, c, &back) != PW_OK || back != id)
		abort();
	if (pw_cursor_decode(&key, "bob@example.com", FUZZ_DNI, NULL, c, &back) != PW_E_INVALID ||
	    pw_cursor_decode(&key, FUZZ_OWNER, NULL, NULL, c, &back) != PW_E_INVALID ||
	    pw_cursor_decode(&key, FUZZ_OWNER, NULL, FUZZ_DNI, c, &back) != PW_E_INVALID ||
	    pw_cursor_decode(&key, FUZZ_OWNER, FUZZ_DNI, "", c, &back) != PW_E_INVALID)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *cursor = malloc(size + 1);
	uint64_t id = 0;

	if (cursor == NULL)
		return 0;
	memcpy(cursor, data, size);
	cursor[size] = '\0';
	decode(cursor, NULL, NULL);
	decode(cursor, FUZZ_DNI, FUZZ_Q);
	free(cursor);

	if (size >= 8) {
		for (int i = 0; i < 8; i++)
			id = (id << 8) | data[i];
		round_trip((int64_t)(id & INT64_MAX));
	}
	return 0;
}
