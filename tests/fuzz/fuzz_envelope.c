/* libFuzzer target: a command record from its bytes to its validated payload, no network.
 *
 * The input is a record value: pw_envelope_parse (the dead-letter checks), then, when it
 * parses, pw_envelope_command for both topics and the payload's validation for the type
 * it names (pw_patient_validate or pw_query_validate). The input is also given as the
 * `authorization` header of a record without a token. Built and run by scripts/fuzz.sh
 * with the .rec files of tests/corpus as seeds (templates: their @TOKEN@ placeholders stay as
 * text). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pw_cursor.h"
#include "pw_envelope.h"
#include "pw_patient.h"
#include "pw_query.h"

#define FUZZ_NOW           INT64_C(1767225600) /* 2026-01-01T00:00:00Z */
#define FUZZ_REPLIES       "patients.replies"
#define FUZZ_MAX_BYTES     65536
#define FUZZ_OWNER         "ana@example.com"
#define FUZZ_CURSOR_SECRET "patient-worker-fuzz-cursor-secret"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pw_cursor_key cursor_key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int generated = 0;

	if (pw_cursor_key_init(&cursor_key, FUZZ_CURSOR_SECRET, &generated) != PW_OK)
		abort();
	return 0;
}

static void validate(const json_t *payload, pw_envelope_type type)
{
	json_t *fields = NULL;
	pw_status st;

	if (type == PW_ENVELOPE_CREATE) {
		pw_patient_input in;
		st = pw_patient_validate(payload, FUZZ_NOW, &in, &fields);
		if (st == PW_OK && (in.nombre == NULL || in.apellido_paterno == NULL ||
		                    in.nombre[0] == '\0' || strlen(in.payload_hash) != 64))
			abort();
		if (st == PW_OK)
			pw_patient_input_clear(&in);
	} else if (type == PW_ENVELOPE_UPDATE) {
		pw_patient_update u;
		st = pw_patient_validate_update(payload, FUZZ_NOW, &u, &fields);
		/* Accepted: an id and version, at least one field, a hash. */
		if (st == PW_OK &&
		    (u.id < 1 || u.version < 1 || u.fields == 0 || strlen(u.payload_hash) != 64))
			abort();
		pw_patient_update_clear(&u);
	} else if (type == PW_ENVELOPE_DELETE) {
		pw_patient_delete d;
		st = pw_patient_validate_delete(payload, &d, &fields);
		if (st == PW_OK && (d.id < 1 || d.version < 1 || strlen(d.payload_hash) != 64))
			abort();
	} else {
		pw_query q;
		st = pw_query_validate(payload, type == PW_ENVELOPE_LIST, &cursor_key, FUZZ_OWNER,
		                       &q, &fields);
		if (st == PW_OK && type == PW_ENVELOPE_LIST &&
		    (q.limit < 1 || q.limit > PW_LIST_LIMIT_MAX || q.after_id < 0))
			abort();
		pw_query_clear(&q);
	}
	if ((st == PW_E_INVALID) != json_is_object(fields) ||
	    (st == PW_E_INVALID && json_object_size(fields) == 0))
		abort();
	json_decref(fields);
}

static void record(const void *value, size_t len, const void *auth, size_t auth_len)
{
	static const pw_topic_kind topics[] = {PW_TOPIC_CREATE, PW_TOPIC_QUERY};
	pw_envelope *env = NULL;
	pw_dlq_reason reason = PW_DLQ_NONE;
	pw_status st = pw_envelope_parse(value, len, auth, auth_len, FUZZ_REPLIES, FUZZ_MAX_BYTES,
	                                 &env, &reason);

	if (st != PW_OK) {
		if (st != PW_E_INVALID || env != NULL || reason == PW_DLQ_NONE)
			abort();
		return;
	}
	if (env == NULL || reason != PW_DLQ_NONE ||
	    !pw_envelope_request_id_valid(env->request_id) || env->reply_to == NULL ||
	    !pw_envelope_reply_to_allowed(env->reply_to, FUZZ_REPLIES))
		abort();
	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		pw_envelope_type type;
		json_t *payload;
		char msg[256];
		if (pw_envelope_command(env, topics[i], &type, &payload, msg, sizeof(msg)) != PW_OK)
			continue;
		/* Writes go on the create topic, queries on the query topic, nothing else. */
		bool write = type == PW_ENVELOPE_CREATE || type == PW_ENVELOPE_UPDATE ||
		             type == PW_ENVELOPE_DELETE;
		if (!json_is_object(payload) || type == PW_ENVELOPE_NONE ||
		    write != (topics[i] == PW_TOPIC_CREATE))
			abort();
		validate(payload, type);
	}
	pw_envelope_destroy(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char no_token[] = "{\"request_id\":\"fuzz-1\",\"type\":\"patient.get\","
	                               "\"payload\":{\"id\":1}}";

	record(data, size, NULL, 0);
	record(no_token, sizeof(no_token) - 1, data, size);
	return 0;
}
