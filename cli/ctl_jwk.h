/* Development keys for patientctl's own JSON Web Key Set: make or read a private key, its
 * public JWK (RFC 7517/7518), its RFC 7638 thumbprint, the set on disk, and JWS signatures.
 * Nothing here prints a private key; errors go to the caller's errstr, never to a stream. */
#ifndef CTL_JWK_H
#define CTL_JWK_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "pw_status.h"

/* The algorithms patientctl signs with when it writes the key set itself. */
typedef enum ctl_jwk_alg {
	CTL_JWK_RS256 = 0, /**< RSA PKCS#1 v1.5 with SHA-256; the key has 2048 bits or more */
	CTL_JWK_ES256,     /**< ECDSA on P-256 with SHA-256; the signature is raw r||s */
	CTL_JWK_EDDSA,     /**< Ed25519 (RFC 8037) */
} ctl_jwk_alg;

/* A thumbprint's characters: base64url of 32 bytes is 43, plus the NUL. */
#define CTL_JWK_THUMBPRINT_SIZE 44
/* The longest JWS signature we make: RSA up to 16384 bits. */
#define CTL_JWK_SIG_MAX 2048

/* "RS256", "ES256" or "EdDSA" (exactly, as JWS spells them) into *out. PW_E_INVALID for
 * anything else. */
PW_MUST_CHECK pw_status ctl_jwk_alg_parse(const char *name, ctl_jwk_alg *out);

/* The JWS name of alg (static). */
const char *ctl_jwk_alg_name(ctl_jwk_alg alg);

/* A new private key for alg (RSA 2048, P-256 or Ed25519) into *out, the caller's
 * (EVP_PKEY_free). PW_E_INTERNAL with the reason on errstr when OpenSSL fails. */
PW_MUST_CHECK pw_status ctl_jwk_generate(ctl_jwk_alg alg, EVP_PKEY **out, char *errstr,
                                         size_t errstr_size);

/* Reads the PEM private key at path (PKCS#8 or the traditional forms; an encrypted one is
 * refused, never prompted for) into *out, the caller's. PW_E_INVALID with the reason on
 * errstr when the file cannot be read, holds no private key, or the key does not fit alg
 * (ctl_jwk_fits). */
PW_MUST_CHECK pw_status ctl_jwk_read_private(const char *path, ctl_jwk_alg alg, EVP_PKEY **out,
                                             char *errstr, size_t errstr_size);

/* Does key fit alg: RSA of 2048 bits or more for RS256, EC on P-256 for ES256, Ed25519
 * for EdDSA? PW_OK, or PW_E_INVALID with what it is instead on errstr. */
PW_MUST_CHECK pw_status ctl_jwk_fits(const EVP_PKEY *key, ctl_jwk_alg alg, char *errstr,
                                     size_t errstr_size);

/* Writes key's private half to path as PKCS#8 PEM, mode 0600, through a temporary file in
 * the same folder and a rename (a reader never sees half a key; an existing file is
 * replaced). PW_E_INVALID with the reason on errstr when the file cannot be written. */
PW_MUST_CHECK pw_status ctl_jwk_write_private(const char *path, EVP_PKEY *key, char *errstr,
                                              size_t errstr_size);

/* The public JWK of key (which must fit alg) with its required members only: kty and n, e
 * (RSA; minimal big-endian), crv, x, y (EC; 32 bytes each) or crv, x (OKP); base64url
 * without padding. *out is new, the caller's (json_decref). PW_E_INTERNAL on errstr when
 * OpenSSL or memory fails. */
PW_MUST_CHECK pw_status ctl_jwk_public(const EVP_PKEY *key, ctl_jwk_alg alg, json_t **out,
                                       char *errstr, size_t errstr_size);

/* The RFC 7638 thumbprint of jwk (only its required members count, so "kid", "alg" and
 * "use" may be there) into out, which holds CTL_JWK_THUMBPRINT_SIZE bytes. PW_E_INVALID
 * when jwk's kty is not RSA, EC or OKP or a required member is not a string. */
PW_MUST_CHECK pw_status ctl_jwk_thumbprint(const json_t *jwk, char *out, size_t out_size);

/* Adds jwk (borrowed; it should carry a "kid") to the JWK Set at path: a file that does not
 * exist becomes {"keys":[jwk]}; an existing set keeps its other keys and members, and loses
 * a key with the same kid. Written through a temporary file and a rename, mode 0644 (a key
 * set is public). PW_E_INVALID with the reason on errstr when the file exists but is not a
 * JWK Set, or cannot be read or written. Two processes adding at once may lose one key. */
PW_MUST_CHECK pw_status ctl_jwk_set_put(const char *path, const json_t *jwk, char *errstr,
                                        size_t errstr_size);

/* Signs the n bytes at msg with key for alg as JWS (RFC 7515/7518/8037) wants it: ES256 as
 * 64 bytes r||s, not OpenSSL's DER. sig holds sig_size bytes; *sig_len is what was written.
 * PW_E_INTERNAL on errstr when OpenSSL fails or sig is too small. */
PW_MUST_CHECK pw_status ctl_jwk_sign(EVP_PKEY *key, ctl_jwk_alg alg, const void *msg, size_t n,
                                     unsigned char *sig, size_t sig_size, size_t *sig_len,
                                     char *errstr, size_t errstr_size);

#endif
