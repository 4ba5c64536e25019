/* Record → outcome, in the contract's order: dead-letter checks, token, then command. */
#include "pw_handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pw_kafka.h"
#include "pw_reply.h"

int64_t pw_command_time(const rd_kafka_message_t *m, int *log_append)
{
	rd_kafka_timestamp_type_t type;
	int64_t ts = rd_kafka_message_timestamp(m, &type);

	*log_append = type == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME && ts >= 0;
	if (*log_append)
		return ts / 1000;
	return (int64_t)time(NULL);
}

void pw_outcome_clear(pw_outcome *out)
{
	if (out == NULL)
		return;
	free(out->request_id);
	free(out->reply_to);
	free(out->correlation);
	free(out->reply);
	pw_patient_input_clear(&out->in);
	pw_query_clear(&out->query);
	memset(out, 0, sizeof(*out));
}

rd_kafka_headers_t *pw_reply_headers(const pw_outcome *out, int status)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(3);
	char buf[16];

	if (h == NULL)
		return NULL;
	snprintf(buf, sizeof(buf), "%d", status);
	if (rd_kafka_header_add(h, "request_id", -1, out->request_id, -1) ||
	    rd_kafka_header_add(h, "status", -1, buf, -1) ||
	    (out->correlation != NULL &&
	     rd_kafka_header_add(h, "kafka_correlationId", -1, out->correlation,
	                         (ssize_t)out->correlation_len))) {
		rd_kafka_headers_destroy(h);
		return NULL;
	}
	return h;
}

/* Spring Kafka's request/reply headers. kafka_replyTopic stands in for a reply_to the
 * body does not have, under the same prefix rule; kafka_replyPartition (a 4-byte
 * big-endian int, as Spring writes it) only comes with it. A header that breaks the rule
 * dead-letters the record like a bad reply_to. Returns PW_E_INVALID for that,
 * PW_E_NOMEM, or PW_OK. */
static pw_status spring_headers(const pw_config *cfg, const rd_kafka_message_t *m,
                                const pw_envelope *env, pw_outcome *out)
{
	const void *v;
	size_t n;

	if (pw_kafka_header(m, "kafka_correlationId", &v, &n) && v != NULL) {
		out->correlation = malloc(n ? n : 1);
		if (out->correlation == NULL)
			return PW_E_NOMEM;
		memcpy(out->correlation, v, n);
		out->correlation_len = n;
	}
	if (env->reply_to_in_body || !pw_kafka_header(m, "kafka_replyTopic", &v, &n))
		return PW_OK;
	char topic[256];
	if (v == NULL || n == 0 || n >= sizeof(topic) || memchr(v, '\0', n) != NULL)
		return PW_E_INVALID;
	memcpy(topic, v, n);
	topic[n] = '\0';
	if (!pw_envelope_reply_to_allowed(topic, cfg->topic_replies))
		return PW_E_INVALID;
	char *copy = strdup(topic);
	if (copy == NULL)
		return PW_E_NOMEM;
	free(out->reply_to);
	out->reply_to = copy;
	if (pw_kafka_header(m, "kafka_replyPartition", &v, &n)) {
		const unsigned char *b = v;
		if (v == NULL || n != 4 || (b[0] & 0x80))
			return PW_E_INVALID;
		out->reply_partition = (int32_t)(((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
		                                 ((uint32_t)b[2] << 8) | (uint32_t)b[3]);
	}
	return PW_OK;
}

static pw_status reply(pw_outcome *out, int status, const char *code, const char *msg,
                       json_t *fields)
{
	out->kind = PW_OUT_DB;
	out->db_kind = PW_COMMAND_REFUSED;
	out->status = status;
	out->reply = pw_reply_error(out->request_id, status, code, msg, fields);
	return out->reply ? PW_OK : PW_E_NOMEM;
}

pw_status pw_handle_record(const pw_handler_ctx *hc, const rd_kafka_message_t *m,
                           pw_topic_kind topic, pw_outcome *out)
{
	const pw_config *cfg = hc->cfg;
	pw_envelope *env = NULL;
	pw_status st;
	const void *auth = NULL;
	size_t auth_len = 0;
	pw_claims claims;
	char why[160];
	pw_command_type type;
	json_t *payload;
	json_t *fields = NULL;
	int log_append;

	memset(out, 0, sizeof(*out));
	out->reply_partition = RD_KAFKA_PARTITION_UA;
	if (!pw_kafka_header(m, "authorization", &auth, &auth_len))
		auth = NULL;
	st = pw_envelope_parse(m->payload, m->len, auth, auth_len, cfg->topic_replies,
	                       (size_t)cfg->max_message_bytes, &env, &out->dlq);
	if (st == PW_E_INVALID) {
		out->kind = PW_OUT_DLQ;
		return PW_OK;
	}
	if (st != PW_OK)
		return st;
	out->request_id = strdup(env->request_id);
	out->reply_to = strdup(env->reply_to);
	if (out->request_id == NULL || out->reply_to == NULL) {
		st = PW_E_NOMEM;
		goto out;
	}
	st = spring_headers(cfg, m, env, out);
	if (st == PW_E_INVALID) {
		pw_envelope_destroy(env);
		pw_outcome_clear(out);
		out->kind = PW_OUT_DLQ;
		out->dlq = PW_DLQ_REPLY_TO_REFUSED;
		return PW_OK;
	}
	if (st != PW_OK)
		goto out;

	int64_t now = pw_command_time(m, &log_append);
	out->command_time = now;
	out->log_append_time = log_append;
	{
		json_t *t = json_object_get(env->root, "type");
		const char *name = json_is_string(t) ? json_string_value(t) : "";
		snprintf(out->command_type, sizeof(out->command_type), "%s",
		         strcmp(name, "patient.create") == 0 || strcmp(name, "patient.get") == 0 ||
		                 strcmp(name, "patient.list") == 0
		             ? name
		             : "unknown");
	}
	if (env->token_not_string) {
		st = reply(out, 401, "unauthorized", "token must be a string", NULL);
		goto out;
	}
	if (pw_jwt_verify(hc->jwt, env->token, now, &claims, why, sizeof(why)) != PW_OK) {
		st = reply(out, 401, "unauthorized", why, NULL);
		goto out;
	}
	memcpy(out->owner, claims.owner, sizeof(out->owner));
	if (cfg->jwt_require_scope &&
	    !(topic == PW_TOPIC_CREATE ? claims.scope_write : claims.scope_read)) {
		st = reply(out, 403, "forbidden",
		           topic == PW_TOPIC_CREATE ? "scope patients:write is required"
		                                    : "scope patients:read is required",
		           NULL);
		goto out;
	}
	if (pw_envelope_command(env, topic, &type, &payload, why, sizeof(why)) != PW_OK) {
		st = reply(out, 400, "invalid_request", why, NULL);
		goto out;
	}
	if (type != PW_CMD_CREATE) {
		st = pw_query_validate(payload, type == PW_CMD_LIST, hc->cursor_key, out->owner,
		                       &out->query, &fields);
		if (st == PW_E_INVALID) {
			st = reply(out, 400, "validation_failed", "the payload has invalid fields",
			           fields);
			goto out;
		}
		if (st != PW_OK)
			goto out;
		out->kind = PW_OUT_DB;
		out->db_kind = type == PW_CMD_LIST ? PW_COMMAND_LIST : PW_COMMAND_GET;
		goto out;
	}
	st = pw_patient_validate(payload, now, &out->in, &fields);
	if (st == PW_E_INVALID) {
		st = reply(out, 400, "validation_failed", "the payload has invalid fields", fields);
		goto out;
	}
	if (st != PW_OK)
		goto out;
	out->kind = PW_OUT_DB;
	out->db_kind = PW_COMMAND_CREATE;
out:
	json_decref(fields);
	pw_envelope_destroy(env);
	if (st != PW_OK)
		pw_outcome_clear(out);
	return st;
}
