/* A database session's batch (pw_sessions): command jobs waiting for it. Records join the open
 * batch until it is full (BATCH_MAX) or has waited BATCH_WAIT_MS; while the database is away they
 * wait on the held list, in the order they came, and the batch says when to try the database again
 * (backoff from 200 ms to 5 s). It never talks to the database itself: the session takes the jobs,
 * runs them, and holds again those not done. No I/O, no clock of its own (times are passed in), so
 * every rule here is unit-tested. */
#ifndef PW_BATCH_H
#define PW_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "pw_job.h"
#include "pw_offsets.h"
#include "pw_status.h"

#define PW_BATCH_BACKOFF_MIN_MS 200
#define PW_BATCH_BACKOFF_MAX_MS 5000

typedef struct pw_batch pw_batch;

/* max: jobs in one batch (1 on the query lane: each answered at once); wait_ms: how long
 * a batch waits to fill. */
PW_MUST_CHECK pw_status pw_batch_create(size_t max, int wait_ms, pw_batch **out);
/* Frees the batch and any job still in it (their offsets untouched). NULL is fine. */
void pw_batch_destroy(pw_batch *b);

/* A command job joins the open batch, or, while the database is away, the held list
 * behind the jobs already waiting. The first job of a batch starts its wait. */
void pw_batch_add(pw_batch *b, pw_job *j, int64_t now_us);

/* True when the loop should go to the database now: it is up and the batch is full, or it
 * has waited BATCH_WAIT_MS and no record is ready (idle: the last poll found none; while
 * records keep coming, a batch takes them up to BATCH_MAX, so a load is written in large
 * transactions); or the database is away and the backoff has passed (reconnect, then
 * write what is held). */
bool pw_batch_due(const pw_batch *b, int64_t now_us, bool idle);

/* How long the loop may wait for a record, in ms, at most cap_ms: until the open batch's
 * wait is over (then 0: a record ready is taken, none makes the batch due), or until the
 * next try at the database while it is away. */
int pw_batch_wait_ms(const pw_batch *b, int64_t now_us, int cap_ms);

/* The next transaction's jobs: up to max of those waiting, held ones first, in the order
 * they came. What is left stays waiting, and makes the batch due again at once. */
pw_job_list pw_batch_take(pw_batch *b);

/* The jobs of a take that were not done (the database went away meanwhile), in their
 * order: held again, in front of every job waiting (they came before them); l is left
 * empty. */
void pw_batch_unget(pw_batch *b, pw_job_list *l);

/* The database is away. True for the first call of an outage (the loop counts it and
 * says so); the next try is after the shortest backoff. The open batch joins the held
 * jobs, so the jobs added while away wait behind it. */
bool pw_batch_outage(pw_batch *b, int64_t now_us);
/* A reconnect failed: the backoff doubles, up to its maximum. */
void pw_batch_backoff(pw_batch *b, int64_t now_us);
/* The database answers again. */
void pw_batch_recovered(pw_batch *b);
bool pw_batch_db_down(const pw_batch *b);

/* Jobs waiting (open and held). */
size_t pw_batch_size(const pw_batch *b);

/* Drops (pw_job_drop: offsets released, never answered here) the waiting jobs of the
 * partitions in parts, or all of them when parts is NULL. Returns how many. */
size_t pw_batch_drop(pw_batch *b, const rd_kafka_topic_partition_list_t *parts, pw_offsets *o);

#endif
