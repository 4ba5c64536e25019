/* Producing a reply or a dead letter: the record, its headers, and what to do when the
 * producer's queue is full. Shared by the worker's lanes and by replay --reply. */
#ifndef PW_PRODUCE_H
#define PW_PRODUCE_H

#include <stdatomic.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "pw_envelope.h"
#include "pw_handler.h"
#include "pw_status.h"

/* Hands the reply to o (reply text and status) to the producer: to o->reply_to (and
 * o->reply_partition), key o->request_id, headers request_id, status and, when the command
 * had one, kafka_correlationId (Spring's ReplyingKafkaTemplate matches replies by it).
 * opaque comes back in the delivery report. While the queue is full it serves delivery
 * reports and tries again, until it is queued or *stop (NULL: never) becomes true.
 * PW_OK: queued. PW_E_RETRY: stopped while the queue was full. PW_E_INVALID: the reply
 * cannot be delivered (no such topic or partition, too large, ...): dead-letter the
 * record. PW_E_INTERNAL: the producer failed for good. *err is librdkafka's answer. */
PW_MUST_CHECK pw_status pw_produce_reply(rd_kafka_t *p, const pw_handler_outcome *o,
                                         const char *reply, int status, void *opaque,
                                         const atomic_int *stop, rd_kafka_resp_err_t *err);

/* The record where it came from, a dead letter: to dlq_topic with its key and value
 * unchanged, headers `error` (the reason's code) and `source` (topic/partition/offset).
 * Statuses as pw_produce_reply. */
typedef struct pw_produce_dead {
	const char *dlq_topic;
	const void *key;
	size_t key_len;
	const void *value;
	size_t value_len;
	pw_dlq_reason reason;
	const char *src_topic;
	int32_t src_partition;
	int64_t src_offset;
} pw_produce_dead;

PW_MUST_CHECK pw_status pw_produce_dead_letter(rd_kafka_t *p, const pw_produce_dead *d,
                                               void *opaque, const atomic_int *stop,
                                               rd_kafka_resp_err_t *err);

/* True for a delivery report's error that retrying cannot fix (the reply then becomes a
 * reply_undeliverable dead letter). */
bool pw_produce_permanent(rd_kafka_resp_err_t err);

#endif
