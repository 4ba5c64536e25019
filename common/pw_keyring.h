/* The worker's current JWK Set, shared by its lanes and kept fresh without a restart. Its
 * source is a file (JWT_JWKS_FILE), a URL (JWT_JWKS_URL) or an OpenID Connect issuer
 * (JWT_OIDC_ISSUER: discovery, then its jwks_uri). A refresh thread reloads it every
 * JWT_JWKS_REFRESH_S (or the response's Cache-Control max-age within the same bounds), and
 * a file as soon as it changes (checked every second); a token naming an unknown kid asks
 * for a refresh at once, at most once per 30 s, and its command waits for it without
 * holding up any other partition. A failed refresh keeps the last good set and is tried
 * again within a minute. Each change bumps a generation that verifiers compare on
 * every token, so they pick up the new set (and forget the tokens they verified with the
 * old one) before their next verification. */
#ifndef PW_KEYRING_H
#define PW_KEYRING_H

#include <stdbool.h>
#include <stdint.h>

#include "pw_config.h"
#include "pw_jwk.h"
#include "pw_status.h"

/* An unknown kid refreshes the set at most this often (seconds), per worker. */
#define PW_KEYRING_UNKNOWN_KID_S 30
/* A set over the network is tried for this long at start before the worker gives up. */
#define PW_KEYRING_START_S 60

typedef struct pw_keyring pw_keyring;

typedef struct pw_keyring_stats {
	unsigned long refresh_ok;      /**< refreshes that loaded a set (changed or not) */
	unsigned long refresh_failed;  /**< refreshes that kept the last good set */
	unsigned long refresh_changed; /**< refreshes that changed the set */
	unsigned long unknown_kid;     /**< refreshes a token's unknown kid caused */
	size_t keys;                   /**< keys in the current set */
	int64_t last_good_s;           /**< Unix time of the last good load */
	long period_s;                 /**< the periodic refresh's period now */
} pw_keyring_stats;

/* The first set: for a file, the text pw_config_load read (cfg->jwt_key); over the network,
 * fetched now, every 2 s for up to start_s seconds (the worker: PW_KEYRING_START_S; this
 * call blocks that long at most).
 * PW_E_CONFIG (err names the setting and says why) when no usable set was had; PW_E_NOMEM.
 * No thread yet. */
PW_MUST_CHECK pw_status pw_keyring_create(const pw_config *cfg, int start_s, pw_keyring **out,
                                          char *err, size_t err_size);

/* Joins the key archive (the database of cfg): the keys tokens are checked with become
 * the source's, each with its archived retirement, and the archived keys the source no
 * longer has (retired: they verify only commands from before). With record, each load
 * also adds new keys to the archive and retires the ones that left. Syncs now; when the
 * database does not answer, tries again every second (once the thread runs) and meanwhile
 * keeps the retired keys it knew. Call before pw_keyring_start. True when the archive was
 * read now; without it, a key retired since a command was sent is unknown (a replay must
 * not go on). */
bool pw_keyring_use_archive(pw_keyring *k, bool record);

/* Starts the refresh thread. PW_E_INTERNAL when it cannot. */
PW_MUST_CHECK pw_status pw_keyring_start(pw_keyring *k);

/* Stops the thread (within a second) and frees. NULL is fine. */
void pw_keyring_destroy(pw_keyring *k);

/* Bumped by every change of the set; cheap (an atomic load). */
uint64_t pw_keyring_generation(const pw_keyring *k);

/* The current set, its keys shared (free with pw_jwk_set_clear), and its generation. */
PW_MUST_CHECK pw_status pw_keyring_copy(pw_keyring *k, pw_jwk_set *out, uint64_t *generation);

typedef enum pw_keyring_kid {
	PW_KEYRING_KID_FINAL, /**< judge the token with the set as it is (pw_keyring_copy) */
	PW_KEYRING_KID_WAIT,  /**< hold the token until pw_keyring_kid_waits is false */
} pw_keyring_kid;

/* A token named a kid the set does not have. With the thread running, nothing here waits
 * for the network: the thread is asked to refresh now (unless such a refresh ran in the
 * last PW_KEYRING_UNKNOWN_KID_S seconds, or the last refresh failed: the thread retries
 * those), and WAIT says the token's answer depends on that refresh (a 401 given too early
 * would be final), or on the key archive the worker could not read yet. The caller holds
 * that command, and the commands after it, and carries on with the others. FINAL: no
 * newer set is coming soon. Without the thread (a replay, tests) it refreshes itself,
 * waiting for the fetch (at most PW_FETCH_TIMEOUT_MS, once per 30 s), and says FINAL. */
pw_keyring_kid pw_keyring_unknown_kid(pw_keyring *k);

/* True while tokens told WAIT must still wait. */
bool pw_keyring_kid_waits(pw_keyring *k);

/* Refreshes now, as the thread does when the source changed (tests; the thread's work). */
void pw_keyring_refresh(pw_keyring *k);

void pw_keyring_get_stats(pw_keyring *k, pw_keyring_stats *s);

#endif
