/* A change: one patient.update or patient.delete of a write batch, one statement
 * (sql/parts/change_read.sql + change_write.sql), with its outcome, its record and its
 * audit row. On Citus, where that statement's data-modifying CTEs run as ten subplans,
 * the same outcome from statements Citus routes whole: the same reading half +
 * sql/parts/change_decide.sql, then the UPDATE and the record and audit inserts, each by
 * the owner's key. */
#ifndef PW_CHANGES_H
#define PW_CHANGES_H

#include <stddef.h>

#include "pw_db.h"
#include "pw_sql.h"
#include "pw_status.h"
#include "pw_writes.h"

/* The statements pw_changes_run runs (the second on Citus); among pw_writes_statements. */
extern const pw_sql_stmt pw_changes_stmt;
extern const pw_sql_stmt pw_changes_decide_stmt;

/* The update or delete it, in the caller's transaction with its owner set
 * (pw_db_set_owner), after the owner's earlier writes of the batch. On PW_OK it has its
 * outcome; else the transaction is spoiled (roll back), errstr filled. Blocks. */
PW_MUST_CHECK pw_status pw_changes_run(pw_db *db, pw_writes_item *it, char *errstr,
                                       size_t errstr_size);

#endif
