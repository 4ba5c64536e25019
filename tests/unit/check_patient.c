/* Unit tests of pw_patient: every rule of the patient.create, patient.update and
 * patient.delete payloads, their idempotency hashes, and the calendar helper. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "pw_check_main.h"
#include "pw_patient.h"
#include "pw_status.h"

/* 2024-06-15T00:00:00Z; the command's time is noon of that day unless a case says otherwise.
 * It lies in the past of the wall clock, so a check against time(NULL) cannot pass. */
#define DAY_2024_06_15 INT64_C(1718409600)
#define NOW            (DAY_2024_06_15 + 12 * 3600)

#define ENYE  "\xc3\xb1"         /* ñ, 2 bytes */
#define EMOJI "\xf0\x9f\x98\x80" /* U+1F600, 4 bytes */

static json_t *base_payload(void)
{
	json_t *p =
	    json_pack("{s:s, s:s, s:s, s:s, s:s}", "nombre", "Ana", "apellido_paterno", "Quispe",
	              "dni", "45678912", "fecha_nacimiento", "1990-04-12", "sexo", "F");
	ck_assert_ptr_nonnull(p);
	return p;
}

static char *repeat(const char *unit, size_t n, int pad)
{
	size_t ul = strlen(unit), off = pad ? 2 : 0;
	char *s = malloc(ul * n + 2 * off + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, ' ', off);
	for (size_t i = 0; i < n; i++)
		memcpy(s + off + i * ul, unit, ul);
	memset(s + off + ul * n, ' ', off);
	s[ul * n + 2 * off] = '\0';
	return s;
}

static const char *stored(const pw_patient_input *in, const char *field)
{
	if (strcmp(field, "nombre") == 0)
		return in->nombre;
	if (strcmp(field, "apellido_paterno") == 0)
		return in->apellido_paterno;
	if (strcmp(field, "apellido_materno") == 0)
		return in->apellido_materno;
	if (strcmp(field, "dni") == 0)
		return in->dni;
	if (strcmp(field, "fecha_nacimiento") == 0)
		return in->fecha_nacimiento;
	if (strcmp(field, "sexo") == 0)
		return in->sexo;
	return NULL;
}

#define ABSENT NULL

typedef struct field_case {
	const char *name;
	const char *field;
	const char *json;     /**< the field's JSON value; ABSENT removes it */
	const char *rep_unit; /**< when set, the value is this string repeated rep_n times */
	size_t rep_n;
	int pad;          /**< with rep_unit: two spaces either side */
	int ok;           /**< 1: PW_OK; 0: PW_E_INVALID naming `field` alone */
	const char *want; /**< with ok: the stored value ("\1" for NULL, 0 to skip) */
} field_case;

#define WANT_NULL "\1"

static void run_field_cases(const field_case *rows, size_t n, int64_t now_s)
{
	for (size_t i = 0; i < n; i++) {
		const field_case *c = &rows[i];
		json_t *p = base_payload();
		char *rep = NULL;

		if (c->rep_unit != NULL) {
			rep = repeat(c->rep_unit, c->rep_n, c->pad);
			json_object_set_new(p, c->field, json_string(rep));
		} else if (c->json == ABSENT) {
			json_object_del(p, c->field);
		} else {
			json_error_t e;
			json_t *v = json_loads(c->json, JSON_DECODE_ANY, &e);
			ck_assert_msg(v != NULL, "row '%s': bad test JSON: %s", c->name, e.text);
			json_object_set_new(p, c->field, v);
		}

		pw_patient_input in;
		json_t *fields = NULL;
		memset(&in, 0, sizeof(in));
		pw_status st = pw_patient_validate(p, now_s, &in, &fields);

		if (c->ok) {
			char *ftext = fields ? json_dumps(fields, JSON_COMPACT) : NULL;
			ck_assert_msg(st == PW_OK, "row '%s': status %d, want PW_OK; fields %s",
			              c->name, st, ftext ? ftext : "(none)");
			free(ftext);
			if (c->want != NULL) {
				const char *got = stored(&in, c->field);
				if (strcmp(c->want, WANT_NULL) == 0)
					ck_assert_msg(got == NULL,
					              "row '%s': %s is '%s', want NULL", c->name,
					              c->field, got);
				else
					ck_assert_msg(got != NULL && strcmp(got, c->want) == 0,
					              "row '%s': %s is '%s', want '%s'", c->name,
					              c->field, got ? got : "(null)", c->want);
			}
			pw_patient_input_clear(&in);
		} else {
			ck_assert_msg(st == PW_E_INVALID, "row '%s': status %d, want PW_E_INVALID",
			              c->name, st);
			ck_assert_msg(json_is_object(fields), "row '%s': no fields object",
			              c->name);
			json_t *why = json_object_get(fields, c->field);
			char *ftext = json_dumps(fields, JSON_COMPACT);
			ck_assert_msg(json_is_string(why) && json_string_length(why) > 0,
			              "row '%s': fields %s does not name '%s' with a reason",
			              c->name, ftext, c->field);
			ck_assert_msg(json_object_size(fields) == 1,
			              "row '%s': fields %s names more than '%s'", c->name, ftext,
			              c->field);
			free(ftext);
		}
		json_decref(fields);
		json_decref(p);
		free(rep);
	}
}

START_TEST(test_base_payload)
{
	json_t *p = base_payload();
	pw_patient_input in;
	json_t *fields = NULL;

	memset(&in, 0, sizeof(in));
	ck_assert_int_eq(pw_patient_validate(p, NOW, &in, &fields), PW_OK);
	ck_assert_str_eq(in.nombre, "Ana");
	ck_assert_str_eq(in.apellido_paterno, "Quispe");
	ck_assert_ptr_null(in.apellido_materno);
	ck_assert_str_eq(in.dni, "45678912");
	ck_assert_str_eq(in.fecha_nacimiento, "1990-04-12");
	ck_assert_str_eq(in.sexo, "F");
	ck_assert_uint_eq(strlen(in.payload_hash), 64);
	for (size_t i = 0; i < 64; i++)
		ck_assert_msg(isxdigit((unsigned char)in.payload_hash[i]) &&
		                  !isupper((unsigned char)in.payload_hash[i]),
		              "payload_hash '%s' is not lower-case hex", in.payload_hash);
	pw_patient_input_clear(&in);
	ck_assert_ptr_null(in.nombre);
	ck_assert_ptr_null(in.apellido_paterno);
	json_decref(fields);
	json_decref(p);
}
END_TEST

START_TEST(test_names)
{
	static const field_case rows[] = {
	    {"nombre 100 ASCII", "nombre", NULL, "a", 100, 0, 1, 0},
	    {"nombre 101 ASCII", "nombre", NULL, "a", 101, 0, 0, 0},
	    {"nombre 100 x enye", "nombre", NULL, ENYE, 100, 0, 1, 0},
	    {"nombre 101 x enye", "nombre", NULL, ENYE, 101, 0, 0, 0},
	    {"nombre 100 x emoji", "nombre", NULL, EMOJI, 100, 0, 1, 0},
	    {"nombre 101 x emoji", "nombre", NULL, EMOJI, 101, 0, 0, 0},
	    {"nombre 100 ASCII padded by spaces", "nombre", NULL, "b", 100, 1, 1, 0},
	    {"nombre 101 ASCII padded by spaces", "nombre", NULL, "b", 101, 1, 0, 0},
	    {"nombre 1 char", "nombre", "\"A\"", NULL, 0, 0, 1, "A"},
	    {"nombre trimmed", "nombre", "\"  Ana  \"", NULL, 0, 0, 1, "Ana"},
	    {"nombre inner spaces kept", "nombre", "\" Ana  Mar\\u00eda \"", NULL, 0, 0, 1,
	     "Ana  Mar"
	     "\xc3\xad"
	     "a"},
	    {"nombre empty", "nombre", "\"\"", NULL, 0, 0, 0, 0},
	    {"nombre whitespace only", "nombre", "\"   \"", NULL, 0, 0, 0, 0},
	    {"nombre control U+0001", "nombre", "\"A\\u0001na\"", NULL, 0, 0, 0, 0},
	    {"nombre control U+007F", "nombre", "\"A\\u007fna\"", NULL, 0, 0, 0, 0},
	    {"nombre control U+0085", "nombre", "\"A\\u0085na\"", NULL, 0, 0, 0, 0},
	    {"nombre newline inside", "nombre", "\"A\\nna\"", NULL, 0, 0, 0, 0},
	    {"nombre tab inside", "nombre", "\"A\\tna\"", NULL, 0, 0, 0, 0},
	    {"nombre number", "nombre", "42", NULL, 0, 0, 0, 0},
	    {"nombre null", "nombre", "null", NULL, 0, 0, 0, 0},
	    {"nombre array", "nombre", "[\"Ana\"]", NULL, 0, 0, 0, 0},
	    {"nombre absent", "nombre", ABSENT, NULL, 0, 0, 0, 0},
	    {"apellido_paterno 100 x enye", "apellido_paterno", NULL, ENYE, 100, 0, 1, 0},
	    {"apellido_paterno 101 x enye", "apellido_paterno", NULL, ENYE, 101, 0, 0, 0},
	    {"apellido_paterno trimmed", "apellido_paterno", "\" Quispe \"", NULL, 0, 0, 1,
	     "Quispe"},
	    {"apellido_paterno empty", "apellido_paterno", "\"\"", NULL, 0, 0, 0, 0},
	    {"apellido_paterno whitespace only", "apellido_paterno", "\" \"", NULL, 0, 0, 0, 0},
	    {"apellido_paterno control U+0001", "apellido_paterno", "\"Q\\u0001\"", NULL, 0, 0, 0,
	     0},
	    {"apellido_paterno absent", "apellido_paterno", ABSENT, NULL, 0, 0, 0, 0},
	    {"apellido_paterno number", "apellido_paterno", "7", NULL, 0, 0, 0, 0},
	    {"apellido_materno null", "apellido_materno", "null", NULL, 0, 0, 1, WANT_NULL},
	    {"apellido_materno absent", "apellido_materno", ABSENT, NULL, 0, 0, 1, WANT_NULL},
	    {"apellido_materno trimmed", "apellido_materno", "\"  Rojas \"", NULL, 0, 0, 1,
	     "Rojas"},
	    {"apellido_materno 100 x emoji", "apellido_materno", NULL, EMOJI, 100, 0, 1, 0},
	    {"apellido_materno 101 x enye", "apellido_materno", NULL, ENYE, 101, 0, 0, 0},
	    {"apellido_materno empty", "apellido_materno", "\"\"", NULL, 0, 0, 0, 0},
	    {"apellido_materno whitespace only", "apellido_materno", "\"   \"", NULL, 0, 0, 0, 0},
	    {"apellido_materno control U+007F", "apellido_materno", "\"R\\u007f\"", NULL, 0, 0, 0,
	     0},
	    {"apellido_materno control U+0085", "apellido_materno", "\"R\\u0085\"", NULL, 0, 0, 0,
	     0},
	    {"apellido_materno number", "apellido_materno", "1", NULL, 0, 0, 0, 0},
	};
	run_field_cases(rows, sizeof(rows) / sizeof(rows[0]), NOW);
}
END_TEST

START_TEST(test_long_name_stored_whole)
{
	char *name = repeat(EMOJI, 100, 0);
	json_t *p = base_payload();
	pw_patient_input in;
	json_t *fields = NULL;

	json_object_set_new(p, "nombre", json_string(name));
	memset(&in, 0, sizeof(in));
	ck_assert_int_eq(pw_patient_validate(p, NOW, &in, &fields), PW_OK);
	ck_assert_str_eq(in.nombre, name);
	pw_patient_input_clear(&in);
	json_decref(p);
	free(name);
}
END_TEST

START_TEST(test_dni)
{
	static const field_case rows[] = {
	    {"dni 20 digits", "dni", NULL, "9", 20, 0, 1, 0},
	    {"dni 21 digits", "dni", NULL, "9", 21, 0, 0, 0},
	    {"dni 1 char", "dni", "\"7\"", NULL, 0, 0, 1, "7"},
	    {"dni letters digits dash", "dni", "\"AB-12cd-9\"", NULL, 0, 0, 1, "AB-12cd-9"},
	    {"dni 20 mixed", "dni", "\"abcdefghij-123456789\"", NULL, 0, 0, 1,
	     "abcdefghij-123456789"},
	    {"dni underscore", "dni", "\"12_34\"", NULL, 0, 0, 0, 0},
	    {"dni inner space", "dni", "\"12 34\"", NULL, 0, 0, 0, 0},
	    {"dni slash", "dni", "\"12/34\"", NULL, 0, 0, 0, 0},
	    {"dni dot", "dni", "\"12.34\"", NULL, 0, 0, 0, 0},
	    {"dni percent", "dni", "\"12%\"", NULL, 0, 0, 0, 0},
	    {"dni empty", "dni", "\"\"", NULL, 0, 0, 0, 0},
	    {"dni control", "dni", "\"12\\u000134\"", NULL, 0, 0, 0, 0},
	    {"dni number", "dni", "45678912", NULL, 0, 0, 0, 0},
	    {"dni null", "dni", "null", NULL, 0, 0, 0, 0},
	    {"dni absent", "dni", ABSENT, NULL, 0, 0, 0, 0},
	};
	run_field_cases(rows, sizeof(rows) / sizeof(rows[0]), NOW);
}
END_TEST

START_TEST(test_fecha)
{
	static const field_case rows[] = {
	    {"2024-02-29 (leap year)", "fecha_nacimiento", "\"2024-02-29\"", NULL, 0, 0, 1,
	     "2024-02-29"},
	    {"2023-02-29", "fecha_nacimiento", "\"2023-02-29\"", NULL, 0, 0, 0, 0},
	    {"1900-02-29 (century, not leap)", "fecha_nacimiento", "\"1900-02-29\"", NULL, 0, 0, 0,
	     0},
	    {"2000-02-29 (400-year leap)", "fecha_nacimiento", "\"2000-02-29\"", NULL, 0, 0, 1,
	     "2000-02-29"},
	    {"1899-12-31", "fecha_nacimiento", "\"1899-12-31\"", NULL, 0, 0, 0, 0},
	    {"1900-01-01", "fecha_nacimiento", "\"1900-01-01\"", NULL, 0, 0, 1, "1900-01-01"},
	    {"today", "fecha_nacimiento", "\"2024-06-15\"", NULL, 0, 0, 1, "2024-06-15"},
	    {"yesterday", "fecha_nacimiento", "\"2024-06-14\"", NULL, 0, 0, 1, "2024-06-14"},
	    {"tomorrow", "fecha_nacimiento", "\"2024-06-16\"", NULL, 0, 0, 0, 0},
	    {"next year", "fecha_nacimiento", "\"2025-01-01\"", NULL, 0, 0, 0, 0},
	    {"2023-04-31", "fecha_nacimiento", "\"2023-04-31\"", NULL, 0, 0, 0, 0},
	    {"2023-13-01", "fecha_nacimiento", "\"2023-13-01\"", NULL, 0, 0, 0, 0},
	    {"2023-00-10", "fecha_nacimiento", "\"2023-00-10\"", NULL, 0, 0, 0, 0},
	    {"2023-01-00", "fecha_nacimiento", "\"2023-01-00\"", NULL, 0, 0, 0, 0},
	    {"1990-4-12 (no zero padding)", "fecha_nacimiento", "\"1990-4-12\"", NULL, 0, 0, 0, 0},
	    {"1990-04-12T00:00 (time part)", "fecha_nacimiento", "\"1990-04-12T00:00\"", NULL, 0, 0,
	     0, 0},
	    {"1990-04-12 with trailing space", "fecha_nacimiento", "\"1990-04-12 \"", NULL, 0, 0, 0,
	     0},
	    {"1990/04/12", "fecha_nacimiento", "\"1990/04/12\"", NULL, 0, 0, 0, 0},
	    {"12-04-1990", "fecha_nacimiento", "\"12-04-1990\"", NULL, 0, 0, 0, 0},
	    {"+1990-04-12 (sign)", "fecha_nacimiento", "\"+1990-04-12\"", NULL, 0, 0, 0, 0},
	    {"letters", "fecha_nacimiento", "\"abcd-ef-gh\"", NULL, 0, 0, 0, 0},
	    {"empty", "fecha_nacimiento", "\"\"", NULL, 0, 0, 0, 0},
	    {"number 19900412", "fecha_nacimiento", "19900412", NULL, 0, 0, 0, 0},
	    {"null", "fecha_nacimiento", "null", NULL, 0, 0, 0, 0},
	    {"absent", "fecha_nacimiento", ABSENT, NULL, 0, 0, 0, 0},
	};
	run_field_cases(rows, sizeof(rows) / sizeof(rows[0]), NOW);
}
END_TEST

/* "Not in the future" is judged at the command's time (UTC day of now_s), not the wall clock. */
START_TEST(test_fecha_relative_to_now)
{
	static const struct {
		const char *name;
		int64_t now_s;
		const char *date;
		int ok;
	} rows[] = {
	    {"today at 00:00:00", DAY_2024_06_15, "2024-06-15", 1},
	    {"today at 23:59:59", DAY_2024_06_15 + 86399, "2024-06-15", 1},
	    {"tomorrow at 23:59:59", DAY_2024_06_15 + 86399, "2024-06-16", 0},
	    {"tomorrow at 00:00:00", DAY_2024_06_15, "2024-06-16", 0},
	    {"next day once it has come", DAY_2024_06_15 + 86400, "2024-06-16", 1},
	    {"2024-02-29 before it came", DAY_2024_06_15 - 120 * 86400, "2024-02-29", 0},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		json_t *p = base_payload();
		pw_patient_input in;
		json_t *fields = NULL;

		json_object_set_new(p, "fecha_nacimiento", json_string(rows[i].date));
		memset(&in, 0, sizeof(in));
		pw_status st = pw_patient_validate(p, rows[i].now_s, &in, &fields);
		ck_assert_msg(st == (rows[i].ok ? PW_OK : PW_E_INVALID),
		              "row '%s': %s at %lld: status %d, want %s", rows[i].name,
		              rows[i].date, (long long)rows[i].now_s, st,
		              rows[i].ok ? "PW_OK" : "PW_E_INVALID");
		if (!rows[i].ok)
			ck_assert_msg(json_object_get(fields, "fecha_nacimiento") != NULL,
			              "row '%s': fields does not name fecha_nacimiento",
			              rows[i].name);
		if (st == PW_OK)
			pw_patient_input_clear(&in);
		json_decref(fields);
		json_decref(p);
	}
}
END_TEST

START_TEST(test_sexo)
{
	static const field_case rows[] = {
	    {"sexo M", "sexo", "\"M\"", NULL, 0, 0, 1, "M"},
	    {"sexo F", "sexo", "\"F\"", NULL, 0, 0, 1, "F"},
	    {"sexo X", "sexo", "\"X\"", NULL, 0, 0, 1, "X"},
	    {"sexo absent: M", "sexo", ABSENT, NULL, 0, 0, 1, "M"},
	    {"sexo m", "sexo", "\"m\"", NULL, 0, 0, 0, 0},
	    {"sexo Z", "sexo", "\"Z\"", NULL, 0, 0, 0, 0},
	    {"sexo empty", "sexo", "\"\"", NULL, 0, 0, 0, 0},
	    {"sexo MF", "sexo", "\"MF\"", NULL, 0, 0, 0, 0},
	    {"sexo Male", "sexo", "\"Male\"", NULL, 0, 0, 0, 0},
	    {"sexo number", "sexo", "1", NULL, 0, 0, 0, 0},
	};
	run_field_cases(rows, sizeof(rows) / sizeof(rows[0]), NOW);
}
END_TEST

START_TEST(test_other_fields)
{
	static const field_case rows[] = {
	    {"owner_id string ignored", "owner_id", "\"mallory@example.com\"", NULL, 0, 0, 1, 0},
	    {"owner_id number ignored", "owner_id", "12", NULL, 0, 0, 1, 0},
	    {"unknown field", "foo", "\"bar\"", NULL, 0, 0, 0, 0},
	    {"unknown field null", "email", "null", NULL, 0, 0, 0, 0},
	    {"unknown field id", "id", "5", NULL, 0, 0, 0, 0},
	    {"unknown field differing in case", "Nombre", "\"Ana\"", NULL, 0, 0, 0, 0},
	};
	run_field_cases(rows, sizeof(rows) / sizeof(rows[0]), NOW);
}
END_TEST

START_TEST(test_several_bad_fields)
{
	json_error_t e;
	json_t *p = json_loads("{\"nombre\":\"\",\"apellido_paterno\":\"Quispe\",\"dni\":\"a_b\","
	                       "\"fecha_nacimiento\":\"2023-02-29\",\"sexo\":\"Z\",\"extra\":1,"
	                       "\"owner_id\":\"x@y\"}",
	                       0, &e);
	const char *bad[] = {"nombre", "dni", "fecha_nacimiento", "sexo", "extra"};
	pw_patient_input in;
	json_t *fields = NULL;

	ck_assert_ptr_nonnull(p);
	memset(&in, 0, sizeof(in));
	ck_assert_int_eq(pw_patient_validate(p, NOW, &in, &fields), PW_E_INVALID);
	ck_assert(json_is_object(fields));
	char *ftext = json_dumps(fields, JSON_COMPACT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(json_is_string(json_object_get(fields, bad[i])),
		              "fields %s does not name '%s'", ftext, bad[i]);
	ck_assert_msg(json_object_get(fields, "apellido_paterno") == NULL,
	              "fields %s names the good apellido_paterno", ftext);
	ck_assert_msg(json_object_get(fields, "owner_id") == NULL,
	              "fields %s names the ignored owner_id", ftext);
	ck_assert_uint_eq(json_object_size(fields), 5);
	free(ftext);
	json_decref(fields);

	/* Missing every required field: each one is named. */
	json_decref(p);
	p = json_object();
	fields = NULL;
	ck_assert_int_eq(pw_patient_validate(p, NOW, &in, &fields), PW_E_INVALID);
	const char *req[] = {"nombre", "apellido_paterno", "dni", "fecha_nacimiento"};
	ftext = json_dumps(fields, JSON_COMPACT);
	for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++)
		ck_assert_msg(json_object_get(fields, req[i]) != NULL,
		              "empty payload: fields %s does not name '%s'", ftext, req[i]);
	free(ftext);
	json_decref(fields);
	json_decref(p);
}
END_TEST

static void hash_of(const char *text, char out[65])
{
	json_error_t e;
	json_t *p = json_loads(text, 0, &e);
	pw_patient_input in;
	json_t *fields = NULL;

	ck_assert_msg(p != NULL, "bad test JSON %s", text);
	memset(&in, 0, sizeof(in));
	pw_status st = pw_patient_validate(p, NOW, &in, &fields);
	ck_assert_msg(st == PW_OK, "payload %s: status %d", text, st);
	memcpy(out, in.payload_hash, 65);
	pw_patient_input_clear(&in);
	json_decref(fields);
	json_decref(p);
}

START_TEST(test_payload_hash)
{
#define P_BASE                                                                                     \
	"{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\",\"dni\":\"45678912\","                \
	"\"fecha_nacimiento\":\"1990-04-12\",\"sexo\":\"F\"}"
	static const struct {
		const char *name;
		const char *text;
		int same; /**< 1: same hash as P_BASE */
	} rows[] = {
	    {"same payload", P_BASE, 1},
	    {"keys in another order",
	     "{\"sexo\":\"F\",\"fecha_nacimiento\":\"1990-04-12\",\"dni\":\"45678912\","
	     "\"apellido_paterno\":\"Quispe\",\"nombre\":\"Ana\"}",
	     1},
	    {"with owner_id",
	     "{\"owner_id\":\"mallory@example.com\",\"nombre\":\"Ana\",\"apellido_paterno\":"
	     "\"Quispe\",\"dni\":\"45678912\",\"fecha_nacimiento\":\"1990-04-12\",\"sexo\":\"F\"}",
	     1},
	    {"other nombre",
	     "{\"nombre\":\"Ann\",\"apellido_paterno\":\"Quispe\",\"dni\":\"45678912\","
	     "\"fecha_nacimiento\":\"1990-04-12\",\"sexo\":\"F\"}",
	     0},
	    {"other apellido_paterno",
	     "{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispa\",\"dni\":\"45678912\","
	     "\"fecha_nacimiento\":\"1990-04-12\",\"sexo\":\"F\"}",
	     0},
	    {"with apellido_materno",
	     "{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\",\"apellido_materno\":\"Rojas\","
	     "\"dni\":\"45678912\",\"fecha_nacimiento\":\"1990-04-12\",\"sexo\":\"F\"}",
	     0},
	    {"other dni",
	     "{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\",\"dni\":\"45678913\","
	     "\"fecha_nacimiento\":\"1990-04-12\",\"sexo\":\"F\"}",
	     0},
	    {"other fecha_nacimiento",
	     "{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\",\"dni\":\"45678912\","
	     "\"fecha_nacimiento\":\"1990-04-13\",\"sexo\":\"F\"}",
	     0},
	    {"other sexo",
	     "{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\",\"dni\":\"45678912\","
	     "\"fecha_nacimiento\":\"1990-04-12\",\"sexo\":\"X\"}",
	     0},
	    {"values swapped between fields",
	     "{\"nombre\":\"Quispe\",\"apellido_paterno\":\"Ana\",\"dni\":\"45678912\","
	     "\"fecha_nacimiento\":\"1990-04-12\",\"sexo\":\"F\"}",
	     0},
	};
	char want[65], got[65], again[65];

	hash_of(P_BASE, want);
	hash_of(P_BASE, again);
	ck_assert_str_eq(want, again);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		hash_of(rows[i].text, got);
		if (rows[i].same)
			ck_assert_msg(strcmp(got, want) == 0, "row '%s': hash %s differs from %s",
			              rows[i].name, got, want);
		else
			ck_assert_msg(strcmp(got, want) != 0, "row '%s': hash equals the base's",
			              rows[i].name);
	}
#undef P_BASE
}
END_TEST

/* Field boundaries are part of the hash: "ab"+"c" and "a"+"bc" are different payloads. */
START_TEST(test_payload_hash_boundaries)
{
	char h1[65], h2[65];

	hash_of("{\"nombre\":\"ab\",\"apellido_paterno\":\"c\",\"dni\":\"1\","
	        "\"fecha_nacimiento\":\"1990-04-12\"}",
	        h1);
	hash_of("{\"nombre\":\"a\",\"apellido_paterno\":\"bc\",\"dni\":\"1\","
	        "\"fecha_nacimiento\":\"1990-04-12\"}",
	        h2);
	ck_assert_msg(strcmp(h1, h2) != 0, "ab|c and a|bc share a hash");
}
END_TEST

START_TEST(test_date_valid)
{
	static const struct {
		int y, m, d, ok;
	} rows[] = {
	    {2024, 2, 29, 1},  {2023, 2, 29, 0},  {1900, 2, 29, 0}, {2000, 2, 29, 1},
	    {2100, 2, 29, 0},  {2023, 2, 28, 1},  {2023, 1, 31, 1}, {2023, 1, 32, 0},
	    {2023, 4, 30, 1},  {2023, 4, 31, 0},  {2023, 6, 31, 0}, {2023, 9, 31, 0},
	    {2023, 11, 31, 0}, {2023, 12, 31, 1}, {2023, 13, 1, 0}, {2023, 0, 1, 0},
	    {2023, 1, 0, 0},   {2023, -1, 1, 0},  {2023, 1, -1, 0}, {1990, 4, 12, 1},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int got = pw_patient_date_valid(rows[i].y, rows[i].m, rows[i].d);
		ck_assert_msg(got == rows[i].ok, "row %04d-%02d-%02d: got %d, want %d", rows[i].y,
		              rows[i].m, rows[i].d, got, rows[i].ok);
	}
}
END_TEST

/* ---- patient.update and patient.delete --------------------------------------------------- */

#define ALL_FIELDS                                                                                 \
	(PW_PATIENT_NOMBRE | PW_PATIENT_APELLIDO_PATERNO | PW_PATIENT_APELLIDO_MATERNO |           \
	 PW_PATIENT_DNI | PW_PATIENT_FECHA_NACIMIENTO | PW_PATIENT_SEXO)

/* A payload (JSON text) and what validation must make of it: the fields it sets and the
 * values stored for two of them, or the reasons (a JSON object) it is refused with. */
typedef struct update_case {
	const char *name, *payload;
	unsigned fields;     /**< when accepted */
	const char *nombre;  /**< when accepted: the stored nombre, or NULL */
	const char *materno; /**< when accepted: the stored apellido_materno, or NULL */
	const char *refused; /**< NULL: accepted; else the exact fields object */
} update_case;

static json_t *parse(const char *text, const char *name)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	ck_assert_msg(j != NULL, "case '%s': bad test JSON: %s", name, e.text);
	return j;
}

static void expect_fields(json_t *fields, const char *want, const char *name)
{
	json_t *w = parse(want, name);
	char *got = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS);

	ck_assert_msg(json_equal(fields, w), "case '%s': refused with %s, want %s", name, got,
	              want);
	free(got);
	json_decref(w);
}

START_TEST(test_update_rules)
{
	static const update_case rows[] = {
	    {"one name", "{\"id\":17,\"version\":1,\"nombre\":\"  Ana Mar\u00eda \"}",
	     PW_PATIENT_NOMBRE,
	     "Ana Mar\xc3\xad"
	     "a",
	     NULL, NULL},
	    {"materno null clears", "{\"id\":17,\"version\":3,\"apellido_materno\":null}",
	     PW_PATIENT_APELLIDO_MATERNO, NULL, NULL, NULL},
	    {"materno set", "{\"id\":17,\"version\":3,\"apellido_materno\":\"Rojas\"}",
	     PW_PATIENT_APELLIDO_MATERNO, NULL, "Rojas", NULL},
	    {"every field",
	     "{\"id\":1,\"version\":9,\"nombre\":\"A\",\"apellido_paterno\":\"B\","
	     "\"apellido_materno\":\"C\",\"dni\":\"1-a\",\"fecha_nacimiento\":\"2024-06-15\","
	     "\"sexo\":\"X\"}",
	     ALL_FIELDS, "A", "C", NULL},
	    {"owner_id ignored", "{\"id\":17,\"version\":1,\"owner_id\":\"x\",\"sexo\":\"F\"}",
	     PW_PATIENT_SEXO, NULL, NULL, NULL},
	    {"nothing to change", "{\"id\":17,\"version\":1}", 0, NULL, NULL,
	     "{\"payload\":\"no field to change\"}"},
	    {"owner_id is not a change", "{\"id\":17,\"version\":1,\"owner_id\":\"x\"}", 0, NULL,
	     NULL, "{\"payload\":\"no field to change\"}"},
	    {"empty payload", "{}", 0, NULL, NULL,
	     "{\"id\":\"required\",\"version\":\"required\",\"payload\":\"no field to change\"}"},
	    {"id missing", "{\"version\":1,\"sexo\":\"M\"}", 0, NULL, NULL,
	     "{\"id\":\"required\"}"},
	    {"version missing", "{\"id\":1,\"sexo\":\"M\"}", 0, NULL, NULL,
	     "{\"version\":\"required\"}"},
	    {"id and version wrong", "{\"id\":0,\"version\":\"1\",\"sexo\":\"M\"}", 0, NULL, NULL,
	     "{\"id\":\"must be an integer >= 1\",\"version\":\"must be an integer >= 1\"}"},
	    {"id null, version real", "{\"id\":null,\"version\":1.0,\"sexo\":\"M\"}", 0, NULL, NULL,
	     "{\"id\":\"must be an integer >= 1\",\"version\":\"must be an integer >= 1\"}"},
	    {"negative version", "{\"id\":5,\"version\":-1,\"sexo\":\"M\"}", 0, NULL, NULL,
	     "{\"version\":\"must be an integer >= 1\"}"},
	    {"nulls refused but materno's",
	     "{\"id\":1,\"version\":1,\"nombre\":null,\"apellido_paterno\":null,"
	     "\"apellido_materno\":null,\"dni\":null,\"fecha_nacimiento\":null,\"sexo\":null}",
	     0, NULL, NULL,
	     "{\"nombre\":\"must be a string\",\"apellido_paterno\":\"must be a string\","
	     "\"dni\":\"must be a string\",\"fecha_nacimiento\":\"must be a string YYYY-MM-DD\","
	     "\"sexo\":\"must be M, F or X\"}"},
	    {"create's rules apply",
	     "{\"id\":1,\"version\":1,\"nombre\":\"   \",\"apellido_paterno\":\"a\\u0007b\","
	     "\"dni\":\"45 67\",\"fecha_nacimiento\":\"2024-06-16\",\"sexo\":\"m\"}",
	     0, NULL, NULL,
	     "{\"nombre\":\"must not be empty\","
	     "\"apellido_paterno\":\"must not contain control characters\","
	     "\"dni\":\"must hold only letters, digits and '-'\","
	     "\"fecha_nacimiento\":\"must not be in the future\",\"sexo\":\"must be M, F or X\"}"},
	    {"before 1900", "{\"id\":1,\"version\":1,\"fecha_nacimiento\":\"1899-12-31\"}", 0, NULL,
	     NULL, "{\"fecha_nacimiento\":\"must not be before 1900-01-01\"}"},
	    {"unknown field", "{\"id\":1,\"version\":1,\"edad\":3,\"sexo\":\"F\"}", 0, NULL, NULL,
	     "{\"edad\":\"unknown field\"}"},
	    {"everything wrong at once", "{\"edad\":3,\"nombre\":7}", 0, NULL, NULL,
	     "{\"edad\":\"unknown field\",\"id\":\"required\",\"version\":\"required\","
	     "\"nombre\":\"must be a string\"}"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const update_case *c = &rows[i];
		json_t *p = parse(c->payload, c->name), *fields = NULL;
		pw_patient_update u;
		pw_status st = pw_patient_validate_update(p, NOW, &u, &fields);
		if (c->refused != NULL) {
			ck_assert_msg(st == PW_E_INVALID, "case '%s': status %d", c->name, st);
			expect_fields(fields, c->refused, c->name);
			json_decref(fields);
		} else {
			ck_assert_msg(st == PW_OK, "case '%s': status %d", c->name, st);
			ck_assert_ptr_null(fields);
			ck_assert_msg(u.fields == c->fields, "case '%s': fields %#x, want %#x",
			              c->name, u.fields, c->fields);
			ck_assert_int_eq(strlen(u.payload_hash), 64);
			if (c->nombre)
				ck_assert_str_eq(u.values.nombre, c->nombre);
			if (c->materno)
				ck_assert_str_eq(u.values.apellido_materno, c->materno);
			else if (c->fields & PW_PATIENT_APELLIDO_MATERNO)
				ck_assert_ptr_null(u.values.apellido_materno);
			pw_patient_update_clear(&u);
		}
		json_decref(p);
	}
}
END_TEST

static void update_hash(const char *text, char out[65])
{
	json_t *p = parse(text, text), *fields = NULL;
	pw_patient_update u;

	ck_assert_msg(pw_patient_validate_update(p, NOW, &u, &fields) == PW_OK, "refused: %s",
	              text);
	memcpy(out, u.payload_hash, 65);
	pw_patient_update_clear(&u);
	json_decref(p);
}

static void delete_hash(const char *text, char out[65])
{
	json_t *p = parse(text, text), *fields = NULL;
	pw_patient_delete d;

	ck_assert_msg(pw_patient_validate_delete(p, &d, &fields) == PW_OK, "refused: %s", text);
	memcpy(out, d.payload_hash, 65);
	json_decref(p);
}

/* The same update (as stored) has the same hash however it is written; any difference in
 * what it would do, its id or its version gives another; an update is never a delete. */
START_TEST(test_update_delete_hashes)
{
	static const struct {
		const char *a, *b;
		int same;
	} rows[] = {
	    {"{\"id\":1,\"version\":2,\"nombre\":\"Ana\",\"sexo\":\"F\"}",
	     "{ \"sexo\": \"F\", \"version\": 2, \"nombre\": \"  Ana \", \"id\": 1 }", 1},
	    {"{\"id\":1,\"version\":2,\"sexo\":\"F\"}",
	     "{\"id\":1,\"version\":2,\"sexo\":\"F\",\"owner_id\":\"x\"}", 1},
	    {"{\"id\":1,\"version\":2,\"sexo\":\"F\"}", "{\"id\":1,\"version\":3,\"sexo\":\"F\"}",
	     0},
	    {"{\"id\":1,\"version\":2,\"sexo\":\"F\"}", "{\"id\":2,\"version\":2,\"sexo\":\"F\"}",
	     0},
	    {"{\"id\":1,\"version\":2,\"sexo\":\"F\"}", "{\"id\":1,\"version\":2,\"sexo\":\"M\"}",
	     0},
	    {"{\"id\":1,\"version\":2,\"sexo\":\"F\"}",
	     "{\"id\":1,\"version\":2,\"sexo\":\"F\",\"apellido_materno\":null}", 0},
	    {"{\"id\":1,\"version\":2,\"apellido_materno\":null}",
	     "{\"id\":1,\"version\":2,\"apellido_materno\":\"\"}", -1}, /* second refused */
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char ha[65], hb[65];
		if (rows[i].same < 0)
			continue;
		update_hash(rows[i].a, ha);
		update_hash(rows[i].b, hb);
		ck_assert_msg((strcmp(ha, hb) == 0) == rows[i].same, "row %zu: %s vs %s", i,
		              rows[i].a, rows[i].b);
	}
	char u[65], d[65], d2[65], d3[65];
	update_hash("{\"id\":1,\"version\":2,\"sexo\":\"F\"}", u);
	delete_hash("{\"id\":1,\"version\":2}", d);
	delete_hash("{\"version\":2,\"owner_id\":\"z\",\"id\":1}", d2);
	delete_hash("{\"id\":1,\"version\":3}", d3);
	ck_assert_str_ne(u, d);
	ck_assert_str_eq(d, d2);
	ck_assert_str_ne(d, d3);
}
END_TEST

START_TEST(test_delete_rules)
{
	static const struct {
		const char *name, *payload, *refused; /* refused NULL: accepted */
		int64_t id, version;
	} rows[] = {
	    {"plain", "{\"id\":17,\"version\":2}", NULL, 17, 2},
	    {"owner_id ignored", "{\"id\":17,\"version\":2,\"owner_id\":[1]}", NULL, 17, 2},
	    {"largest id", "{\"id\":9223372036854775807,\"version\":1}", NULL, INT64_MAX, 1},
	    {"empty", "{}", "{\"id\":\"required\",\"version\":\"required\"}", 0, 0},
	    {"no version", "{\"id\":17}", "{\"version\":\"required\"}", 0, 0},
	    {"strings", "{\"id\":\"17\",\"version\":\"2\"}",
	     "{\"id\":\"must be an integer >= 1\",\"version\":\"must be an integer >= 1\"}", 0, 0},
	    {"zero version", "{\"id\":17,\"version\":0}",
	     "{\"version\":\"must be an integer >= 1\"}", 0, 0},
	    {"a field to change is not a delete's", "{\"id\":17,\"version\":2,\"nombre\":\"Ana\"}",
	     "{\"nombre\":\"unknown field\"}", 0, 0},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		json_t *p = parse(rows[i].payload, rows[i].name), *fields = NULL;
		pw_patient_delete d;
		pw_status st = pw_patient_validate_delete(p, &d, &fields);
		if (rows[i].refused != NULL) {
			ck_assert_msg(st == PW_E_INVALID, "case '%s': status %d", rows[i].name, st);
			expect_fields(fields, rows[i].refused, rows[i].name);
			json_decref(fields);
		} else {
			ck_assert_msg(st == PW_OK, "case '%s': status %d", rows[i].name, st);
			ck_assert_ptr_null(fields);
			ck_assert_int_eq(d.id, rows[i].id);
			ck_assert_int_eq(d.version, rows[i].version);
			ck_assert_int_eq(strlen(d.payload_hash), 64);
		}
		json_decref(p);
	}
}
END_TEST

START_TEST(test_field_names)
{
	ck_assert_str_eq(pw_patient_field_name(PW_PATIENT_NOMBRE), "nombre");
	ck_assert_str_eq(pw_patient_field_name(PW_PATIENT_APELLIDO_MATERNO), "apellido_materno");
	ck_assert_str_eq(pw_patient_field_name(PW_PATIENT_SEXO), "sexo");
	ck_assert_str_eq(pw_patient_field_name((pw_patient_field)(1 << 9)), "unknown");
}
END_TEST

static Suite *patient_suite(void)
{
	Suite *s = suite_create("patient");
	TCase *tc = tcase_create("validate");

	tcase_add_test(tc, test_base_payload);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_long_name_stored_whole);
	tcase_add_test(tc, test_dni);
	tcase_add_test(tc, test_fecha);
	tcase_add_test(tc, test_fecha_relative_to_now);
	tcase_add_test(tc, test_sexo);
	tcase_add_test(tc, test_other_fields);
	tcase_add_test(tc, test_several_bad_fields);
	suite_add_tcase(s, tc);

	tc = tcase_create("hash");
	tcase_add_test(tc, test_payload_hash);
	tcase_add_test(tc, test_payload_hash_boundaries);
	suite_add_tcase(s, tc);

	tc = tcase_create("helpers");
	tcase_add_test(tc, test_date_valid);
	tcase_add_test(tc, test_update_rules);
	tcase_add_test(tc, test_update_delete_hashes);
	tcase_add_test(tc, test_delete_rules);
	tcase_add_test(tc, test_field_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(patient_suite());
}
