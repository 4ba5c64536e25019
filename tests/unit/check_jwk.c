/* Unit tests of pw_jwk: the RFC 7638 example thumbprint, keys of every supported type made
 * by OpenSSL and read back from their JWKs, and a table of keys a set must skip (each
 * beside one good key, so the set still loads and the skip is what is asserted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "pw_check_main.h"
#include "pw_jwk.h"
#include "pw_testkeys.h"
#include "pw_util.h"

#define RFC7638_N                                                                                  \
	"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"  \
	"BJ"                                                                                       \
	"ECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"   \
	"FDW"                                                                                      \
	"2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"           \
	"bFTWhAI4vMQ"                                                                              \
	"Fh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
#define RFC7638_THUMBPRINT "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

/* ---- keys made here and written as JWKs ---------------------------------------------------- */

static EVP_PKEY *rsa2048, *rsa1024, *p256, *ed25519;

static void make_keys(void)
{
	rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ed25519 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!rsa2048 || !rsa1024 || !p256 || !ed25519)
		abort();
}

static void free_keys(void)
{
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(ed25519);
}

static json_t *b64_str(const unsigned char *b, size_t n)
{
	char out[1400];
	ck_assert_int_eq(pw_util_b64url_encode(b, n, out, sizeof(out)), PW_OK);
	return json_string(out);
}

static json_t *jwk_of(const EVP_PKEY *k, const char *kid)
{
	return tkk_jwk(k, kid, NULL);
}

/* {"keys": [...]} of the given JWKs (references stolen), as text. */
static char *set_text(json_t *a, json_t *b)
{
	json_t *keys = json_array();
	json_array_append_new(keys, a);
	if (b != NULL)
		json_array_append_new(keys, b);
	json_t *doc = json_pack("{s:o}", "keys", keys);
	char *s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return s;
}

typedef struct skips {
	int n;
	char kid[8][64], why[8][128];
} skips;

static void on_skip(void *ctx, const char *kid, const char *why)
{
	skips *s = ctx;
	if (s->n < 8) {
		snprintf(s->kid[s->n], sizeof(s->kid[0]), "%s", kid);
		snprintf(s->why[s->n], sizeof(s->why[0]), "%s", why);
	}
	s->n++;
}

static pw_status parse(const char *text, pw_jwk_set *set, skips *sk, char *why)
{
	memset(sk, 0, sizeof(*sk));
	return pw_jwk_set_parse(text, strlen(text), set, on_skip, sk, why, 256);
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST(rfc7638_example_thumbprint)
{
	const char *text = "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AQAB\","
	                   "\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}]}";
	pw_jwk_set set;
	skips sk;
	char why[256];

	ck_assert_int_eq(parse(text, &set, &sk, why), PW_OK);
	ck_assert_uint_eq(set.n, 1);
	ck_assert_str_eq(set.keys[0].thumbprint, RFC7638_THUMBPRINT);
	ck_assert_str_eq(set.keys[0].kid, "2011-04-29");
	ck_assert_str_eq(set.keys[0].alg, "RS256");
	ck_assert_int_eq(set.keys[0].type, PW_JWK_RSA);
	pw_jwk_set_clear(&set);
	ck_assert_uint_eq(set.n, 0);
}
END_TEST

START_TEST(every_type_reads_back)
{
	EVP_PKEY *want[] = {rsa2048, p256, ed25519};
	pw_jwk_type types[] = {PW_JWK_RSA, PW_JWK_P256, PW_JWK_ED25519};

	for (int i = 0; i < 3; i++) {
		char *text = set_text(jwk_of(want[i], "k1"), NULL);
		pw_jwk_set set;
		skips sk;
		char why[256], tp[PW_JWK_THUMBPRINT_LEN + 1];

		ck_assert_msg(parse(text, &set, &sk, why) == PW_OK, "%d: %s", i, why);
		ck_assert_uint_eq(set.n, 1);
		ck_assert_int_eq(sk.n, 0);
		ck_assert_int_eq(set.keys[0].type, types[i]);
		ck_assert_str_eq(set.keys[0].alg, "");
		ck_assert_int_eq(EVP_PKEY_eq(set.keys[0].pkey, want[i]), 1);
		ck_assert_int_eq(pw_jwk_thumbprint(want[i], tp, sizeof(tp)), PW_OK);
		ck_assert_str_eq(set.keys[0].thumbprint, tp);
		ck_assert_uint_eq(strlen(tp), PW_JWK_THUMBPRINT_LEN);
		pw_jwk_set_clear(&set);
		free(text);
	}
}
END_TEST

/* A modulus written with a leading zero byte is the same key: the same thumbprint. */
START_TEST(thumbprint_is_of_the_key_not_the_text)
{
	BIGNUM *bn = NULL;
	unsigned char buf[300];
	ck_assert_int_eq(EVP_PKEY_get_bn_param(rsa2048, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
	buf[0] = 0;
	int n = BN_bn2bin(bn, buf + 1);
	BN_free(bn);
	json_t *j = jwk_of(rsa2048, NULL);
	json_object_set_new(j, "n", b64_str(buf, (size_t)n + 1));
	char *text = set_text(j, NULL), why[256], tp[PW_JWK_THUMBPRINT_LEN + 1];
	pw_jwk_set set;
	skips sk;

	ck_assert_msg(parse(text, &set, &sk, why) == PW_OK, "%s", why);
	ck_assert_int_eq(pw_jwk_thumbprint(rsa2048, tp, sizeof(tp)), PW_OK);
	ck_assert_str_eq(set.keys[0].thumbprint, tp);
	ck_assert_int_eq(set.keys[0].has_kid, 0);
	pw_jwk_set_clear(&set);
	free(text);
}
END_TEST

/* One bad JWK beside a good one: the good one is kept, the bad one skipped with why. */
typedef struct bad_case {
	const char *name;
	const char *member, *value; /* set on a good JWK of base (value: JSON text; NULL removes) */
	int base;                   /* 0 RSA 2048, 1 P-256, 2 Ed25519, 3 RSA 1024 */
	const char *why;            /* a part of the reason */
} bad_case;

static const bad_case bad_cases[] = {
    {"oct key", "kty", "\"oct\"", 0, "not supported"},
    {"EC P-384", "crv", "\"P-384\"", 1, "not supported"},
    {"Ed448", "crv", "\"Ed448\"", 2, "not supported"},
    {"X25519 (OKP for key agreement)", "crv", "\"X25519\"", 2, "not supported"},
    {"no kty", "kty", NULL, 0, "not supported"},
    {"bad base64url n", "n", "\"AQAB+/==\"", 0, "base64url"},
    {"n not a string", "n", "12345", 0, "missing or not a string"},
    {"no e", "e", NULL, 0, "missing"},
    {"even exponent", "e", "\"Ag\"", 0, "exponent"},
    {"RSA of 1024 bits", NULL, NULL, 3, "shorter than 2048"},
    {"x too short", "x", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"", 1, "wrong length"},
    {"point off the curve", "y", "\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\"", 1,
     "not a point"},
    {"Ed25519 x too short", "x", "\"AAAA\"", 2, "wrong length"},
    {"use enc", "use", "\"enc\"", 0, "use is not sig"},
    {"use not a string", "use", "1", 0, "use is not sig"},
    {"alg of another type", "alg", "\"ES256\"", 0, "alg does not fit"},
    {"alg RSA-OAEP", "alg", "\"RSA-OAEP\"", 0, "alg does not fit"},
    {"HS256 alg on an RSA key", "alg", "\"HS256\"", 0, "alg does not fit"},
    {"alg none", "alg", "\"none\"", 2, "alg does not fit"},
    {"a private key", "d", "\"AQAB\"", 1, "private"},
    {"kid a number", "kid", "7", 0, "kid is not a string"},
};

static EVP_PKEY *base_key(int b)
{
	return b == 0 ? rsa2048 : b == 1 ? p256 : b == 2 ? ed25519 : rsa1024;
}

START_TEST(bad_keys_are_skipped)
{
	const bad_case *c = &bad_cases[_i];
	json_t *bad = jwk_of(base_key(c->base), "bad");
	if (c->member != NULL && c->value == NULL)
		json_object_del(bad, c->member);
	else if (c->member != NULL) {
		json_t *v = json_loads(c->value, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		ck_assert_ptr_nonnull(v);
		json_object_set_new(bad, c->member, v);
	}
	char *text = set_text(jwk_of(ed25519, "good"), bad), why[256];
	pw_jwk_set set;
	skips sk;

	ck_assert_msg(parse(text, &set, &sk, why) == PW_OK, "%s: %s", c->name, why);
	ck_assert_msg(set.n == 1 && strcmp(set.keys[0].kid, "good") == 0, "%s: %zu keys", c->name,
	              set.n);
	ck_assert_msg(sk.n == 1, "%s: %d skipped", c->name, sk.n);
	ck_assert_msg(strstr(sk.why[0], c->why) != NULL, "%s: skipped because '%s', want '%s'",
	              c->name, sk.why[0], c->why);
	/* Never quote key material in a reason. */
	ck_assert_msg(strlen(sk.why[0]) < 80, "%s: %s", c->name, sk.why[0]);
	pw_jwk_set_clear(&set);
	free(text);
}
END_TEST

START_TEST(duplicate_kids_are_all_skipped)
{
	json_t *keys = json_array();
	json_array_append_new(keys, jwk_of(rsa2048, "same"));
	json_array_append_new(keys, jwk_of(p256, "same"));
	json_array_append_new(keys, jwk_of(ed25519, "other"));
	json_t *enc = jwk_of(rsa2048, "other");
	json_object_set_new(enc, "use", json_string("enc")); /* not usable: no clash */
	json_array_append_new(keys, enc);
	json_t *doc = json_pack("{s:o}", "keys", keys);
	char *text = json_dumps(doc, JSON_COMPACT), why[256];
	json_decref(doc);
	pw_jwk_set set;
	skips sk;

	ck_assert_msg(parse(text, &set, &sk, why) == PW_OK, "%s", why);
	ck_assert_uint_eq(set.n, 1);
	ck_assert_str_eq(set.keys[0].kid, "other");
	ck_assert_int_eq(set.keys[0].type, PW_JWK_ED25519);
	ck_assert_int_eq(sk.n, 3);
	ck_assert_str_eq(sk.kid[1], "same");
	ck_assert_str_eq(sk.kid[2], "same");
	ck_assert_ptr_nonnull(strstr(sk.why[1], "same kid"));
	pw_jwk_set_clear(&set);
	free(text);
}
END_TEST

START_TEST(documents_refused)
{
	static const char *docs[] = {
	    "",
	    "not json",
	    "[]",
	    "{}",
	    "{\"keys\":{}}",
	    "{\"keys\":[]}",
	    "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}", /* nothing usable */
	    "{\"keys\":[1,\"a\",null]}",
	    "{\"keys\":[],\"keys\":[]}",                            /* a member twice */
	    "{\"keys\":[{\"kty\":\"OKP\",\"kid\":\"a\\u0000b\"}]}", /* a NUL in a string */
	};
	pw_jwk_set set = {0};
	skips sk;
	char why[256];

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		ck_assert_msg(parse(docs[i], &set, &sk, why) == PW_E_INVALID, "accepted %s",
		              docs[i]);
		ck_assert_msg(why[0] != '\0', "no reason for %s", docs[i]);
		ck_assert_ptr_null(set.keys);
	}
}
END_TEST

START_TEST(two_mebibytes_refused_unparsed)
{
	/* A valid set padded past the cap with whitespace: refused for its size alone. */
	char *good = set_text(jwk_of(ed25519, "k"), NULL);
	size_t n = 2 * 1024 * 1024;
	char *text = malloc(n + 1), why[256];
	ck_assert_ptr_nonnull(text);
	memset(text, ' ', n);
	memcpy(text, good, strlen(good));
	text[n] = '\0';
	pw_jwk_set set = {0};
	ck_assert_int_eq(pw_jwk_set_parse(text, n, &set, NULL, NULL, why, sizeof(why)),
	                 PW_E_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "larger"));
	/* The same set within the cap loads. */
	ck_assert_int_eq(
	    pw_jwk_set_parse(text, PW_JWK_SET_MAX_BYTES, &set, NULL, NULL, why, sizeof(why)),
	    PW_OK);
	pw_jwk_set_clear(&set);
	free(text);
	free(good);
}
END_TEST

START_TEST(too_many_keys_keeps_the_first)
{
	json_t *keys = json_array();
	for (int i = 0; i < PW_JWK_SET_MAX_KEYS + 3; i++) {
		char kid[16];
		snprintf(kid, sizeof(kid), "k%d", i);
		json_array_append_new(keys, jwk_of(ed25519, kid));
	}
	json_t *doc = json_pack("{s:o}", "keys", keys);
	char *text = json_dumps(doc, JSON_COMPACT), why[256];
	json_decref(doc);
	pw_jwk_set set;
	skips sk;

	ck_assert_int_eq(parse(text, &set, &sk, why), PW_OK);
	ck_assert_uint_eq(set.n, PW_JWK_SET_MAX_KEYS);
	ck_assert_int_eq(sk.n, 3);
	ck_assert_str_eq(sk.why[0], "too many keys");
	pw_jwk_set_clear(&set);
	free(text);
}
END_TEST

START_TEST(thumbprint_of_other_key_types_refused)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	char tp[PW_JWK_THUMBPRINT_LEN + 1];
	ck_assert_ptr_nonnull(k);
	/* P-384 has 48-byte coordinates: it must not pass for a P-256 thumbprint. */
	ck_assert_int_ne(pw_jwk_thumbprint(k, tp, sizeof(tp)), PW_OK);
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	ck_assert_ptr_nonnull(k);
	ck_assert_int_eq(pw_jwk_thumbprint(k, tp, sizeof(tp)), PW_E_INVALID);
	EVP_PKEY_free(k);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("jwk");
	TCase *tc = tcase_create("jwk");
	tcase_add_unchecked_fixture(tc, make_keys, free_keys);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, rfc7638_example_thumbprint);
	tcase_add_test(tc, every_type_reads_back);
	tcase_add_test(tc, thumbprint_is_of_the_key_not_the_text);
	tcase_add_loop_test(tc, bad_keys_are_skipped, 0, sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(tc, duplicate_kids_are_all_skipped);
	tcase_add_test(tc, documents_refused);
	tcase_add_test(tc, two_mebibytes_refused_unparsed);
	tcase_add_test(tc, too_many_keys_keeps_the_first);
	tcase_add_test(tc, thumbprint_of_other_key_types_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
