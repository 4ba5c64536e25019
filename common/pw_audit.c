/* One audit row, bound by name. */
#include "pw_audit.h"

#include <inttypes.h>
#include <stdio.h>

typedef struct audit_args {
	const char *owner, *request_id, *command_type, *status, *patient_ids, *source_topic,
	    *source_partition, *source_offset, *command_time;
} audit_args;

#define P(f) PW_SQL_PARAM(audit_args, f)
static const pw_sql_param audit_params[] = {
    P(owner),        P(request_id),       P(command_type),  P(status),      P(patient_ids),
    P(source_topic), P(source_partition), P(source_offset), P(command_time)};
#undef P

enum { NPARAMS = sizeof(audit_params) / sizeof(audit_params[0]) };

const pw_sql_stmt pw_audit_stmt = {"pw_audit", pw_sql_text_audit, audit_params, NPARAMS};
/* The same fields but the owner (the first), which a refused row does not have. */
const pw_sql_stmt pw_audit_refused_stmt = {"pw_audit_refused", pw_sql_text_audit_refused,
                                           audit_params + 1, NPARAMS - 1};

pw_status pw_audit_insert(pw_db *db, const pw_audit_row *row, char *errstr, size_t errstr_size)
{
	char status[16], part[16], off[24], t[24];
	audit_args a = {row->owner,
	                row->request_id,
	                row->command_type,
	                status,
	                row->patient_ids,
	                row->src_topic,
	                part,
	                off,
	                t};
	PGresult *r = NULL;
	pw_status st;

	snprintf(status, sizeof(status), "%d", row->status);
	snprintf(part, sizeof(part), "%" PRId32, row->src_partition);
	snprintf(off, sizeof(off), "%" PRId64, row->src_offset);
	snprintf(t, sizeof(t), "%" PRId64, row->command_time);
	st = pw_db_exec(db, row->owner[0] ? &pw_audit_stmt : &pw_audit_refused_stmt, &a, &r, errstr,
	                errstr_size);
	PQclear(r);
	return st;
}
