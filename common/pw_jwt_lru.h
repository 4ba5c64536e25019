/* The verifier's memory of tokens that passed every check: a bounded map from a token's
 * SHA-256 to what the checks left behind, the least recently used forgotten first. It judges
 * nothing: the verifier (pw_jwt) decides what goes in and judges the time claims it gets back. */
#ifndef PW_JWT_LRU_H
#define PW_JWT_LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pw_jwt.h"
#include "pw_status.h"

/* A key is the SHA-256 of the whole token, computed by the caller: the map trusts its bytes
 * to be spread already and buckets on the first eight. */
#define PW_JWT_LRU_KEY_LEN 32

typedef struct pw_jwt_lru pw_jwt_lru;

/* A token's time claims (NumericDate, Unix seconds). Remembered with the token because they
 * are judged again at every use, unlike the signature and the other claims. */
typedef struct pw_jwt_lru_times {
	int64_t exp, nbf, iat;
	bool has_nbf, has_iat; /**< exp is required, so it is always there */
} pw_jwt_lru_times;

/* An empty map of at most cap entries. PW_E_INVALID for cap 0 (no cache is no map: the
 * caller keeps a NULL), PW_E_NOMEM when the table cannot be allocated. *out is the caller's,
 * freed with pw_jwt_lru_destroy; NULL on failure. No locking: one owner. */
PW_MUST_CHECK pw_status pw_jwt_lru_create(size_t cap, pw_jwt_lru **out);
void pw_jwt_lru_destroy(pw_jwt_lru *c); /* NULL is fine */

/* True when key is held: copies its times and claims into *times and *claims and makes it
 * the most recently used. False when it is not, leaving both untouched. */
bool pw_jwt_lru_get(pw_jwt_lru *c, const unsigned char key[PW_JWT_LRU_KEY_LEN],
                    pw_jwt_lru_times *times, pw_jwt_claims *claims);

/* Remembers copies of times and claims under key, as the most recently used; when the map is
 * full the least recently used entry is forgotten first. A key already held is left as it is,
 * its recency included. PW_OK when the key is held afterwards; PW_E_INVALID for an owner
 * longer than PW_JWT_OWNER_MAX and PW_E_NOMEM, in which cases it is not (a miss next time is the
 * only cost, so callers may ignore the status). */
pw_status pw_jwt_lru_put(pw_jwt_lru *c, const unsigned char key[PW_JWT_LRU_KEY_LEN],
                         const pw_jwt_lru_times *times, const pw_jwt_claims *claims);

/* Forgets every entry; the map keeps its table and stays usable. */
void pw_jwt_lru_clear(pw_jwt_lru *c);

/* Entries held now. */
size_t pw_jwt_lru_count(const pw_jwt_lru *c);

#endif
