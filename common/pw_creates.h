/* The create batch: many patient.create commands in one transaction, one statement per
 * owner (sql/create_batch.sql), each command with its own outcome and its audit row. */
#ifndef PW_CREATES_H
#define PW_CREATES_H

#include <stddef.h>
#include <stdint.h>

#include "pw_db.h"
#include "pw_patient.h"
#include "pw_sql.h"
#include "pw_status.h"

/* What the batch decided for one command. */
typedef enum pw_creates_result {
	PW_CREATES_CREATED =
	    1,             /**< 201 with the patient: new, or a repeat of the create that made it */
	PW_CREATES_STORED, /**< answered by the earlier one-at-a-time design: its reply, as stored
	                    */
	PW_CREATES_CONFLICT, /**< 409 conflict: this owner already has a patient with this dni */
	PW_CREATES_IDEMPOTENCY_CONFLICT, /**< 409: the request id came before with another payload
	                                  */
} pw_creates_result;

typedef struct pw_creates_item {
	/* In, borrowed. */
	const char *owner;
	const char *request_id;
	const char *src_topic;
	int32_t src_partition;
	int64_t src_offset;
	int64_t command_time; /**< Unix seconds, for the audit row */
	const pw_patient_input *in;
	/* Out, after PW_OK; freed by pw_creates_clear. */
	pw_creates_result result;
	int stored_status;  /**< PW_CREATES_STORED: the stored reply's status */
	char *stored_reply; /**< PW_CREATES_STORED */
	pw_patient patient; /**< PW_CREATES_CREATED */
} pw_creates_item;

/* The statement pw_creates_run runs; give it to pw_db_create. */
extern const pw_sql_stmt pw_creates_stmt;

/* Runs the n creates in one transaction: per owner (and source topic), set the owner and
 * run the statement over all of that owner's items. On PW_OK every item has its outcome
 * and the transaction is committed. On failure none has (the transaction rolled back), so
 * running the same items again answers each as this call would have: PW_E_RETRY (the
 * database is away) or PW_E_INTERNAL (a command the database refuses: the caller can run
 * them one by one to find it), errstr filled. Blocks. */
PW_MUST_CHECK pw_status pw_creates_run(pw_db *db, pw_creates_item *items, size_t n, char *errstr,
                                       size_t errstr_size);

/* Frees the outputs of the items (their inputs are the caller's). */
void pw_creates_clear(pw_creates_item *items, size_t n);

#endif
