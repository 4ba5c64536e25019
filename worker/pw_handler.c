/* Record → outcome, in the contract's order: dead-letter checks, token, then command. */
#include "pw_handler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw_kafka.h"
#include "pw_reply.h"

static pw_handler_header header_of(const rd_kafka_message_t *m, const char *name)
{
	pw_handler_header h = {false, NULL, 0};

	h.present = pw_kafka_header(m, name, &h.value, &h.len);
	return h;
}

void pw_handler_record_of(const rd_kafka_message_t *m, int64_t now_s, pw_handler_record *out)
{
	rd_kafka_timestamp_type_t type;
	int64_t ts = rd_kafka_message_timestamp(m, &type);

	out->value = m->payload;
	out->len = m->len;
	out->authorization = header_of(m, "authorization");
	out->correlation = header_of(m, "kafka_correlationId");
	out->reply_topic = header_of(m, "kafka_replyTopic");
	out->reply_partition = header_of(m, "kafka_replyPartition");
	/* A producer's CreateTime is never trusted (contract): only the broker's clock. */
	out->append_time_s = type == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME && ts >= 0 ? ts / 1000 : -1;
	out->taken_at_s = now_s;
}

void pw_handler_outcome_clear(pw_handler_outcome *out)
{
	if (out == NULL)
		return;
	free(out->request_id);
	free(out->reply_to);
	free(out->correlation);
	free(out->reply);
	pw_patient_input_clear(&out->in);
	pw_patient_update_clear(&out->update);
	pw_query_clear(&out->query);
	memset(out, 0, sizeof(*out));
}

static pw_status dead_letter(pw_handler_outcome *out, pw_dlq_reason why)
{
	pw_handler_outcome_clear(out);
	out->kind = PW_HANDLER_DEAD_LETTER;
	out->dlq = why;
	return PW_OK;
}

/* An error reply decided here; the database only records it (its audit row). */
static pw_status refuse(pw_handler_outcome *out, int status, const char *code, const char *msg,
                        json_t *fields)
{
	out->kind = PW_HANDLER_COMMAND;
	out->command = PW_COMMAND_REFUSED;
	out->status = status;
	out->reply = pw_reply_error(out->request_id, status, code, msg, fields);
	return out->reply ? PW_OK : PW_E_NOMEM;
}

/* Spring Kafka's request/reply headers. kafka_replyTopic stands in for a reply_to the
 * body does not have, under the same prefix rule; kafka_replyPartition (a 4-byte
 * big-endian int, as Spring writes it) only comes with it. A header that breaks the rule
 * dead-letters the record like a bad reply_to: PW_E_INVALID. */
static pw_status spring_headers(const pw_config *cfg, const pw_handler_record *r,
                                const pw_envelope *env, pw_handler_outcome *out)
{
	const pw_handler_header *c = &r->correlation, *t = &r->reply_topic,
	                        *p = &r->reply_partition;
	char topic[256];

	if (c->present && c->value != NULL) {
		out->correlation = malloc(c->len ? c->len : 1);
		if (out->correlation == NULL)
			return PW_E_NOMEM;
		memcpy(out->correlation, c->value, c->len);
		out->correlation_len = c->len;
	}
	if (env->reply_to_in_body || !t->present)
		return PW_OK;
	if (t->value == NULL || t->len == 0 || t->len >= sizeof(topic) ||
	    memchr(t->value, '\0', t->len) != NULL)
		return PW_E_INVALID;
	memcpy(topic, t->value, t->len);
	topic[t->len] = '\0';
	if (!pw_envelope_reply_to_allowed(topic, cfg->topic_replies))
		return PW_E_INVALID;
	char *copy = strdup(topic);
	if (copy == NULL)
		return PW_E_NOMEM;
	free(out->reply_to);
	out->reply_to = copy;
	if (p->present) {
		const unsigned char *b = p->value;
		if (b == NULL || p->len != 4 || (b[0] & 0x80))
			return PW_E_INVALID;
		out->reply_partition = (int32_t)(((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
		                                 ((uint32_t)b[2] << 8) | (uint32_t)b[3]);
	}
	return PW_OK;
}

/* Where the reply goes and what it carries back, from the body and Spring's headers. */
static pw_status address(const pw_config *cfg, const pw_handler_record *r, const pw_envelope *env,
                         pw_handler_outcome *out)
{
	out->request_id = strdup(env->request_id);
	out->reply_to = strdup(env->reply_to);
	if (out->request_id == NULL || out->reply_to == NULL)
		return PW_E_NOMEM;
	return spring_headers(cfg, r, env, out);
}

/* The time the command is judged at, and its type's name for the audit row. */
static void describe(const pw_handler_record *r, const pw_envelope *env, pw_handler_outcome *out)
{
	json_t *t = json_object_get(env->root, "type");
	pw_envelope_type type =
	    json_is_string(t) ? pw_envelope_type_of(json_string_value(t)) : PW_ENVELOPE_NONE;

	out->log_append_time = r->append_time_s >= 0;
	out->command_time = out->log_append_time ? r->append_time_s : r->taken_at_s;
	out->type_known = type != PW_ENVELOPE_NONE;
	snprintf(out->command_type, sizeof(out->command_type), "%s", pw_envelope_type_name(type));
}

/* The token (401) and, when scope checks are on, its scope (403). *refused tells whether
 * the reply is decided. */
static pw_status authenticate(pw_handler *h, const pw_envelope *env, pw_topic_kind lane,
                              pw_handler_outcome *out, bool *refused)
{
	pw_jwt_claims claims;
	char why[160];

	*refused = true;
	if (env->token_not_string)
		return refuse(out, 401, "unauthorized", "token must be a string", NULL);
	pw_status st =
	    pw_jwt_verify(h->jwt, env->token, out->command_time, &claims, why, sizeof(why));
	if (st == PW_E_RETRY) {
		out->kind = PW_HANDLER_WAIT;
		return PW_OK;
	}
	if (st != PW_OK)
		return refuse(out, 401, "unauthorized", why, NULL);
	memcpy(out->owner, claims.owner, sizeof(out->owner));
	if (h->cfg->jwt_require_scope &&
	    !(lane == PW_TOPIC_CREATE ? claims.scope_write : claims.scope_read))
		return refuse(out, 403, "forbidden",
		              lane == PW_TOPIC_CREATE ? "scope patients:write is required"
		                                      : "scope patients:read is required",
		              NULL);
	*refused = false;
	return PW_OK;
}

/* The type for this lane and its payload (400), once the caller is known. */
static pw_status validate(pw_handler *h, const pw_envelope *env, pw_topic_kind lane,
                          pw_handler_outcome *out)
{
	pw_envelope_type type;
	json_t *payload, *fields = NULL;
	char why[160];
	pw_status st;

	if (pw_envelope_command(env, lane, &type, &payload, why, sizeof(why)) != PW_OK)
		return refuse(out, 400, "invalid_request", why, NULL);
	switch (type) {
	case PW_ENVELOPE_CREATE:
		st = pw_patient_validate(payload, out->command_time, &out->in, &fields);
		out->command = PW_COMMAND_CREATE;
		break;
	case PW_ENVELOPE_UPDATE:
		st = pw_patient_validate_update(payload, out->command_time, &out->update, &fields);
		out->command = PW_COMMAND_UPDATE;
		break;
	case PW_ENVELOPE_DELETE:
		st = pw_patient_validate_delete(payload, &out->del, &fields);
		out->command = PW_COMMAND_DELETE;
		break;
	default:
		st = pw_query_validate(payload, type == PW_ENVELOPE_LIST, h->cursor_key, out->owner,
		                       &out->query, &fields);
		out->command = type == PW_ENVELOPE_LIST ? PW_COMMAND_LIST : PW_COMMAND_GET;
		break;
	}
	if (st == PW_E_INVALID)
		st =
		    refuse(out, 400, "validation_failed", "the payload has invalid fields", fields);
	json_decref(fields);
	return st;
}

pw_status pw_handler_decide(pw_handler *h, const pw_handler_record *r, pw_topic_kind lane,
                            pw_handler_outcome *out)
{
	const pw_handler_header *auth = &r->authorization;
	pw_envelope *env = NULL;
	pw_dlq_reason why;
	bool refused;
	pw_status st;

	memset(out, 0, sizeof(*out));
	out->reply_partition = RD_KAFKA_PARTITION_UA;
	st =
	    pw_envelope_parse(r->value, r->len, auth->present ? auth->value : NULL, auth->len,
	                      h->cfg->topic_replies, (size_t)h->cfg->max_message_bytes, &env, &why);
	if (st == PW_E_INVALID)
		return dead_letter(out, why);
	if (st != PW_OK)
		return st;
	st = address(h->cfg, r, env, out);
	if (st == PW_E_INVALID)
		st = dead_letter(out, PW_DLQ_REPLY_TO_REFUSED);
	else if (st == PW_OK) {
		out->kind = PW_HANDLER_COMMAND;
		describe(r, env, out);
		st = authenticate(h, env, lane, out, &refused);
		if (st == PW_OK && !refused)
			st = validate(h, env, lane, out);
	}
	pw_envelope_destroy(env);
	if (st != PW_OK)
		pw_handler_outcome_clear(out);
	return st;
}

void pw_handler_to_command(pw_handler_outcome *o, const char *topic, int32_t partition,
                           int64_t offset, pw_command *out)
{
	*out = (pw_command){
	    .kind = o->command,
	    .owner = o->owner,
	    .request_id = o->request_id,
	    .command_type = o->type_known ? o->command_type : NULL,
	    .src_topic = topic,
	    .src_partition = partition,
	    .src_offset = offset,
	    .command_time = o->command_time,
	    .in = &o->in,
	    .update = &o->update,
	    .del = &o->del,
	    .query = &o->query,
	    .status = o->status,
	    .reply = o->reply, /* an error decided already; the command holds it now */
	};
	o->reply = NULL;
}

void pw_handler_from_command(pw_handler_outcome *o, pw_command *c)
{
	free(o->reply);
	o->reply = c->reply;
	o->status = c->status;
	c->reply = NULL;
}
