/* Reply bodies as the contract writes them: {"request_id", "status", "data"|"error"}. */
#ifndef PW_REPLY_H
#define PW_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "pw_patient.h"

/* Each returns a new NUL-terminated compact JSON text the caller frees, or NULL when
 * memory runs out. request_id may be NULL (not known). */

/* data is borrowed. */
char *pw_reply_data(const char *request_id, int status, json_t *data);

/* fields is borrowed and may be NULL; message must not hold a token, secret or SQL. */
char *pw_reply_error(const char *request_id, int status, const char *code, const char *message,
                     json_t *fields);

/* 201 or 200 with the patient as data. */
char *pw_reply_patient(const char *request_id, int status, const pw_patient *p);

/* 200 with {"items": [the n patients], "next_cursor": next_cursor, or null when NULL}. */
char *pw_reply_list(const char *request_id, const pw_patient *items, size_t n,
                    const char *next_cursor);

/* 200 for a delete: {"id", "deleted": true, "version", "deleted_at"}. */
char *pw_reply_deleted(const char *request_id, int64_t id, int64_t version, const char *deleted_at);

/* 409 version_conflict with error.current_version. */
char *pw_reply_version_conflict(const char *request_id, int64_t current_version);

/* The contract's fixed error replies: 404 not_found, 409 conflict (fields.dni), 409
 * idempotency_conflict, 500 internal (which reveals nothing). */
char *pw_reply_not_found(const char *request_id);
char *pw_reply_conflict(const char *request_id);
char *pw_reply_idempotency_conflict(const char *request_id);
char *pw_reply_internal(const char *request_id);

/* The error code the contract pairs with a status (400 needs the caller's choice). */
const char *pw_reply_code_for(int status);

#endif
