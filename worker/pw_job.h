/* A job: one record taken from a command topic, from the poll to its acknowledged reply.
 * It holds a copy of the record (a dead letter carries key and value unchanged), the
 * handler's outcome, and its place in its partition's offset watermark. */
#ifndef PW_JOB_H
#define PW_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "pw_handler.h"
#include "pw_log.h"
#include "pw_offsets.h"
#include "pw_status.h"

typedef struct pw_job {
	pw_offsets_pending *pending; /**< its place in the watermark; NULL once settled */
	char *src_topic;
	int32_t partition;
	int64_t offset;
	void *key;
	size_t key_len;
	void *value;
	size_t value_len;
	pw_handler_outcome out;
	bool dead;        /**< the dead letter, not the reply, is being produced */
	int64_t taken_us; /**< when the record was taken (monotonic) */
	/** Where its time went, for pw_metrics_steps: how old the record was when taken
	 * (wall clock minus its Kafka timestamp; -1 when unknown), then monotonic times of
	 * each step's end (0: not reached). */
	int64_t age_us, decided_us, db_start_us, db_end_us, sent_us;
	struct pw_job *next;
} pw_job;

/* A FIFO of jobs; zero-initialise it. */
typedef struct pw_job_list {
	pw_job *head, *tail;
	size_t n;
} pw_job_list;

/* Copies the record and tracks its offset in o (with the memory it holds). PW_E_NOMEM. */
PW_MUST_CHECK pw_status pw_job_new(const rd_kafka_message_t *m, pw_offsets *o, pw_job **out);

/* Frees a job whose offset was settled (acknowledged or released) already. NULL is fine. */
void pw_job_free(pw_job *j);

/* A job that will never be answered here (its partition was revoked, the worker stops, the
 * producer failed for good): its offset is released, so the watermark stays before it and
 * the record is answered again by whoever consumes the partition next; then it is freed. */
void pw_job_drop(pw_job *j, pw_offsets *o);

/* The job just made will be made again from the same record, read again once its
 * partition resumes (it was sought back to it): its offset is forgotten, then it is freed. */
void pw_job_untake(pw_job *j, pw_offsets *o);

void pw_job_list_push(pw_job_list *l, pw_job *j);
pw_job *pw_job_list_pop(pw_job_list *l); /* NULL when empty */

/* Drops (pw_job_drop) the jobs of the partitions in parts, keeping the others in order;
 * parts NULL drops them all. Returns how many were dropped. */
size_t pw_job_list_drop(pw_job_list *l, const rd_kafka_topic_partition_list_t *parts,
                        pw_offsets *o);

/* The log context of the job: ids only, never a token or a patient field. */
void pw_job_log_ctx(const pw_job *j, pw_log_ctx *ctx);

#endif
