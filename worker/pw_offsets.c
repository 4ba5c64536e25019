/* Offset watermarks: one FIFO of pending records per partition. */
#include "pw_offsets.h"

#include <stdlib.h>
#include <string.h>

typedef struct tracker {
	char *topic;
	int32_t partition;
	pw_pending *head, *tail;
	struct tracker *next;
} tracker;

struct pw_pending {
	tracker *t; /**< NULL once the partition was revoked */
	int64_t offset;
	int done;
	int abandoned; /**< never to be acknowledged: holds the watermark back for good */
	pw_pending *next;
};

struct pw_offsets {
	tracker *trackers;
	size_t inflight;
};

pw_status pw_offsets_create(pw_offsets **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? PW_OK : PW_E_NOMEM;
}

static void tracker_free(tracker *t)
{
	pw_pending *p = t->head;
	while (p != NULL) {
		pw_pending *n = p->next;
		free(p);
		p = n;
	}
	free(t->topic);
	free(t);
}

void pw_offsets_destroy(pw_offsets *o)
{
	if (o == NULL)
		return;
	while (o->trackers != NULL) {
		tracker *n = o->trackers->next;
		tracker_free(o->trackers);
		o->trackers = n;
	}
	free(o);
}

static tracker **find(pw_offsets *o, const char *topic, int32_t partition)
{
	tracker **pp = &o->trackers;
	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->partition == partition && strcmp((*pp)->topic, topic) == 0)
			break;
	return pp;
}

pw_pending *pw_offsets_track(pw_offsets *o, const char *topic, int32_t partition, int64_t offset)
{
	tracker **pp = find(o, topic, partition);
	pw_pending *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	if (*pp == NULL) {
		tracker *t = calloc(1, sizeof(*t));
		if (t == NULL || (t->topic = strdup(topic)) == NULL) {
			free(t);
			free(p);
			return NULL;
		}
		t->partition = partition;
		*pp = t;
	}
	p->t = *pp;
	p->offset = offset;
	if (p->t->tail)
		p->t->tail->next = p;
	else
		p->t->head = p;
	p->t->tail = p;
	o->inflight++;
	return p;
}

int pw_offsets_done(pw_offsets *o, pw_pending *p, const char **topic, int32_t *partition,
                    int64_t *next_offset)
{
	tracker *t = p->t;
	int64_t last = -1;

	o->inflight--;
	if (t == NULL) {
		free(p);
		return 0;
	}
	p->done = 1;
	while (t->head != NULL && t->head->done) {
		pw_pending *h = t->head;
		last = h->offset;
		t->head = h->next;
		if (t->head == NULL)
			t->tail = NULL;
		free(h);
	}
	if (last < 0)
		return 0;
	*topic = t->topic;
	*partition = t->partition;
	*next_offset = last + 1;
	return 1;
}

void pw_offsets_revoke(pw_offsets *o, const char *topic, int32_t partition)
{
	tracker **pp = find(o, topic, partition);
	tracker *t = *pp;

	if (t == NULL)
		return;
	*pp = t->next;
	pw_pending *p = t->head;
	while (p != NULL) {
		pw_pending *n = p->next;
		if (p->done || p->abandoned) {
			free(p); /* no acknowledgement will come for it */
		} else {
			p->t = NULL;
			p->next = NULL;
		}
		p = n;
	}
	t->head = t->tail = NULL;
	tracker_free(t);
}

void pw_offsets_release(pw_offsets *o, pw_pending *p)
{
	o->inflight--;
	if (p->t == NULL)
		free(p);
	else
		p->abandoned = 1; /* freed with its tracker */
}

size_t pw_offsets_inflight(const pw_offsets *o)
{
	return o->inflight;
}
