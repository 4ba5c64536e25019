/* JWT verification. The signature is checked here with OpenSSL 3, by the algorithm the
 * configuration names and never by the one the token names: HMAC-SHA256 with the shared
 * secret, or RS256/ES256 against a public key parsed once when the verifier is made (libjwt
 * 1.10 would parse the PEM again for every token). The header pre-check and every claim rule
 * of the contract live here too; the verified tokens are remembered in a pw_jwt_lru. */
#include "pw_jwt.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "pw_jwk.h"
#include "pw_jwt_lru.h"
#include "pw_keyring.h"
#include "pw_util.h"

/* A header larger than this is not a header we issue; it is refused before decoding. */
#define HEADER_MAX 2048
/* The largest signature decoded: an RSA key of 8192 bits. */
#define SIG_MAX    1024
#define SHA256_LEN 32
_Static_assert(PW_JWT_LRU_KEY_LEN == SHA256_LEN, "the cache is keyed by SHA-256");
/* ES256 (RFC 7518 3.4): R and S, 32 bytes each, big-endian, concatenated. */
#define ES256_SIG_LEN 64
/* EdDSA with Ed25519 (RFC 8037): 64 bytes. */
#define ED25519_SIG_LEN 64

struct pw_jwt_verifier {
	const pw_config *cfg;
	unsigned algs;              /**< PW_ALG_BIT of the algorithms a token may name */
	EVP_MD *sha256;             /**< fetched once: no method-store lookups per token */
	EVP_MD_CTX *md_ctx;         /**< RS256/ES256 signature checks, reused */
	EVP_MD_CTX *key_ctx;        /**< the cache key, reused (a verify context would not do) */
	EVP_PKEY *pkey;             /**< JWT_PUBLIC_KEY_FILE: the public key, parsed once */
	pw_jwk_set keys;            /**< JWT_JWKS_FILE: the set (the ring's, when there is one) */
	pw_keyring *ring;           /**< NULL: the set parsed at creation, for good */
	uint64_t ring_gen;          /**< the ring's generation keys were copied at */
	EVP_MAC_CTX *hmac;          /**< HS256: keyed once, duplicated for each token */
	pw_jwt_lru *cache;          /**< NULL: JWT_CACHE_SIZE=0, no cache */
	unsigned long hits, misses; /**< see pw_jwt_cache_stats */
};

/* ---- the verifier ----------------------------------------------------------------------- */

/* The PEM is parsed here, once, and must be a public key of the algorithm's type. */
static pw_status load_public_key(pw_jwt_verifier *v)
{
	const pw_config *cfg = v->cfg;
	BIO *bio;
	char group[64];
	size_t group_len = 0;

	if (cfg->jwt_key_len > INT_MAX)
		return PW_E_CONFIG;
	bio = BIO_new_mem_buf(cfg->jwt_key, (int)cfg->jwt_key_len);
	if (bio == NULL)
		return PW_E_NOMEM;
	v->pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (v->pkey == NULL)
		return PW_E_CONFIG;
	if (cfg->jwt_alg == PW_ALG_RS256)
		return EVP_PKEY_is_a(v->pkey, "RSA") ? PW_OK : PW_E_CONFIG;
	if (cfg->jwt_alg == PW_ALG_EDDSA)
		return EVP_PKEY_is_a(v->pkey, "ED25519") ? PW_OK : PW_E_CONFIG;
	/* ES256: an EC key on the named curve P-256 (prime256v1), nothing else. */
	if (!EVP_PKEY_is_a(v->pkey, "EC") ||
	    EVP_PKEY_get_utf8_string_param(v->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
	                                   sizeof(group), &group_len) != 1 ||
	    (strcmp(group, SN_X9_62_prime256v1) != 0 && strcmp(group, "P-256") != 0))
		return PW_E_CONFIG;
	return PW_OK;
}

static pw_status load_secret(pw_jwt_verifier *v)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};

	if (mac == NULL)
		return PW_E_INTERNAL;
	v->hmac = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac); /* the context keeps its own reference */
	if (v->hmac == NULL)
		return PW_E_NOMEM;
	if (EVP_MAC_init(v->hmac, v->cfg->jwt_key, v->cfg->jwt_key_len, params) != 1)
		return PW_E_CONFIG;
	return PW_OK;
}

/* The name a token's header must give: the configured algorithm's; NULL for none we know. */
static const char *alg_name(pw_config_jwt_alg alg)
{
	switch (alg) {
	case PW_ALG_HS256:
		return "HS256";
	case PW_ALG_RS256:
		return "RS256";
	case PW_ALG_ES256:
		return "ES256";
	case PW_ALG_EDDSA:
		return "EdDSA";
	}
	return NULL;
}

static pw_status load_key_set(pw_jwt_verifier *v)
{
	char why[256];
	pw_status st = pw_jwk_set_parse((const char *)v->cfg->jwt_key, v->cfg->jwt_key_len,
	                                &v->keys, NULL, NULL, why, sizeof(why));

	return st == PW_E_INVALID ? PW_E_CONFIG : st;
}

pw_status pw_jwt_verifier_create(const pw_config *cfg, pw_jwt_verifier **out)
{
	pw_jwt_verifier *v = NULL;
	pw_status st = PW_E_NOMEM;

	*out = NULL;
	/* An empty key verifies nothing worth verifying (and libjwt 1.10, which signs the
	 * tests' tokens, accepts any token when handed one): refuse to build such a verifier. */
	bool fetched = cfg->jwt_source == PW_KEYS_JWKS_URL || cfg->jwt_source == PW_KEYS_OIDC;
	if ((!fetched && (cfg->jwt_key == NULL || cfg->jwt_key_len == 0)) ||
	    cfg->jwt_cache_size < 0 || alg_name(cfg->jwt_alg) == NULL)
		return PW_E_CONFIG;
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return PW_E_NOMEM;
	v->cfg = cfg;
	/* A static key is pinned to the one algorithm; a set allows those listed. */
	v->algs = cfg->jwt_source >= PW_KEYS_JWKS_FILE ? cfg->jwt_algs : PW_ALG_BIT(cfg->jwt_alg);
	v->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	v->md_ctx = EVP_MD_CTX_new();
	v->key_ctx = EVP_MD_CTX_new();
	if (v->sha256 == NULL || v->md_ctx == NULL || v->key_ctx == NULL)
		goto out;
	if (cfg->jwt_cache_size > 0) {
		st = pw_jwt_lru_create((size_t)cfg->jwt_cache_size, &v->cache);
		if (st != PW_OK)
			goto out;
	}
	/* pw_config_load made the source and the algorithm agree; a static key is known by
	 * its algorithm alone. */
	/* A fetched set has no keys until pw_jwt_verifier_use_keyring gives it the ring's. */
	if (fetched)
		st = PW_OK;
	else if (cfg->jwt_source == PW_KEYS_JWKS_FILE)
		st = load_key_set(v);
	else
		st = cfg->jwt_alg == PW_ALG_HS256 ? load_secret(v) : load_public_key(v);
	if (st != PW_OK)
		goto out;
	*out = v;
	v = NULL; /* the caller's now */
out:
	/* OpenSSL may have queued errors on the way (a PEM that does not parse): the queue is
	 * shared with libpq and librdkafka in this thread. */
	if (st != PW_OK)
		ERR_clear_error();
	pw_jwt_verifier_destroy(v);
	return st;
}

void pw_jwt_verifier_destroy(pw_jwt_verifier *v)
{
	if (v == NULL)
		return;
	pw_jwt_lru_destroy(v->cache);
	EVP_MAC_CTX_free(v->hmac);
	EVP_PKEY_free(v->pkey);
	pw_jwk_set_clear(&v->keys);
	EVP_MD_CTX_free(v->md_ctx);
	EVP_MD_CTX_free(v->key_ctx);
	EVP_MD_free(v->sha256);
	free(v);
}

/* The algorithm a header names, if it is one we know at all. */
static bool alg_known(const char *name, pw_config_jwt_alg *alg)
{
	for (int a = PW_ALG_HS256; a <= PW_ALG_EDDSA; a++)
		if (strcmp(name, alg_name((pw_config_jwt_alg)a)) == 0) {
			*alg = (pw_config_jwt_alg)a;
			return true;
		}
	return false;
}

/* A key of the set may verify alg: its type fits, and so does its own alg when it has one
 * (the contract: anything else is refused, so an RSA key never verifies an ES256 token,
 * nor any key an HS256 one). */
static bool key_fits(const pw_jwk *k, pw_config_jwt_alg alg)
{
	return pw_jwk_alg(k->type) == alg &&
	       (k->alg[0] == '\0' || strcmp(k->alg, alg_name(alg)) == 0);
}

/* Writes the reason and leaves through the function's `out` label. */
#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(why, why_size, __VA_ARGS__);                                              \
		goto out;                                                                          \
	} while (0)

/* What the header says that the signature check needs. */
typedef struct header {
	pw_config_jwt_alg alg;
	bool has_kid;
	char kid[PW_JWK_KID_MAX + 1];
} header;

/* Checks before any signature work: three segments of the base64url alphabet, and a
 * header that is a JSON object naming one of the configured algorithms, no `crit`, and a
 * `kid` that is a string if there is one. Fills *hd. */
static bool precheck(const pw_jwt_verifier *v, const char *token, header *hd, char *why,
                     size_t why_size)
{
	const char *dot1 = strchr(token, '.');
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	unsigned char header[HEADER_MAX + 1];
	json_t *h = NULL;
	json_error_t jerr;
	bool ok = false;

	if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
		FAIL("token is not a compact JWS (three segments)");
	if (dot1 == token || dot2 == dot1 + 1 || dot2[1] == '\0')
		FAIL("token has an empty segment");
	if (!pw_util_b64url_alphabet(token, (size_t)(dot1 - token)) ||
	    !pw_util_b64url_alphabet(dot1 + 1, (size_t)(dot2 - dot1 - 1)) ||
	    !pw_util_b64url_alphabet(dot2 + 1, strlen(dot2 + 1)))
		FAIL("token is not base64url");
	size_t n;
	if (pw_util_b64url_decode(token, (size_t)(dot1 - token), header, sizeof(header), &n) !=
	    PW_OK)
		FAIL("token header is not valid");
	h = json_loadb((const char *)header, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(h))
		FAIL("token header is not a JSON object");
	json_t *alg = json_object_get(h, "alg"), *kid = json_object_get(h, "kid");
	if (!json_is_string(alg) || !alg_known(json_string_value(alg), &hd->alg) ||
	    !(v->algs & PW_ALG_BIT(hd->alg)))
		FAIL("token algorithm is not the one configured");
	hd->has_kid = kid != NULL;
	if (kid != NULL && (!json_is_string(kid) || json_string_length(kid) > PW_JWK_KID_MAX ||
	                    strlen(json_string_value(kid)) != json_string_length(kid)))
		FAIL("token kid is not a string of at most %d bytes", PW_JWK_KID_MAX);
	if (kid != NULL)
		snprintf(hd->kid, sizeof(hd->kid), "%s", json_string_value(kid));
	/* RFC 7515 4.1.11: extensions named in crit must be understood; we know none. */
	if (json_object_get(h, "crit") != NULL)
		FAIL("token header has critical extensions");
	ok = true;
out:
	json_decref(h);
	return ok;
}

/* ---- signatures ------------------------------------------------------------------------- */

/* HS256: HMAC-SHA256 of the signing input, compared in constant time. The keyed context is
 * duplicated, never changed. */
static bool hs256_ok(const pw_jwt_verifier *v, const char *input, size_t input_len,
                     const unsigned char *sig, size_t sig_len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t mac_len = 0;
	EVP_MAC_CTX *ctx;
	bool ok;

	if (sig_len != SHA256_LEN)
		return false;
	ctx = EVP_MAC_CTX_dup(v->hmac);
	ok = ctx != NULL && EVP_MAC_update(ctx, (const unsigned char *)input, input_len) == 1 &&
	     EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) == 1 && mac_len == SHA256_LEN &&
	     CRYPTO_memcmp(mac, sig, SHA256_LEN) == 0;
	EVP_MAC_CTX_free(ctx);
	return ok;
}

/* SHA-256 and the public key: RSASSA-PKCS1-v1_5 for RSA, ECDSA (DER signature) for EC.
 * Reuses the verifier's digest context. */
static bool digest_verify(pw_jwt_verifier *v, EVP_PKEY *pkey, const char *input, size_t input_len,
                          const unsigned char *sig, size_t sig_len)
{
	EVP_PKEY_CTX *pctx = NULL;

	if (EVP_MD_CTX_reset(v->md_ctx) != 1 ||
	    EVP_DigestVerifyInit(v->md_ctx, &pctx, v->sha256, NULL, pkey) != 1)
		return false;
	if (EVP_PKEY_is_a(pkey, "RSA") &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
		return false;
	return EVP_DigestVerify(v->md_ctx, sig, sig_len, (const unsigned char *)input, input_len) ==
	       1;
}

/* ES256: the JWS signature is R || S; OpenSSL verifies a DER ECDSA-Sig-Value. Any other
 * length (a DER signature handed in as is, among others) is refused. */
static bool es256_ok(pw_jwt_verifier *v, EVP_PKEY *pkey, const char *input, size_t input_len,
                     const unsigned char *sig, size_t sig_len)
{
	unsigned char der[80]; /* SEQUENCE of two INTEGERs of at most 33 bytes: 72 */
	unsigned char *p = der;
	ECDSA_SIG *es;
	BIGNUM *r, *s;
	int n;
	bool ok = false;

	if (sig_len != ES256_SIG_LEN)
		return false;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(sig, ES256_SIG_LEN / 2, NULL);
	s = BN_bin2bn(sig + ES256_SIG_LEN / 2, ES256_SIG_LEN / 2, NULL);
	if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return false;
	}
	n = i2d_ECDSA_SIG(es, NULL); /* r and s now belong to es */
	if (n > 0 && (size_t)n <= sizeof(der) && i2d_ECDSA_SIG(es, &p) == n)
		ok = digest_verify(v, pkey, input, input_len, der, (size_t)n);
	ECDSA_SIG_free(es);
	return ok;
}

/* EdDSA (RFC 8037): Ed25519 hashes the message itself, so no digest is named. */
static bool eddsa_ok(pw_jwt_verifier *v, EVP_PKEY *pkey, const char *input, size_t input_len,
                     const unsigned char *sig, size_t sig_len)
{
	return sig_len == ED25519_SIG_LEN && EVP_MD_CTX_reset(v->md_ctx) == 1 &&
	       EVP_DigestVerifyInit(v->md_ctx, NULL, NULL, NULL, pkey) == 1 &&
	       EVP_DigestVerify(v->md_ctx, sig, sig_len, (const unsigned char *)input, input_len) ==
	           1;
}

/* input is the signing input, base64url(header) "." base64url(payload), exactly as in the
 * token; sig_b64 the third segment. alg is one the configuration allows and pkey a key that
 * fits it (pick_key), so the token cannot choose how it is checked. */
static bool signature_ok(pw_jwt_verifier *v, pw_config_jwt_alg alg, EVP_PKEY *pkey,
                         const char *input, size_t input_len, const char *sig_b64,
                         size_t sig_b64_len)
{
	unsigned char sig[SIG_MAX + 1];
	size_t n;
	bool ok = false;

	if (pw_util_b64url_decode(sig_b64, sig_b64_len, sig, sizeof(sig), &n) != PW_OK || n == 0)
		return false;
	switch (alg) {
	case PW_ALG_HS256:
		ok = hs256_ok(v, input, input_len, sig, n);
		break;
	case PW_ALG_RS256:
		ok = digest_verify(v, pkey, input, input_len, sig, n);
		break;
	case PW_ALG_ES256:
		ok = es256_ok(v, pkey, input, input_len, sig, n);
		break;
	case PW_ALG_EDDSA:
		ok = eddsa_ok(v, pkey, input, input_len, sig, n);
		break;
	}
	/* A refused signature leaves errors in this thread's OpenSSL queue, which libpq and
	 * librdkafka share: leave it empty. */
	if (!ok)
		ERR_clear_error();
	return ok;
}

/* The cache key: SHA-256 of the whole token, with the verifier's key context. */
static bool token_digest(pw_jwt_verifier *v, const char *token, size_t len,
                         unsigned char out[PW_JWT_LRU_KEY_LEN])
{
	unsigned int n = 0;
	bool ok = EVP_DigestInit_ex2(v->key_ctx, v->sha256, NULL) == 1 &&
	          EVP_DigestUpdate(v->key_ctx, token, len) == 1 &&
	          EVP_DigestFinal_ex(v->key_ctx, out, &n) == 1 && n == SHA256_LEN;

	if (!ok)
		ERR_clear_error();
	return ok;
}

/* ---- claims ----------------------------------------------------------------------------- */

/* The payload segment decoded and parsed with duplicate names refused: a JSON object the
 * caller must json_decref, or NULL with the reason in why. */
static json_t *claims_object(const char *b64, size_t b64_len, char *why, size_t why_size)
{
	size_t payload_size = b64_len / 4 * 3 + 4;
	unsigned char *payload = malloc(payload_size);
	json_t *c = NULL;
	json_error_t jerr;
	size_t n;

	if (payload == NULL ||
	    pw_util_b64url_decode(b64, b64_len, payload, payload_size, &n) != PW_OK)
		FAIL("token claims are not readable");
	c = json_loadb((const char *)payload, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(c)) {
		json_decref(c);
		c = NULL;
		FAIL("token claims are not a JSON object");
	}
out:
	free(payload);
	return c;
}

/* exp, nbf, iat are NumericDate: a JSON number (RFC 7519 2). False when the claim is there
 * and is not one; *present says whether it is there. */
static bool numeric_date(const json_t *claims, const char *name, int64_t *out, bool *present)
{
	const json_t *v = json_object_get(claims, name);
	*present = v != NULL;
	if (v == NULL)
		return true;
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return true;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d != d || d > 9.2e18 || d < -9.2e18)
			return false;
		*out = (int64_t)d;
		return true;
	}
	return false;
}

/* The time rules, one claim at a time, so that a token judged from the cache gets the very
 * reasons of a token judged from its claims. Written so that a huge claim cannot overflow:
 * now_s is a real time. */
typedef enum { TIME_EXP, TIME_NBF, TIME_IAT } time_claim;

static bool time_ok(const pw_config *cfg, const pw_jwt_lru_times *t, time_claim which,
                    int64_t now_s, char *why, size_t why_size)
{
	int64_t leeway = cfg->jwt_leeway_s;

	switch (which) {
	case TIME_EXP:
		if (t->exp < now_s - leeway)
			FAIL("token expired");
		break;
	case TIME_NBF:
		if (t->has_nbf && t->nbf > now_s + leeway)
			FAIL("token not yet valid");
		break;
	case TIME_IAT:
		if (t->has_iat && t->iat > now_s + leeway)
			FAIL("token issued in the future");
		break;
	}
	return true;
out:
	return false;
}

/* A remembered token: its times judged again, at this call's now_s. */
static bool times_ok(const pw_config *cfg, const pw_jwt_lru_times *t, int64_t now_s, char *why,
                     size_t why_size)
{
	return time_ok(cfg, t, TIME_EXP, now_s, why, why_size) &&
	       time_ok(cfg, t, TIME_NBF, now_s, why, why_size) &&
	       time_ok(cfg, t, TIME_IAT, now_s, why, why_size);
}

/* A token's own times, read into *t and judged claim by claim: each is read, then judged,
 * before the next is read, so a token both expired and with a malformed nbf is "expired". */
static bool claimed_times_ok(const pw_config *cfg, const json_t *c, int64_t now_s,
                             pw_jwt_lru_times *t, char *why, size_t why_size)
{
	bool present;

	if (!numeric_date(c, "exp", &t->exp, &present) || !present)
		FAIL("token has no valid exp");
	if (!time_ok(cfg, t, TIME_EXP, now_s, why, why_size))
		return false;
	if (!numeric_date(c, "nbf", &t->nbf, &t->has_nbf))
		FAIL("token nbf is not a number");
	if (!time_ok(cfg, t, TIME_NBF, now_s, why, why_size))
		return false;
	if (!numeric_date(c, "iat", &t->iat, &t->has_iat))
		FAIL("token iat is not a number");
	return time_ok(cfg, t, TIME_IAT, now_s, why, why_size);
out:
	return false;
}

static bool audience_matches(const json_t *aud, const char *want)
{
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	if (json_is_array(aud)) {
		size_t i;
		json_t *a;
		json_array_foreach(aud, i, a)
		{
			if (json_is_string(a) && strcmp(json_string_value(a), want) == 0)
				return true;
		}
	}
	return false;
}

/* iss and aud, each only when the configuration names one. */
static bool issuer_audience_ok(const pw_config *cfg, const json_t *c, char *why, size_t why_size)
{
	if (cfg->jwt_issuer != NULL) {
		const json_t *iss = json_object_get(c, "iss");
		if (!json_is_string(iss) || strcmp(json_string_value(iss), cfg->jwt_issuer) != 0)
			FAIL("token issuer is not accepted");
	}
	if (cfg->jwt_audience != NULL &&
	    !audience_matches(json_object_get(c, "aud"), cfg->jwt_audience))
		FAIL("token audience is not accepted");
	return true;
out:
	return false;
}

/* Whether the space-separated scope holds want as a whole word. */
static bool scope_has(const char *scope, const char *want)
{
	size_t n = strlen(want);
	const char *p = scope;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ' ')
			e++;
		if ((size_t)(e - p) == n && strncmp(p, want, n) == 0)
			return true;
		p = e;
	}
	return false;
}

/* The owner claim, checked and copied into claims->owner, then the scopes. Nothing is
 * written to claims unless the owner is accepted. */
static bool owner_and_scope(const pw_config *cfg, const json_t *c, pw_jwt_claims *claims, char *why,
                            size_t why_size)
{
	const json_t *owner = json_object_get(c, cfg->jwt_owner_claim);
	if (!json_is_string(owner) || json_string_length(owner) == 0)
		FAIL("token has no %s", strcmp(cfg->jwt_owner_claim, "sub") == 0 ? "sub" : "owner");
	if (json_string_length(owner) > PW_JWT_OWNER_MAX)
		FAIL("token owner is longer than %d bytes", PW_JWT_OWNER_MAX);
	/* The owner goes into SQL parameters and logs; a NUL inside would cut it short. */
	if (strlen(json_string_value(owner)) != json_string_length(owner))
		FAIL("token owner is not valid");
	memcpy(claims->owner, json_string_value(owner), json_string_length(owner) + 1);

	const json_t *scope = json_object_get(c, "scope");
	if (json_is_string(scope)) {
		claims->scope_read = scope_has(json_string_value(scope), "patients:read");
		claims->scope_write = scope_has(json_string_value(scope), "patients:write");
	}
	return true;
out:
	return false;
}

/* ---- verification ----------------------------------------------------------------------- */

void pw_jwt_verifier_use_keyring(pw_jwt_verifier *v, pw_keyring *ring)
{
	v->ring = ring;
	v->ring_gen = 0; /* no ring generation is 0: the first token takes the ring's set */
}

/* Takes the ring's set when it changed, and forgets every token verified before: one may
 * have been verified with a key that is gone. Out of memory keeps the old keys but still
 * empties the cache, and tries again at the next token. */
static void sync_keys(pw_jwt_verifier *v)
{
	pw_jwk_set next;
	uint64_t gen;

	if (v->ring == NULL || pw_keyring_generation(v->ring) == v->ring_gen)
		return;
	if (v->cache != NULL)
		pw_jwt_lru_clear(v->cache);
	if (pw_keyring_copy(v->ring, &next, &gen) != PW_OK)
		return;
	pw_jwk_set_clear(&v->keys);
	v->keys = next;
	v->ring_gen = gen;
}

/* The key of the set a header names (its kid, or the only key that fits its alg) among
 * the keys valid at the time of the command: a retired key only for commands from before
 * its retirement. A kid the archive holds twice (a provider reusing a kid) is the key
 * that was live at that time. */
static const pw_jwk *find_key(const pw_jwt_verifier *v, const header *hd, int64_t now_s,
                              const char **why)
{
	const pw_jwk *found = NULL;
	bool retired_only = false;

	for (size_t i = 0; i < v->keys.n; i++) {
		const pw_jwk *k = &v->keys.keys[i];
		if (hd->has_kid ? !(k->has_kid && strcmp(k->kid, hd->kid) == 0)
		                : !key_fits(k, hd->alg))
			continue;
		if (k->retired_at != 0 && now_s >= k->retired_at) {
			retired_only = true;
			continue;
		}
		if (found != NULL) {
			*why = hd->has_kid ? "token kid names several keys of its time"
			                   : "token has no kid and several keys fit its algorithm";
			return NULL;
		}
		found = k;
	}
	if (found == NULL)
		*why = retired_only  ? "token key was retired before the command"
		       : hd->has_kid ? "token kid is not in the key set"
		                     : "no key fits the token algorithm";
	return found;
}

/* The key a token's signature is checked with. A static key (a secret, one PEM) was pinned
 * with the algorithm. In a set: the key its kid names, or without a kid the only key that
 * fits its alg; the key must fit the alg either way. PW_E_RETRY: the kid is unknown and
 * the set's refresh it asked for is under way (pw_keyring_unknown_kid). */
static pw_status pick_key(pw_jwt_verifier *v, const header *hd, int64_t now_s, EVP_PKEY **pkey,
                          bool *retired, char *why, size_t why_size)
{
	const char *miss = NULL;
	const pw_jwk *found;
	pw_status st = PW_E_AUTH;

	if (v->cfg->jwt_source < PW_KEYS_JWKS_FILE) {
		*pkey = v->pkey;
		return PW_OK;
	}
	found = find_key(v, hd, now_s, &miss);
	/* A kid we do not know may be a key the provider has just published; so may a kid we
	 * know only retired (providers may reuse a kid for a new key). */
	if (found == NULL && hd->has_kid && v->ring != NULL) {
		if (pw_keyring_unknown_kid(v->ring) == PW_KEYRING_KID_WAIT) {
			st = PW_E_RETRY;
			FAIL("token kid is not in the key set yet: a refresh is under way");
		}
		sync_keys(v);
		found = find_key(v, hd, now_s, &miss);
	}
	if (found == NULL)
		FAIL("%s", miss);
	if (!key_fits(found, hd->alg))
		FAIL("token algorithm does not fit the key its kid names");
	*pkey = found->pkey;
	*retired = found->retired_at != 0;
	st = PW_OK;
out:
	return st;
}

/* A token not in the cache, in full and in the contract's order: header, signature, then
 * the claims. PW_E_AUTH with the reason in why, PW_E_RETRY (pick_key), or PW_OK with *t
 * and *claims filled, and *retired when the key is a retired one (valid for this command's
 * time only). */
static pw_status verify_in_full(pw_jwt_verifier *v, const char *token, size_t len, int64_t now_s,
                                pw_jwt_lru_times *t, pw_jwt_claims *claims, bool *retired,
                                char *why, size_t why_size)
{
	json_t *c = NULL;
	pw_status st = PW_E_AUTH;

	header hd;
	EVP_PKEY *pkey = NULL;
	if (!precheck(v, token, &hd, why, why_size))
		goto out;
	if ((st = pick_key(v, &hd, now_s, &pkey, retired, why, why_size)) != PW_OK)
		goto out;
	st = PW_E_AUTH;
	/* precheck saw exactly three non-empty segments. */
	const char *dot1 = strchr(token, '.');
	const char *dot2 = strchr(dot1 + 1, '.');
	if (!signature_ok(v, hd.alg, pkey, token, (size_t)(dot2 - token), dot2 + 1,
	                  len - (size_t)(dot2 + 1 - token)))
		FAIL("token signature is not valid");
	c = claims_object(dot1 + 1, (size_t)(dot2 - dot1 - 1), why, why_size);
	if (c == NULL || !claimed_times_ok(v->cfg, c, now_s, t, why, why_size) ||
	    !issuer_audience_ok(v->cfg, c, why, why_size) ||
	    !owner_and_scope(v->cfg, c, claims, why, why_size))
		goto out;
	st = PW_OK;
out:
	json_decref(c);
	return st;
}

pw_status pw_jwt_verify(pw_jwt_verifier *v, const char *token, int64_t now_s, pw_jwt_claims *claims,
                        char *why, size_t why_size)
{
	unsigned char key[PW_JWT_LRU_KEY_LEN];
	bool keyed = false;
	pw_jwt_lru_times t = {0, 0, 0, false, false};
	pw_status st = PW_E_AUTH;

	memset(claims, 0, sizeof(*claims));
	snprintf(why, why_size, "token refused");
	if (token == NULL || *token == '\0')
		FAIL("token missing");
	sync_keys(v);
	size_t len = strlen(token);

	if (v->cache != NULL && token_digest(v, token, len, key)) {
		keyed = true;
		if (pw_jwt_lru_get(v->cache, key, &t, claims)) {
			v->hits++;
			if (times_ok(v->cfg, &t, now_s, why, why_size))
				st = PW_OK;
			goto out;
		}
	}
	v->misses++;
	bool retired = false;
	st = verify_in_full(v, token, len, now_s, &t, claims, &retired, why, why_size);
	/* Every check passed: remember the token. A token refused for any reason, the time
	 * included, is not remembered, so refused tokens cannot evict good ones. One that
	 * cannot be remembered (out of memory) is only verified in full again next time. Nor
	 * is a token of a retired key: it was good for this command's time, not for later
	 * ones (a replay meets both). */
	if (st == PW_OK && keyed && !retired)
		(void)pw_jwt_lru_put(v->cache, key, &t, claims);
out:
	if (st == PW_OK)
		why[0] = '\0';
	else
		memset(claims, 0, sizeof(*claims));
	return st;
}

void pw_jwt_cache_clear(pw_jwt_verifier *v)
{
	if (v != NULL && v->cache != NULL)
		pw_jwt_lru_clear(v->cache);
}

void pw_jwt_cache_stats(const pw_jwt_verifier *v, unsigned long *hits, unsigned long *misses,
                        size_t *entries)
{
	if (hits)
		*hits = v ? v->hits : 0;
	if (misses)
		*misses = v ? v->misses : 0;
	if (entries)
		*entries = v && v->cache ? pw_jwt_lru_count(v->cache) : 0;
}
