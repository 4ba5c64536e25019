/* Unit tests of pw_query: the patient.get and patient.list payloads, their defaults, and the
 * list cursor checked against the owner and the payload's own filters. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "pw_check_main.h"
#include "pw_cursor.h"
#include "pw_query.h"
#include "pw_status.h"

#define SECRET  "query-test-secret-0123456789abcdef"
#define SECRET2 "query-test-secret-other-fedcba9876"
#define OWNER   "alice@example.com"
#define OWNER_B "bob@example.com"

#define ENYE  "\xc3\xb1"         /* ñ, 2 bytes */
#define EURO  "\xe2\x82\xac"     /* €, 3 bytes */
#define EMOJI "\xf0\x9f\x98\x80" /* U+1F600, 4 bytes */

static pw_cursor_key key_of(const char *secret)
{
	pw_cursor_key k;
	int generated = -1;

	ck_assert_int_eq(pw_cursor_key_init(&k, secret, &generated), PW_OK);
	return k;
}

static char *repeat(const char *unit, size_t n)
{
	size_t ul = strlen(unit);
	char *s = malloc(ul * n + 1);

	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * ul, unit, ul);
	s[ul * n] = '\0';
	return s;
}

static json_t *parse(const char *name, const char *text)
{
	json_error_t e;
	json_t *p = json_loads(text, JSON_ALLOW_NUL, &e);

	ck_assert_msg(p != NULL, "row '%s': bad test JSON %s: %s", name, text, e.text);
	return p;
}

/* Checks an invalid outcome: PW_E_INVALID and fields naming exactly `field` (or, with
 * `also`, that one too) with a non-empty reason; `reason`, when set, must match. */
static void want_invalid(const char *name, pw_status st, json_t *fields, const char *field,
                         const char *also, const char *reason)
{
	ck_assert_msg(st == PW_E_INVALID, "row '%s': status %d, want PW_E_INVALID", name, st);
	ck_assert_msg(json_is_object(fields), "row '%s': no fields object", name);
	char *ftext = json_dumps(fields, JSON_COMPACT);
	json_t *why = json_object_get(fields, field);
	ck_assert_msg(json_is_string(why) && json_string_length(why) > 0,
	              "row '%s': fields %s does not name '%s' with a reason", name, ftext, field);
	if (reason != NULL)
		ck_assert_msg(strcmp(json_string_value(why), reason) == 0,
		              "row '%s': fields %s: reason for '%s' is not '%s'", name, ftext,
		              field, reason);
	if (also != NULL)
		ck_assert_msg(json_is_string(json_object_get(fields, also)),
		              "row '%s': fields %s does not name '%s'", name, ftext, also);
	ck_assert_msg(json_object_size(fields) == (also ? 2u : 1u),
	              "row '%s': fields %s names more than asked", name, ftext);
	free(ftext);
}

/* ---- patient.get ------------------------------------------------------------------------ */

START_TEST(test_get)
{
	static const struct {
		const char *name;
		const char *json;
		int ok;
		int64_t want_id;   /**< with ok */
		const char *field; /**< without ok: the field named */
		const char *also;  /**< without ok: a second field named, or NULL */
	} rows[] = {
	    {"id 1", "{\"id\": 1}", 1, 1, NULL, NULL},
	    {"id 2^31", "{\"id\": 2147483648}", 1, INT64_C(2147483648), NULL, NULL},
	    {"id INT64_MAX", "{\"id\": 9223372036854775807}", 1, INT64_MAX, NULL, NULL},
	    {"id 0", "{\"id\": 0}", 0, 0, "id", NULL},
	    {"id -1", "{\"id\": -1}", 0, 0, "id", NULL},
	    {"id INT64_MIN", "{\"id\": -9223372036854775808}", 0, 0, "id", NULL},
	    {"id 1.5", "{\"id\": 1.5}", 0, 0, "id", NULL},
	    {"id \"1\"", "{\"id\": \"1\"}", 0, 0, "id", NULL},
	    {"id null", "{\"id\": null}", 0, 0, "id", NULL},
	    {"id true", "{\"id\": true}", 0, 0, "id", NULL},
	    {"id [1]", "{\"id\": [1]}", 0, 0, "id", NULL},
	    {"id {}", "{\"id\": {}}", 0, 0, "id", NULL},
	    {"id missing", "{}", 0, 0, "id", NULL},
	    {"id missing, other field", "{\"ID\": 1}", 0, 0, "id", "ID"},
	    {"unknown field", "{\"id\": 1, \"foo\": 2}", 0, 0, "foo", NULL},
	    {"unknown field null", "{\"id\": 1, \"bar\": null}", 0, 0, "bar", NULL},
	    {"list field limit in a get", "{\"id\": 1, \"limit\": 5}", 0, 0, "limit", NULL},
	    {"list field cursor in a get", "{\"id\": 1, \"cursor\": \"x\"}", 0, 0, "cursor", NULL},
	    {"bad id and unknown field", "{\"id\": 0, \"x\": 1}", 0, 0, "id", "x"},
	};
	pw_cursor_key k = key_of(SECRET);

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		json_t *p = parse(rows[i].name, rows[i].json);
		json_t *fields = NULL;
		pw_query q;

		memset(&q, 0x5a, sizeof(q));
		pw_status st = pw_query_validate(p, 0, &k, OWNER, &q, &fields);
		if (rows[i].ok) {
			char *ftext = fields ? json_dumps(fields, JSON_COMPACT) : NULL;
			ck_assert_msg(st == PW_OK, "row '%s': status %d, want PW_OK; fields %s",
			              rows[i].name, st, ftext ? ftext : "(none)");
			free(ftext);
			ck_assert_msg(fields == NULL, "row '%s': fields set on success",
			              rows[i].name);
			ck_assert_msg(q.is_list == 0, "row '%s': is_list %d", rows[i].name,
			              q.is_list);
			ck_assert_msg(q.id == rows[i].want_id, "row '%s': id %lld, want %lld",
			              rows[i].name, (long long)q.id, (long long)rows[i].want_id);
			pw_query_clear(&q);
		} else {
			want_invalid(rows[i].name, st, fields, rows[i].field, rows[i].also, NULL);
		}
		json_decref(fields);
		json_decref(p);
	}
}
END_TEST

/* ---- patient.list ----------------------------------------------------------------------- */

#define KEEP   0 /* the default: limit 50 */
#define NO_DNI NULL
#define NO_Q   NULL

typedef struct list_case {
	const char *name;
	const char *json;     /**< the payload; with rep_unit, the name of its one field */
	const char *rep_unit; /**< when set, that field is this text repeated rep_n times */
	size_t rep_n;
	int ok;
	const char *field; /**< without ok: the one field named */
	int want_limit;    /**< with ok: 0 for the default */
	const char *want_dni;
	const char *want_q; /**< with ok and rep_unit: "=" for the repeated text */
} list_case;

static void run_list_cases(const list_case *rows, size_t n)
{
	pw_cursor_key k = key_of(SECRET);

	for (size_t i = 0; i < n; i++) {
		const list_case *c = &rows[i];
		char *rep = c->rep_unit ? repeat(c->rep_unit, c->rep_n) : NULL;
		json_t *p = rep ? json_pack("{s:s}", c->json, rep) : parse(c->name, c->json);

		ck_assert_msg(p != NULL, "row '%s': bad test payload", c->name);
		json_t *fields = NULL;
		pw_query q;

		memset(&q, 0x5a, sizeof(q));
		pw_status st = pw_query_validate(p, 1, &k, OWNER, &q, &fields);
		if (c->ok) {
			char *ftext = fields ? json_dumps(fields, JSON_COMPACT) : NULL;
			ck_assert_msg(st == PW_OK, "row '%s': status %d, want PW_OK; fields %s",
			              c->name, st, ftext ? ftext : "(none)");
			free(ftext);
			ck_assert_msg(fields == NULL, "row '%s': fields set on success", c->name);
			ck_assert_msg(q.is_list == 1, "row '%s': is_list %d", c->name, q.is_list);
			int want_limit = c->want_limit ? c->want_limit : PW_LIST_LIMIT_DEFAULT;
			ck_assert_msg(q.limit == want_limit, "row '%s': limit %d, want %d", c->name,
			              q.limit, want_limit);
			ck_assert_msg(q.after_id == 0, "row '%s': after_id %lld, want 0", c->name,
			              (long long)q.after_id);
			if (c->want_dni == NO_DNI)
				ck_assert_msg(!q.has_dni, "row '%s': has_dni set (dni '%s')",
				              c->name, q.dni);
			else
				ck_assert_msg(q.has_dni && strcmp(q.dni, c->want_dni) == 0,
				              "row '%s': has_dni %d, dni '%s', want '%s'", c->name,
				              q.has_dni, q.dni, c->want_dni);
			const char *want_q = c->want_q;
			if (want_q != NO_Q && strcmp(want_q, "=") == 0)
				want_q = rep;
			if (want_q == NO_Q)
				ck_assert_msg(q.q == NULL, "row '%s': q '%s', want NULL", c->name,
				              q.q);
			else
				ck_assert_msg(q.q != NULL && strcmp(q.q, want_q) == 0,
				              "row '%s': q '%s', want '%s'", c->name,
				              q.q ? q.q : "(null)", want_q);
			pw_query_clear(&q);
			ck_assert_msg(q.q == NULL, "row '%s': q not NULL after clear", c->name);
		} else {
			want_invalid(c->name, st, fields, c->field, NULL, NULL);
		}
		json_decref(fields);
		json_decref(p);
		free(rep);
	}
}

START_TEST(test_list_defaults)
{
	static const list_case rows[] = {
	    {"empty payload", "{}", NULL, 0, 1, NULL, KEEP, NO_DNI, NO_Q},
	};
	run_list_cases(rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

START_TEST(test_list_limit)
{
	static const list_case rows[] = {
	    {"limit 1", "{\"limit\": 1}", NULL, 0, 1, NULL, 1, NO_DNI, NO_Q},
	    {"limit 200", "{\"limit\": 200}", NULL, 0, 1, NULL, 200, NO_DNI, NO_Q},
	    {"limit 10", "{\"limit\": 10}", NULL, 0, 1, NULL, 10, NO_DNI, NO_Q},
	    {"limit 50", "{\"limit\": 50}", NULL, 0, 1, NULL, 50, NO_DNI, NO_Q},
	    {"limit 0", "{\"limit\": 0}", NULL, 0, 0, "limit", 0, NULL, NULL},
	    {"limit 201", "{\"limit\": 201}", NULL, 0, 0, "limit", 0, NULL, NULL},
	    {"limit -1", "{\"limit\": -1}", NULL, 0, 0, "limit", 0, NULL, NULL},
	    {"limit \"10\"", "{\"limit\": \"10\"}", NULL, 0, 0, "limit", 0, NULL, NULL},
	    {"limit 1.5", "{\"limit\": 1.5}", NULL, 0, 0, "limit", 0, NULL, NULL},
	    {"limit true", "{\"limit\": true}", NULL, 0, 0, "limit", 0, NULL, NULL},
	    {"limit [10]", "{\"limit\": [10]}", NULL, 0, 0, "limit", 0, NULL, NULL},
	    {"limit 2^32 + 10", "{\"limit\": 4294967306}", NULL, 0, 0, "limit", 0, NULL, NULL},
	    {"limit INT64_MIN", "{\"limit\": -9223372036854775808}", NULL, 0, 0, "limit", 0, NULL,
	     NULL},
	};
	run_list_cases(rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

START_TEST(test_list_dni)
{
	static const list_case rows[] = {
	    {"dni 1 char", "{\"dni\": \"7\"}", NULL, 0, 1, NULL, KEEP, "7", NO_Q},
	    {"dni 8 digits", "{\"dni\": \"45678912\"}", NULL, 0, 1, NULL, KEEP, "45678912", NO_Q},
	    {"dni letters digits dash", "{\"dni\": \"AB-12cd-9\"}", NULL, 0, 1, NULL, KEEP,
	     "AB-12cd-9", NO_Q},
	    {"dni only dash", "{\"dni\": \"-\"}", NULL, 0, 1, NULL, KEEP, "-", NO_Q},
	    {"dni 20 chars", "dni", "9", 20, 1, NULL, KEEP, "99999999999999999999", NO_Q},
	    {"dni 21 chars", "dni", "9", 21, 0, "dni", 0, NULL, NULL},
	    {"dni empty", "{\"dni\": \"\"}", NULL, 0, 0, "dni", 0, NULL, NULL},
	    {"dni underscore", "{\"dni\": \"12_34\"}", NULL, 0, 0, "dni", 0, NULL, NULL},
	    {"dni percent", "{\"dni\": \"12%\"}", NULL, 0, 0, "dni", 0, NULL, NULL},
	    {"dni inner space", "{\"dni\": \"12 34\"}", NULL, 0, 0, "dni", 0, NULL, NULL},
	    {"dni trailing space", "{\"dni\": \"1234 \"}", NULL, 0, 0, "dni", 0, NULL, NULL},
	    {"dni dot", "{\"dni\": \"12.34\"}", NULL, 0, 0, "dni", 0, NULL, NULL},
	    {"dni quote", "{\"dni\": \"12'34\"}", NULL, 0, 0, "dni", 0, NULL, NULL},
	    {"dni control", "{\"dni\": \"12\\u000134\"}", NULL, 0, 0, "dni", 0, NULL, NULL},
	    {"dni NUL inside", "{\"dni\": \"12\\u000034\"}", NULL, 0, 0, "dni", 0, NULL, NULL},
	    {"dni non-ASCII letter", "{\"dni\": \"" ENYE "\"}", NULL, 0, 0, "dni", 0, NULL, NULL},
	    {"dni number", "{\"dni\": 45678912}", NULL, 0, 0, "dni", 0, NULL, NULL},
	    {"dni array", "{\"dni\": [\"1\"]}", NULL, 0, 0, "dni", 0, NULL, NULL},
	};
	run_list_cases(rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

START_TEST(test_list_q)
{
	static const list_case rows[] = {
	    {"q 1 char", "{\"q\": \"A\"}", NULL, 0, 1, NULL, KEEP, NO_DNI, "A"},
	    {"q Ana", "{\"q\": \"Ana\"}", NULL, 0, 1, NULL, KEEP, NO_DNI, "Ana"},
	    {"q empty", "{\"q\": \"\"}", NULL, 0, 0, "q", 0, NULL, NULL},
	    {"q 100 ASCII", "q", "a", 100, 1, NULL, KEEP, NO_DNI, "="},
	    {"q 101 ASCII", "q", "a", 101, 0, "q", 0, NULL, NULL},
	    {"q 100 x enye", "q", ENYE, 100, 1, NULL, KEEP, NO_DNI, "="},
	    {"q 101 x enye", "q", ENYE, 101, 0, "q", 0, NULL, NULL},
	    {"q 100 x euro", "q", EURO, 100, 1, NULL, KEEP, NO_DNI, "="},
	    {"q 101 x euro", "q", EURO, 101, 0, "q", 0, NULL, NULL},
	    {"q 100 x emoji", "q", EMOJI, 100, 1, NULL, KEEP, NO_DNI, "="},
	    {"q 101 x emoji", "q", EMOJI, 101, 0, "q", 0, NULL, NULL},
	    {"q 50 x (a, enye): 100 chars", "q", "a" ENYE, 50, 1, NULL, KEEP, NO_DNI, "="},
	    {"q accented as given", "{\"q\": \"Mar\\u00eda\"}", NULL, 0, 1, NULL, KEEP, NO_DNI,
	     "Mar\xc3\xad"
	     "a"},
	    {"q %_ as given", "{\"q\": \"%_\"}", NULL, 0, 1, NULL, KEEP, NO_DNI, "%_"},
	    {"q 50% as given", "{\"q\": \"50%\"}", NULL, 0, 1, NULL, KEEP, NO_DNI, "50%"},
	    {"q a_b as given", "{\"q\": \"a_b\"}", NULL, 0, 1, NULL, KEEP, NO_DNI, "a_b"},
	    {"q backslash as given", "{\"q\": \"a\\\\b\"}", NULL, 0, 1, NULL, KEEP, NO_DNI, "a\\b"},
	    {"q quote as given", "{\"q\": \"O'Brien\"}", NULL, 0, 1, NULL, KEEP, NO_DNI, "O'Brien"},
	    {"q inner space kept", "{\"q\": \"Ana M\"}", NULL, 0, 1, NULL, KEEP, NO_DNI, "Ana M"},
	    {"q control U+0001", "{\"q\": \"A\\u0001\"}", NULL, 0, 0, "q", 0, NULL, NULL},
	    {"q newline", "{\"q\": \"A\\nB\"}", NULL, 0, 0, "q", 0, NULL, NULL},
	    {"q tab", "{\"q\": \"A\\tB\"}", NULL, 0, 0, "q", 0, NULL, NULL},
	    {"q carriage return", "{\"q\": \"A\\r\"}", NULL, 0, 0, "q", 0, NULL, NULL},
	    {"q control U+001F", "{\"q\": \"\\u001f\"}", NULL, 0, 0, "q", 0, NULL, NULL},
	    {"q control U+007F", "{\"q\": \"A\\u007f\"}", NULL, 0, 0, "q", 0, NULL, NULL},
	    {"q control U+0080", "{\"q\": \"\\u0080A\"}", NULL, 0, 0, "q", 0, NULL, NULL},
	    {"q control U+0085", "{\"q\": \"A\\u0085\"}", NULL, 0, 0, "q", 0, NULL, NULL},
	    {"q control U+009F", "{\"q\": \"A\\u009f\"}", NULL, 0, 0, "q", 0, NULL, NULL},
	    {"q U+00A0 is not a control", "{\"q\": \"A\\u00a0\"}", NULL, 0, 1, NULL, KEEP, NO_DNI,
	     "A\xc2\xa0"},
	    {"q NUL inside", "{\"q\": \"A\\u0000B\"}", NULL, 0, 0, "q", 0, NULL, NULL},
	    {"q NUL only", "{\"q\": \"\\u0000\"}", NULL, 0, 0, "q", 0, NULL, NULL},
	    {"q number", "{\"q\": 12}", NULL, 0, 0, "q", 0, NULL, NULL},
	    {"q true", "{\"q\": true}", NULL, 0, 0, "q", 0, NULL, NULL},
	    {"q object", "{\"q\": {}}", NULL, 0, 0, "q", 0, NULL, NULL},
	};
	run_list_cases(rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

START_TEST(test_list_q_escaped_length)
{
	/* ñ written as the JSON escape \u00f1: counted as code points once decoded. */
	static const struct {
		size_t n;
		int ok;
	} rows[] = {{1, 1}, {100, 1}, {101, 0}};
	pw_cursor_key k = key_of(SECRET);

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *esc = repeat("\\u00f1", rows[i].n), *want = repeat(ENYE, rows[i].n);
		size_t len = strlen(esc) + 16;
		char *text = malloc(len);
		json_t *fields = NULL;
		pw_query q;

		ck_assert_ptr_nonnull(text);
		snprintf(text, len, "{\"q\": \"%s\"}", esc);
		json_t *p = parse("escaped enye", text);
		pw_status st = pw_query_validate(p, 1, &k, OWNER, &q, &fields);
		ck_assert_msg(st == (rows[i].ok ? PW_OK : PW_E_INVALID),
		              "row %zu x \\u00f1: status %d, want %s", rows[i].n, st,
		              rows[i].ok ? "PW_OK" : "PW_E_INVALID");
		if (st == PW_OK) {
			ck_assert_msg(q.q != NULL && strcmp(q.q, want) == 0,
			              "row %zu x \\u00f1: q not the decoded text", rows[i].n);
			pw_query_clear(&q);
		} else {
			want_invalid("escaped enye", st, fields, "q", NULL, NULL);
		}
		json_decref(fields);
		json_decref(p);
		free(text);
		free(want);
		free(esc);
	}
}
END_TEST

START_TEST(test_list_unknown_fields)
{
	static const list_case rows[] = {
	    {"unknown field foo", "{\"foo\": 1}", NULL, 0, 0, "foo", 0, NULL, NULL},
	    {"unknown field null", "{\"bar\": null}", NULL, 0, 0, "bar", 0, NULL, NULL},
	    {"get field id in a list", "{\"id\": 1}", NULL, 0, 0, "id", 0, NULL, NULL},
	    {"field differing in case", "{\"Limit\": 10}", NULL, 0, 0, "Limit", 0, NULL, NULL},
	    {"unknown field beside good ones",
	     "{\"limit\": 5, \"dni\": \"1\", \"q\": \"a\", \"z\": 0}", NULL, 0, 0, "z", 0, NULL,
	     NULL},
	    {"offset (not ours)", "{\"offset\": 10}", NULL, 0, 0, "offset", 0, NULL, NULL},
	};
	run_list_cases(rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

START_TEST(test_list_several_bad_fields)
{
	json_t *p = parse("several", "{\"limit\": 0, \"dni\": \"\", \"q\": \"\", \"extra\": 1}");
	const char *bad[] = {"limit", "dni", "q", "extra"};
	pw_cursor_key k = key_of(SECRET);
	json_t *fields = NULL;
	pw_query q;

	ck_assert_int_eq(pw_query_validate(p, 1, &k, OWNER, &q, &fields), PW_E_INVALID);
	ck_assert(json_is_object(fields));
	char *ftext = json_dumps(fields, JSON_COMPACT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(json_is_string(json_object_get(fields, bad[i])),
		              "fields %s does not name '%s'", ftext, bad[i]);
	ck_assert_msg(json_object_size(fields) == 4, "fields %s names more", ftext);
	free(ftext);
	ck_assert_ptr_null(q.q);
	json_decref(fields);
	json_decref(p);
}
END_TEST

/* ---- the list cursor -------------------------------------------------------------------- */

/* How the cursor in a case is made. */
enum { C_MADE, C_TEXT, C_JSON };

typedef struct cursor_case {
	const char *name;
	int how;                  /**< C_MADE: pw_cursor_encode; C_TEXT: this string; C_JSON */
	const char *secret;       /**< C_MADE: the key's secret */
	const char *owner;        /**< C_MADE: made for */
	const char *dni, *q;      /**< C_MADE: made with */
	int64_t id;               /**< C_MADE: its last id */
	const char *text;         /**< C_TEXT: the string; C_JSON: the cursor's JSON value */
	const char *payload_rest; /**< the rest of the payload, without braces ("" for none) */
	int ok;
} cursor_case;

static void run_cursor_cases(const cursor_case *rows, size_t n)
{
	pw_cursor_key k = key_of(SECRET);

	for (size_t i = 0; i < n; i++) {
		const cursor_case *c = &rows[i];
		char cur[PW_CURSOR_LEN + 1];
		json_t *p = parse(c->name, *c->payload_rest ? c->payload_rest : "{}");
		json_t *v = NULL;

		if (c->how == C_MADE) {
			pw_cursor_key kc = key_of(c->secret);
			ck_assert_msg(pw_cursor_encode(&kc, c->owner, c->dni, c->q, c->id, cur,
			                               sizeof(cur)) == PW_OK,
			              "row '%s': encode failed", c->name);
			v = json_string(cur);
		} else if (c->how == C_TEXT) {
			v = json_string(c->text);
		} else {
			json_error_t e;
			v = json_loads(c->text, JSON_DECODE_ANY, &e);
		}
		ck_assert_msg(v != NULL, "row '%s': bad test cursor", c->name);
		json_object_set_new(p, "cursor", v);

		json_t *fields = NULL;
		pw_query q;
		memset(&q, 0x5a, sizeof(q));
		pw_status st = pw_query_validate(p, 1, &k, OWNER, &q, &fields);
		if (c->ok) {
			char *ftext = fields ? json_dumps(fields, JSON_COMPACT) : NULL;
			ck_assert_msg(st == PW_OK, "row '%s': status %d, want PW_OK; fields %s",
			              c->name, st, ftext ? ftext : "(none)");
			free(ftext);
			ck_assert_msg(q.after_id == c->id, "row '%s': after_id %lld, want %lld",
			              c->name, (long long)q.after_id, (long long)c->id);
			pw_query_clear(&q);
		} else {
			want_invalid(c->name, st, fields, "cursor", NULL, "invalid cursor");
		}
		json_decref(fields);
		json_decref(p);
	}
}

START_TEST(test_list_cursor)
{
#define MADE(name, secret, owner, dni, q, id, rest, ok)                                            \
	{                                                                                          \
		name, C_MADE, secret, owner, dni, q, id, NULL, rest, ok                            \
	}
#define TEXT(name, text)                                                                           \
	{                                                                                          \
		name, C_TEXT, NULL, NULL, NULL, NULL, 0, text, "", 0                               \
	}
#define JSONV(name, json)                                                                          \
	{                                                                                          \
		name, C_JSON, NULL, NULL, NULL, NULL, 0, json, "", 0                               \
	}
	static const cursor_case rows[] = {
	    MADE("no filters, id 42", SECRET, OWNER, NULL, NULL, 42, "", 1),
	    MADE("no filters, id 1", SECRET, OWNER, NULL, NULL, 1, "", 1),
	    MADE("no filters, id 0", SECRET, OWNER, NULL, NULL, 0, "", 1),
	    MADE("no filters, id INT64_MAX", SECRET, OWNER, NULL, NULL, INT64_MAX, "", 1),
	    MADE("with limit", SECRET, OWNER, NULL, NULL, 7, "{\"limit\": 5}", 1),
	    MADE("dni", SECRET, OWNER, "45678912", NULL, 9, "{\"dni\": \"45678912\"}", 1),
	    MADE("q", SECRET, OWNER, NULL, "Ana", 9, "{\"q\": \"Ana\"}", 1),
	    MADE("q %_", SECRET, OWNER, NULL, "%_", 9, "{\"q\": \"%_\"}", 1),
	    MADE("q multi-byte", SECRET, OWNER, NULL, "Nu" ENYE "ez", 9, "{\"q\": \"Nu\\u00f1ez\"}",
	         1),
	    MADE("dni, q and limit", SECRET, OWNER, "AB-1", "Qu", INT64_C(2147483648),
	         "{\"dni\": \"AB-1\", \"q\": \"Qu\", \"limit\": 200}", 1),
	    MADE("another owner", SECRET, OWNER_B, NULL, NULL, 42, "", 0),
	    MADE("another owner, same filters", SECRET, OWNER_B, "1", "a", 42,
	         "{\"dni\": \"1\", \"q\": \"a\"}", 0),
	    MADE("owner differing in case", SECRET, "Alice@example.com", NULL, NULL, 42, "", 0),
	    MADE("another key", SECRET2, OWNER, NULL, NULL, 42, "", 0),
	    MADE("made with dni, payload without", SECRET, OWNER, "1", NULL, 42, "", 0),
	    MADE("made without dni, payload with", SECRET, OWNER, NULL, NULL, 42,
	         "{\"dni\": \"1\"}", 0),
	    MADE("made with dni 1, payload dni 2", SECRET, OWNER, "1", NULL, 42, "{\"dni\": \"2\"}",
	         0),
	    MADE("made with q, payload without", SECRET, OWNER, NULL, "Ana", 42, "", 0),
	    MADE("made without q, payload with", SECRET, OWNER, NULL, NULL, 42, "{\"q\": \"Ana\"}",
	         0),
	    MADE("made with q Ana, payload q ana", SECRET, OWNER, NULL, "Ana", 42,
	         "{\"q\": \"ana\"}", 0),
	    MADE("made with q Ana, payload q An", SECRET, OWNER, NULL, "Ana", 42, "{\"q\": \"An\"}",
	         0),
	    MADE("made with q \"\", payload without", SECRET, OWNER, NULL, "", 42, "", 0),
	    MADE("dni moved to q", SECRET, OWNER, "1", NULL, 42, "{\"q\": \"1\"}", 0),
	    TEXT("empty string", ""),
	    TEXT("garbage", "garbage"),
	    TEXT("54 x A", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
	    TEXT("54 x _", "______________________________________________________"),
	    TEXT("standard base64", "+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/"),
	    TEXT("a number as text", "42"),
	    JSONV("cursor 42", "42"),
	    JSONV("cursor 0", "0"),
	    JSONV("cursor true", "true"),
	    JSONV("cursor false", "false"),
	    JSONV("cursor array", "[\"x\"]"),
	    JSONV("cursor object", "{\"id\": 42}"),
	    JSONV("cursor 1.5", "1.5"),
	};
#undef MADE
#undef TEXT
#undef JSONV
	run_cursor_cases(rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

/* A valid cursor with one character edited, or a valid one and a byte more. */
START_TEST(test_list_cursor_edited)
{
	pw_cursor_key k = key_of(SECRET);
	char good[PW_CURSOR_LEN + 1];
	static const struct {
		const char *name;
		int pos; /**< -1: append a char */
	} rows[] = {
	    {"first char edited", 0},
	    {"middle char edited", PW_CURSOR_LEN / 2},
	    {"char on the id/MAC boundary edited", 10},
	    {"last char edited", PW_CURSOR_LEN - 1},
	    {"one char appended", -1},
	};

	ck_assert_int_eq(pw_cursor_encode(&k, OWNER, NULL, NULL, 42, good, sizeof(good)), PW_OK);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char c[PW_CURSOR_LEN + 2];
		json_t *fields = NULL;
		pw_query q;

		memcpy(c, good, sizeof(good));
		if (rows[i].pos < 0) {
			c[PW_CURSOR_LEN] = 'A';
			c[PW_CURSOR_LEN + 1] = '\0';
		} else {
			/* The char 32 places on in the alphabet: differs in the top bit. */
			static const char b64[] =
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
			c[rows[i].pos] = b64[(strchr(b64, c[rows[i].pos]) - b64 + 32) % 64];
		}
		json_t *p = json_pack("{s:s}", "cursor", c);
		ck_assert_ptr_nonnull(p);
		pw_status st = pw_query_validate(p, 1, &k, OWNER, &q, &fields);
		want_invalid(rows[i].name, st, fields, "cursor", NULL, "invalid cursor");
		json_decref(fields);
		json_decref(p);
	}
}
END_TEST

/* A good cursor beside an unknown field: the unknown field is named. */
START_TEST(test_list_cursor_with_unknown_field)
{
	pw_cursor_key k = key_of(SECRET);
	char c[PW_CURSOR_LEN + 1];
	json_t *fields = NULL;
	pw_query q;

	ck_assert_int_eq(pw_cursor_encode(&k, OWNER, NULL, NULL, 42, c, sizeof(c)), PW_OK);
	json_t *p = json_pack("{s:s, s:i}", "cursor", c, "page", 2);
	ck_assert_ptr_nonnull(p);
	pw_status st = pw_query_validate(p, 1, &k, OWNER, &q, &fields);
	ck_assert_int_eq(st, PW_E_INVALID);
	ck_assert_msg(json_is_string(json_object_get(fields, "page")), "fields do not name page");
	ck_assert_msg(json_object_get(fields, "cursor") == NULL, "good cursor named as bad");
	json_decref(fields);
	json_decref(p);
}
END_TEST

static Suite *query_suite(void)
{
	Suite *s = suite_create("query");
	TCase *tc = tcase_create("get");

	tcase_add_test(tc, test_get);
	suite_add_tcase(s, tc);

	tc = tcase_create("list");
	tcase_add_test(tc, test_list_defaults);
	tcase_add_test(tc, test_list_limit);
	tcase_add_test(tc, test_list_dni);
	tcase_add_test(tc, test_list_q);
	tcase_add_test(tc, test_list_q_escaped_length);
	tcase_add_test(tc, test_list_unknown_fields);
	tcase_add_test(tc, test_list_several_bad_fields);
	suite_add_tcase(s, tc);

	tc = tcase_create("cursor");
	tcase_add_test(tc, test_list_cursor);
	tcase_add_test(tc, test_list_cursor_edited);
	tcase_add_test(tc, test_list_cursor_with_unknown_field);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(query_suite());
}
