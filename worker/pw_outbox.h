/* The outbox of a lane: replies and dead letters on their way to the broker. It owns the
 * lane's producer. A job handed to it is finished by its delivery report: counted, logged,
 * and its offset stored on the consumer once its partition's watermark (pw_offsets) passes
 * it; a transient failure is produced again, a permanent one becomes a dead letter. */
#ifndef PW_OUTBOX_H
#define PW_OUTBOX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "pw_config.h"
#include "pw_envelope.h"
#include "pw_job.h"
#include "pw_metrics.h"
#include "pw_offsets.h"
#include "pw_status.h"

typedef struct pw_outbox pw_outbox;

/* Makes the lane's producer. consumer (where offsets are stored), wake (a queue the lane
 * waits on, yielded from librdkafka's thread whenever delivery reports wait to be served;
 * NULL: none), offsets, metrics (NULL: none) and stop (the process's stop flag) are
 * borrowed and must outlive the outbox. PW_E_CONFIG with errstr when librdkafka refuses
 * the configuration. Does not block. */
PW_MUST_CHECK pw_status pw_outbox_create(const pw_config *cfg, pw_topic_kind lane,
                                         rd_kafka_t *consumer, rd_kafka_queue_t *wake,
                                         pw_offsets *offsets, pw_metrics *metrics,
                                         const atomic_int *stop, pw_outbox **out, char *errstr,
                                         size_t errstr_size);

/* Destroys the producer and frees the jobs still held. NULL is fine. */
void pw_outbox_destroy(pw_outbox *ob);

/* Takes the job: its reply (or, when j->dead, its dead letter) goes to the producer. The
 * outbox owns the job from here; its delivery report finishes it (pw_outbox_serve). A job
 * that cannot be produced because the worker stops or the producer failed for good is
 * dropped unanswered (its offset never stored). May block while the queue is full. */
void pw_outbox_send(pw_outbox *ob, pw_job *j);

/* Serves the producer's delivery reports for up to timeout_ms (librdkafka calls the
 * outbox's report callback from inside this call): this is where replies are finished and
 * offsets stored. */
void pw_outbox_serve(pw_outbox *ob, int timeout_ms);

/* Produces again the jobs whose delivery failed for a transient reason. */
void pw_outbox_retry(pw_outbox *ob);

/* True once the producer has failed for good (librdkafka's fatal error). */
bool pw_outbox_fatal(const pw_outbox *ob);

/* After pw_outbox_fatal: every message the failed producer held handed back (up to 10 s),
 * the producer replaced by a new one, and those replies sent again. PW_E_INTERNAL with
 * errstr when that cannot be done (the lane then stops, as before). Blocks. */
PW_MUST_CHECK pw_status pw_outbox_renew(pw_outbox *ob, char *errstr, size_t errstr_size);

/* Lets replies in flight be acknowledged for up to timeout_ms (retries included, unless
 * the producer failed). True when nothing is left unacknowledged. */
bool pw_outbox_drain(pw_outbox *ob, int timeout_ms);

/* Gives up what is still unacknowledged (shutdown past its deadline): purged, never
 * committed, so the next worker answers those records. */
void pw_outbox_abandon(pw_outbox *ob);

/* Replies and dead letters acknowledged since the outbox was made. */
void pw_outbox_counts(const pw_outbox *ob, unsigned long *answered, unsigned long *dead_letters);

#endif
