/* The op of a load row. */
#include "ctl_op.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *op, *type;
} ops[] = {
    {"create", "patient.create"},
    {"update", "patient.update"},
    {"delete", "patient.delete"},
};

/* "17" → 17 in place; anything but plain digits stays as it is. */
static pw_status to_number(json_t *payload, const char *key)
{
	json_t *v = json_object_get(payload, key);
	const char *s = json_string_value(v);
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return PW_OK;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return PW_OK;
	return json_object_set_new(payload, key, json_integer((json_int_t)n)) == 0 ? PW_OK
	                                                                           : PW_E_NOMEM;
}

pw_status ctl_op_take(json_t *payload, const char **type, char *why, size_t why_size)
{
	json_t *op = json_object_get(payload, "op");
	const char *name = op == NULL ? "create" : json_string_value(op);
	size_t i = 0;

	while (name != NULL && i < sizeof(ops) / sizeof(ops[0]) && strcmp(name, ops[i].op) != 0)
		i++;
	if (name == NULL || i == sizeof(ops) / sizeof(ops[0])) {
		snprintf(why, why_size, "op must be create, update or delete");
		return PW_E_INVALID;
	}
	*type = ops[i].type;
	if (op != NULL && json_object_del(payload, "op") != 0)
		return PW_E_NOMEM;
	if (i == 0)
		return PW_OK;
	pw_status st = to_number(payload, "id");
	return st == PW_OK ? to_number(payload, "version") : st;
}

const char *ctl_op_key(const char *type, long long id, const char *request_id, char *buf,
                       size_t size)
{
	if (id < 1 || (strcmp(type, "patient.update") != 0 && strcmp(type, "patient.delete") != 0))
		return request_id;
	if (snprintf(buf, size, "patient:%lld", id) >= (int)size)
		return request_id;
	return buf;
}
