/* From one consumed record to its outcome: a dead letter, a reply, or a create to run.
 * Pure: parse, verify and validate touch no network and no database, so a batch of
 * records can be decided first and their creates written together. */
#ifndef PW_HANDLERS_H
#define PW_HANDLERS_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "pw_command.h"
#include "pw_config.h"
#include "pw_envelope.h"
#include "pw_jwt.h"
#include "pw_patient.h"
#include "pw_query.h"
#include "pw_status.h"

typedef enum pw_outcome_kind {
	PW_OUT_DLQ = 0, /**< no reply can be addressed: dead-letter the record */
	PW_OUT_DB,      /**< answered through the database (work and audit row) */
} pw_outcome_kind;

typedef struct pw_outcome {
	pw_outcome_kind kind;
	pw_dlq_reason dlq;       /**< PW_OUT_DLQ */
	pw_command_kind db_kind; /**< PW_OUT_DB: PW_COMMAND_REFUSED when the reply is an error */
	char *request_id;        /**< owned; NULL for a dead letter */
	char *reply_to;          /**< owned; NULL for a dead letter */
	int32_t reply_partition; /**< kafka_replyPartition, else RD_KAFKA_PARTITION_UA */
	void *correlation;       /**< owned: kafka_correlationId, copied byte for byte */
	size_t correlation_len;  /**< its length; correlation NULL when absent */
	char command_type[32];   /**< for the audit row: the type asked, or "unknown" */
	int64_t command_time;    /**< Unix seconds: append time, else when taken */
	int log_append_time;     /**< command_time is the broker's append time */
	int status;              /**< the reply's, once decided */
	char *reply;             /**< owned; decided here for errors, else by the database */
	char owner[PW_OWNER_MAX + 1]; /**< "" when the token was refused */
	pw_patient_input in;          /**< PW_COMMAND_CREATE */
	pw_query query;               /**< PW_COMMAND_GET, PW_COMMAND_LIST */
} pw_outcome;

typedef struct pw_handler_ctx {
	const pw_config *cfg;
	pw_jwt_verifier *jwt; /**< changed by every verification (its cache): one per lane */
	const pw_cursor_key *cursor_key;
} pw_handler_ctx;

/* The time a command is judged at: the broker's append time when the record has one,
 * else now. A producer's CreateTime is never trusted (contract). Sets *log_append. */
int64_t pw_command_time(const rd_kafka_message_t *m, int *log_append);

/* Decides a record's outcome. PW_OK with *out filled (clear it with
 * pw_outcome_clear), or PW_E_NOMEM. */
PW_MUST_CHECK pw_status pw_handle_record(const pw_handler_ctx *hc, const rd_kafka_message_t *m,
                                         pw_topic_kind topic, pw_outcome *out);

void pw_outcome_clear(pw_outcome *out);

/* The headers of the reply to out, with status: request_id, status, and the command's
 * kafka_correlationId when it had one (Spring's ReplyingKafkaTemplate matches replies by
 * it). NULL when out of memory. */
rd_kafka_headers_t *pw_reply_headers(const pw_outcome *out, int status);

#endif
