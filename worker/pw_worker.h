/* One lane of the worker: a consumer on its command topic and the loop that takes each
 * record to its acknowledged reply. */
#ifndef PW_WORKER_H
#define PW_WORKER_H

#include <stdatomic.h>
#include <stddef.h>

#include "pw_config.h"
#include "pw_cursor.h"
#include "pw_envelope.h"
#include "pw_keyring.h"
#include "pw_metrics.h"
#include "pw_status.h"

typedef struct pw_worker pw_worker;

/* Builds one lane: a consumer subscribed to the lane's command topic (creates or
 * queries), its own producer, token verifier and database sessions, so a query never
 * waits behind a create. Both lanes of a process join the same consumer group. The
 * cursor key, the metrics (NULL: none kept) and stop (set to non-zero to stop the lane)
 * must outlive the worker. PW_E_CONFIG with errstr for a setting librdkafka or the key
 * refuses. Does not block on the network. */
PW_MUST_CHECK pw_status pw_worker_create(const pw_config *cfg, pw_topic_kind lane,
                                         const pw_cursor_key *cursor_key, pw_metrics *metrics,
                                         const atomic_int *stop, pw_worker **out, char *errstr,
                                         size_t errstr_size);

/* Serves until *stop becomes non-zero or a fatal error, then finishes the records in
 * hand, flushes the producer, commits and closes the consumer. PW_OK after a clean stop;
 * PW_E_CONFIG, with errstr, for bad configuration found at start (a role that bypasses
 * row-level security, a schema not migrated); PW_E_INTERNAL after a fatal error (logged). */
/* Verify tokens with the worker's shared key ring (a key set) from now on; before run. */
void pw_worker_use_keyring(pw_worker *w, pw_keyring *ring);

PW_MUST_CHECK pw_status pw_worker_run(pw_worker *w, char *errstr, size_t errstr_size);

void pw_worker_destroy(pw_worker *w); /* NULL is fine */

#endif
