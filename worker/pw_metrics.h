/* What the worker has done, for /metrics and /readyz. Both lanes write, the HTTP
 * thread reads: counters are atomics, the per-partition tables sit behind a mutex. No call
 * blocks for longer than that mutex is held (a copy of the lanes' state). Every function but
 * pw_metrics_lanes_ready and pw_metrics_render accepts a NULL pw_metrics and does nothing. */
#ifndef PW_METRICS_H
#define PW_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pw_envelope.h"
#include "pw_keyring.h"
#include "pw_status.h"

/* Partitions per lane whose lag is reported; more are summed into one "other" row so
 * the page (and its memory) stays bounded however many partitions a topic has. */
#define PW_METRICS_LAG_MAX 256

typedef struct pw_metrics pw_metrics;

typedef struct pw_metrics_lag_row {
	const char *topic; /**< borrowed for the call */
	int32_t partition;
	int64_t lag; /**< records between the consumer's position and the partition's end */
} pw_metrics_lag_row;

/* Zeroed counters and empty tables in *out, freed with pw_metrics_destroy; PW_E_NOMEM. */
PW_MUST_CHECK pw_status pw_metrics_create(pw_metrics **out);
void pw_metrics_destroy(pw_metrics *m); /* NULL is fine */

/* A command answered: its type ("patient.create", ..., "unknown"), the reply's status
 * and the time from taking the record to the reply's acknowledgement. */
void pw_metrics_answered(pw_metrics *m, pw_topic_kind lane, const char *type, int status,
                         int64_t us);
void pw_metrics_dead_letter(pw_metrics *m, pw_dlq_reason why);

/* The steps of a command's way, timed one by one so the tail of a lane's latency can be
 * told apart: in Kafka before the worker took it, its token and checks, waiting for a
 * database session, its transaction (commit included), waiting for the lane to send the
 * reply, and the broker's acknowledgement. */
typedef enum pw_metrics_step {
	PW_STEP_KAFKA = 0,
	PW_STEP_VERIFY,
	PW_STEP_WAIT,
	PW_STEP_DATABASE,
	PW_STEP_HANDOFF,
	PW_STEP_DELIVERY,
	PW_STEPS
} pw_metrics_step;
/* A command answered, step by step; us[k] < 0: that step was not timed. */
void pw_metrics_steps(pw_metrics *m, pw_topic_kind lane, const int64_t us[PW_STEPS]);
/* A database call (a batch of commands) and how long it took. */
void pw_metrics_db_call(pw_metrics *m, pw_topic_kind lane, size_t commands, int64_t us);
void pw_metrics_db_outage(pw_metrics *m, pw_topic_kind lane);
/* The lane's producer failed for good and was replaced (pw_outbox_renew). */
void pw_metrics_producer_renewed(pw_metrics *m, pw_topic_kind lane);
void pw_metrics_db_reconnect(pw_metrics *m, pw_topic_kind lane);

/* The lane's state, refreshed by its loop: whether its consumer holds an assignment
 * from the group (joined, possibly with no partitions), how many partitions, whether it
 * is paused because the database is down, records in flight. */
void pw_metrics_lane(pw_metrics *m, pw_topic_kind lane, bool joined, int partitions, bool db_down,
                     size_t inflight);
/* How many of the lane's partitions wait for the key set's refresh now (an unknown kid). */
void pw_metrics_waiting_for_keys(pw_metrics *m, pw_topic_kind lane, int partitions);
/* The lane's token cache counters (cumulative) and entries held now. */
void pw_metrics_token_cache(pw_metrics *m, pw_topic_kind lane, unsigned long hits,
                            unsigned long misses, size_t entries);
/* Replaces the lane's consumer lag table with n rows (copied; the topics are borrowed for the
 * call only). */
/* Shows the key set's refreshes, keys and age (the ring must outlive m's renders). */
void pw_metrics_keyring(pw_metrics *m, pw_keyring *ring);

void pw_metrics_lag(pw_metrics *m, pw_topic_kind lane, const pw_metrics_lag_row *rows, size_t n);

/* True when both lanes joined their group and neither waits for the database; else false
 * with the reason in why. */
bool pw_metrics_lanes_ready(pw_metrics *m, char *why, size_t why_size);

/* The Prometheus text exposition (version 0.0.4) of everything above, with ready (the
 * caller's last readiness verdict). A new string in *text (caller frees) of *len bytes, or
 * PW_E_NOMEM with *text NULL. */
PW_MUST_CHECK pw_status pw_metrics_render(pw_metrics *m, bool ready, char **text, size_t *len);

#endif
