/* A load row's command: the row's `op` (create when absent, update or delete) and the
 * payload as that command wants it. */
#ifndef CTL_OP_H
#define CTL_OP_H

#include <stddef.h>

#include <jansson.h>

#include "pw_status.h"

/* Takes the op out of payload and sets *type ("patient.create", ...). For an update or a
 * delete, id and version given as digits (a CSV cell is text) become numbers; anything
 * else is left for the worker to judge. PW_E_INVALID with why filled when op is not one
 * of the three; PW_E_NOMEM. */
PW_MUST_CHECK pw_status ctl_op_take(json_t *payload, const char **type, char *why, size_t why_size);

/* The record key for a command of type: "patient:ID" for an update or a delete naming id
 * (from 1), so one patient's writes share a partition and are answered in the order they
 * were sent; else request_id. Returns buf or request_id. */
const char *ctl_op_key(const char *type, long long id, const char *request_id, char *buf,
                       size_t size);

#endif
