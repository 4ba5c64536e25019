/* The audit row of a command answered outside the create batch: queries and refused
 * commands, written in the command's own transaction; to patient_audit_tenant
 * (sql/audit.sql), or patient_audit_refused (sql/audit_refused.sql) when the token was
 * refused. */
#ifndef PW_AUDIT_H
#define PW_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "pw_db.h"
#include "pw_sql.h"
#include "pw_status.h"

typedef struct pw_audit_row {
	const char *owner; /**< "" when the token was refused: a patient_audit_refused row */
	const char *request_id;
	const char *command_type; /**< "patient.get", ...; NULL when missing or unknown */
	int status;
	const char *patient_ids; /**< PostgreSQL array literal, "{}" for none */
	const char *src_topic;
	int32_t src_partition;
	int64_t src_offset;
	int64_t command_time; /**< Unix seconds */
} pw_audit_row;

/* The statements pw_audit_insert runs; give both to pw_db_create. */
extern const pw_sql_stmt pw_audit_stmt, pw_audit_refused_stmt;

/* Inserts the row in the open transaction (nothing when the record has one already: a
 * redelivery or a replay). Blocks. */
PW_MUST_CHECK pw_status pw_audit_insert(pw_db *db, const pw_audit_row *row, char *errstr,
                                        size_t errstr_size);

#endif
