/* One bounded HTTPS GET with libcurl, for the key set and OpenID Connect discovery: TLS
 * verified against the system CA store (plus an extra CA file), no redirects, a total
 * timeout, a capped body, and the response's Cache-Control max-age. */
#ifndef PW_FETCH_H
#define PW_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include "pw_status.h"

/* The whole fetch (connect, TLS, response) takes at most this long. */
#define PW_FETCH_TIMEOUT_MS 5000

/* True when url may be fetched: https://, or http:// to a loopback host (127.0.0.0/8,
 * [::1], localhost). Anything else would let the network choose our keys. */
bool pw_fetch_url_allowed(const char *url);

typedef struct pw_fetch_result {
	char *body;   /**< NUL-terminated, the caller's (free) */
	size_t len;   /**< bytes of body */
	long max_age; /**< Cache-Control max-age in seconds, -1 when absent */
} pw_fetch_result;

/* GETs url (which must pass pw_fetch_url_allowed) with ca_file (NULL: none) trusted beside
 * the system store. PW_OK only for a 200 whose body is at most max bytes. PW_E_RETRY with
 * err saying why (network, TLS, timeout, another status, too large: the caller keeps what
 * it has and tries later); PW_E_INVALID for a URL that is not allowed; PW_E_NOMEM. */
PW_MUST_CHECK pw_status pw_fetch_get(const char *url, const char *ca_file, size_t max,
                                     pw_fetch_result *out, char *err, size_t err_size);

#endif
