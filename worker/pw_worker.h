/* The consume loop: records in, replies and dead letters out, offsets after acks. */
#ifndef PW_WORKER_H
#define PW_WORKER_H

#include <signal.h>

#include "pw_config.h"
#include "pw_cursor.h"
#include "pw_envelope.h"
#include "pw_metrics.h"
#include "pw_status.h"

typedef struct pw_worker pw_worker;

/* Builds one lane: a consumer subscribed to the lane's command topic (creates or
 * queries), its own producer, token verifier and database session, so a query never
 * waits behind a create. Both lanes of a process join the same consumer group. The
 * cursor key and the metrics (NULL: none kept) must outlive the worker. Does not block
 * on the network. */
PW_MUST_CHECK pw_status pw_worker_create(const pw_config *cfg, pw_topic_kind lane,
                                         const pw_cursor_key *cursor_key, pw_metrics *metrics,
                                         pw_worker **out, char *errstr, size_t errstr_size);

/* Serves until *stop becomes non-zero or a fatal error, then finishes the records in
 * hand, flushes the producer, commits and closes the consumer. Returns the process
 * exit status: 0 after a clean stop, 1 after a fatal error, 2 for bad configuration
 * found at start (a role that bypasses row-level security, a schema not migrated). */
int pw_worker_run(pw_worker *w, volatile sig_atomic_t *stop);

void pw_worker_destroy(pw_worker *w); /* NULL is fine */

#endif
