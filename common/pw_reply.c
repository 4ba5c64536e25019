/* Reply bodies. Key order is kept (request_id, status, data|error) for readable logs. */
#include "pw_reply.h"

#include <stdlib.h>

const char *pw_reply_code_for(int status)
{
	switch (status) {
	case 400:
		return "invalid_request";
	case 401:
		return "unauthorized";
	case 403:
		return "forbidden";
	case 404:
		return "not_found";
	case 409:
		return "conflict";
	default:
		return "internal";
	}
}

static json_t *head(const char *request_id, int status)
{
	json_t *o = json_object();
	if (o == NULL)
		return NULL;
	if (json_object_set_new(o, "request_id",
	                        request_id ? json_string(request_id) : json_null()) != 0 ||
	    json_object_set_new(o, "status", json_integer(status)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static char *finish(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	return s;
}

char *pw_reply_data(const char *request_id, int status, json_t *data)
{
	json_t *o = head(request_id, status);
	if (o != NULL && json_object_set(o, "data", data) != 0) {
		json_decref(o);
		return NULL;
	}
	return finish(o);
}

char *pw_reply_error(const char *request_id, int status, const char *code, const char *message,
                     json_t *fields)
{
	json_t *o = head(request_id, status);
	json_t *e = json_pack("{s:s, s:s}", "code", code, "message", message);

	char *s = NULL;

	if (o == NULL || e == NULL)
		goto out;
	if (fields != NULL && json_object_set(e, "fields", fields) != 0)
		goto out;
	if (json_object_set(o, "error", e) != 0)
		goto out;
	s = finish(o);
	o = NULL; /* finish released it */
out:
	json_decref(e);
	json_decref(o);
	return s;
}
