/* JSON Web Key Sets (RFC 7517): the public keys an identity provider publishes, parsed into
 * OpenSSL keys, with their RFC 7638 thumbprints. Parsing only: where a set comes from (a
 * file, HTTPS, OpenID Connect discovery) and which key a token may use are the callers'. */
#ifndef PW_JWK_H
#define PW_JWK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "pw_config.h"
#include "pw_status.h"

/* A document larger than this is refused before it is parsed (the contract's cap for a
 * fetched set; real sets are a few KiB). */
#define PW_JWK_SET_MAX_BYTES (1024 * 1024)
/* Keys kept from one set; the rest are skipped as "too many keys". */
#define PW_JWK_SET_MAX_KEYS 64
/* A kid longer than this is skipped (providers use 20-90 characters). */
#define PW_JWK_KID_MAX 256
/* base64url of a SHA-256, unpadded. */
#define PW_JWK_THUMBPRINT_LEN 43
/* RSA keys shorter than this are refused (RFC 7518 3.3 requires 2048). */
#define PW_JWK_RSA_MIN_BITS 2048

typedef enum pw_jwk_type {
	PW_JWK_RSA,     /**< kty RSA: RS256 */
	PW_JWK_P256,    /**< kty EC, crv P-256: ES256 */
	PW_JWK_ED25519, /**< kty OKP, crv Ed25519: EdDSA */
} pw_jwk_type;

typedef struct pw_jwk {
	pw_jwk_type type;
	bool has_kid;
	char kid[PW_JWK_KID_MAX + 1]; /**< "" without one */
	char alg[16];                 /**< the JWK's alg, "" without one */
	char thumbprint[PW_JWK_THUMBPRINT_LEN + 1];
	EVP_PKEY *pkey;     /**< the public key, owned by the set */
	int64_t retired_at; /**< Unix seconds; 0: not retired (the key archive's word) */
} pw_jwk;

typedef struct pw_jwk_set {
	pw_jwk *keys;
	size_t n;
} pw_jwk_set;

/* Called once for every key of a document that is not kept, with its kid (or "" without
 * one) and why, so the caller can log what a provider publishes that we cannot use. */
typedef void (*pw_jwk_skip_fn)(void *ctx, const char *kid, const char *why);

/* Parses a JWK Set of len bytes. Keeps the signature keys it can use: RSA of 2048 bits or
 * more (n, e), EC P-256 (x, y on the curve), OKP Ed25519 (x); each with its kid, alg and
 * thumbprint. Skips, through skip (may be NULL), a key with another kty or curve, "use"
 * other than "sig", an "alg" that does not fit its type, bad base64url, a short RSA key, a
 * point off the curve, a kid that is not a string or too long, private members ("d": a
 * published private key is refused, not silently used as public), and every key whose kid
 * another usable key also has (a token naming it could not say which). PW_OK with at least
 * one key; PW_E_INVALID (why says what, never quoting key material) for a document over
 * PW_JWK_SET_MAX_BYTES, not JSON, without a "keys" array, or with no usable key; PW_E_NOMEM.
 * *out is filled only on PW_OK (free with pw_jwk_set_clear). */
PW_MUST_CHECK pw_status pw_jwk_set_parse(const char *text, size_t len, pw_jwk_set *out,
                                         pw_jwk_skip_fn skip, void *ctx, char *why,
                                         size_t why_size);

void pw_jwk_set_clear(pw_jwk_set *s); /* NULL and a cleared set are fine */

/* The key of s with this thumbprint, or NULL. */
pw_jwk *pw_jwk_set_find(const pw_jwk_set *s, const char *thumbprint);

/* *out becomes a copy of s sharing its OpenSSL keys (reference counted, so each copy is
 * freed with pw_jwk_set_clear on its own). PW_E_NOMEM. */
PW_MUST_CHECK pw_status pw_jwk_set_copy(const pw_jwk_set *s, pw_jwk_set *out);

/* The algorithm name ("RS256", "ES256", "EdDSA") a key of this type verifies. */
const char *pw_jwk_type_alg(pw_jwk_type t);

/* The same as the configuration's algorithm. */
pw_config_jwt_alg pw_jwk_alg(pw_jwk_type t);

/* The RFC 7638 canonical JSON of a public key's required members (what the thumbprint is
 * the hash of, and what the key archive stores), into canon. PW_E_INVALID for another key
 * type or too little room (PW_JWK_CANONICAL_MAX is enough). */
#define PW_JWK_CANONICAL_MAX 6200
PW_MUST_CHECK pw_status pw_jwk_canonical(const EVP_PKEY *pkey, char *canon, size_t size);

/* One JWK into *out, by the rules of pw_jwk_set_parse: NULL, or why it is not usable (then
 * *out holds no key). */
const char *pw_jwk_from_json(const json_t *jwk, pw_jwk *out);

/* The RFC 7638 thumbprint of an OpenSSL public key of one of the three types (into out,
 * PW_JWK_THUMBPRINT_LEN + 1 bytes): the same value as the thumbprint of its JWK. PW_E_INVALID
 * for another key type. */
PW_MUST_CHECK pw_status pw_jwk_thumbprint(const EVP_PKEY *pkey, char *out, size_t out_size);

#endif
