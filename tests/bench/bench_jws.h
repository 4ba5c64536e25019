/* Compact JWS tokens for the benchmarks (jwt_bench, pw_bulk), signed with OpenSSL: RS256,
 * ES256 (R || S, RFC 7518 3.4) and EdDSA (Ed25519), which libjwt 1.10 cannot sign. Not
 * the test kit's tkk_token: that one reports through Check and only works inside a test. */
#ifndef BENCH_JWS_H
#define BENCH_JWS_H

#include <openssl/evp.h>

/* header {"alg", "typ": "JWT"[, "kid"]} . claims (JSON text) . signature by key; NULL when
 * alg is none of the three or OpenSSL fails. The caller frees. Safe from several threads
 * when each has its own key (EVP_PKEY_dup). */
char *bench_jws(const char *alg, const char *kid, EVP_PKEY *key, const char *claims);

#endif
