/* Validation of query payloads. */
#include "pw_query.h"

#include <stdlib.h>
#include <string.h>

#include "pw_envelope.h"
#include "pw_util.h"

void pw_query_clear(pw_query *q)
{
	if (q == NULL)
		return;
	free(q->q);
	memset(q, 0, sizeof(*q));
}

static const char *check_q(json_t *v)
{
	if (!json_is_string(v))
		return "must be a string";
	const char *s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return "must not contain control characters";
	size_t n;
	if (pw_util_utf8_length(s, &n) != PW_OK || n == 0 || n > PW_NAME_MAX_CHARS)
		return "must be 1 to 100 characters";
	if (pw_util_utf8_has_control(s))
		return "must not contain control characters";
	return NULL;
}

static pw_status validate_get(const json_t *payload, pw_query *out, json_t *fields)
{
	static const char *const known[] = {"id"};
	const char *reason = pw_patient_check_positive(json_object_get(payload, "id"), &out->id);

	if (pw_envelope_unknown_fields(payload, known, 1, fields) != 0 ||
	    (reason != NULL && json_object_set_new(fields, "id", json_string(reason)) != 0))
		return PW_E_NOMEM;
	return PW_OK;
}

static pw_status validate_list(const json_t *payload, const pw_cursor_key *key, const char *owner,
                               pw_query *out, json_t *fields)
{
	static const char *const known[] = {"limit", "cursor", "dni", "q"};
	const char *reason;
	json_t *v;

	if (pw_envelope_unknown_fields(payload, known, 4, fields) != 0)
		return PW_E_NOMEM;
	out->limit = PW_LIST_LIMIT_DEFAULT;
	v = json_object_get(payload, "limit");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > PW_LIST_LIMIT_MAX) {
			if (json_object_set_new(fields, "limit",
			                        json_string("must be an integer from 1 to 200")) !=
			    0)
				return PW_E_NOMEM;
		} else {
			out->limit = (int)json_integer_value(v);
		}
	}
	v = json_object_get(payload, "dni");
	if (v != NULL && !json_is_null(v)) {
		reason = pw_patient_check_dni(v, out->dni);
		if (reason != NULL) {
			if (json_object_set_new(fields, "dni", json_string(reason)) != 0)
				return PW_E_NOMEM;
		} else {
			out->has_dni = 1;
		}
	}
	v = json_object_get(payload, "q");
	if (v != NULL && !json_is_null(v)) {
		reason = check_q(v);
		if (reason != NULL) {
			if (json_object_set_new(fields, "q", json_string(reason)) != 0)
				return PW_E_NOMEM;
		} else if ((out->q = strdup(json_string_value(v))) == NULL) {
			return PW_E_NOMEM;
		}
	}
	v = json_object_get(payload, "cursor");
	if (v != NULL && !json_is_null(v) && json_object_size(fields) == 0) {
		/* One answer for every bad cursor: which check failed is nobody's business. */
		if (!json_is_string(v) ||
		    pw_cursor_decode(key, owner, out->has_dni ? out->dni : NULL, out->q,
		                     json_string_value(v), &out->after_id) != PW_OK) {
			if (json_object_set_new(fields, "cursor", json_string("invalid cursor")) !=
			    0)
				return PW_E_NOMEM;
		}
	}
	return PW_OK;
}

pw_status pw_query_validate(const json_t *payload, int is_list, const pw_cursor_key *key,
                            const char *owner, pw_query *out, json_t **fields_out)
{
	json_t *fields = json_object();
	pw_status st = PW_E_NOMEM;

	memset(out, 0, sizeof(*out));
	*fields_out = NULL;
	out->is_list = is_list;
	if (fields == NULL)
		goto out;
	st = is_list ? validate_list(payload, key, owner, out, fields)
	             : validate_get(payload, out, fields);
	if (st != PW_OK)
		goto out;
	if (json_object_size(fields) > 0) {
		*fields_out = fields;
		fields = NULL;
		st = PW_E_INVALID;
	}
out:
	json_decref(fields);
	if (st != PW_OK) {
		free(out->q);
		out->q = NULL;
	}
	return st;
}
