/* The patient.get and patient.list payloads: validation, defaults and the cursor. */
#ifndef PW_QUERY_H
#define PW_QUERY_H

#include <stdint.h>

#include <jansson.h>

#include "pw_cursor.h"
#include "pw_patient.h"
#include "pw_status.h"

#define PW_LIST_LIMIT_DEFAULT 50
#define PW_LIST_LIMIT_MAX     200

typedef struct pw_query {
	int is_list;      /**< 0: patient.get, 1: patient.list */
	int64_t id;       /**< get: the id asked for */
	int limit;        /**< list: 1-200 */
	int64_t after_id; /**< list: resume after this id (0: from the start) */
	int has_dni;
	char dni[PW_DNI_MAX + 1];
	char *q; /**< list: prefix filter as given (owned), or NULL */
} pw_query;

/* Validates a get (is_list 0) or list payload for owner. A list cursor is checked
 * against owner and the payload's own filters. On PW_E_INVALID *fields maps each bad
 * field to a reason (caller owns it). PW_E_NOMEM on allocation failure. Pure. */
PW_MUST_CHECK pw_status pw_query_validate(const json_t *payload, int is_list,
                                          const pw_cursor_key *key, const char *owner,
                                          pw_query *out, json_t **fields);

void pw_query_clear(pw_query *q);

#endif
