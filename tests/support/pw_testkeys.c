/* Keys and tokens for tests (see pw_testkeys.h). */
#include "pw_testkeys.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>

#include "pw_util.h"

static json_t *b64_str(const unsigned char *b, size_t n)
{
	char out[1400];
	ck_assert_int_eq(pw_util_b64url_encode(b, n, out, sizeof(out)), PW_OK);
	return json_string(out);
}

static json_t *bn_member(const EVP_PKEY *k, const char *name, int pad)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	ck_assert_int_eq(EVP_PKEY_get_bn_param(k, name, &bn), 1);
	int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
	BN_free(bn);
	ck_assert_int_gt(n, 0);
	return b64_str(buf, (size_t)n);
}

json_t *tkk_jwk(const EVP_PKEY *k, const char *kid, const char *alg)
{
	json_t *j = json_object();
	if (EVP_PKEY_is_a(k, "RSA")) {
		json_object_set_new(j, "kty", json_string("RSA"));
		json_object_set_new(j, "n", bn_member(k, OSSL_PKEY_PARAM_RSA_N, 0));
		json_object_set_new(j, "e", bn_member(k, OSSL_PKEY_PARAM_RSA_E, 0));
	} else if (EVP_PKEY_is_a(k, "EC")) {
		json_object_set_new(j, "kty", json_string("EC"));
		json_object_set_new(j, "crv", json_string("P-256"));
		json_object_set_new(j, "x", bn_member(k, OSSL_PKEY_PARAM_EC_PUB_X, 32));
		json_object_set_new(j, "y", bn_member(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32));
	} else {
		unsigned char raw[32];
		size_t n = sizeof(raw);
		ck_assert_int_eq(EVP_PKEY_get_raw_public_key(k, raw, &n), 1);
		json_object_set_new(j, "kty", json_string("OKP"));
		json_object_set_new(j, "crv", json_string("Ed25519"));
		json_object_set_new(j, "x", b64_str(raw, n));
	}
	if (kid)
		json_object_set_new(j, "kid", json_string(kid));
	if (alg)
		json_object_set_new(j, "alg", json_string(alg));
	return j;
}

static json_t *set_of(json_t *first, va_list ap)
{
	json_t *keys = json_array();
	for (json_t *k = first; k != NULL; k = va_arg(ap, json_t *))
		json_array_append_new(keys, k);
	return json_pack("{s:o}", "keys", keys);
}

char *tkk_set_text(json_t *first, ...)
{
	va_list ap;
	va_start(ap, first);
	json_t *doc = set_of(first, ap);
	va_end(ap);
	char *s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	ck_assert_ptr_nonnull(s);
	return s;
}

void tkk_write_set(const char *path, json_t *first, ...)
{
	va_list ap;
	va_start(ap, first);
	json_t *doc = set_of(first, ap);
	va_end(ap);
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	ck_assert_int_eq(json_dump_file(doc, tmp, JSON_COMPACT), 0);
	ck_assert_msg(rename(tmp, path) == 0, "cannot rename %s", tmp);
	json_decref(doc);
}

static char *b64_text(const char *s)
{
	size_t len = pw_util_b64url_encoded_len(strlen(s)) + 1;
	char *out = malloc(len);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(pw_util_b64url_encode(s, strlen(s), out, len), PW_OK);
	return out;
}

/* The signature of input by alg (see tkk_token) into sig; its length. */
static size_t sign(const char *alg, EVP_PKEY *key, const unsigned char *secret, size_t secret_len,
                   const char *input, unsigned char *sig, size_t sig_size)
{
	size_t n = sig_size;
	if (strcmp(alg, "HS256") == 0) {
		unsigned int len = 0;
		ck_assert_ptr_nonnull(HMAC(EVP_sha256(), secret, (int)secret_len,
		                           (const unsigned char *)input, strlen(input), sig, &len));
		return len;
	}
	if (key == NULL) {
		memcpy(sig, "sig", 3);
		return 3;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const EVP_MD *d = strcmp(alg, "EdDSA") == 0   ? NULL
	                  : strcmp(alg, "RS512") == 0 ? EVP_sha512()
	                                              : EVP_sha256();
	ck_assert_int_eq(EVP_DigestSignInit(md, NULL, d, NULL, key), 1);
	ck_assert_int_eq(EVP_DigestSign(md, sig, &n, (const unsigned char *)input, strlen(input)),
	                 1);
	EVP_MD_CTX_free(md);
	if (strcmp(alg, "ES256") == 0) { /* DER to R || S */
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
		ck_assert_ptr_nonnull(es);
		ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32), 32);
		ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32), 32);
		ECDSA_SIG_free(es);
		n = 64;
	}
	return n;
}

char *tkk_token(const char *alg, const char *kid, EVP_PKEY *key, const unsigned char *secret,
                size_t secret_len, const char *claims)
{
	json_t *h = json_pack("{s:s,s:s}", "alg", alg, "typ", "JWT");
	if (kid)
		json_object_set_new(h, "kid", json_string(kid));
	char *hs = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	char *h64 = b64_text(hs), *c64 = b64_text(claims);
	free(hs);
	char input[4096];
	ck_assert_int_lt(snprintf(input, sizeof(input), "%s.%s", h64, c64), (int)sizeof(input));
	free(h64);
	free(c64);
	unsigned char sig[1100];
	size_t n = sign(alg, key, secret, secret_len, input, sig, sizeof(sig));
	char s64[1500];
	ck_assert_int_eq(pw_util_b64url_encode(sig, n, s64, sizeof(s64)), PW_OK);
	char *tok = malloc(strlen(input) + strlen(s64) + 2);
	ck_assert_ptr_nonnull(tok);
	sprintf(tok, "%s.%s", input, s64);
	return tok;
}
