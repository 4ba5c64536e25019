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

/* The contract's patient object; NULL when memory runs out. */
static json_t *patient_json(const pw_patient *p)
{
	return json_pack("{s:I, s:s, s:s, s:s?, s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "id",
	                 (json_int_t)p->id, "nombre", p->nombre, "apellido_paterno",
	                 p->apellido_paterno, "apellido_materno", p->apellido_materno, "dni",
	                 p->dni, "fecha_nacimiento", p->fecha_nacimiento, "sexo", p->sexo,
	                 "owner_id", p->owner_id, "version", (json_int_t)p->version, "created_at",
	                 p->created_at, "updated_at", p->updated_at);
}

/* pw_reply_data taking data over. */
static char *data_reply(const char *request_id, int status, json_t *data)
{
	char *s = data ? pw_reply_data(request_id, status, data) : NULL;
	json_decref(data);
	return s;
}

char *pw_reply_patient(const char *request_id, int status, const pw_patient *p)
{
	return data_reply(request_id, status, patient_json(p));
}

char *pw_reply_list(const char *request_id, const pw_patient *items, size_t n,
                    const char *next_cursor)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < n; i++)
		if (json_array_append_new(arr, patient_json(&items[i])) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	if (arr == NULL)
		return NULL;
	return data_reply(request_id, 200,
	                  json_pack("{s:o, s:o}", "items", arr, "next_cursor",
	                            next_cursor ? json_string(next_cursor) : json_null()));
}

char *pw_reply_deleted(const char *request_id, int64_t id, int64_t version, const char *deleted_at)
{
	return data_reply(request_id, 200,
	                  json_pack("{s:I, s:b, s:I, s:s}", "id", (json_int_t)id, "deleted", 1,
	                            "version", (json_int_t)version, "deleted_at", deleted_at));
}

char *pw_reply_version_conflict(const char *request_id, int64_t current_version)
{
	json_t *o = head(request_id, 409);
	json_t *e = json_pack("{s:s, s:s, s:I}", "code", "version_conflict", "message",
	                      "the patient has another version now", "current_version",
	                      (json_int_t)current_version);
	char *s = NULL;

	if (o != NULL && e != NULL && json_object_set(o, "error", e) == 0) {
		s = finish(o);
		o = NULL;
	}
	json_decref(e);
	json_decref(o);
	return s;
}

char *pw_reply_not_found(const char *request_id)
{
	/* The same answer whether another owner has this id, nobody does, or it is gone. */
	return pw_reply_error(request_id, 404, "not_found", "no such patient", NULL);
}

char *pw_reply_conflict(const char *request_id)
{
	json_t *f = json_pack("{s:s}", "dni", "already registered");
	char *s = f ? pw_reply_error(request_id, 409, "conflict",
	                             "a patient with this dni already exists", f)
	            : NULL;
	json_decref(f);
	return s;
}

char *pw_reply_idempotency_conflict(const char *request_id)
{
	return pw_reply_error(request_id, 409, "idempotency_conflict",
	                      "this request_id was already used with a different payload", NULL);
}

char *pw_reply_internal(const char *request_id)
{
	return pw_reply_error(request_id, 500, "internal", "internal error", NULL);
}
