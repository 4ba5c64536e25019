/* The command envelope: the checks that decide dead letter, then the command's shape. */
#ifndef PW_ENVELOPE_H
#define PW_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "pw_status.h"

/* Why a record goes to the DLQ; these are the checks run before the token. */
typedef enum pw_dlq_reason {
	PW_DLQ_NONE = 0,
	PW_DLQ_TOO_LARGE,
	PW_DLQ_MALFORMED_JSON, /**< not JSON, invalid UTF-8, NUL, duplicated keys, too deep */
	PW_DLQ_NOT_OBJECT,
	PW_DLQ_MISSING_REQUEST_ID,
	PW_DLQ_INVALID_REQUEST_ID, /**< present but not 1-128 of [A-Za-z0-9._:-] */
	PW_DLQ_REPLY_TO_REFUSED,
	PW_DLQ_REPLY_UNDELIVERABLE, /**< set by the loop when the reply cannot be produced */
} pw_dlq_reason;

/* The short code written in the dead letter's `error` header. */
const char *pw_envelope_dlq_code(pw_dlq_reason r);

typedef enum pw_topic_kind {
	PW_TOPIC_CREATE = 0,
	PW_TOPIC_QUERY,
} pw_topic_kind;

typedef enum pw_envelope_type {
	PW_ENVELOPE_NONE = 0,
	PW_ENVELOPE_CREATE, /**< the write topic */
	PW_ENVELOPE_UPDATE, /**< the write topic */
	PW_ENVELOPE_DELETE, /**< the write topic */
	PW_ENVELOPE_GET,    /**< the query topic */
	PW_ENVELOPE_LIST,   /**< the query topic */
} pw_envelope_type;

/* The type a `type` member names ("patient.create", ...), PW_ENVELOPE_NONE for any other;
 * and back. */
pw_envelope_type pw_envelope_type_of(const char *name);
const char *pw_envelope_type_name(pw_envelope_type type);

typedef struct pw_envelope {
	json_t *root;           /**< owned */
	const char *request_id; /**< borrowed from root */
	char *reply_to;         /**< owned: the body's reply_to or the configured default */
	int reply_to_in_body;   /**< reply_to came from the body (a header may not override it) */
	char *token;            /**< owned; from the body, else the authorization header; or NULL */
	int token_not_string;   /**< the body had "token" but it was not a string */
} pw_envelope;

/* Runs the dead-letter checks in the contract's order (size, JSON, request_id, reply_to)
 * on a record value of len bytes (not NUL-terminated). auth_header is the raw value of
 * the record's `authorization` header or NULL. replies_topic is the configured reply
 * topic (also the allowed prefix). On PW_OK *out is a new envelope the caller destroys;
 * on PW_E_INVALID *reason says why. Pure: no I/O. */
PW_MUST_CHECK pw_status pw_envelope_parse(const void *value, size_t len, const void *auth_header,
                                          size_t auth_len, const char *replies_topic,
                                          size_t max_bytes, pw_envelope **out,
                                          pw_dlq_reason *reason);

void pw_envelope_destroy(pw_envelope *env); /* NULL is fine */

/* After the token: the `type` must be a known command for this topic and `payload` an
 * object. On PW_E_INVALID writes the message for a 400 invalid_request into msg. */
PW_MUST_CHECK pw_status pw_envelope_command(const pw_envelope *env, pw_topic_kind topic,
                                            pw_envelope_type *type, json_t **payload, char *msg,
                                            size_t msg_size);

/* Every member of payload whose name is not one of the n allowed ones goes into fields
 * as "unknown field" (the contract's 400 names each). -1 only when fields cannot grow. */
int pw_envelope_unknown_fields(const json_t *payload, const char *const *allowed, size_t n,
                               json_t *fields);

/* True when s is 1-128 characters from [A-Za-z0-9._:-]. */
bool pw_envelope_request_id_valid(const char *s);

/* True when topic is replies_topic itself or replies_topic followed by '.' and more. */
bool pw_envelope_reply_to_allowed(const char *topic, const char *replies_topic);

#endif
