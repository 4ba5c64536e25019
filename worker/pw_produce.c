/* Replies and dead letters to the producer, with their headers. */
#include "pw_produce.h"

#include <stdio.h>
#include <string.h>

#define QUEUE_FULL_POLL_MS 100

bool pw_produce_permanent(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION: /* a kafka_replyPartition the topic lacks */
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
		return true;
	default:
		return false;
	}
}

static rd_kafka_headers_t *reply_headers(const pw_handler_outcome *o, int status)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(3);
	char buf[16];

	if (h == NULL)
		return NULL;
	snprintf(buf, sizeof(buf), "%d", status);
	if (rd_kafka_header_add(h, "request_id", -1, o->request_id, -1) ||
	    rd_kafka_header_add(h, "status", -1, buf, -1) ||
	    (o->correlation != NULL &&
	     rd_kafka_header_add(h, "kafka_correlationId", -1, o->correlation,
	                         (ssize_t)o->correlation_len))) {
		rd_kafka_headers_destroy(h);
		return NULL;
	}
	return h;
}

static rd_kafka_headers_t *dead_headers(const pw_produce_dead *d)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(2);
	char src[320];

	if (h == NULL)
		return NULL;
	snprintf(src, sizeof(src), "%s/%d/%lld", d->src_topic, (int)d->src_partition,
	         (long long)d->src_offset);
	if (rd_kafka_header_add(h, "error", -1, pw_envelope_dlq_code(d->reason), -1) ||
	    rd_kafka_header_add(h, "source", -1, src, -1)) {
		rd_kafka_headers_destroy(h);
		return NULL;
	}
	return h;
}

/* One record to produce: a reply (of o, with status) or a dead letter (d). */
typedef struct message {
	const char *topic;
	int32_t partition;
	const void *key;
	size_t key_len;
	const void *value;
	size_t len;
	const pw_handler_outcome *o;
	int status;
	const pw_produce_dead *d;
} message;

/* Until it is queued, the producer fails for good, or *stop: while the queue is full (or
 * memory for the headers is short), serve delivery reports so it drains, and try again. */
static pw_status produce(rd_kafka_t *p, const message *m, void *opaque, const atomic_int *stop,
                         rd_kafka_resp_err_t *err)
{
	for (;;) {
		rd_kafka_headers_t *h = m->d ? dead_headers(m->d) : reply_headers(m->o, m->status);
		*err = h == NULL ? RD_KAFKA_RESP_ERR__QUEUE_FULL
		                 : rd_kafka_producev(p, RD_KAFKA_V_TOPIC(m->topic),
		                                     RD_KAFKA_V_PARTITION(m->partition),
		                                     RD_KAFKA_V_KEY((void *)m->key, m->key_len),
		                                     RD_KAFKA_V_VALUE((void *)m->value, m->len),
		                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                                     RD_KAFKA_V_HEADERS(h),
		                                     RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
		if (*err == RD_KAFKA_RESP_ERR_NO_ERROR)
			return PW_OK; /* the headers belong to the message now */
		if (h != NULL)
			rd_kafka_headers_destroy(h);
		if (*err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			return *err == RD_KAFKA_RESP_ERR__FATAL ? PW_E_INTERNAL : PW_E_INVALID;
		rd_kafka_poll(p, QUEUE_FULL_POLL_MS);
		if (stop != NULL && atomic_load(stop))
			return PW_E_RETRY;
	}
}

pw_status pw_produce_reply(rd_kafka_t *p, const pw_handler_outcome *o, const char *reply,
                           int status, void *opaque, const atomic_int *stop,
                           rd_kafka_resp_err_t *err)
{
	message m = {o->reply_to,
	             o->reply_partition,
	             o->request_id,
	             strlen(o->request_id),
	             reply,
	             strlen(reply),
	             o,
	             status,
	             NULL};

	return produce(p, &m, opaque, stop, err);
}

pw_status pw_produce_dead_letter(rd_kafka_t *p, const pw_produce_dead *d, void *opaque,
                                 const atomic_int *stop, rd_kafka_resp_err_t *err)
{
	message m = {d->dlq_topic,
	             RD_KAFKA_PARTITION_UA,
	             d->key_len ? d->key : NULL,
	             d->key_len,
	             d->value_len ? d->value : NULL,
	             d->value_len,
	             NULL,
	             0,
	             d};

	return produce(p, &m, opaque, stop, err);
}
