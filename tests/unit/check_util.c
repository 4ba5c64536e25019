/* Unit tests of pw_util: base64url both ways, UTF-8 length and controls, host:port, the
 * bounded buffer and array growth, the monotonic clock. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "pw_check_main.h"
#include "pw_util.h"

#define ENYE  "\xc3\xb1"
#define EMOJI "\xf0\x9f\x98\x80"

START_TEST(b64url_round_trips)
{
	unsigned char in[64], back[80];
	char text[100];
	size_t n;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 37 + 11);
	for (size_t len = 0; len <= sizeof(in); len++) {
		ck_assert_int_eq(pw_util_b64url_encode(in, len, text, sizeof(text)), PW_OK);
		ck_assert_uint_eq(strlen(text), pw_util_b64url_encoded_len(len));
		ck_assert_msg(strpbrk(text, "+/=") == NULL, "not base64url: %s", text);
		ck_assert_int_eq(pw_util_b64url_decode(text, strlen(text), back, sizeof(back), &n),
		                 PW_OK);
		ck_assert_uint_eq(n, len);
		ck_assert_int_eq(memcmp(in, back, len), 0);
		ck_assert_int_eq(back[n], 0);
	}
	/* RFC 4648 test vectors, padding dropped. */
	ck_assert_int_eq(pw_util_b64url_encode("foobar", 6, text, sizeof(text)), PW_OK);
	ck_assert_str_eq(text, "Zm9vYmFy");
	ck_assert_int_eq(pw_util_b64url_encode("fooba", 5, text, sizeof(text)), PW_OK);
	ck_assert_str_eq(text, "Zm9vYmE");
	ck_assert_int_eq(pw_util_b64url_encode("\xfb\xff", 2, text, sizeof(text)), PW_OK);
	ck_assert_str_eq(text, "-_8");
}
END_TEST

START_TEST(b64url_refuses)
{
	unsigned char out[16];
	char text[16];
	size_t n = 99;

	ck_assert_int_eq(pw_util_b64url_decode("Zm9v+", 5, out, sizeof(out), &n), PW_E_INVALID);
	ck_assert_int_eq(pw_util_b64url_decode("Zm9/", 4, out, sizeof(out), &n), PW_E_INVALID);
	ck_assert_int_eq(pw_util_b64url_decode("Zm9v=", 5, out, sizeof(out), &n), PW_E_INVALID);
	ck_assert_int_eq(pw_util_b64url_decode("Z", 1, out, sizeof(out), &n), PW_E_INVALID);
	/* 6 bytes do not fit 6 bytes of room: the NUL needs one more. */
	ck_assert_int_eq(pw_util_b64url_decode("Zm9vYmFy", 8, out, 6, &n), PW_E_INVALID);
	ck_assert_int_eq(pw_util_b64url_decode("Zm9vYmFy", 8, out, 7, &n), PW_OK);
	ck_assert_uint_eq(n, 6);
	ck_assert_int_eq(pw_util_b64url_encode("foobar", 6, text, 8), PW_E_INVALID);
	ck_assert_int_eq(pw_util_b64url_encode("foobar", 6, text, 9), PW_OK);
	ck_assert(pw_util_b64url_alphabet("abcXYZ019-_", 11));
	ck_assert(!pw_util_b64url_alphabet("ab.c", 4));
	ck_assert(pw_util_b64url_alphabet("ab.c", 2));
}
END_TEST

START_TEST(test_base64url_decode)
{
	static const struct {
		const char *name;
		const char *in;
		size_t in_len; /**< 0: strlen */
		size_t out_size;
		long want;
		const char *bytes; /**< with want >= 0 */
	} rows[] = {
	    {"empty", "", 0, 8, 0, ""},
	    {"1 byte", "YQ", 0, 8, 1, "a"},
	    {"2 bytes", "YWI", 0, 8, 2, "ab"},
	    {"3 bytes", "YWJj", 0, 8, 3, "abc"},
	    {"4 bytes", "YWJjZA", 0, 8, 4, "abcd"},
	    {"alphabet - and _", "-_-_", 0, 8, 3, "\xfb\xff\xbf"},
	    {"JSON header", "eyJhbGciOiJub25lIn0", 0, 64, 14, "{\"alg\":\"none\"}"},
	    {"in_len respected", "YWJjZGVm", 4, 8, 3, "abc"},
	    {"exact fit with NUL", "YWJj", 0, 4, 3, "abc"},
	    {"no room for NUL", "YWJj", 0, 3, -1, NULL},
	    {"too small", "YWJjZGVm", 0, 4, -1, NULL},
	    {"padding =", "YQ==", 0, 8, -1, NULL},
	    {"standard +", "+/+/", 0, 8, -1, NULL},
	    {"standard /", "ab/c", 0, 8, -1, NULL},
	    {"space", "YW Jj", 0, 8, -1, NULL},
	    {"dot", "YW.j", 0, 8, -1, NULL},
	    {"non-ASCII", "YW\xc3\xb1", 0, 8, -1, NULL},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		unsigned char out[64];
		size_t in_len = rows[i].in_len ? rows[i].in_len : strlen(rows[i].in);
		memset(out, 0x7e, sizeof(out));
		size_t n = 0;
		long got =
		    pw_util_b64url_decode(rows[i].in, in_len, out, rows[i].out_size, &n) == PW_OK
		        ? (long)n
		        : -1;
		ck_assert_msg(got == rows[i].want, "row '%s': got %ld, want %ld", rows[i].name, got,
		              rows[i].want);
		if (got >= 0) {
			ck_assert_msg(memcmp(out, rows[i].bytes, (size_t)got) == 0,
			              "row '%s': wrong bytes", rows[i].name);
			ck_assert_msg(out[got] == '\0', "row '%s': not NUL-terminated",
			              rows[i].name);
		}
		for (size_t k = rows[i].out_size; k < sizeof(out); k++)
			ck_assert_msg(out[k] == 0x7e, "row '%s': wrote past out_size at %zu",
			              rows[i].name, k);
	}
}
END_TEST

START_TEST(test_utf8_length)
{
	static const struct {
		const char *name;
		const char *s;
		long want; /* -1: refused */
	} rows[] = {
	    {"empty", "", 0},
	    {"ASCII", "abc", 3},
	    {"2-byte", ENYE, 1},
	    {"3-byte euro", "\xe2\x82\xac", 1},
	    {"4-byte emoji", EMOJI, 1},
	    {"mixed", "a" ENYE "\xe2\x82\xac" EMOJI "z", 5},
	    {"U+007F", "\x7f", 1},
	    {"U+0080", "\xc2\x80", 1},
	    {"U+07FF", "\xdf\xbf", 1},
	    {"U+0800", "\xe0\xa0\x80", 1},
	    {"U+D7FF", "\xed\x9f\xbf", 1},
	    {"U+E000", "\xee\x80\x80", 1},
	    {"U+FFFF", "\xef\xbf\xbf", 1},
	    {"U+10000", "\xf0\x90\x80\x80", 1},
	    {"U+10FFFF", "\xf4\x8f\xbf\xbf", 1},
	    {"overlong C0 AF", "\xc0\xaf", -1},
	    {"overlong C1 BF", "\xc1\xbf", -1},
	    {"overlong E0 80 AF", "\xe0\x80\xaf", -1},
	    {"overlong F0 80 80 AF", "\xf0\x80\x80\xaf", -1},
	    {"surrogate ED A0 80", "\xed\xa0\x80", -1},
	    {"surrogate ED BF BF", "\xed\xbf\xbf", -1},
	    {"above U+10FFFF F4 90 80 80", "\xf4\x90\x80\x80", -1},
	    {"F5 lead byte", "\xf5\x80\x80\x80", -1},
	    {"5-byte form", "\xf8\x88\x80\x80\x80", -1},
	    {"byte FF", "a\xff", -1},
	    {"lone continuation", "\x80", -1},
	    {"truncated 2-byte", "\xc3", -1},
	    {"truncated 2-byte after ASCII", "abc\xc3", -1},
	    {"truncated 3-byte", "\xe2\x82", -1},
	    {"truncated 4-byte", "\xf0\x9f\x98", -1},
	    {"bad continuation", "\xc3\x28", -1},
	    {"3-byte with ASCII inside", "\xe2\x28\xac", -1},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t n = 0;
		long got = pw_util_utf8_length(rows[i].s, &n) == PW_OK ? (long)n : -1;
		ck_assert_msg(got == rows[i].want, "row '%s': got %ld, want %ld", rows[i].name, got,
		              rows[i].want);
	}
}
END_TEST

START_TEST(utf8_controls)
{
	ck_assert(!pw_util_utf8_has_control("Ana Mar"
	                                    "\xc3\xad"
	                                    "a " ENYE EMOJI));
	ck_assert(pw_util_utf8_has_control("a\tb"));
	ck_assert(pw_util_utf8_has_control("a\x7f"));
	ck_assert(pw_util_utf8_has_control("\xc2\x85"));  /* U+0085, NEL */
	ck_assert(!pw_util_utf8_has_control("\xc2\xa0")); /* U+00A0, no-break space */
}
END_TEST

START_TEST(splits_host_and_port)
{
	static const struct {
		const char *addr, *host, *port; /* host NULL: refused */
	} cases[] = {
	    {"127.0.0.1:9464", "127.0.0.1", "9464"},
	    {"0.0.0.0:1", "0.0.0.0", "1"},
	    {"localhost:80", "localhost", "80"},
	    {"[::1]:9464", "::1", "9464"},
	    {"[::]:9464", "::", "9464"},
	    {"9464", NULL, NULL},
	    {":9464", NULL, NULL},
	    {"host:", NULL, NULL},
	    {"[::1:9464", NULL, NULL},
	    {"[]:9464", NULL, NULL},
	    {"::1:9464", NULL, NULL},
	    {"a:1,b:2", NULL, NULL},
	    {"", NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char host[64] = "", port[16] = "";
		pw_status rc =
		    pw_util_hostport_split(cases[i].addr, host, sizeof(host), port, sizeof(port));
		if (cases[i].host == NULL) {
			ck_assert_msg(rc != PW_OK, "'%s' accepted", cases[i].addr);
			continue;
		}
		ck_assert_msg(rc == PW_OK, "'%s' refused", cases[i].addr);
		ck_assert_str_eq(host, cases[i].host);
		ck_assert_str_eq(port, cases[i].port);
	}
	/* A host longer than the buffer is refused, not cut. */
	char tiny[4], port[16];
	ck_assert_int_eq(
	    pw_util_hostport_split("example.com:80", tiny, sizeof(tiny), port, sizeof(port)),
	    PW_E_INVALID);
}
END_TEST

START_TEST(buffer_is_bounded)
{
	pw_util_buf b = {.max = 10};

	ck_assert_int_eq(pw_util_buf_append(&b, "hello", 5), PW_OK);
	ck_assert_str_eq(b.p, "hello");
	ck_assert_int_eq(pw_util_buf_append(&b, "world", 5), PW_OK);
	ck_assert_uint_eq(b.len, 10);
	ck_assert_int_eq(pw_util_buf_append(&b, "!", 1), PW_E_NOMEM);
	ck_assert_str_eq(b.p, "helloworld"); /* unchanged by the refusal */
	pw_util_buf_reset(&b);
	ck_assert_str_eq(b.p, "");
	ck_assert_int_eq(pw_util_buf_append(&b, "", 0), PW_OK);
	pw_util_buf_free(&b);
	ck_assert_ptr_null(b.p);

	/* Taken: the text is the caller's, the buffer empty; an empty one gives "". */
	char *text = NULL;
	ck_assert_int_eq(pw_util_buf_append(&b, "abc", 3), PW_OK);
	ck_assert_int_eq(pw_util_buf_take(&b, &text), PW_OK);
	ck_assert_str_eq(text, "abc");
	ck_assert_ptr_null(b.p);
	ck_assert_uint_eq(b.len, 0);
	free(text);
	ck_assert_int_eq(pw_util_buf_take(&b, &text), PW_OK);
	ck_assert_str_eq(text, "");
	free(text);

	pw_util_buf big = {0};
	char chunk[1000];
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(pw_util_buf_append(&big, chunk, sizeof(chunk)), PW_OK);
	ck_assert_uint_eq(big.len, 100000);
	ck_assert_uint_eq(strlen(big.p), 100000);
	pw_util_buf_free(&big);
}
END_TEST

START_TEST(array_growth_is_bounded)
{
	int *v = NULL;
	size_t cap = 0;

	ck_assert_int_eq(pw_util_grow((void **)&v, &cap, 1, sizeof(*v), 100), PW_OK);
	ck_assert_uint_ge(cap, 1);
	ck_assert_int_eq(pw_util_grow((void **)&v, &cap, 100, sizeof(*v), 100), PW_OK);
	ck_assert_uint_eq(cap, 100);
	v[99] = 7;
	ck_assert_int_eq(pw_util_grow((void **)&v, &cap, 101, sizeof(*v), 100), PW_E_NOMEM);
	ck_assert_uint_eq(cap, 100);
	ck_assert_int_eq(v[99], 7);
	free(v);
	/* Sizes whose product overflows are refused, never wrapped. */
	void *w = NULL;
	size_t wcap = 0;
	ck_assert_int_eq(pw_util_grow(&w, &wcap, 3, SIZE_MAX / 2, SIZE_MAX), PW_E_NOMEM);
	ck_assert_ptr_null(w);
}
END_TEST

START_TEST(clock_is_monotonic)
{
	int64_t a = pw_util_now_us(), b = pw_util_now_us();
	ck_assert_int_ge(b, a);
	ck_assert_int_le(pw_util_now_ms() - b / 1000, 1000);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, b64url_round_trips);
	tcase_add_test(tc, b64url_refuses);
	tcase_add_test(tc, test_base64url_decode);
	tcase_add_test(tc, test_utf8_length);
	tcase_add_test(tc, utf8_controls);
	tcase_add_test(tc, splits_host_and_port);
	tcase_add_test(tc, buffer_is_bounded);
	tcase_add_test(tc, array_growth_is_bounded);
	tcase_add_test(tc, clock_is_monotonic);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
