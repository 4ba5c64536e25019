/* From one consumed record to its outcome: a dead letter, or a command to answer through
 * the database (with its reply already decided when it is an error). Pure: the record is
 * parsed, its token verified and its payload validated with no network and no database,
 * so the records of a batch are decided first and their work is written together. */
#ifndef PW_HANDLER_H
#define PW_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "pw_command.h"
#include "pw_config.h"
#include "pw_cursor.h"
#include "pw_envelope.h"
#include "pw_jwt.h"
#include "pw_patient.h"
#include "pw_query.h"
#include "pw_status.h"

/* A record header: present or not, and its bytes (borrowed). */
typedef struct pw_handler_header {
	bool present;
	const void *value; /**< NULL for a header with a null value */
	size_t len;
} pw_handler_header;

/* What the handler reads of a consumed record, borrowed from it. */
typedef struct pw_handler_record {
	const void *value;
	size_t len;
	pw_handler_header authorization;   /**< "Bearer <jwt>" when the body has no token */
	pw_handler_header correlation;     /**< Spring's kafka_correlationId */
	pw_handler_header reply_topic;     /**< Spring's kafka_replyTopic */
	pw_handler_header reply_partition; /**< Spring's kafka_replyPartition */
	int64_t append_time_s; /**< the broker's LogAppendTime, Unix seconds; -1 when none */
	int64_t taken_at_s;    /**< when the worker took it: the command's time without one */
} pw_handler_record;

typedef enum pw_handler_kind {
	PW_HANDLER_DEAD_LETTER = 0, /**< no reply can be addressed: dead-letter the record */
	PW_HANDLER_COMMAND,         /**< answered through the database (work and audit row) */
	PW_HANDLER_WAIT, /**< not decided yet: the token's kid waits for the key set's refresh
	                      (pw_keyring_kid_waits); take the record again once it is done */
} pw_handler_kind;

typedef struct pw_handler_outcome {
	pw_handler_kind kind;
	pw_dlq_reason dlq;       /**< PW_HANDLER_DEAD_LETTER */
	pw_command_kind command; /**< PW_COMMAND_REFUSED when the reply is an error */
	char *request_id;        /**< owned; NULL for a dead letter */
	char *reply_to;          /**< owned; NULL for a dead letter */
	int32_t reply_partition; /**< kafka_replyPartition, else RD_KAFKA_PARTITION_UA */
	void *correlation;       /**< owned: kafka_correlationId, copied byte for byte */
	size_t correlation_len;  /**< its length; correlation NULL when absent */
	char command_type[32];   /**< the type asked, or "unknown" (the metrics' label) */
	bool type_known;         /**< command_type is a type of the contract (the audit row's
	                              command_type is NULL otherwise) */
	int64_t command_time;    /**< Unix seconds: append time, else when taken */
	bool log_append_time;    /**< command_time is the broker's append time */
	int status;              /**< the reply's, once decided */
	char *reply;             /**< owned; decided here for errors, else by the database */
	char owner[PW_JWT_OWNER_MAX + 1]; /**< "" when the token was refused */
	pw_patient_input in;              /**< PW_COMMAND_CREATE */
	pw_patient_update update;         /**< PW_COMMAND_UPDATE */
	pw_patient_delete del;            /**< PW_COMMAND_DELETE */
	pw_query query;                   /**< PW_COMMAND_GET, PW_COMMAND_LIST */
} pw_handler_outcome;

/* What deciding needs, per lane. */
typedef struct pw_handler {
	const pw_config *cfg;
	pw_jwt_verifier *jwt;            /**< changed by every verification (its cache) */
	const pw_cursor_key *cursor_key; /**< checks list cursors */
} pw_handler;

/* The record as the handler reads it: value, the headers it looks at, the append time.
 * now_s is when the worker took it. Borrows from m. */
void pw_handler_record_of(const rd_kafka_message_t *m, int64_t now_s, pw_handler_record *out);

/* Decides a record's outcome in the contract's order: size, JSON, request_id, reply_to
 * (a dead letter), then the token (401, 403), then type and payload (400). PW_OK with *out
 * filled (clear it with pw_handler_outcome_clear), or PW_E_NOMEM. Only a key ring with its
 * thread running makes an outcome PW_HANDLER_WAIT. */
PW_MUST_CHECK pw_status pw_handler_decide(pw_handler *h, const pw_handler_record *r,
                                          pw_topic_kind lane, pw_handler_outcome *out);

void pw_handler_outcome_clear(pw_handler_outcome *out);

/* The command that answers outcome o (of kind PW_HANDLER_COMMAND), taken from the record at
 * topic/partition/offset: the one mapping from a decided record to the database's work,
 * for the worker and replay alike. It borrows from o, but for the reply of a refused
 * command, which moves into it until pw_handler_from_command. */
void pw_handler_to_command(pw_handler_outcome *o, const char *topic, int32_t partition,
                           int64_t offset, pw_command *out);

/* After pw_command_run, done or not: the command's reply and status move back into o (a
 * command not done keeps its refused reply for the next try). */
void pw_handler_from_command(pw_handler_outcome *o, pw_command *c);

#endif
