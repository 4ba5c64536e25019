/* The write batch: patient.create, patient.update and patient.delete commands in one
 * transaction, with the outcome one-at-a-time processing in their order would give. An
 * owner's writes never meet another owner's (every key leads with the owner), so the batch
 * runs owner by owner, each owner's writes in the order they came: a run of creates as one
 * statement (pw_creates), each update or delete as one (pw_changes). Every command writes
 * its audit row in the same statement as its work. */
#ifndef PW_WRITES_H
#define PW_WRITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pw_db.h"
#include "pw_patient.h"
#include "pw_sql.h"
#include "pw_status.h"

typedef enum pw_writes_kind {
	PW_WRITES_CREATE = 0,
	PW_WRITES_UPDATE,
	PW_WRITES_DELETE,
} pw_writes_kind;

/* What a write came to. */
typedef enum pw_writes_result {
	PW_WRITES_UNDECIDED = 0,
	PW_WRITES_CREATED,          /**< 201 with the patient (new, or as its first reply showed) */
	PW_WRITES_STORED,           /**< an earlier design's reply, as stored */
	PW_WRITES_UPDATED,          /**< 200 with the patient as it is now */
	PW_WRITES_DELETED,          /**< 200 with id, version and deleted_at */
	PW_WRITES_NOT_FOUND,        /**< 404: no live patient of the owner with that id */
	PW_WRITES_VERSION_CONFLICT, /**< 409: the version named is not current */
	PW_WRITES_CONFLICT,         /**< 409: another live patient of the owner has the dni */
	PW_WRITES_IDEMPOTENCY_CONFLICT, /**< 409: the request id came before with another payload */
} pw_writes_result;

typedef struct pw_writes_item {
	/* In, borrowed. */
	pw_writes_kind kind;
	const char *owner;
	const char *request_id;
	const char *src_topic;
	int32_t src_partition;
	int64_t src_offset;
	int64_t command_time;            /**< Unix seconds, for the audit row */
	const pw_patient_input *create;  /**< PW_WRITES_CREATE */
	const pw_patient_update *update; /**< PW_WRITES_UPDATE */
	const pw_patient_delete *del;    /**< PW_WRITES_DELETE */
	/* Out, after PW_OK; freed by pw_writes_clear. */
	pw_writes_result result;
	int status;         /**< the reply's */
	char *stored_reply; /**< PW_WRITES_STORED */
	pw_patient patient; /**< PW_WRITES_CREATED, PW_WRITES_UPDATED */
	int64_t version;    /**< DELETED: the new version; VERSION_CONFLICT: the current one */
	char *deleted_at;   /**< PW_WRITES_DELETED */
} pw_writes_item;

/* The statements the writes run; give them to pw_db_create. */
extern const pw_sql_stmt *const pw_writes_statements[];
extern const size_t pw_writes_statement_count;

/* Runs the n writes in one transaction. On PW_OK every item has its outcome and the
 * transaction is committed. On failure none has (rolled back), so running the same items
 * again answers each as this call would have: PW_E_RETRY (the database is away) or
 * PW_E_INTERNAL (a command the database refuses: the caller can run them one by one to
 * find it), errstr filled. Blocks. */
PW_MUST_CHECK pw_status pw_writes_run(pw_db *db, pw_writes_item *items, size_t n, char *errstr,
                                      size_t errstr_size);

/* Frees the outputs of the items (their inputs are the caller's). */
void pw_writes_clear(pw_writes_item *items, size_t n);

/* Takes an outcome the database kept, `{"outcome": ..., ...}` (migration 005's
 * patient_requests.detail), with its status, into it. PW_E_INTERNAL when it is not one
 * (the statement and this reader disagree), PW_E_NOMEM. For pw_creates and pw_changes. */
PW_MUST_CHECK pw_status pw_writes_take_detail(pw_writes_item *it, int status, const char *detail);

#endif
