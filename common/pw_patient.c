/* Validation of the patient.create payload, and the hash that makes creates idempotent. */
#include "pw_patient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

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

/* The hash covers the values as stored, so "  Ana" and "Ana", or sexo absent and "M",
 * count as the same payload: they would create the same row. */
static pw_status hash_input(pw_patient_input *in)
{
	pw_status st = PW_E_NOMEM;
	json_t *o =
	    json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s}", "nombre", in->nombre, "apellido_paterno",
	              in->apellido_paterno, "apellido_materno", in->apellido_materno, "dni",
	              in->dni, "fecha_nacimiento", in->fecha_nacimiento, "sexo", in->sexo);
	char *text = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (o == NULL)
		goto out;
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL)
		goto out;
	if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		st = PW_E_INTERNAL;
		goto out;
	}
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(in->payload_hash + 2 * i, 3, "%02x", md[i]);
	st = PW_OK;
out:
	free(text);
	json_decref(o);
	return st;
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
	memset(p, 0, sizeof(*p));
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

static const char *const known[] = {"nombre",  "apellido_paterno", "apellido_materno",
                                    "dni",     "fecha_nacimiento", "sexo",
                                    "owner_id"};

pw_status pw_patient_validate(const json_t *payload, int64_t now_s, pw_patient_input *in,
                              json_t **fields_out)
{
	pw_status st = PW_E_NOMEM;
	json_t *fields = json_object();
	const char *key;
	json_t *v;

	memset(in, 0, sizeof(*in));
	*fields_out = NULL;
	if (fields == NULL)
		goto out;

	json_object_foreach((json_t *)payload, key, v)
	{
		int ok = 0;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok |= strcmp(key, known[i]) == 0;
		/* owner_id is ignored, whatever it holds: the owner is the token's. */
		if (!ok && add_field(fields, key, "unknown field") != 0)
			goto out;
	}

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
