/* Envelope parsing: size, JSON, request_id, reply_to (dead letters), then type/payload. */
#include "pw_envelope.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *pw_envelope_dlq_code(pw_dlq_reason r)
{
	switch (r) {
	case PW_DLQ_TOO_LARGE:
		return "too_large";
	case PW_DLQ_MALFORMED_JSON:
		return "malformed_json";
	case PW_DLQ_NOT_OBJECT:
		return "not_an_object";
	case PW_DLQ_MISSING_REQUEST_ID:
		return "missing_request_id";
	case PW_DLQ_INVALID_REQUEST_ID:
		return "invalid_request_id";
	case PW_DLQ_REPLY_TO_REFUSED:
		return "reply_to_refused";
	case PW_DLQ_REPLY_UNDELIVERABLE:
		return "reply_undeliverable";
	case PW_DLQ_NONE:
		break;
	}
	return "unknown";
}

int pw_envelope_unknown_fields(const json_t *payload, const char *const *allowed, size_t n,
                               json_t *fields)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)payload, key, v)
	{
		size_t i = 0;
		while (i < n && strcmp(key, allowed[i]) != 0)
			i++;
		if (i == n && json_object_set_new(fields, key, json_string("unknown field")) != 0)
			return -1;
	}
	return 0;
}

bool pw_envelope_request_id_valid(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];
		if (!isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-')
			return false;
		if (n >= 128)
			return false;
	}
	return n >= 1;
}

bool pw_envelope_reply_to_allowed(const char *topic, const char *replies_topic)
{
	size_t n = strlen(replies_topic);
	if (strncmp(topic, replies_topic, n) != 0)
		return false;
	if (topic[n] == '\0')
		return true;
	/* A suffix must itself be a legal topic name part: the worker creates nothing, but
	 * it must not hand librdkafka a name the broker would reject for another reason. */
	if (topic[n] != '.' || topic[n + 1] == '\0' || strlen(topic) > 249)
		return false;
	for (const char *p = topic + n + 1; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
			return false;
	return true;
}

/* "Bearer <jwt>" with the scheme case-insensitive (RFC 7235). */
static char *token_from_header(const void *hdr, size_t len)
{
	const char *h = hdr;
	if (hdr == NULL || len < 7 || strncasecmp(h, "bearer ", 7) != 0)
		return NULL;
	h += 7;
	len -= 7;
	while (len > 0 && *h == ' ') {
		h++;
		len--;
	}
	if (len == 0 || memchr(h, '\0', len) != NULL)
		return NULL;
	return strndup(h, len);
}

/* The body's token, else the authorization header's (a token that is not a string is
 * remembered as such: it is a 401, not a missing token). */
static pw_status take_token(pw_envelope *env, const void *auth_header, size_t auth_len)
{
	json_t *v = json_object_get(env->root, "token");

	if (v == NULL || json_is_null(v)) {
		env->token = token_from_header(auth_header, auth_len);
		return PW_OK;
	}
	if (!json_is_string(v)) {
		env->token_not_string = 1;
		return PW_OK;
	}
	env->token = strdup(json_string_value(v));
	return env->token != NULL ? PW_OK : PW_E_NOMEM;
}

void pw_envelope_destroy(pw_envelope *env)
{
	if (env == NULL)
		return;
	json_decref(env->root);
	free(env->reply_to);
	free(env->token);
	free(env);
}

pw_status pw_envelope_parse(const void *value, size_t len, const void *auth_header, size_t auth_len,
                            const char *replies_topic, size_t max_bytes, pw_envelope **out,
                            pw_dlq_reason *reason)
{
	pw_status st = PW_E_INVALID;
	pw_envelope *env = NULL;
	json_error_t jerr;
	json_t *v;

	*out = NULL;
	*reason = PW_DLQ_NONE;
	if (len > max_bytes) {
		*reason = PW_DLQ_TOO_LARGE;
		goto out;
	}
	env = calloc(1, sizeof(*env));
	if (env == NULL) {
		st = PW_E_NOMEM;
		goto out;
	}
	/* Duplicated keys are refused: two readers of the same record could otherwise
	 * disagree on which request_id or token it carries. jansson refuses NUL in
	 * strings and invalid UTF-8 by default, and nesting beyond its depth limit. */
	env->root =
	    json_loadb(value ? value : "", len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (env->root == NULL) {
		*reason = PW_DLQ_MALFORMED_JSON;
		goto out;
	}
	if (!json_is_object(env->root)) {
		*reason = PW_DLQ_NOT_OBJECT;
		goto out;
	}
	v = json_object_get(env->root, "request_id");
	if (v == NULL || json_is_null(v)) {
		*reason = PW_DLQ_MISSING_REQUEST_ID;
		goto out;
	}
	if (!json_is_string(v) || !pw_envelope_request_id_valid(json_string_value(v))) {
		*reason = PW_DLQ_INVALID_REQUEST_ID;
		goto out;
	}
	env->request_id = json_string_value(v);

	v = json_object_get(env->root, "reply_to");
	if (v == NULL || json_is_null(v)) {
		env->reply_to = strdup(replies_topic);
	} else if (json_is_string(v) &&
	           pw_envelope_reply_to_allowed(json_string_value(v), replies_topic)) {
		env->reply_to = strdup(json_string_value(v));
		env->reply_to_in_body = 1;
	} else {
		*reason = PW_DLQ_REPLY_TO_REFUSED;
		goto out;
	}
	if (env->reply_to == NULL) {
		st = PW_E_NOMEM;
		goto out;
	}

	if (take_token(env, auth_header, auth_len) != PW_OK) {
		st = PW_E_NOMEM;
		goto out;
	}
	*out = env;
	env = NULL;
	st = PW_OK;
out:
	pw_envelope_destroy(env);
	return st;
}

/* The contract's types and the topic each goes on. */
static const struct {
	const char *name;
	pw_envelope_type type;
	pw_topic_kind topic;
} types[] = {
    {"patient.create", PW_ENVELOPE_CREATE, PW_TOPIC_CREATE},
    {"patient.update", PW_ENVELOPE_UPDATE, PW_TOPIC_CREATE},
    {"patient.delete", PW_ENVELOPE_DELETE, PW_TOPIC_CREATE},
    {"patient.get", PW_ENVELOPE_GET, PW_TOPIC_QUERY},
    {"patient.list", PW_ENVELOPE_LIST, PW_TOPIC_QUERY},
};

pw_envelope_type pw_envelope_type_of(const char *name)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(name, types[i].name) == 0)
			return types[i].type;
	return PW_ENVELOPE_NONE;
}

const char *pw_envelope_type_name(pw_envelope_type type)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == type)
			return types[i].name;
	return "unknown";
}

static pw_topic_kind topic_of(pw_envelope_type type)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == type)
			return types[i].topic;
	return PW_TOPIC_CREATE;
}

pw_status pw_envelope_command(const pw_envelope *env, pw_topic_kind topic, pw_envelope_type *type,
                              json_t **payload, char *msg, size_t msg_size)
{
	json_t *t = json_object_get(env->root, "type");
	json_t *p = json_object_get(env->root, "payload");
	const char *name;

	*type = PW_ENVELOPE_NONE;
	*payload = NULL;
	if (!json_is_string(t)) {
		snprintf(msg, msg_size, "type is required and must be a string");
		return PW_E_INVALID;
	}
	name = json_string_value(t);
	*type = pw_envelope_type_of(name);
	if (*type == PW_ENVELOPE_NONE) {
		snprintf(msg, msg_size, "unknown type");
		return PW_E_INVALID;
	}
	if (topic_of(*type) != topic) {
		snprintf(msg, msg_size, "type %s is not accepted on this topic", name);
		*type = PW_ENVELOPE_NONE;
		return PW_E_INVALID;
	}
	if (!json_is_object(p)) {
		snprintf(msg, msg_size, "payload is required and must be an object");
		*type = PW_ENVELOPE_NONE;
		return PW_E_INVALID;
	}
	*payload = p;
	return PW_OK;
}
