/* The examples in schemas/examples/ against the worker's own code, the other half of
 * tests/schemas/validate.sh (which checks them against the schemas): every command
 * example's payload passes the worker's rules for its type, every one under invalid/ is
 * refused by them (or its type is unknown), and every reply example is byte for byte
 * what pw_reply builds from the same values, so the schemas cannot drift from what the
 * worker really says. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "pw_check_main.h"
#include "pw_cursor.h"
#include "pw_envelope.h"
#include "pw_patient.h"
#include "pw_query.h"
#include "pw_reply.h"

#ifndef PW_SCHEMAS_DIR
#define PW_SCHEMAS_DIR "schemas"
#endif

/* The examples were written on 2026-11-26; their dates are before it. */
#define EXAMPLE_TIME 1796256000

static const char *dir_of(const char *sub, char *buf, size_t size)
{
	const char *d = getenv("PW_SCHEMAS") ? getenv("PW_SCHEMAS") : PW_SCHEMAS_DIR;

	snprintf(buf, size, "%s/examples%s", d, sub);
	return buf;
}

/* The names of dir's *.json files starting with prefix, sorted; returns how many. */
static size_t list(const char *dir, const char *prefix, char names[][128], size_t max)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	ck_assert_msg(d != NULL, "cannot open %s", dir);
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || len < 5 ||
		    strcmp(e->d_name + len - 5, ".json") != 0)
			continue;
		ck_assert(n < max && len < 128);
		memcpy(names[n++], e->d_name, len + 1);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
	return n;
}

static json_t *load(const char *dir, const char *name)
{
	char path[512];
	json_error_t err;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	ck_assert_msg(j != NULL, "%s: %s (line %d)", path, err.text, err.line);
	return j;
}

/* The worker's verdict on a command example's payload: PW_OK or PW_E_INVALID (an unknown
 * type included); *why names the first refused field. */
static pw_status judge(json_t *cmd, char *why, size_t why_size)
{
	pw_envelope_type type =
	    pw_envelope_type_of(json_string_value(json_object_get(cmd, "type")) ?: "");
	json_t *payload = json_object_get(cmd, "payload"), *fields = NULL;
	pw_status st = PW_E_INVALID;

	snprintf(why, why_size, "unknown type");
	switch (type) {
	case PW_ENVELOPE_CREATE: {
		pw_patient_input in;
		st = pw_patient_validate(payload, EXAMPLE_TIME, &in, &fields);
		if (st == PW_OK)
			pw_patient_input_clear(&in);
		break;
	}
	case PW_ENVELOPE_UPDATE: {
		pw_patient_update u;
		st = pw_patient_validate_update(payload, EXAMPLE_TIME, &u, &fields);
		if (st == PW_OK)
			pw_patient_update_clear(&u);
		break;
	}
	case PW_ENVELOPE_DELETE: {
		pw_patient_delete d;
		st = pw_patient_validate_delete(payload, &d, &fields);
		break;
	}
	case PW_ENVELOPE_GET:
	case PW_ENVELOPE_LIST: {
		pw_cursor_key k;
		pw_query q;
		int generated;
		ck_assert_int_eq(pw_cursor_key_init(&k, "examples", &generated), PW_OK);
		st = pw_query_validate(payload, type == PW_ENVELOPE_LIST, &k, "alice@example.com",
		                       &q, &fields);
		if (st == PW_OK)
			pw_query_clear(&q);
		break;
	}
	default:
		break;
	}
	if (fields != NULL) {
		char *s = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS);
		snprintf(why, why_size, "%s", s ? s : "?");
		free(s);
		json_decref(fields);
	}
	return st;
}

START_TEST(command_examples_pass_the_workers_rules)
{
	char dir[512], names[32][128], why[512];
	size_t n = list(dir_of("", dir, sizeof(dir)), "command-", names, 32);

	ck_assert_uint_ge(n, 5); /* create, update, delete, get, list */
	for (size_t i = 0; i < n; i++) {
		json_t *cmd = load(dir, names[i]);
		ck_assert_msg(judge(cmd, why, sizeof(why)) == PW_OK, "%s is refused: %s", names[i],
		              why);
		json_decref(cmd);
	}
}
END_TEST

START_TEST(invalid_command_examples_are_refused)
{
	char dir[512], names[32][128], why[512];
	size_t n = list(dir_of("/invalid", dir, sizeof(dir)), "command-", names, 32);

	ck_assert_uint_ge(n, 9);
	for (size_t i = 0; i < n; i++) {
		json_t *cmd = load(dir, names[i]);
		ck_assert_msg(judge(cmd, why, sizeof(why)) == PW_E_INVALID, "%s is accepted",
		              names[i]);
		json_decref(cmd);
	}
}
END_TEST

/* What pw_reply builds from the example's own values, or NULL for a kind it has no
 * builder for here. */
static char *rebuild(json_t *r)
{
	const char *rid = json_string_value(json_object_get(r, "request_id"));
	int status = (int)json_integer_value(json_object_get(r, "status"));
	json_t *data = json_object_get(r, "data"), *err = json_object_get(r, "error");
	const char *code = json_string_value(json_object_get(err, "code"));
	char *s = NULL;

	if (data != NULL && json_is_true(json_object_get(data, "deleted"))) {
		s = pw_reply_deleted(rid, json_integer_value(json_object_get(data, "id")),
		                     json_integer_value(json_object_get(data, "version")),
		                     json_string_value(json_object_get(data, "deleted_at")));
	} else if (data != NULL && json_object_get(data, "items") == NULL) {
		pw_patient p;
		ck_assert_int_eq(pw_patient_from_json(data, &p), PW_OK);
		s = pw_reply_patient(rid, status, &p);
		pw_patient_clear(&p);
	} else if (code != NULL && strcmp(code, "version_conflict") == 0) {
		s = pw_reply_version_conflict(
		    rid, json_integer_value(json_object_get(err, "current_version")));
	} else if (code != NULL && strcmp(code, "conflict") == 0) {
		s = pw_reply_conflict(rid);
	} else if (code != NULL && strcmp(code, "not_found") == 0) {
		s = pw_reply_not_found(rid);
	}
	return s;
}

START_TEST(reply_examples_are_what_the_worker_says)
{
	char dir[512], names[32][128];
	size_t n = list(dir_of("", dir, sizeof(dir)), "reply-", names, 32);

	ck_assert_uint_ge(n, 5); /* 201, 409 conflict, update, delete, version_conflict */
	for (size_t i = 0; i < n; i++) {
		json_t *want = load(dir, names[i]);
		char *got = rebuild(want);
		ck_assert_msg(got != NULL, "%s: no builder for this reply", names[i]);
		json_t *g = json_loads(got, 0, NULL);
		ck_assert_msg(json_equal(g, want), "%s differs from the worker's reply:\n%s",
		              names[i], got);
		json_decref(g);
		json_decref(want);
		free(got);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("examples");
	TCase *tc = tcase_create("examples");

	tcase_add_test(tc, command_examples_pass_the_workers_rules);
	tcase_add_test(tc, invalid_command_examples_are_refused);
	tcase_add_test(tc, reply_examples_are_what_the_worker_says);
	suite_add_tcase(s, tc);
	return pw_check_run(s);
}
