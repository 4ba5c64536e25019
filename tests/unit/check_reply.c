/* Unit tests of pw_reply: the reply bodies parse back to the contract's fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "pw_check_main.h"
#include "pw_reply.h"

static json_t *parse_reply(const char *text, const char *name)
{
	json_error_t e;
	json_t *r;

	ck_assert_msg(text != NULL, "case '%s': no reply text", name);
	ck_assert_msg(strchr(text, '\n') == NULL, "case '%s': reply not compact: %s", name, text);
	r = json_loads(text, JSON_REJECT_DUPLICATES, &e);
	ck_assert_msg(json_is_object(r), "case '%s': reply is not a JSON object: %s (%s)", name,
	              text, e.text);
	return r;
}

static void check_request_id(const json_t *r, const char *want, const char *name)
{
	json_t *id = json_object_get(r, "request_id");

	if (want == NULL)
		ck_assert_msg(id == NULL || json_is_null(id),
		              "case '%s': request_id should be null or absent", name);
	else
		ck_assert_msg(json_is_string(id) && strcmp(json_string_value(id), want) == 0,
		              "case '%s': request_id is not '%s'", name, want);
}

START_TEST(test_data)
{
	static const struct {
		const char *name;
		const char *request_id;
		int status;
		const char *data;
	} rows[] = {
	    {"201 patient", "r-1", 201,
	     "{\"id\":17,\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\",\"apellido_materno\":"
	     "null,\"dni\":\"45678912\",\"fecha_nacimiento\":\"1990-04-12\",\"sexo\":\"F\","
	     "\"owner_id\":\"alice@example.com\",\"created_at\":\"2026-11-26T22:41:07.123Z\"}"},
	    {"200 list", "7f1c9e0a-4b1e-4a53-9d43-2f8e1d1c0b11", 200,
	     "{\"items\":[{\"id\":1},{\"id\":2}],\"next_cursor\":null}"},
	    {"200 empty list", "q:2", 200, "{\"items\":[],\"next_cursor\":\"abc\"}"},
	    {"non-ASCII data", "r.3", 200, "{\"nombre\":\"Mu\\u00f1oz \\ud83d\\ude00 \\\"q\\\"\"}"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		json_error_t e;
		json_t *data = json_loads(rows[i].data, 0, &e);
		ck_assert_msg(data != NULL, "bad test JSON in '%s'", rows[i].name);
		size_t refs = data->refcount;

		char *text = pw_reply_data(rows[i].request_id, rows[i].status, data);
		ck_assert_msg(data->refcount == refs, "case '%s': data refcount changed",
		              rows[i].name);
		json_t *r = parse_reply(text, rows[i].name);
		check_request_id(r, rows[i].request_id, rows[i].name);
		json_t *st = json_object_get(r, "status");
		ck_assert_msg(json_is_integer(st) && json_integer_value(st) == rows[i].status,
		              "case '%s': status is not the integer %d", rows[i].name,
		              rows[i].status);
		ck_assert_msg(json_equal(json_object_get(r, "data"), data),
		              "case '%s': data differs: %s", rows[i].name, text);
		ck_assert_msg(json_object_get(r, "error") == NULL,
		              "case '%s': data reply has error", rows[i].name);
		ck_assert_msg(json_object_size(r) == 3, "case '%s': extra members: %s",
		              rows[i].name, text);
		json_decref(r);
		json_decref(data);
		free(text);
	}
}
END_TEST

START_TEST(test_error)
{
	static const struct {
		const char *name;
		const char *request_id;
		int status;
		const char *code;
		const char *message;
		const char *fields; /**< NULL: no fields */
	} rows[] = {
	    {"409 conflict with fields", "r-1", 409, "conflict", "dni already registered",
	     "{\"dni\":\"already registered\"}"},
	    {"400 validation_failed, several fields", "r-2", 400, "validation_failed",
	     "payload fields are wrong",
	     "{\"nombre\":\"must be 1-100 characters\",\"sexo\":\"must be M, F or X\"}"},
	    {"400 invalid_request", "r-3", 400, "invalid_request", "type is missing", NULL},
	    {"401 unauthorized", "r-4", 401, "unauthorized", "token expired", NULL},
	    {"403 forbidden", "r-5", 403, "forbidden", "scope patients:write required", NULL},
	    {"404 not_found", "r-6", 404, "not_found", "no such patient", NULL},
	    {"409 idempotency_conflict", "r-7", 409, "idempotency_conflict",
	     "request_id reused with another payload", NULL},
	    {"500 internal", "r-8", 500, "internal", "internal error", NULL},
	    {"message needing escapes", "r-9", 400, "invalid_request",
	     "quote \" backslash \\ newline \n tab \t \xc3\xb1", NULL},
	    {"request_id unknown", NULL, 400, "invalid_request", "no request id", NULL},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		json_t *fields = NULL;
		if (rows[i].fields) {
			json_error_t e;
			fields = json_loads(rows[i].fields, 0, &e);
			ck_assert_msg(fields != NULL, "bad test JSON in '%s'", rows[i].name);
		}
		size_t refs = fields ? fields->refcount : 0;

		char *text = pw_reply_error(rows[i].request_id, rows[i].status, rows[i].code,
		                            rows[i].message, fields);
		if (fields)
			ck_assert_msg(fields->refcount == refs,
			              "case '%s': fields refcount changed", rows[i].name);
		json_t *r = parse_reply(text, rows[i].name);
		check_request_id(r, rows[i].request_id, rows[i].name);
		json_t *st = json_object_get(r, "status");
		ck_assert_msg(json_is_integer(st) && json_integer_value(st) == rows[i].status,
		              "case '%s': status is not the integer %d: %s", rows[i].name,
		              rows[i].status, text);
		ck_assert_msg(json_object_get(r, "data") == NULL, "case '%s': error reply has data",
		              rows[i].name);
		json_t *err = json_object_get(r, "error");
		ck_assert_msg(json_is_object(err), "case '%s': no error object: %s", rows[i].name,
		              text);
		json_t *code = json_object_get(err, "code");
		ck_assert_msg(
		    json_is_string(code) && strcmp(json_string_value(code), rows[i].code) == 0,
		    "case '%s': error.code is not '%s': %s", rows[i].name, rows[i].code, text);
		json_t *msg = json_object_get(err, "message");
		ck_assert_msg(json_is_string(msg) &&
		                  strcmp(json_string_value(msg), rows[i].message) == 0,
		              "case '%s': error.message differs: %s", rows[i].name, text);
		json_t *f = json_object_get(err, "fields");
		if (fields)
			ck_assert_msg(json_equal(f, fields), "case '%s': error.fields differs: %s",
			              rows[i].name, text);
		else
			ck_assert_msg(f == NULL || json_is_null(f),
			              "case '%s': error.fields present without fields: %s",
			              rows[i].name, text);
		json_decref(r);
		json_decref(fields);
		free(text);
	}
}
END_TEST

START_TEST(test_code_for)
{
	static const struct {
		int status;
		const char *code;
	} rows[] = {
	    {401, "unauthorized"},
	    {403, "forbidden"},
	    {404, "not_found"},
	    {500, "internal"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *got = pw_reply_code_for(rows[i].status);
		ck_assert_msg(got != NULL && strcmp(got, rows[i].code) == 0,
		              "status %d: code '%s', want '%s'", rows[i].status,
		              got ? got : "(null)", rows[i].code);
	}
}
END_TEST

static Suite *reply_suite(void)
{
	Suite *s = suite_create("reply");
	TCase *tc = tcase_create("bodies");

	tcase_add_test(tc, test_data);
	tcase_add_test(tc, test_error);
	tcase_add_test(tc, test_code_for);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(reply_suite());
}
