/* The worker's database session: SET ROLE-d, tenant-scoped transactions that do each
 * command's work and write its audit row together, outage-aware. */
#ifndef PW_DB_H
#define PW_DB_H

#include <stddef.h>
#include <stdint.h>

#include "pw_config.h"
#include "pw_cursor.h"
#include "pw_patient.h"
#include "pw_query.h"
#include "pw_status.h"

typedef struct pw_db pw_db;

typedef enum pw_db_kind {
	PW_DB_CREATE = 0,
	PW_DB_GET,
	PW_DB_LIST,
	PW_DB_AUDIT_ONLY, /**< the reply is already decided (an error): record it */
} pw_db_kind;

/* One answered command. Inputs are borrowed; reply is owned by the item. */
typedef struct pw_db_item {
	pw_db_kind kind;
	const char *owner; /**< "" when the caller was not authenticated */
	const char *request_id;
	const char *command_type; /**< for the audit row: "patient.create", ... */
	const char *src_topic;
	int32_t src_partition;
	int64_t src_offset;
	int64_t command_time;            /**< Unix seconds */
	const pw_patient_input *in;      /**< PW_DB_CREATE */
	const pw_query *query;           /**< PW_DB_GET, PW_DB_LIST */
	const pw_cursor_key *cursor_key; /**< PW_DB_LIST: to sign next_cursor */
	int status;                      /**< out (in for PW_DB_AUDIT_ONLY): reply status */
	char *reply;                     /**< out (in for PW_DB_AUDIT_ONLY): reply JSON, owned */
	int done;                        /**< out: committed; the reply may be sent */
} pw_db_item;

/* Allocates the handle; does not connect. cfg must outlive it. */
PW_MUST_CHECK pw_status pw_db_create(const pw_config *cfg, pw_db **out);
void pw_db_destroy(pw_db *db); /* NULL is fine */

/* Connects (or reconnects), switches to DATABASE_ROLE and checks that the session
 * cannot bypass row-level security. PW_E_RETRY: not reachable now, try later.
 * PW_E_CONFIG: reachable but unusable (role missing, not migrated, RLS bypassed);
 * errstr says which. Blocks up to the connect timeout. */
PW_MUST_CHECK pw_status pw_db_connect(pw_db *db, char *errstr, size_t errstr_size);

/* 1 when the session is connected (as far as libpq knows). */
int pw_db_connected(const pw_db *db);

/* Runs the items, each in its own transaction with its audit row, each with its own
 * outcome (201, 409 conflict, the stored reply of a repeat, 409 idempotency_conflict,
 * 200, 404, 500 internal). Items already done are skipped, so after PW_E_RETRY (the
 * database went away) the caller reconnects and calls again with the same items: no
 * item is ever answered twice differently. Blocks. */
PW_MUST_CHECK pw_status pw_db_run(pw_db *db, pw_db_item *items, size_t n, char *errstr,
                                  size_t errstr_size);

/* Frees the replies of the items and resets their outputs. */
void pw_db_items_clear(pw_db_item *items, size_t n);

#endif
