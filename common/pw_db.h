/* The worker's database session: SET ROLE-d, tenant-scoped transactions, outage-aware. */
#ifndef PW_DB_H
#define PW_DB_H

#include <stddef.h>

#include "pw_config.h"
#include "pw_patient.h"
#include "pw_status.h"

typedef struct pw_db pw_db;

/* One create to run: inputs borrowed, the reply filled in by pw_db_create_batch. */
typedef struct pw_create_item {
	const char *owner;
	const char *request_id;
	const pw_patient_input *in;
	int status;  /**< out: reply status, 0 while unanswered */
	char *reply; /**< out: reply JSON (owned by the item; free it), NULL while unanswered */
} pw_create_item;

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

/* Runs the creates, each with its own outcome (201, 409 conflict, the stored reply of a
 * repeat, 409 idempotency_conflict, 500 internal). Items that already have a reply are
 * skipped, so after PW_E_RETRY (the database went away) the caller reconnects and calls
 * again with the same items: those answered stay answered, the rest are retried; no
 * item is ever answered twice differently. Blocks. */
PW_MUST_CHECK pw_status pw_db_create_batch(pw_db *db, pw_create_item *items, size_t n, char *errstr,
                                           size_t errstr_size);

/* Frees the replies of the items and zeroes their outputs. */
void pw_db_items_clear(pw_create_item *items, size_t n);

#endif
