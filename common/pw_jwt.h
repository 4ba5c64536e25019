/* Token verification: the algorithm pinned by configuration, every claim judged by us. */
#ifndef PW_JWT_H
#define PW_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pw_config.h"
#include "pw_status.h"

#define PW_JWT_OWNER_MAX 320

typedef struct pw_jwt_claims {
	char owner[PW_JWT_OWNER_MAX + 1];
	bool scope_read;  /**< scope holds patients:read */
	bool scope_write; /**< scope holds patients:write */
} pw_jwt_claims;

typedef struct pw_jwt_verifier pw_jwt_verifier;
typedef struct pw_keyring pw_keyring;

/* Builds a verifier from the loaded configuration (key, algorithm, claims to check, and
 * cfg->jwt_cache_size). For RS256/ES256 the PEM is parsed here, once: PW_E_CONFIG when it
 * is not a public key of the type the algorithm needs (RSA for RS256, EC P-256 for ES256),
 * and for an empty key; PW_E_NOMEM. *out is the caller's (pw_jwt_verifier_destroy), NULL on
 * failure. The configuration must outlive the verifier. Does not block. */
PW_MUST_CHECK pw_status pw_jwt_verifier_create(const pw_config *cfg, pw_jwt_verifier **out);
void pw_jwt_verifier_destroy(pw_jwt_verifier *v); /* NULL is fine */

/* With a key set (JWT_JWKS_FILE): take the keys from the worker's shared, refreshed ring
 * from now on instead of the set parsed at creation. Before each token the verifier checks
 * the ring's generation; when the set changed it takes the new one and empties its cache,
 * so no token verified with a key that has left the set is accepted from the cache. A kid
 * the set lacks asks the ring for a refresh (at most one per 30 s per ring). The ring must
 * outlive the verifier. */
void pw_jwt_verifier_use_keyring(pw_jwt_verifier *v, pw_keyring *ring);

/* Checks the header (algorithm pinned, no `crit`), then the signature with the configured
 * algorithm and key (OpenSSL, never the algorithm the token names), then exp/nbf/iat at
 * now_s (the time of the command, Unix seconds) with the leeway, iss/aud when configured,
 * and the owner claim. Returns PW_OK and fills *claims, or PW_E_AUTH with a reason in why
 * (safe to send to the caller: it never quotes the token). With a key ring whose thread
 * runs, PW_E_RETRY: the token names a kid the set lacks and the set's refresh is under
 * way; ask again once pw_keyring_kid_waits is false (the answer is not decided yet).
 *
 * A token that passed every check is remembered in the verifier's cache (keyed by the
 * SHA-256 of the whole token, least recently used evicted, at most cfg->jwt_cache_size
 * entries). A later use of the same token skips the signature and the time-independent
 * claims, but exp/nbf/iat are judged again at that call's now_s, with the same reasons.
 * Refused tokens are never cached. The call changes the verifier (its cache and OpenSSL
 * contexts): one verifier per thread, no locking. CPU only: it does not block (but for a
 * key ring without its thread, which refreshes in the call). */
PW_MUST_CHECK pw_status pw_jwt_verify(pw_jwt_verifier *v, const char *token, int64_t now_s,
                                      pw_jwt_claims *claims, char *why, size_t why_size);

/* The verifier's cache (a pw_jwt_lru inside it; these two names are the verifier's API).
 * Empties the cache (the counters are kept). The key is read once, at start: a new key
 * means a restart, and a new verifier starts with an empty cache. NULL is fine. */
void pw_jwt_cache_clear(pw_jwt_verifier *v);

/* Cache counters since the verifier was made: verifications answered from the cache,
 * verifications that were not (every call with a non-empty token, cache or no cache), and
 * the entries held now. Any pointer may be NULL. */
void pw_jwt_cache_stats(const pw_jwt_verifier *v, unsigned long *hits, unsigned long *misses,
                        size_t *entries);

#endif
