/* The smallest HTTP/1.0 client: enough for `patient-worker healthcheck` (a container's
 * probe, where the slim image has no curl) and for the tests that scrape /metrics. */
#ifndef PW_HTTPC_H
#define PW_HTTPC_H

#include <stddef.h>

#include "pw_status.h"

/* GETs path from the listener at addr (as HTTP_ADDR is written; a wildcard host such as
 * 0.0.0.0 or :: is asked on the loopback address). Every step is bounded by timeout_ms.
 * On PW_OK: *status is the HTTP status and *body the response body, NUL-terminated, at
 * most max_body bytes (caller frees). PW_E_RETRY with err filled when no answer. */
PW_MUST_CHECK pw_status pw_httpc_get(const char *addr, const char *path, int timeout_ms,
                                     size_t max_body, int *status, char **body, char *err,
                                     size_t err_size);

#endif
