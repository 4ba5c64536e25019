/* Jobs and their lists. */
#include "pw_job.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pw_util.h"

/* A copy of n bytes that is never NULL for n = 0 (malloc(0) may be). */
static void *copy_of(const void *p, size_t n)
{
	void *c = malloc(n ? n : 1);

	if (c != NULL && n > 0)
		memcpy(c, p, n);
	return c;
}

/* Wall-clock time since the record's Kafka timestamp (producer's or broker's); -1 when it
 * has none or the clocks disagree. */
static int64_t record_age_us(const rd_kafka_message_t *m)
{
	rd_kafka_timestamp_type_t type;
	int64_t ts = rd_kafka_message_timestamp(m, &type);
	struct timespec now;

	if (ts < 0 || type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ||
	    clock_gettime(CLOCK_REALTIME, &now) != 0)
		return -1;
	int64_t age = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000 - ts * 1000;
	return age >= 0 ? age : -1;
}

pw_status pw_job_new(const rd_kafka_message_t *m, pw_offsets *o, pw_job **out)
{
	pw_job *j = calloc(1, sizeof(*j));

	*out = NULL;
	if (j == NULL)
		return PW_E_NOMEM;
	j->src_topic = strdup(rd_kafka_topic_name(m->rkt));
	j->partition = m->partition;
	j->offset = m->offset;
	j->taken_us = pw_util_now_us();
	j->age_us = record_age_us(m);
	j->key_len = m->key_len;
	j->value_len = m->len;
	j->key = copy_of(m->key, m->key_len);
	j->value = copy_of(m->payload, m->len);
	if (j->src_topic != NULL && j->key != NULL && j->value != NULL)
		j->pending = pw_offsets_track(o, j->src_topic, j->partition, j->offset,
		                              sizeof(*j) + m->key_len + m->len);
	if (j->pending == NULL) {
		pw_job_free(j);
		return PW_E_NOMEM;
	}
	*out = j;
	return PW_OK;
}

void pw_job_free(pw_job *j)
{
	if (j == NULL)
		return;
	pw_handler_outcome_clear(&j->out);
	free(j->src_topic);
	free(j->key);
	free(j->value);
	free(j);
}

void pw_job_drop(pw_job *j, pw_offsets *o)
{
	if (j->pending != NULL)
		pw_offsets_release(o, j->pending);
	j->pending = NULL;
	pw_job_free(j);
}

void pw_job_untake(pw_job *j, pw_offsets *o)
{
	if (j->pending != NULL)
		pw_offsets_untake(o, j->pending);
	j->pending = NULL;
	pw_job_free(j);
}

void pw_job_list_push(pw_job_list *l, pw_job *j)
{
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
	l->n++;
}

pw_job *pw_job_list_pop(pw_job_list *l)
{
	pw_job *j = l->head;

	if (j == NULL)
		return NULL;
	l->head = j->next;
	if (l->head == NULL)
		l->tail = NULL;
	l->n--;
	j->next = NULL;
	return j;
}

static bool in_parts(const pw_job *j, const rd_kafka_topic_partition_list_t *parts)
{
	for (int i = 0; parts != NULL && i < parts->cnt; i++)
		if (parts->elems[i].partition == j->partition &&
		    strcmp(parts->elems[i].topic, j->src_topic) == 0)
			return true;
	return parts == NULL;
}

size_t pw_job_list_drop(pw_job_list *l, const rd_kafka_topic_partition_list_t *parts, pw_offsets *o)
{
	pw_job_list keep = {0};
	size_t dropped = 0;
	pw_job *j;

	while ((j = pw_job_list_pop(l)) != NULL) {
		if (!in_parts(j, parts)) {
			pw_job_list_push(&keep, j);
			continue;
		}
		pw_job_drop(j, o);
		dropped++;
	}
	*l = keep;
	return dropped;
}

void pw_job_log_ctx(const pw_job *j, pw_log_ctx *ctx)
{
	ctx->request_id = j->out.request_id;
	ctx->owner = j->out.owner[0] ? j->out.owner : NULL;
	ctx->topic = j->src_topic;
	ctx->partition = j->partition;
	ctx->offset = j->offset;
	ctx->status = j->dead ? 0 : j->out.status;
}
