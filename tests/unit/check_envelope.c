/* Unit tests of pw_envelope: the dead-letter checks in the contract's order, the token's
 * source, and the command's type and payload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "pw_check_main.h"
#include "pw_envelope.h"
#include "pw_status.h"

#define REPLIES "patients.replies"
#define MAX     65536

/* A record value that passes every dead-letter check. */
#define VALID                                                                                      \
	"{\"request_id\":\"r-1\",\"type\":\"patient.get\",\"token\":\"t\",\"payload\":{\"id\":1}}"

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

static const char *code_of(pw_dlq_reason r)
{
	const char *c = pw_envelope_dlq_code(r);
	return c ? c : "(null)";
}

/* Parses text (len bytes; 0 means strlen) with no authorization header. */
static pw_status parse(const char *text, size_t len, size_t max_bytes, pw_envelope **env,
                       pw_dlq_reason *reason)
{
	*env = NULL;
	*reason = PW_DLQ_NONE;
	return pw_envelope_parse(text, len ? len : strlen(text), NULL, 0, REPLIES, max_bytes, env,
	                         reason);
}

typedef struct dlq_case {
	const char *name;
	const char *value;
	size_t len; /**< 0: strlen(value) */
	pw_dlq_reason reason;
} dlq_case;

/* Walks every row and reports all the rows that fail, not only the first. */
static void check_dlq_rows(const dlq_case *rows, size_t n)
{
	char failed[4096] = "";
	size_t used = 0;

	for (size_t i = 0; i < n; i++) {
		pw_envelope *env;
		pw_dlq_reason reason;
		pw_status st = parse(rows[i].value, rows[i].len, MAX, &env, &reason);
		int ok;

		if (rows[i].reason == PW_DLQ_NONE) {
			ok = st == PW_OK && env != NULL;
			if (st == PW_OK)
				pw_envelope_destroy(env);
		} else {
			ok = st == PW_E_INVALID && reason == rows[i].reason;
		}
		if (!ok && used < sizeof(failed))
			used += (size_t)snprintf(
			    failed + used, sizeof(failed) - used,
			    "\n  row '%s': status %d reason %s, want %s", rows[i].name, st,
			    code_of(reason),
			    rows[i].reason == PW_DLQ_NONE ? "PW_OK" : code_of(rows[i].reason));
	}
	ck_assert_msg(failed[0] == '\0', "failing rows:%s", failed);
}

START_TEST(test_size)
{
	size_t len = strlen(VALID);
	pw_envelope *env;
	pw_dlq_reason reason;

	ck_assert_msg(parse(VALID, 0, len, &env, &reason) == PW_OK,
	              "exactly max_bytes must pass, reason %d", reason);
	pw_envelope_destroy(env);

	ck_assert_msg(parse(VALID, 0, len - 1, &env, &reason) == PW_E_INVALID,
	              "max_bytes + 1 must be refused");
	ck_assert_msg(reason == PW_DLQ_TOO_LARGE, "max_bytes + 1: reason %d, want too_large",
	              reason);

	/* A big record at the default limit: 65536 passes, 65537 does not. */
	const char *head = "{\"request_id\":\"r-1\",\"payload\":{\"pad\":\"";
	const char *tail = "\"}}";
	size_t pad = MAX - strlen(head) - strlen(tail);
	char *big = malloc(MAX + 2);
	ck_assert_ptr_nonnull(big);
	strcpy(big, head);
	memset(big + strlen(head), 'x', pad);
	strcpy(big + strlen(head) + pad, tail);
	ck_assert_uint_eq(strlen(big), MAX);
	ck_assert_msg(parse(big, 0, MAX, &env, &reason) == PW_OK, "65536 bytes: reason %d", reason);
	pw_envelope_destroy(env);

	strcpy(big + strlen(head) + pad, "x\"}}");
	ck_assert_uint_eq(strlen(big), MAX + 1);
	ck_assert_msg(parse(big, 0, MAX, &env, &reason) == PW_E_INVALID, "65537 bytes accepted");
	ck_assert_msg(reason == PW_DLQ_TOO_LARGE, "65537 bytes: reason %d", reason);
	free(big);
}
END_TEST

START_TEST(test_json)
{
	static const char raw_nul[] = "{\"request_id\":\"r-1\",\"payload\":{\"a\":\"x\0y\"}}";
	static const dlq_case rows[] = {
	    {"valid envelope", VALID, 0, PW_DLQ_NONE},
	    {"empty value", "", 0, PW_DLQ_MALFORMED_JSON},
	    {"not JSON", "hello world", 0, PW_DLQ_MALFORMED_JSON},
	    {"truncated object", "{\"request_id\":\"r-1\",\"payload\":{", 0, PW_DLQ_MALFORMED_JSON},
	    {"truncated string", "{\"request_id\":\"r-1", 0, PW_DLQ_MALFORMED_JSON},
	    {"trailing garbage", VALID " x", 0, PW_DLQ_MALFORMED_JSON},
	    {"two objects", VALID VALID, 0, PW_DLQ_MALFORMED_JSON},
	    {"array top-level", "[1,2]", 0, PW_DLQ_NOT_OBJECT},
	    {"empty array top-level", "[]", 0, PW_DLQ_NOT_OBJECT},
	    {"string top-level", "\"r-1\"", 0, PW_DLQ_NOT_OBJECT},
	    {"number top-level", "42", 0, PW_DLQ_NOT_OBJECT},
	    {"invalid UTF-8 byte FF", "{\"request_id\":\"r-1\",\"payload\":{\"a\":\"\xff\"}}", 0,
	     PW_DLQ_MALFORMED_JSON},
	    {"overlong UTF-8 C0 AF", "{\"request_id\":\"r-1\",\"payload\":{\"a\":\"\xc0\xaf\"}}", 0,
	     PW_DLQ_MALFORMED_JSON},
	    {"UTF-8 surrogate ED A0 80",
	     "{\"request_id\":\"r-1\",\"payload\":{\"a\":\"\xed\xa0\x80\"}}", 0,
	     PW_DLQ_MALFORMED_JSON},
	    {"NUL via \\u0000 in payload",
	     "{\"request_id\":\"r-1\",\"payload\":{\"a\":\"x\\u0000y\"}}", 0,
	     PW_DLQ_MALFORMED_JSON},
	    {"NUL via \\u0000 in request_id", "{\"request_id\":\"r\\u00001\",\"payload\":{}}", 0,
	     PW_DLQ_MALFORMED_JSON},
	    {"raw NUL byte", raw_nul, sizeof(raw_nul) - 1, PW_DLQ_MALFORMED_JSON},
	    {"duplicated request_id",
	     "{\"request_id\":\"r-1\",\"request_id\":\"r-2\",\"payload\":{}}", 0,
	     PW_DLQ_MALFORMED_JSON},
	    {"duplicated key in payload",
	     "{\"request_id\":\"r-1\",\"payload\":{\"dni\":\"1\",\"dni\":\"2\"}}", 0,
	     PW_DLQ_MALFORMED_JSON},
	};
	check_dlq_rows(rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

START_TEST(test_deep_nesting)
{
	const char *head = "{\"request_id\":\"r-1\",\"payload\":{\"a\":";
	char *open = repeat("[", 3000);
	char *close = repeat("]", 3000);
	size_t n = strlen(head) + 6000 + 3;
	char *text = malloc(n);
	pw_envelope *env;
	pw_dlq_reason reason;

	ck_assert_ptr_nonnull(text);
	snprintf(text, n, "%s%s%s}}", head, open, close);
	ck_assert_msg(parse(text, 0, MAX, &env, &reason) == PW_E_INVALID,
	              "3000-level nesting accepted");
	ck_assert_msg(reason == PW_DLQ_MALFORMED_JSON, "3000-level nesting: reason %d", reason);
	free(text);
	free(open);
	free(close);
}
END_TEST

START_TEST(test_request_id)
{
	char *id128 = repeat("a", 128);
	char *id129 = repeat("b", 129);
	char ok128[256], bad129[256];

	snprintf(ok128, sizeof(ok128), "{\"request_id\":\"%s\",\"payload\":{}}", id128);
	snprintf(bad129, sizeof(bad129), "{\"request_id\":\"%s\",\"payload\":{}}", id129);
	const dlq_case rows[] = {
	    {"missing request_id", "{\"type\":\"patient.get\",\"payload\":{\"id\":1}}", 0,
	     PW_DLQ_MISSING_REQUEST_ID},
	    {"empty object", "{}", 0, PW_DLQ_MISSING_REQUEST_ID},
	    {"request_id empty", "{\"request_id\":\"\",\"payload\":{}}", 0,
	     PW_DLQ_INVALID_REQUEST_ID},
	    {"request_id 128 chars", ok128, 0, PW_DLQ_NONE},
	    {"request_id 129 chars", bad129, 0, PW_DLQ_INVALID_REQUEST_ID},
	    {"request_id every allowed char", "{\"request_id\":\"AZaz09._:-\",\"payload\":{}}", 0,
	     PW_DLQ_NONE},
	    {"request_id with space", "{\"request_id\":\"a b\",\"payload\":{}}", 0,
	     PW_DLQ_INVALID_REQUEST_ID},
	    {"request_id with slash", "{\"request_id\":\"a/b\",\"payload\":{}}", 0,
	     PW_DLQ_INVALID_REQUEST_ID},
	    {"request_id with non-ASCII", "{\"request_id\":\"a\xc3\xb1\",\"payload\":{}}", 0,
	     PW_DLQ_INVALID_REQUEST_ID},
	    {"request_id number", "{\"request_id\":42,\"payload\":{}}", 0,
	     PW_DLQ_INVALID_REQUEST_ID},
	    {"request_id array", "{\"request_id\":[\"r-1\"],\"payload\":{}}", 0,
	     PW_DLQ_INVALID_REQUEST_ID},
	    {"request_id object", "{\"request_id\":{},\"payload\":{}}", 0,
	     PW_DLQ_INVALID_REQUEST_ID},
	};
	check_dlq_rows(rows, sizeof(rows) / sizeof(rows[0]));

	pw_envelope *env;
	pw_dlq_reason reason;
	ck_assert(parse(ok128, 0, MAX, &env, &reason) == PW_OK);
	ck_assert_str_eq(env->request_id, id128);
	pw_envelope_destroy(env);
	free(id128);
	free(id129);
}
END_TEST

START_TEST(test_request_id_valid)
{
	char *id128 = repeat("x", 128);
	char *id129 = repeat("x", 129);
	const struct {
		const char *id;
		int ok;
	} rows[] = {
	    {"a", 1},
	    {"AZaz09._:-", 1},
	    {id128, 1},
	    {id129, 0},
	    {"", 0},
	    {"a b", 0},
	    {"a/b", 0},
	    {"a\tb", 0},
	    {"a#", 0},
	    {"a\xc3\xb1", 0},
	    {"a+b", 0},
	    {"a@b", 0},
	    {"7f1c9e0a-4b1e-4a53-9d43-2f8e1d1c0b11", 1},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		ck_assert_msg(pw_envelope_request_id_valid(rows[i].id) == rows[i].ok,
		              "row %zu ('%.20s'): got %d, want %d", i, rows[i].id,
		              pw_envelope_request_id_valid(rows[i].id), rows[i].ok);
	free(id128);
	free(id129);
}
END_TEST

START_TEST(test_reply_to)
{
	static const struct {
		const char *name;
		const char *value;
		const char *replies; /**< configured reply topic */
		pw_dlq_reason reason;
		const char *want; /**< env->reply_to on success */
	} rows[] = {
	    {"reply_to absent: default", "{\"request_id\":\"r\",\"payload\":{}}", REPLIES,
	     PW_DLQ_NONE, REPLIES},
	    {"reply_to absent: configured default", "{\"request_id\":\"r\",\"payload\":{}}",
	     "acme.replies", PW_DLQ_NONE, "acme.replies"},
	    {"reply_to equal to the prefix",
	     "{\"request_id\":\"r\",\"reply_to\":\"patients.replies\",\"payload\":{}}", REPLIES,
	     PW_DLQ_NONE, REPLIES},
	    {"reply_to under the prefix",
	     "{\"request_id\":\"r\",\"reply_to\":\"patients.replies.billing-7\",\"payload\":{}}",
	     REPLIES, PW_DLQ_NONE, "patients.replies.billing-7"},
	    {"reply_to prefix without dot",
	     "{\"request_id\":\"r\",\"reply_to\":\"patients.repliesX\",\"payload\":{}}", REPLIES,
	     PW_DLQ_REPLY_TO_REFUSED, NULL},
	    {"reply_to prefix and dot only",
	     "{\"request_id\":\"r\",\"reply_to\":\"patients.replies.\",\"payload\":{}}", REPLIES,
	     PW_DLQ_REPLY_TO_REFUSED, NULL},
	    {"reply_to other topic", "{\"request_id\":\"r\",\"reply_to\":\"other\",\"payload\":{}}",
	     REPLIES, PW_DLQ_REPLY_TO_REFUSED, NULL},
	    {"reply_to the DLQ",
	     "{\"request_id\":\"r\",\"reply_to\":\"patients.dlq\",\"payload\":{}}", REPLIES,
	     PW_DLQ_REPLY_TO_REFUSED, NULL},
	    {"reply_to a shorter prefix",
	     "{\"request_id\":\"r\",\"reply_to\":\"patients.repl\",\"payload\":{}}", REPLIES,
	     PW_DLQ_REPLY_TO_REFUSED, NULL},
	    {"reply_to empty", "{\"request_id\":\"r\",\"reply_to\":\"\",\"payload\":{}}", REPLIES,
	     PW_DLQ_REPLY_TO_REFUSED, NULL},
	    {"reply_to default topic, other configured",
	     "{\"request_id\":\"r\",\"reply_to\":\"patients.replies\",\"payload\":{}}",
	     "acme.replies", PW_DLQ_REPLY_TO_REFUSED, NULL},
	    {"reply_to number", "{\"request_id\":\"r\",\"reply_to\":7,\"payload\":{}}", REPLIES,
	     PW_DLQ_REPLY_TO_REFUSED, NULL},
	    {"reply_to array", "{\"request_id\":\"r\",\"reply_to\":[\"patients.replies\"]}",
	     REPLIES, PW_DLQ_REPLY_TO_REFUSED, NULL},
	    {"reply_to object", "{\"request_id\":\"r\",\"reply_to\":{},\"payload\":{}}", REPLIES,
	     PW_DLQ_REPLY_TO_REFUSED, NULL},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_envelope *env = NULL;
		pw_dlq_reason reason = PW_DLQ_NONE;
		pw_status st = pw_envelope_parse(rows[i].value, strlen(rows[i].value), NULL, 0,
		                                 rows[i].replies, MAX, &env, &reason);
		if (rows[i].reason == PW_DLQ_NONE) {
			ck_assert_msg(st == PW_OK, "row '%s': status %d reason %d", rows[i].name,
			              st, reason);
			ck_assert_msg(env->reply_to != NULL &&
			                  strcmp(env->reply_to, rows[i].want) == 0,
			              "row '%s': reply_to '%s', want '%s'", rows[i].name,
			              env->reply_to ? env->reply_to : "(null)", rows[i].want);
			pw_envelope_destroy(env);
		} else {
			ck_assert_msg(st == PW_E_INVALID, "row '%s': status %d", rows[i].name, st);
			ck_assert_msg(reason == rows[i].reason, "row '%s': reason %d, want %d",
			              rows[i].name, reason, rows[i].reason);
		}
	}
}
END_TEST

START_TEST(test_reply_to_allowed)
{
	static const struct {
		const char *topic;
		const char *replies;
		int ok;
	} rows[] = {
	    {"patients.replies", REPLIES, 1},
	    {"patients.replies.billing-7", REPLIES, 1},
	    {"patients.replies.a.b", REPLIES, 1},
	    {"patients.replies.", REPLIES, 0},
	    {"patients.repliesX", REPLIES, 0},
	    {"patients.replie", REPLIES, 0},
	    {"other", REPLIES, 0},
	    {"", REPLIES, 0},
	    {"xpatients.replies", REPLIES, 0},
	    {"acme.replies.x", "acme.replies", 1},
	    {"patients.replies", "acme.replies", 0},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		ck_assert_msg(pw_envelope_reply_to_allowed(rows[i].topic, rows[i].replies) ==
		                  rows[i].ok,
		              "row %zu: '%s' under '%s': want %d", i, rows[i].topic,
		              rows[i].replies, rows[i].ok);
}
END_TEST

START_TEST(test_order)
{
	pw_envelope *env;
	pw_dlq_reason reason;
	/* Too large and not JSON: size is checked first. */
	const char *bad_json = "{not json at all, and long enough";
	ck_assert(parse(bad_json, 0, 10, &env, &reason) == PW_E_INVALID);
	ck_assert_msg(reason == PW_DLQ_TOO_LARGE, "too large + bad JSON: reason %d", reason);

	static const dlq_case rows[] = {
	    {"bad request_id and bad reply_to",
	     "{\"request_id\":\"a b\",\"reply_to\":\"other\",\"payload\":{}}", 0,
	     PW_DLQ_INVALID_REQUEST_ID},
	    {"bad reply_to and bad request_id (reply_to first in the text)",
	     "{\"reply_to\":\"other\",\"request_id\":\"a/b\",\"payload\":{}}", 0,
	     PW_DLQ_INVALID_REQUEST_ID},
	    {"missing request_id and bad reply_to", "{\"reply_to\":\"other\",\"payload\":{}}", 0,
	     PW_DLQ_MISSING_REQUEST_ID},
	    {"duplicated keys and bad request_id", "{\"request_id\":\"a b\",\"request_id\":\"c\"}",
	     0, PW_DLQ_MALFORMED_JSON},
	    /* The dead-letter checks do not judge the token, type or payload. */
	    {"no token, no type, no payload", "{\"request_id\":\"r-1\"}", 0, PW_DLQ_NONE},
	    {"payload an array", "{\"request_id\":\"r-1\",\"type\":\"x\",\"payload\":[]}", 0,
	     PW_DLQ_NONE},
	    {"token a number", "{\"request_id\":\"r-1\",\"token\":5}", 0, PW_DLQ_NONE},
	};
	check_dlq_rows(rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

/* The value buffer is not NUL-terminated: bytes after len must be ignored. */
START_TEST(test_len_respected)
{
	const char buf[] = VALID "garbage that would break the JSON";
	pw_envelope *env;
	pw_dlq_reason reason;

	ck_assert_msg(parse(buf, strlen(VALID), MAX, &env, &reason) == PW_OK,
	              "bytes after len were read: reason %d", reason);
	ck_assert_str_eq(env->request_id, "r-1");
	pw_envelope_destroy(env);
}
END_TEST

START_TEST(test_token)
{
	static const struct {
		const char *name;
		const char *value;
		const char *header; /**< NULL: no authorization header */
		const char *want;   /**< NULL: no token */
		int not_string;
	} rows[] = {
	    {"token from body", "{\"request_id\":\"r\",\"token\":\"body.tok.en\"}", NULL,
	     "body.tok.en", 0},
	    {"token from Bearer header", "{\"request_id\":\"r\"}", "Bearer hdr.tok.en",
	     "hdr.tok.en", 0},
	    {"token from bearer header (lower case)", "{\"request_id\":\"r\"}", "bearer hdr.tok.en",
	     "hdr.tok.en", 0},
	    {"body token wins over header", "{\"request_id\":\"r\",\"token\":\"body.tok.en\"}",
	     "Bearer hdr.tok.en", "body.tok.en", 0},
	    {"no token anywhere", "{\"request_id\":\"r\"}", NULL, NULL, 0},
	    {"header not Bearer", "{\"request_id\":\"r\"}", "Basic dXNlcjpwYXNz", NULL, 0},
	    {"token number", "{\"request_id\":\"r\",\"token\":5}", NULL, NULL, 1},
	    {"token object", "{\"request_id\":\"r\",\"token\":{}}", NULL, NULL, 1},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_envelope *env = NULL;
		pw_dlq_reason reason = PW_DLQ_NONE;
		/* The header is not NUL-terminated either: pad it with garbage. */
		char hdr[128];
		size_t hlen = 0;
		if (rows[i].header) {
			hlen = strlen(rows[i].header);
			snprintf(hdr, sizeof(hdr), "%sGARBAGE", rows[i].header);
		}
		pw_status st = pw_envelope_parse(rows[i].value, strlen(rows[i].value),
		                                 rows[i].header ? hdr : NULL, hlen, REPLIES, MAX,
		                                 &env, &reason);
		ck_assert_msg(st == PW_OK, "row '%s': status %d reason %d", rows[i].name, st,
		              reason);
		if (rows[i].want == NULL)
			ck_assert_msg(env->token == NULL, "row '%s': token '%s', want none",
			              rows[i].name, env->token);
		else
			ck_assert_msg(env->token != NULL && strcmp(env->token, rows[i].want) == 0,
			              "row '%s': token '%s', want '%s'", rows[i].name,
			              env->token ? env->token : "(null)", rows[i].want);
		ck_assert_msg(env->token_not_string == rows[i].not_string,
		              "row '%s': token_not_string %d, want %d", rows[i].name,
		              env->token_not_string, rows[i].not_string);
		pw_envelope_destroy(env);
	}
}
END_TEST

/* A body token that is not a string is still flagged when a header is present. */
START_TEST(test_token_not_string_with_header)
{
	const char *v = "{\"request_id\":\"r\",\"token\":5}";
	const char *h = "Bearer hdr.tok.en";
	pw_envelope *env = NULL;
	pw_dlq_reason reason;

	ck_assert(pw_envelope_parse(v, strlen(v), h, strlen(h), REPLIES, MAX, &env, &reason) ==
	          PW_OK);
	ck_assert_msg(env->token_not_string == 1, "token 5 with a header: flag not set");
	pw_envelope_destroy(env);
}
END_TEST

static pw_envelope *must_parse(const char *text)
{
	pw_envelope *env = NULL;
	pw_dlq_reason reason = PW_DLQ_NONE;
	pw_status st = pw_envelope_parse(text, strlen(text), NULL, 0, REPLIES, MAX, &env, &reason);

	ck_assert_msg(st == PW_OK, "envelope '%s' refused: reason %d", text, reason);
	return env;
}

START_TEST(test_command)
{
	static const struct {
		const char *name;
		const char *value;
		pw_topic_kind topic;
		pw_status st;
		pw_envelope_type type;
	} rows[] = {
	    {"create on create topic",
	     "{\"request_id\":\"r\",\"type\":\"patient.create\",\"payload\":{\"nombre\":\"A\"}}",
	     PW_TOPIC_CREATE, PW_OK, PW_ENVELOPE_CREATE},
	    {"get on query topic",
	     "{\"request_id\":\"r\",\"type\":\"patient.get\",\"payload\":{\"id\":1}}",
	     PW_TOPIC_QUERY, PW_OK, PW_ENVELOPE_GET},
	    {"list on query topic",
	     "{\"request_id\":\"r\",\"type\":\"patient.list\",\"payload\":{}}", PW_TOPIC_QUERY,
	     PW_OK, PW_ENVELOPE_LIST},
	    {"type missing", "{\"request_id\":\"r\",\"payload\":{}}", PW_TOPIC_CREATE, PW_E_INVALID,
	     PW_ENVELOPE_NONE},
	    {"type missing (query)", "{\"request_id\":\"r\",\"payload\":{}}", PW_TOPIC_QUERY,
	     PW_E_INVALID, PW_ENVELOPE_NONE},
	    {"type not a string", "{\"request_id\":\"r\",\"type\":1,\"payload\":{}}",
	     PW_TOPIC_CREATE, PW_E_INVALID, PW_ENVELOPE_NONE},
	    {"type unknown", "{\"request_id\":\"r\",\"type\":\"patient.delete\",\"payload\":{}}",
	     PW_TOPIC_QUERY, PW_E_INVALID, PW_ENVELOPE_NONE},
	    {"type with different case",
	     "{\"request_id\":\"r\",\"type\":\"Patient.Create\",\"payload\":{}}", PW_TOPIC_CREATE,
	     PW_E_INVALID, PW_ENVELOPE_NONE},
	    {"create on query topic",
	     "{\"request_id\":\"r\",\"type\":\"patient.create\",\"payload\":{}}", PW_TOPIC_QUERY,
	     PW_E_INVALID, PW_ENVELOPE_NONE},
	    {"get on create topic",
	     "{\"request_id\":\"r\",\"type\":\"patient.get\",\"payload\":{}}", PW_TOPIC_CREATE,
	     PW_E_INVALID, PW_ENVELOPE_NONE},
	    {"list on create topic",
	     "{\"request_id\":\"r\",\"type\":\"patient.list\",\"payload\":{}}", PW_TOPIC_CREATE,
	     PW_E_INVALID, PW_ENVELOPE_NONE},
	    {"payload missing", "{\"request_id\":\"r\",\"type\":\"patient.create\"}",
	     PW_TOPIC_CREATE, PW_E_INVALID, PW_ENVELOPE_NONE},
	    {"payload array", "{\"request_id\":\"r\",\"type\":\"patient.list\",\"payload\":[]}",
	     PW_TOPIC_QUERY, PW_E_INVALID, PW_ENVELOPE_NONE},
	    {"payload null", "{\"request_id\":\"r\",\"type\":\"patient.get\",\"payload\":null}",
	     PW_TOPIC_QUERY, PW_E_INVALID, PW_ENVELOPE_NONE},
	    {"payload string",
	     "{\"request_id\":\"r\",\"type\":\"patient.create\",\"payload\":\"{}\"}",
	     PW_TOPIC_CREATE, PW_E_INVALID, PW_ENVELOPE_NONE},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_envelope *env = must_parse(rows[i].value);
		pw_envelope_type type = PW_ENVELOPE_NONE;
		json_t *payload = NULL;
		char msg[256] = "";
		pw_status st =
		    pw_envelope_command(env, rows[i].topic, &type, &payload, msg, sizeof(msg));

		ck_assert_msg(st == rows[i].st, "row '%s': status %d, want %d", rows[i].name, st,
		              rows[i].st);
		if (st == PW_OK) {
			ck_assert_msg(type == rows[i].type, "row '%s': type %d, want %d",
			              rows[i].name, type, rows[i].type);
			ck_assert_msg(payload == json_object_get(env->root, "payload"),
			              "row '%s': payload is not the envelope's", rows[i].name);
		} else {
			ck_assert_msg(msg[0] != '\0', "row '%s': no message for the 400",
			              rows[i].name);
		}
		pw_envelope_destroy(env);
	}
}
END_TEST

START_TEST(test_reason_codes)
{
	static const struct {
		pw_dlq_reason r;
		const char *code;
	} rows[] = {
	    {PW_DLQ_TOO_LARGE, "too_large"},
	    {PW_DLQ_MALFORMED_JSON, "malformed_json"},
	    {PW_DLQ_NOT_OBJECT, "not_an_object"},
	    {PW_DLQ_MISSING_REQUEST_ID, "missing_request_id"},
	    {PW_DLQ_INVALID_REQUEST_ID, "invalid_request_id"},
	    {PW_DLQ_REPLY_TO_REFUSED, "reply_to_refused"},
	    {PW_DLQ_REPLY_UNDELIVERABLE, "reply_undeliverable"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *got = pw_envelope_dlq_code(rows[i].r);
		ck_assert_msg(got != NULL && strcmp(got, rows[i].code) == 0,
		              "reason %d: code '%s', want '%s'", rows[i].r, got ? got : "(null)",
		              rows[i].code);
	}
}
END_TEST

START_TEST(test_destroy_null)
{
	pw_envelope_destroy(NULL);
}
END_TEST

static Suite *envelope_suite(void)
{
	Suite *s = suite_create("envelope");
	TCase *tc = tcase_create("dead_letter");

	tcase_add_test(tc, test_size);
	tcase_add_test(tc, test_json);
	tcase_add_test(tc, test_deep_nesting);
	tcase_add_test(tc, test_request_id);
	tcase_add_test(tc, test_request_id_valid);
	tcase_add_test(tc, test_reply_to);
	tcase_add_test(tc, test_reply_to_allowed);
	tcase_add_test(tc, test_order);
	tcase_add_test(tc, test_len_respected);
	suite_add_tcase(s, tc);

	tc = tcase_create("token");
	tcase_add_test(tc, test_token);
	tcase_add_test(tc, test_token_not_string_with_header);
	suite_add_tcase(s, tc);

	tc = tcase_create("command");
	tcase_add_test(tc, test_command);
	tcase_add_test(tc, test_reason_codes);
	tcase_add_test(tc, test_destroy_null);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(envelope_suite());
}
