/* The operator's HTTP listener (HTTP_ADDR): /metrics in Prometheus text format,
 * /healthz (the process answers) and /readyz (it can do its work). */
#ifndef PW_HTTP_H
#define PW_HTTP_H

#include <stddef.h>

#include "pw_config.h"
#include "pw_metrics.h"
#include "pw_status.h"

typedef struct pw_http pw_http;

/* Listens on cfg->http_addr with its own thread. /readyz is 200 when both lanes hold a
 * Kafka assignment, neither waits for the database, and the database server accepts
 * connections (PQping, on a thread of its own once a second; a probe reads
 * its last verdict and never waits for it); 503 with the reason otherwise. The
 * config and metrics must outlive the listener. PW_E_CONFIG with err filled when the
 * address cannot be listened on. */
PW_MUST_CHECK pw_status pw_http_start(const pw_config *cfg, pw_metrics *m, pw_http **out, char *err,
                                      size_t err_size);

void pw_http_stop(pw_http *h); /* NULL is fine */

#endif
