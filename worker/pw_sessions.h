/* A lane's database sessions. Each session is a thread with its own connection and its own
 * batch (pw_batch: the open batch, the held jobs, the outage backoff); it writes the jobs of
 * the partitions given to it (partition mod the number of sessions), one transaction at a
 * time. So the batches of different partitions are in flight at once, while a partition's
 * next batch always waits for its previous one: its order and offset watermark are kept as
 * with one session. The lane's thread stays the only one that touches Kafka and the offset
 * watermarks: it adds jobs, takes back the answered ones and sends them; a session wakes it
 * (rd_kafka_queue_yield on its consumer queue) when it has answered some. */
#ifndef PW_SESSIONS_H
#define PW_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "pw_config.h"
#include "pw_cursor.h"
#include "pw_handler.h"
#include "pw_job.h"
#include "pw_metrics.h"
#include "pw_offsets.h"
#include "pw_status.h"

typedef struct pw_sessions pw_sessions;

/* n sessions (at least 1), each with its own connection (not opened yet) and batch of
 * batch_max jobs waiting cfg->batch_wait_ms. cursor_key, metrics (NULL: none) and wake
 * (the lane's consumer queue) are borrowed and must outlive the sessions. */
PW_MUST_CHECK pw_status pw_sessions_create(const pw_config *cfg, pw_topic_kind lane, size_t n,
                                           size_t batch_max, const pw_cursor_key *cursor_key,
                                           pw_metrics *metrics, rd_kafka_queue_t *wake,
                                           pw_sessions **out, char *errstr, size_t errstr_size);

/* Connects every session and starts their threads. A database that is not reachable is an
 * outage (those sessions try again with backoff); PW_E_CONFIG with errstr when it refuses
 * us for good (nothing started). */
PW_MUST_CHECK pw_status pw_sessions_start(pw_sessions *s, char *errstr, size_t errstr_size);

/* How many sessions there are. */
size_t pw_sessions_count(const pw_sessions *s);

/* The job goes to its partition's session. */
void pw_sessions_add(pw_sessions *s, pw_job *j);

/* The lane's last poll found no record ready (idle) or found one: an open batch that has
 * waited BATCH_WAIT_MS is written once the lane is idle (pw_batch_due). */
void pw_sessions_set_idle(pw_sessions *s, bool idle);

/* How long the lane may wait for a record, in ms, at most cap_ms: until the wait of an
 * open batch is over, so it learns soon whether it is idle. Sessions busy with a batch,
 * waiting for the database, or with a batch due anyway (full, or held) do not count: they
 * wake the lane themselves once they have answers. */
int pw_sessions_wait_ms(pw_sessions *s, int64_t now_us, int cap_ms);

/* The jobs answered since the last call (their replies set), in the order each session
 * answered them; the caller sends them. */
pw_job_list pw_sessions_answered(pw_sessions *s);

/* Some session cannot reach the database. */
bool pw_sessions_db_down(pw_sessions *s);
/* The database refused work for good (or memory ran out): the lane must stop. */
bool pw_sessions_fatal(pw_sessions *s);

/* Partitions revoked: waits (up to timeout_ms) for the batches in flight to finish, then
 * drops (pw_job_drop) the waiting jobs of parts. Returns how many were dropped. */
size_t pw_sessions_revoke(pw_sessions *s, const rd_kafka_topic_partition_list_t *parts,
                          pw_offsets *o, int timeout_ms);

/* Shutdown: each session writes what waits (while its database answers), then its thread
 * ends. Afterwards pw_sessions_answered gives the last answers and pw_sessions_drop_all
 * what is left. */
void pw_sessions_stop(pw_sessions *s);

/* Drops (pw_job_drop) every waiting job; for after pw_sessions_stop. Returns how many. */
size_t pw_sessions_drop_all(pw_sessions *s, pw_offsets *o);

/* Counters since the last call: database calls, the commands they carried, the time
 * spent in them, and outages begun. */
void pw_sessions_stats(pw_sessions *s, unsigned long *calls, unsigned long *items, int64_t *db_us,
                       unsigned long *outages);

/* Stops the threads if they run, frees the sessions and the jobs still in them (their
 * offsets untouched). NULL is fine. */
void pw_sessions_destroy(pw_sessions *s);

#endif
