/* Commands through the database: each command's work and its audit row in one
 * transaction, writes batched (pw_writes), queries one by one (pw_queries), refused
 * commands recorded (pw_audit), and each command's reply built (pw_reply, pw_cursor). */
#ifndef PW_COMMAND_H
#define PW_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pw_config.h"
#include "pw_cursor.h"
#include "pw_db.h"
#include "pw_patient.h"
#include "pw_query.h"
#include "pw_status.h"

typedef enum pw_command_kind {
	PW_COMMAND_CREATE = 0,
	PW_COMMAND_GET,
	PW_COMMAND_LIST,
	PW_COMMAND_REFUSED, /**< the reply is decided already (an error): record it */
	PW_COMMAND_UPDATE,
	PW_COMMAND_DELETE,
} pw_command_kind;

/* One command to answer. Inputs are borrowed; reply is owned by the command. */
typedef struct pw_command {
	pw_command_kind kind;
	const char *owner; /**< "" when the caller was not authenticated */
	const char *request_id;
	const char *command_type; /**< for the audit row: "patient.create", ...; NULL when the
	                               type was missing or unknown */
	const char *src_topic;
	int32_t src_partition;
	int64_t src_offset;
	int64_t command_time;            /**< Unix seconds */
	const pw_patient_input *in;      /**< PW_COMMAND_CREATE */
	const pw_patient_update *update; /**< PW_COMMAND_UPDATE */
	const pw_patient_delete *del;    /**< PW_COMMAND_DELETE */
	const pw_query *query;           /**< PW_COMMAND_GET, PW_COMMAND_LIST */
	int status;                      /**< out (in for PW_COMMAND_REFUSED): reply status */
	char *reply;                     /**< out (in for PW_COMMAND_REFUSED): reply JSON, owned */
	bool done;                       /**< out: committed; the reply may be sent */
} pw_command;

/* A session for running commands: pw_db_create with every statement they use. */
PW_MUST_CHECK pw_status pw_command_db(const pw_config *cfg, pw_db **out, char *errstr,
                                      size_t errstr_size);

/* Answers the commands not done yet: the writes (creates, updates, deletes) in one
 * transaction with the outcome one-at-a-time processing in their order would give, every
 * other command in its own, each with its own outcome (201, 200, 404, 409 conflict,
 * version_conflict or idempotency_conflict, the first reply again for a repeat, or 500
 * internal for the one command the database refuses). A command is done once its transaction
 * committed. PW_E_RETRY: the database went away; the commands not done are untouched, and a call
 * with the same commands after a reconnect answers each as this one would have, so none is ever
 * answered twice differently. cursor_key signs the lists' next_cursor. Blocks. */
PW_MUST_CHECK pw_status pw_command_run(pw_db *db, const pw_cursor_key *cursor_key, pw_command *cmds,
                                       size_t n, char *errstr, size_t errstr_size);

/* Frees the replies of the commands and resets their outputs. */
void pw_command_clear(pw_command *cmds, size_t n);

#endif
