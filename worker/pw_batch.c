/* Collecting, holding and the database backoff; the loop does the writing. */
#include "pw_batch.h"

#include <stdlib.h>

struct pw_batch {
	size_t max;
	int64_t wait_us;
	pw_job_list open;    /**< the next transaction's jobs */
	pw_job_list held;    /**< waiting for the database to come back */
	int64_t deadline_us; /**< when the open batch is written, full or not */
	bool down;           /**< the database is away */
	int backoff_ms;
	int64_t next_try_us; /**< while down: when to try again */
};

pw_status pw_batch_create(size_t max, int wait_ms, pw_batch **out)
{
	pw_batch *b = calloc(1, sizeof(*b));

	*out = b;
	if (b == NULL)
		return PW_E_NOMEM;
	b->max = max ? max : 1;
	b->wait_us = (int64_t)wait_ms * 1000;
	return PW_OK;
}

static void free_all(pw_job_list *l)
{
	pw_job *j;

	while ((j = pw_job_list_pop(l)) != NULL)
		pw_job_free(j);
}

void pw_batch_destroy(pw_batch *b)
{
	if (b == NULL)
		return;
	free_all(&b->open);
	free_all(&b->held);
	free(b);
}

void pw_batch_add(pw_batch *b, pw_job *j, int64_t now_us)
{
	if (b->down) {
		pw_job_list_push(&b->held, j);
		return;
	}
	if (b->open.n == 0)
		b->deadline_us = now_us + b->wait_us;
	pw_job_list_push(&b->open, j);
}

bool pw_batch_due(const pw_batch *b, int64_t now_us, bool idle)
{
	if (b->down)
		return now_us >= b->next_try_us;
	if (b->held.n > 0 || b->open.n >= b->max)
		return true;
	return b->open.n > 0 && idle && now_us >= b->deadline_us;
}

int pw_batch_wait_ms(const pw_batch *b, int64_t now_us, int cap_ms)
{
	int64_t until;

	if (b->down)
		until = b->next_try_us;
	else if (b->held.n > 0 || b->open.n >= b->max)
		return 0;
	else if (b->open.n > 0)
		until = b->deadline_us;
	else
		return cap_ms;
	if (until <= now_us)
		return 0;
	int64_t ms = (until - now_us + 999) / 1000;
	return ms < cap_ms ? (int)ms : cap_ms;
}

pw_job_list pw_batch_take(pw_batch *b)
{
	pw_job_list taken = {0};
	pw_job *j;

	/* A batch larger than max would be one long transaction (everything held through an
	 * outage, or what came while a session was busy): taken max at a time instead. */
	while (taken.n < b->max && (j = pw_job_list_pop(&b->held)) != NULL)
		pw_job_list_push(&taken, j);
	while (taken.n < b->max && (j = pw_job_list_pop(&b->open)) != NULL)
		pw_job_list_push(&taken, j);
	return taken;
}

void pw_batch_unget(pw_batch *b, pw_job_list *l)
{
	/* The jobs of a take came before everything still waiting: they go back in front. */
	if (l->n == 0)
		return;
	l->tail->next = b->held.head;
	if (b->held.n == 0)
		b->held.tail = l->tail;
	b->held.head = l->head;
	b->held.n += l->n;
	*l = (pw_job_list){0};
}

bool pw_batch_outage(pw_batch *b, int64_t now_us)
{
	bool first = !b->down;

	if (first) {
		pw_job *j;
		b->backoff_ms = PW_BATCH_BACKOFF_MIN_MS;
		/* The open batch came before anything added from now on (those are held). */
		while ((j = pw_job_list_pop(&b->open)) != NULL)
			pw_job_list_push(&b->held, j);
	}
	b->down = true;
	b->next_try_us = now_us + (int64_t)b->backoff_ms * 1000;
	return first;
}

void pw_batch_backoff(pw_batch *b, int64_t now_us)
{
	b->backoff_ms = b->backoff_ms * 2 > PW_BATCH_BACKOFF_MAX_MS ? PW_BATCH_BACKOFF_MAX_MS
	                                                            : b->backoff_ms * 2;
	b->next_try_us = now_us + (int64_t)b->backoff_ms * 1000;
}

void pw_batch_recovered(pw_batch *b)
{
	b->down = false;
}

bool pw_batch_db_down(const pw_batch *b)
{
	return b->down;
}

size_t pw_batch_size(const pw_batch *b)
{
	return b->open.n + b->held.n;
}

size_t pw_batch_drop(pw_batch *b, const rd_kafka_topic_partition_list_t *parts, pw_offsets *o)
{
	return pw_job_list_drop(&b->open, parts, o) + pw_job_list_drop(&b->held, parts, o);
}
