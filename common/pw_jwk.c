/* JWK Set parsing with jansson and OpenSSL 3: each usable key becomes an EVP_PKEY built
 * from its parameters (never from PEM text), and its thumbprint is computed from the key
 * itself, so a key written with a redundant leading zero has the same thumbprint. */
#include "pw_jwk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "pw_util.h"

/* An RSA modulus of 16384 bits: larger keys are refused (they only cost CPU). */
#define RSA_MAX_BYTES 2048
#define P256_COORD    32
#define ED25519_LEN   32

const char *pw_jwk_type_alg(pw_jwk_type t)
{
	switch (t) {
	case PW_JWK_RSA:
		return "RS256";
	case PW_JWK_P256:
		return "ES256";
	case PW_JWK_ED25519:
		return "EdDSA";
	}
	return "?";
}

pw_config_jwt_alg pw_jwk_alg(pw_jwk_type t)
{
	switch (t) {
	case PW_JWK_RSA:
		return PW_ALG_RS256;
	case PW_JWK_P256:
		return PW_ALG_ES256;
	case PW_JWK_ED25519:
		return PW_ALG_EDDSA;
	}
	return PW_ALG_RS256;
}

/* ---- thumbprints (RFC 7638) -------------------------------------------------------------- */

static pw_status b64(const unsigned char *in, size_t n, char **out)
{
	size_t len = pw_util_b64url_encoded_len(n) + 1;

	*out = malloc(len);
	if (*out == NULL)
		return PW_E_NOMEM;
	return pw_util_b64url_encode(in, n, *out, len);
}

/* A BIGNUM parameter as base64url: minimal big-endian, or padded to pad bytes (pad > 0). */
static pw_status bn_param_b64(const EVP_PKEY *pkey, const char *name, int pad, char **out)
{
	BIGNUM *bn = NULL;
	unsigned char buf[RSA_MAX_BYTES];
	int n;
	pw_status st = PW_E_INVALID;

	*out = NULL;
	if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
		goto out;
	n = pad > 0 ? BN_bn2binpad(bn, buf, pad)
	            : (BN_num_bytes(bn) <= (int)sizeof(buf) ? BN_bn2bin(bn, buf) : -1);
	if (n <= 0)
		goto out;
	st = b64(buf, (size_t)n, out);
out:
	BN_free(bn);
	return st;
}

pw_status pw_jwk_canonical(const EVP_PKEY *pkey, char *canon, size_t size)
{
	char *a = NULL, *b = NULL;
	unsigned char raw[ED25519_LEN];
	size_t raw_len = sizeof(raw);
	int n = -1;
	pw_status st = PW_E_INVALID;

	/* Members in lexicographic order, no whitespace: the RFC's canonical form. */
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		if ((st = bn_param_b64(pkey, OSSL_PKEY_PARAM_RSA_E, 0, &a)) != PW_OK ||
		    (st = bn_param_b64(pkey, OSSL_PKEY_PARAM_RSA_N, 0, &b)) != PW_OK)
			goto out;
		n = snprintf(canon, size, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", a, b);
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		if ((st = bn_param_b64(pkey, OSSL_PKEY_PARAM_EC_PUB_X, P256_COORD, &a)) != PW_OK ||
		    (st = bn_param_b64(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, P256_COORD, &b)) != PW_OK)
			goto out;
		n = snprintf(canon, size,
		             "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", a, b);
	} else if (EVP_PKEY_is_a(pkey, "ED25519")) {
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &raw_len) != 1 ||
		    raw_len != ED25519_LEN || (st = b64(raw, raw_len, &a)) != PW_OK) {
			st = st == PW_OK ? PW_E_INVALID : st;
			goto out;
		}
		n = snprintf(canon, size, "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", a);
	} else {
		st = PW_E_INVALID;
		goto out;
	}
	st = n >= 0 && (size_t)n < size ? PW_OK : PW_E_INVALID;
out:
	free(a);
	free(b);
	ERR_clear_error();
	return st;
}

pw_status pw_jwk_thumbprint(const EVP_PKEY *pkey, char *out, size_t out_size)
{
	char canon[PW_JWK_CANONICAL_MAX];
	unsigned char digest[32];
	unsigned int dlen = 0;
	pw_status st = pw_jwk_canonical(pkey, canon, sizeof(canon));

	if (st != PW_OK)
		return st;
	if (EVP_Digest(canon, strlen(canon), digest, &dlen, EVP_sha256(), NULL) != 1 ||
	    dlen != 32) {
		ERR_clear_error();
		return PW_E_INVALID;
	}
	return pw_util_b64url_encode(digest, dlen, out, out_size);
}

/* ---- one JWK into an OpenSSL key ---------------------------------------------------------- */

/* A base64url member of exactly want bytes (want 0: 1..max bytes) into buf. */
static const char *member_bytes(const json_t *jwk, const char *name, unsigned char *buf,
                                size_t want, size_t max, size_t *len)
{
	const json_t *m = json_object_get(jwk, name);
	const char *s = json_string_value(m);

	if (s == NULL)
		return "a required member is missing or not a string";
	if (pw_util_b64url_decode(s, json_string_length(m), buf, max + 1, len) != PW_OK ||
	    *len == 0 || *len > max)
		return "a member is not base64url of the right size";
	if (want > 0 && *len != want)
		return "a coordinate has the wrong length";
	return NULL;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;

	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	OSSL_PARAM_free(params);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static const char *rsa_key(const json_t *jwk, EVP_PKEY **out)
{
	unsigned char n[RSA_MAX_BYTES + 1], e[16];
	size_t nlen, elen;
	BIGNUM *bn = NULL, *be = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	const char *why;

	if ((why = member_bytes(jwk, "n", n, 0, RSA_MAX_BYTES, &nlen)) != NULL ||
	    (why = member_bytes(jwk, "e", e, 0, 8, &elen)) != NULL)
		return why;
	why = "out of memory";
	bn = BN_bin2bn(n, (int)nlen, NULL);
	be = BN_bin2bn(e, (int)elen, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (bn == NULL || be == NULL || bld == NULL)
		goto out;
	why = "RSA key shorter than 2048 bits";
	if (BN_num_bits(bn) < PW_JWK_RSA_MIN_BITS)
		goto out;
	why = "RSA exponent is not odd and above 1";
	if (!BN_is_odd(be) || BN_is_one(be))
		goto out;
	why = "not an RSA public key";
	if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1 ||
	    (*out = from_params("RSA", bld)) == NULL)
		goto out;
	why = NULL;
out:
	BN_free(bn);
	BN_free(be);
	OSSL_PARAM_BLD_free(bld);
	return why;
}

static const char *p256_key(const json_t *jwk, EVP_PKEY **out)
{
	unsigned char pt[1 + 2 * P256_COORD + 1];
	size_t len;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY_CTX *check = NULL;
	const char *why;

	/* The uncompressed point 04 || x || y, which OpenSSL checks lies on the curve. */
	pt[0] = 0x04;
	if ((why = member_bytes(jwk, "x", pt + 1, P256_COORD, P256_COORD, &len)) != NULL ||
	    (why = member_bytes(jwk, "y", pt + 1 + P256_COORD, P256_COORD, P256_COORD, &len)) !=
	        NULL)
		return why;
	why = "out of memory";
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto out;
	why = "not a point of P-256";
	if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
	        1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt,
	                                     1 + 2 * P256_COORD) != 1 ||
	    (*out = from_params("EC", bld)) == NULL)
		goto out;
	check = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL);
	if (check == NULL || EVP_PKEY_public_check(check) != 1) {
		EVP_PKEY_free(*out);
		*out = NULL;
		goto out;
	}
	why = NULL;
out:
	EVP_PKEY_CTX_free(check);
	OSSL_PARAM_BLD_free(bld);
	return why;
}

static const char *ed25519_key(const json_t *jwk, EVP_PKEY **out)
{
	unsigned char x[ED25519_LEN + 1];
	size_t len;
	const char *why = member_bytes(jwk, "x", x, ED25519_LEN, ED25519_LEN, &len);

	if (why != NULL)
		return why;
	*out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, ED25519_LEN);
	return *out == NULL ? "not an Ed25519 public key" : NULL;
}

static bool str_is(const json_t *j, const char *s)
{
	return json_is_string(j) && strcmp(json_string_value(j), s) == 0;
}

/* One JWK into k: NULL, or why it is not usable. */
static const char *one_key(const json_t *jwk, pw_jwk *k)
{
	const json_t *kty = json_object_get(jwk, "kty"), *crv = json_object_get(jwk, "crv");
	const json_t *kid = json_object_get(jwk, "kid"), *alg = json_object_get(jwk, "alg");
	const json_t *use = json_object_get(jwk, "use");
	const char *why;

	memset(k, 0, sizeof(*k));
	if (!json_is_object(jwk))
		return "not a JSON object";
	if (kid != NULL) {
		if (!json_is_string(kid) || json_string_length(kid) > PW_JWK_KID_MAX ||
		    strlen(json_string_value(kid)) != json_string_length(kid))
			return "kid is not a string of at most 256 bytes";
		k->has_kid = true;
		snprintf(k->kid, sizeof(k->kid), "%s", json_string_value(kid));
	}
	if (use != NULL && !str_is(use, "sig"))
		return "use is not sig";
	if (json_object_get(jwk, "d") != NULL)
		return "it holds a private key";
	if (str_is(kty, "RSA"))
		k->type = PW_JWK_RSA;
	else if (str_is(kty, "EC") && str_is(crv, "P-256"))
		k->type = PW_JWK_P256;
	else if (str_is(kty, "OKP") && str_is(crv, "Ed25519"))
		k->type = PW_JWK_ED25519;
	else
		return "key type or curve not supported (RSA, EC P-256, OKP Ed25519)";
	if (alg != NULL) {
		if (!str_is(alg, pw_jwk_type_alg(k->type)))
			return "alg does not fit the key type";
		snprintf(k->alg, sizeof(k->alg), "%s", json_string_value(alg));
	}
	why = k->type == PW_JWK_RSA    ? rsa_key(jwk, &k->pkey)
	      : k->type == PW_JWK_P256 ? p256_key(jwk, &k->pkey)
	                               : ed25519_key(jwk, &k->pkey);
	if (why == NULL &&
	    pw_jwk_thumbprint(k->pkey, k->thumbprint, sizeof(k->thumbprint)) != PW_OK)
		why = "no thumbprint";
	if (why != NULL) {
		EVP_PKEY_free(k->pkey);
		k->pkey = NULL;
		ERR_clear_error();
	}
	return why;
}

const char *pw_jwk_from_json(const json_t *jwk, pw_jwk *out)
{
	return one_key(jwk, out);
}

/* ---- the set ------------------------------------------------------------------------------ */

void pw_jwk_set_clear(pw_jwk_set *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		EVP_PKEY_free(s->keys[i].pkey);
	free(s->keys);
	s->keys = NULL;
	s->n = 0;
}

pw_jwk *pw_jwk_set_find(const pw_jwk_set *s, const char *thumbprint)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->keys[i].thumbprint, thumbprint) == 0)
			return &s->keys[i];
	return NULL;
}

pw_status pw_jwk_set_copy(const pw_jwk_set *s, pw_jwk_set *out)
{
	*out = (pw_jwk_set){0};
	if (s->n == 0)
		return PW_OK;
	out->keys = calloc(s->n, sizeof(*out->keys));
	if (out->keys == NULL)
		return PW_E_NOMEM;
	for (size_t i = 0; i < s->n; i++) {
		if (EVP_PKEY_up_ref(s->keys[i].pkey) != 1) {
			pw_jwk_set_clear(out);
			return PW_E_NOMEM;
		}
		out->keys[out->n++] = s->keys[i];
	}
	return PW_OK;
}

static void skipped(pw_jwk_skip_fn skip, void *ctx, const char *kid, const char *why)
{
	if (skip != NULL)
		skip(ctx, kid, why);
}

/* Drops every key whose kid another kept key has. */
static void drop_duplicate_kids(pw_jwk_set *s, pw_jwk_skip_fn skip, void *ctx)
{
	bool *dup = calloc(s->n ? s->n : 1, sizeof(*dup));
	size_t kept = 0;

	for (size_t i = 0; i < s->n; i++)
		for (size_t j = i + 1; j < s->n; j++)
			if (s->keys[i].has_kid && s->keys[j].has_kid &&
			    strcmp(s->keys[i].kid, s->keys[j].kid) == 0) {
				if (dup != NULL)
					dup[i] = dup[j] = true;
			}
	for (size_t i = 0; i < s->n; i++) {
		if (dup == NULL || !dup[i]) {
			s->keys[kept++] = s->keys[i];
			continue;
		}
		skipped(skip, ctx, s->keys[i].kid, "another key has the same kid");
		EVP_PKEY_free(s->keys[i].pkey);
	}
	/* Without memory to tell duplicates apart, keep none: a wrong key must not verify. */
	if (dup == NULL) {
		for (size_t i = 0; i < s->n; i++)
			EVP_PKEY_free(s->keys[i].pkey);
		kept = 0;
	}
	s->n = kept;
	free(dup);
}

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(why, why_size, __VA_ARGS__);                                              \
		goto out;                                                                          \
	} while (0)

pw_status pw_jwk_set_parse(const char *text, size_t len, pw_jwk_set *out, pw_jwk_skip_fn skip,
                           void *ctx, char *why, size_t why_size)
{
	json_t *doc = NULL, *keys;
	json_error_t jerr;
	pw_jwk_set s = {0};
	pw_status st = PW_E_INVALID;

	if (len > PW_JWK_SET_MAX_BYTES)
		FAIL("the key set is larger than %d bytes", PW_JWK_SET_MAX_BYTES);
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL)
		FAIL("the key set is not JSON (line %d: %s)", jerr.line, jerr.text);
	keys = json_object_get(doc, "keys");
	if (!json_is_array(keys))
		FAIL("the key set has no \"keys\" array");
	s.keys = calloc(PW_JWK_SET_MAX_KEYS, sizeof(*s.keys));
	if (s.keys == NULL) {
		st = PW_E_NOMEM;
		FAIL("out of memory");
	}
	for (size_t i = 0; i < json_array_size(keys); i++) {
		pw_jwk k;
		const char *bad = one_key(json_array_get(keys, i), &k);

		if (bad == NULL && s.n == PW_JWK_SET_MAX_KEYS) {
			EVP_PKEY_free(k.pkey);
			bad = "too many keys";
		}
		if (bad != NULL)
			skipped(skip, ctx, k.kid, bad);
		else
			s.keys[s.n++] = k;
	}
	drop_duplicate_kids(&s, skip, ctx);
	if (s.n == 0)
		FAIL("the key set has no usable signature key");
	*out = s;
	s.keys = NULL;
	s.n = 0;
	st = PW_OK;
out:
	pw_jwk_set_clear(&s);
	json_decref(doc);
	return st;
}
