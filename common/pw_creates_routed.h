/* A run of creates on Citus: the outcome sql/create_batch.sql gives, reached with
 * statements Citus sends whole to the owner's shard (router-planned, one task each). Citus
 * splits create_batch.sql's data-modifying CTEs (INSERT ... SELECT from the run's arrays)
 * into nine subplans relayed through the coordinator, which cost a create about 14 times
 * its time on one server (README, "Scaling: the database"). Here instead, per round:
 *   1. sql/create_prior.sql: what the owner already has for each command (one SELECT);
 *   2. the new patients, a multi-row INSERT ... VALUES ... ON CONFLICT DO NOTHING;
 *   3. the outcomes decided here, as create_batch.sql's `decided` decides them;
 *   4. the 409s' patient_requests rows and the audit rows a patient row is not, two
 *      multi-row INSERTs (only when there are any: a run of new creates has none);
 *   5. sql/create_rows.sql: the 201s' patients in reply form.
 * The two statements must give the same outcomes: `ctest -L citus` runs the batch,
 * create and replay tests through this one. */
#ifndef PW_CREATES_ROUTED_H
#define PW_CREATES_ROUTED_H

#include <stddef.h>

#include "pw_db.h"
#include "pw_sql.h"
#include "pw_status.h"
#include "pw_writes.h"

/* Steps 1 and 5; among pw_writes_statements. */
extern const pw_sql_stmt pw_creates_prior_stmt;
extern const pw_sql_stmt pw_creates_rows_stmt;

/* As pw_creates_run (same arguments, same outcomes, same errors). */
PW_MUST_CHECK pw_status pw_creates_routed_run(pw_db *db, pw_writes_item *items, const size_t *idx,
                                              size_t n, char *errstr, size_t errstr_size);

#endif
