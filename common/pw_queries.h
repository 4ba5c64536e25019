/* patient.get and patient.list against the database: the patients an owner may see, read
 * inside the caller's transaction (scoped with pw_db_set_owner). */
#ifndef PW_QUERIES_H
#define PW_QUERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pw_db.h"
#include "pw_patient.h"
#include "pw_query.h"
#include "pw_sql.h"
#include "pw_status.h"

/* The statements below run; give them to pw_db_create. */
extern const pw_sql_stmt pw_queries_get_stmt;
extern const pw_sql_stmt pw_queries_list_stmt;

/* The owner's patient with this id: *found and *out (free with pw_patient_clear), or
 * *found false (the same whether another owner has it or nobody does). Blocks. */
PW_MUST_CHECK pw_status pw_queries_get(pw_db *db, const char *owner, int64_t id, pw_patient *out,
                                       bool *found, char *errstr, size_t errstr_size);

/* One page of the owner's patients by ascending id, after q->after_id, filtered by q's
 * dni and name prefix: *items (n of them, at most q->limit; free with
 * pw_queries_free_page) and *more when a next page exists. Blocks. */
PW_MUST_CHECK pw_status pw_queries_list(pw_db *db, const char *owner, const pw_query *q,
                                        pw_patient **items, size_t *n, bool *more, char *errstr,
                                        size_t errstr_size);

void pw_queries_free_page(pw_patient *items, size_t n);

#endif
