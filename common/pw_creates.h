/* A run of creates: one owner's consecutive patient.create commands of a write batch in
 * one statement (sql/create_batch.sql), each with its own outcome and its audit row. */
#ifndef PW_CREATES_H
#define PW_CREATES_H

#include <stddef.h>

#include "pw_db.h"
#include "pw_sql.h"
#include "pw_status.h"
#include "pw_writes.h"

/* The statement pw_creates_run runs; among pw_writes_statements. */
extern const pw_sql_stmt pw_creates_stmt;

/* The creates items[idx[0..n)], all of one owner and one source topic, in the caller's
 * transaction with that owner set (pw_db_set_owner). A command that a concurrent writer
 * left undecided (it wrote the same request or dni) is asked again, up to three times in
 * all. On PW_OK every one has its outcome; else the transaction is spoiled (roll back),
 * errstr filled. Blocks. */
PW_MUST_CHECK pw_status pw_creates_run(pw_db *db, pw_writes_item *items, const size_t *idx,
                                       size_t n, char *errstr, size_t errstr_size);

#endif
