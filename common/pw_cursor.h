/* Pagination cursors: opaque to clients, tamper-evident, bound to owner and filters. */
#ifndef PW_CURSOR_H
#define PW_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "pw_status.h"

#define PW_CURSOR_KEY_LEN 32
#define PW_CURSOR_LEN     54 /**< base64url of 8 bytes of id and a 32-byte HMAC-SHA256 */

typedef struct pw_cursor_key {
	unsigned char bytes[PW_CURSOR_KEY_LEN];
} pw_cursor_key;

/* The key from CURSOR_SECRET (any length, hashed to 32 bytes), or 32 random bytes when
 * secret is NULL (*generated set to 1). PW_E_INTERNAL when no randomness is available. */
PW_MUST_CHECK pw_status pw_cursor_key_init(pw_cursor_key *key, const char *secret, int *generated);

/* Writes the cursor that resumes after last_id for this owner and these filters (dni
 * and q may be NULL) into out (at least PW_CURSOR_LEN + 1 bytes). */
PW_MUST_CHECK pw_status pw_cursor_encode(const pw_cursor_key *key, const char *owner,
                                         const char *dni, const char *q, int64_t last_id, char *out,
                                         size_t out_size);

/* Checks a cursor against the owner and filters it must have been made for and yields
 * its last id. PW_E_INVALID for anything forged, edited, or made for another owner or
 * other filters. Constant-time comparison of the MAC. */
PW_MUST_CHECK pw_status pw_cursor_decode(const pw_cursor_key *key, const char *owner,
                                         const char *dni, const char *q, const char *cursor,
                                         int64_t *last_id);

#endif
