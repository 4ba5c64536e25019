/* Keys and tokens for tests: the public JWK of a key made with OpenSSL, a JWK Set file of
 * several, and compact JWS tokens signed with any of the algorithms the worker knows (and
 * some it must refuse). Test code only: it aborts through Check on any failure. */
#ifndef PW_TESTKEYS_H
#define PW_TESTKEYS_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

/* The public JWK of k (RSA, EC P-256 or Ed25519), with kid and alg when not NULL. */
json_t *tkk_jwk(const EVP_PKEY *k, const char *kid, const char *alg);

/* {"keys": [...]} of the JWKs given (NULL-terminated, references stolen), as text (caller
 * frees). */
char *tkk_set_text(json_t *first, ...);

/* Writes {"keys": [...]} of the JWKs given (NULL-terminated, references stolen) to path,
 * atomically (temp file and rename, so a reader never sees half a set). */
void tkk_write_set(const char *path, json_t *first, ...);

/* A compact JWS of claims (JSON text) with header {"alg", "typ": "JWT", "kid"} (kid NULL:
 * none), signed with key by alg: RS256, RS512, ES256 (R || S), EdDSA; HS256 with secret
 * (secret_len bytes); with key NULL and another alg, three made-up signature bytes. */
char *tkk_token(const char *alg, const char *kid, EVP_PKEY *key, const unsigned char *secret,
                size_t secret_len, const char *claims);

#endif
