/* Validation of the patient.create payload, and the hash that makes creates idempotent. */
#include "pw_patient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "pw_envelope.h"
#include "pw_util.h"

bool pw_patient_date_valid(int y, int m, int d)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (y < 1 || m < 1 || m > 12 || d < 1)
		return 0;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	int max = days[m - 1] + (m == 2 && leap);
	return d <= max;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Returns NULL and sets *reason when the value breaks the name rules. */
static char *name_value(json_t *v, const char **reason)
{
	const char *s, *e;
	char *out;

	if (!json_is_string(v)) {
		*reason = "must be a string";
		return NULL;
	}
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v)) {
		*reason = "must not contain control characters";
		return NULL;
	}
	e = s + strlen(s);
	while (s < e && is_space(*s))
		s++;
	while (e > s && is_space(e[-1]))
		e--;
	out = strndup(s, (size_t)(e - s));
	if (out == NULL) {
		*reason = "out of memory";
		return NULL;
	}
	size_t n;
	if (pw_util_utf8_length(out, &n) != PW_OK)
		*reason = "must be valid UTF-8";
	else if (n == 0)
		*reason = "must not be empty";
	else if (n > PW_NAME_MAX_CHARS)
		*reason = "must be at most 100 characters";
	else if (pw_util_utf8_has_control(out))
		*reason = "must not contain control characters";
	else
		return out;
	free(out);
	return NULL;
}

const char *pw_patient_check_dni(const json_t *v, char out[PW_DNI_MAX + 1])
{
	if (!json_is_string(v))
		return "must be a string";
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n == 0 || n > PW_DNI_MAX)
		return "must be 1 to 20 characters";
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      c == '-'))
			return "must hold only letters, digits and '-'";
	}
	memcpy(out, s, n + 1);
	return NULL;
}

static const char *check_date(json_t *v, int64_t now_s, char *out)
{
	if (!json_is_string(v))
		return "must be a string YYYY-MM-DD";
	const char *s = json_string_value(v);
	if (json_string_length(v) != 10 || s[4] != '-' || s[7] != '-')
		return "must be a date YYYY-MM-DD";
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return "must be a date YYYY-MM-DD";
	int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
	if (!pw_patient_date_valid(y, m, d))
		return "is not a calendar date";
	if (y < 1900)
		return "must not be before 1900-01-01";
	time_t now = (time_t)now_s;
	struct tm tm;
	char today[11];
	gmtime_r(&now, &tm);
	strftime(today, sizeof(today), "%Y-%m-%d", &tm);
	if (strcmp(s, today) > 0) /* same fixed-width form: text order is date order */
		return "must not be in the future";
	memcpy(out, s, 11);
	return NULL;
}

static const char *check_sexo(json_t *v, char *out)
{
	if (v == NULL || json_is_null(v)) {
		strcpy(out, "M");
		return NULL;
	}
	if (!json_is_string(v))
		return "must be M, F or X";
	const char *s = json_string_value(v);
	if (strcmp(s, "M") != 0 && strcmp(s, "F") != 0 && strcmp(s, "X") != 0)
		return "must be M, F or X";
	strcpy(out, s);
	return NULL;
}

/* Hex SHA-256 of o's canonical text (compact, keys sorted); takes o over. */
static pw_status hash_json(json_t *o, char out[65])
{
	pw_status st = PW_E_NOMEM;
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (text == NULL)
		goto out;
	if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		st = PW_E_INTERNAL;
		goto out;
	}
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	st = PW_OK;
out:
	free(text);
	json_decref(o);
	return st;
}

/* The hash covers the values as stored, so "  Ana" and "Ana", or sexo absent and "M",
 * count as the same payload: they would create the same row. Its form is the one stored
 * with every patient since migration 004: it must never change. */
static pw_status hash_input(pw_patient_input *in)
{
	return hash_json(json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s}", "nombre", in->nombre,
	                           "apellido_paterno", in->apellido_paterno, "apellido_materno",
	                           in->apellido_materno, "dni", in->dni, "fecha_nacimiento",
	                           in->fecha_nacimiento, "sexo", in->sexo),
	                 in->payload_hash);
}

void pw_patient_input_clear(pw_patient_input *in)
{
	if (in == NULL)
		return;
	free(in->nombre);
	free(in->apellido_paterno);
	free(in->apellido_materno);
	memset(in, 0, sizeof(*in));
}

void pw_patient_clear(pw_patient *p)
{
	if (p == NULL)
		return;
	free(p->nombre);
	free(p->apellido_paterno);
	free(p->apellido_materno);
	free(p->dni);
	free(p->fecha_nacimiento);
	free(p->sexo);
	free(p->owner_id);
	free(p->created_at);
	free(p->updated_at);
	memset(p, 0, sizeof(*p));
}

pw_status pw_patient_from_json(const json_t *o, pw_patient *out)
{
	const char *text[] = {"nombre",   "apellido_paterno", "apellido_materno",
	                      "dni",      "fecha_nacimiento", "sexo",
	                      "owner_id", "created_at",       "updated_at"};
	char **field[] = {&out->nombre,   &out->apellido_paterno, &out->apellido_materno,
	                  &out->dni,      &out->fecha_nacimiento, &out->sexo,
	                  &out->owner_id, &out->created_at,       &out->updated_at};
	json_t *id = json_object_get(o, "id"), *version = json_object_get(o, "version");

	memset(out, 0, sizeof(*out));
	if (!json_is_integer(id) || !json_is_integer(version))
		return PW_E_INVALID;
	out->id = (int64_t)json_integer_value(id);
	out->version = (int64_t)json_integer_value(version);
	for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
		json_t *v = json_object_get(o, text[i]);
		if (json_is_null(v) && field[i] == &out->apellido_materno)
			continue;
		if (!json_is_string(v)) {
			pw_patient_clear(out);
			return PW_E_INVALID;
		}
		if ((*field[i] = strdup(json_string_value(v))) == NULL) {
			pw_patient_clear(out);
			return PW_E_NOMEM;
		}
	}
	return PW_OK;
}

static int add_field(json_t *fields, const char *name, const char *reason)
{
	return json_object_set_new(fields, name, json_string(reason));
}

/* The reason a field is refused, if any, into fields. -1 only when fields cannot grow. */
static int note(json_t *fields, const char *name, const char *reason)
{
	return reason == NULL ? 0 : add_field(fields, name, reason);
}

/* A name field by the name rules into *out (trimmed), or its reason into fields. An
 * optional one may be absent or null; a required one absent is "required". */
static int name_field(const json_t *payload, const char *name, bool required, char **out,
                      json_t *fields)
{
	json_t *v = json_object_get(payload, name);
	const char *reason = "required";

	if (v == NULL || (!required && json_is_null(v)))
		return required ? add_field(fields, name, reason) : 0;
	*out = name_value(v, &reason);
	return *out == NULL ? add_field(fields, name, reason) : 0;
}

/* The payload fields of a patient, in the order of the pw_patient_field bits. */
static const char *const field_names[PW_PATIENT_FIELDS] = {
    "nombre", "apellido_paterno", "apellido_materno", "dni", "fecha_nacimiento", "sexo"};

/* What each payload may hold: its fields, and owner_id, which is ignored whatever it holds
 * (the owner is always the token's). */
static const char *const create_allowed[] = {"nombre",  "apellido_paterno", "apellido_materno",
                                             "dni",     "fecha_nacimiento", "sexo",
                                             "owner_id"};
static const char *const update_allowed[] = {
    "id",  "version",          "nombre", "apellido_paterno", "apellido_materno",
    "dni", "fecha_nacimiento", "sexo",   "owner_id"};
static const char *const delete_allowed[] = {"id", "version", "owner_id"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

pw_status pw_patient_validate(const json_t *payload, int64_t now_s, pw_patient_input *in,
                              json_t **fields_out)
{
	pw_status st = PW_E_NOMEM;
	json_t *fields = json_object();
	json_t *v;

	memset(in, 0, sizeof(*in));
	*fields_out = NULL;
	if (fields == NULL)
		goto out;

	if (pw_envelope_unknown_fields(payload, create_allowed, COUNT(create_allowed), fields) != 0)
		goto out;
	if (name_field(payload, "nombre", true, &in->nombre, fields) != 0 ||
	    name_field(payload, "apellido_paterno", true, &in->apellido_paterno, fields) != 0 ||
	    name_field(payload, "apellido_materno", false, &in->apellido_materno, fields) != 0)
		goto out;
	v = json_object_get(payload, "dni");
	if (note(fields, "dni", v == NULL ? "required" : pw_patient_check_dni(v, in->dni)) != 0)
		goto out;
	v = json_object_get(payload, "fecha_nacimiento");
	if (note(fields, "fecha_nacimiento",
	         v == NULL ? "required" : check_date(v, now_s, in->fecha_nacimiento)) != 0)
		goto out;
	if (note(fields, "sexo", check_sexo(json_object_get(payload, "sexo"), in->sexo)) != 0)
		goto out;

	if (json_object_size(fields) > 0) {
		*fields_out = fields;
		fields = NULL;
		st = PW_E_INVALID;
		goto out;
	}
	st = hash_input(in);
out:
	json_decref(fields);
	if (st != PW_OK)
		pw_patient_input_clear(in);
	return st;
}

/* ---- patient.update and patient.delete ----------------------------------------------------- */

const char *pw_patient_field_name(pw_patient_field f)
{
	for (int i = 0; i < PW_PATIENT_FIELDS; i++)
		if ((unsigned)f == 1u << i)
			return field_names[i];
	return "unknown";
}

const char *pw_patient_check_positive(const json_t *v, int64_t *out)
{
	if (v == NULL)
		return "required";
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return "must be an integer >= 1";
	*out = (int64_t)json_integer_value(v);
	return NULL;
}

/* id and version, the two a delete has and an update starts with. */
static int id_and_version(const json_t *payload, int64_t *id, int64_t *version, json_t *fields)
{
	return note(fields, "id", pw_patient_check_positive(json_object_get(payload, "id"), id)) ||
	       note(fields, "version",
	            pw_patient_check_positive(json_object_get(payload, "version"), version));
}

/* One optional field of an update, by the create's rule for it. */
static int update_field(const json_t *payload, int i, int64_t now_s, pw_patient_update *u,
                        json_t *fields)
{
	const char *name = field_names[i];
	json_t *v = json_object_get(payload, name);
	pw_patient_input *in = &u->values;
	const char *reason = NULL;

	if (v == NULL)
		return 0;
	u->fields |= 1u << i;
	switch (1 << i) {
	case PW_PATIENT_NOMBRE:
		return name_field(payload, name, true, &in->nombre, fields);
	case PW_PATIENT_APELLIDO_PATERNO:
		return name_field(payload, name, true, &in->apellido_paterno, fields);
	case PW_PATIENT_APELLIDO_MATERNO: /* null clears it */
		return name_field(payload, name, false, &in->apellido_materno, fields);
	case PW_PATIENT_DNI:
		reason = pw_patient_check_dni(v, in->dni);
		break;
	case PW_PATIENT_FECHA_NACIMIENTO:
		reason = check_date(v, now_s, in->fecha_nacimiento);
		break;
	case PW_PATIENT_SEXO: /* null is the default of a create, but changes nothing here */
		reason = json_is_null(v) ? "must be M, F or X" : check_sexo(v, in->sexo);
		break;
	}
	return note(fields, name, reason);
}

/* The update's canonical form: its type, id, version and the fields it sets, as set. */
static pw_status hash_update(pw_patient_update *u)
{
	const pw_patient_input *in = &u->values;
	const char *values[PW_PATIENT_FIELDS] = {in->nombre,           in->apellido_paterno,
	                                         in->apellido_materno, in->dni,
	                                         in->fecha_nacimiento, in->sexo};
	json_t *o = json_pack("{s:s, s:I, s:I}", "type", "patient.update", "id", (json_int_t)u->id,
	                      "version", (json_int_t)u->version);

	for (int i = 0; o != NULL && i < PW_PATIENT_FIELDS; i++)
		if ((u->fields & (1u << i)) &&
		    json_object_set_new(o, field_names[i],
		                        values[i] ? json_string(values[i]) : json_null()) != 0) {
			json_decref(o);
			o = NULL;
		}
	return hash_json(o, u->payload_hash);
}

/* Hands the fields object out on PW_E_INVALID, else frees it. */
static pw_status verdict(json_t *fields, json_t **fields_out, pw_status st)
{
	if (st == PW_OK && json_object_size(fields) > 0) {
		*fields_out = fields;
		return PW_E_INVALID;
	}
	json_decref(fields);
	return st;
}

pw_status pw_patient_validate_update(const json_t *payload, int64_t now_s, pw_patient_update *out,
                                     json_t **fields_out)
{
	json_t *fields = json_object();
	pw_status st = PW_E_NOMEM;

	memset(out, 0, sizeof(*out));
	*fields_out = NULL;
	if (fields == NULL ||
	    pw_envelope_unknown_fields(payload, update_allowed, COUNT(update_allowed), fields) !=
	        0 ||
	    id_and_version(payload, &out->id, &out->version, fields) != 0)
		goto out;
	for (int i = 0; i < PW_PATIENT_FIELDS; i++)
		if (update_field(payload, i, now_s, out, fields) != 0)
			goto out;
	if (out->fields == 0 && add_field(fields, "payload", "no field to change") != 0)
		goto out;
	st = verdict(fields, fields_out, PW_OK);
	fields = NULL;
	if (st == PW_OK)
		st = hash_update(out);
out:
	json_decref(fields);
	if (st != PW_OK)
		pw_patient_update_clear(out);
	return st;
}

void pw_patient_update_clear(pw_patient_update *u)
{
	if (u == NULL)
		return;
	pw_patient_input_clear(&u->values);
	memset(u, 0, sizeof(*u));
}

pw_status pw_patient_validate_delete(const json_t *payload, pw_patient_delete *out,
                                     json_t **fields_out)
{
	json_t *fields = json_object();
	pw_status st;

	memset(out, 0, sizeof(*out));
	*fields_out = NULL;
	if (fields == NULL ||
	    pw_envelope_unknown_fields(payload, delete_allowed, COUNT(delete_allowed), fields) !=
	        0 ||
	    id_and_version(payload, &out->id, &out->version, fields) != 0) {
		json_decref(fields);
		return PW_E_NOMEM;
	}
	st = verdict(fields, fields_out, PW_OK);
	if (st == PW_OK)
		st = hash_json(json_pack("{s:s, s:I, s:I}", "type", "patient.delete", "id",
		                         (json_int_t)out->id, "version", (json_int_t)out->version),
		               out->payload_hash);
	return st;
}
