/* Token verification: the algorithm pinned by configuration, every claim judged by us. */
#ifndef PW_JWT_H
#define PW_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "pw_config.h"
#include "pw_status.h"

#define PW_OWNER_MAX 320

typedef struct pw_claims {
	char owner[PW_OWNER_MAX + 1];
	int scope_read;  /**< scope holds patients:read */
	int scope_write; /**< scope holds patients:write */
} pw_claims;

typedef struct pw_jwt_verifier pw_jwt_verifier;

/* Builds a verifier from the loaded configuration (key, algorithm, claims to check).
 * The configuration must outlive the verifier. */
PW_MUST_CHECK pw_status pw_jwt_verifier_create(const pw_config *cfg, pw_jwt_verifier **out);
void pw_jwt_verifier_destroy(pw_jwt_verifier *v); /* NULL is fine */

/* Checks the header (algorithm pinned, no `crit`) before libjwt sees the token, then
 * the signature, then exp/nbf/iat at now_s (the time of the command, Unix seconds)
 * with the leeway, iss/aud when configured, and the owner claim. Returns PW_OK and
 * fills *claims, or PW_E_AUTH with a reason in why (safe to send to the caller: it
 * never quotes the token). Pure apart from libjwt: no I/O, thread-compatible. */
PW_MUST_CHECK pw_status pw_jwt_verify(const pw_jwt_verifier *v, const char *token, int64_t now_s,
                                      pw_claims *claims, char *why, size_t why_size);

/* Decodes base64url without padding into out (NUL-terminated); returns the length or
 * -1 when the input has a character outside the alphabet or does not fit. */
long pw_base64url_decode(const char *in, size_t in_len, unsigned char *out, size_t out_size);

#endif
