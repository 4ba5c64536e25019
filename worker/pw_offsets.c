/* Offset watermarks: one FIFO of pending records per partition, and one list of the
 * records of revoked partitions whose acknowledgement is still to come (they store
 * nothing, but are owned here until then, so destroy frees everything). */
#include "pw_offsets.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct pending_list {
	pw_offsets_pending *head, *tail;
} pending_list;

typedef struct tracker {
	char *topic;
	int32_t partition;
	pending_list l;
	struct tracker *next;
} tracker;

struct pw_offsets_pending {
	tracker *t; /**< NULL once its partition was revoked: on the revoked list */
	int64_t offset;
	size_t bytes;
	bool done;
	bool abandoned; /**< never to be acknowledged: holds the watermark back for good */
	pw_offsets_pending *prev, *next;
};

struct pw_offsets {
	tracker *trackers;
	pending_list revoked; /**< detached records, awaiting their acknowledgement */
	size_t inflight, inflight_bytes;
};

static void append(pending_list *l, pw_offsets_pending *p)
{
	p->prev = l->tail;
	p->next = NULL;
	if (l->tail)
		l->tail->next = p;
	else
		l->head = p;
	l->tail = p;
}

static void unlink_pending(pending_list *l, pw_offsets_pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		l->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		l->tail = p->prev;
	p->prev = p->next = NULL;
}

static void free_list(pending_list *l)
{
	pw_offsets_pending *p = l->head;

	while (p != NULL) {
		pw_offsets_pending *n = p->next;
		free(p);
		p = n;
	}
	l->head = l->tail = NULL;
}

pw_status pw_offsets_create(pw_offsets **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? PW_OK : PW_E_NOMEM;
}

static void tracker_free(tracker *t)
{
	free_list(&t->l);
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
	free_list(&o->revoked);
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

pw_offsets_pending *pw_offsets_track(pw_offsets *o, const char *topic, int32_t partition,
                                     int64_t offset, size_t bytes)
{
	tracker **pp = find(o, topic, partition);
	pw_offsets_pending *p = calloc(1, sizeof(*p));

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
	p->bytes = bytes;
	append(&p->t->l, p);
	o->inflight++;
	o->inflight_bytes += bytes;
	return p;
}

/* The record leaves the in-flight count, acknowledged or given up. True when it belongs
 * to a revoked partition: it is then freed here, and stores nothing. */
static bool settle(pw_offsets *o, pw_offsets_pending *p)
{
	o->inflight--;
	o->inflight_bytes -= p->bytes;
	if (p->t != NULL)
		return false;
	unlink_pending(&o->revoked, p);
	free(p);
	return true;
}

bool pw_offsets_done(pw_offsets *o, pw_offsets_pending *p, const char **topic, int32_t *partition,
                     int64_t *next_offset)
{
	tracker *t = p->t;
	int64_t last = -1;

	if (settle(o, p))
		return false;
	p->done = true;
	while (t->l.head != NULL && t->l.head->done) {
		pw_offsets_pending *h = t->l.head;
		last = h->offset;
		unlink_pending(&t->l, h);
		free(h);
	}
	if (last < 0)
		return false;
	*topic = t->topic;
	*partition = t->partition;
	*next_offset = last + 1;
	return true;
}

void pw_offsets_revoke(pw_offsets *o, const char *topic, int32_t partition)
{
	tracker **pp = find(o, topic, partition);
	tracker *t = *pp;
	pw_offsets_pending *p;

	if (t == NULL)
		return;
	*pp = t->next;
	while ((p = t->l.head) != NULL) {
		unlink_pending(&t->l, p);
		if (p->done || p->abandoned) {
			free(p); /* no acknowledgement will come for it */
			continue;
		}
		p->t = NULL;
		append(&o->revoked, p);
	}
	tracker_free(t);
}

void pw_offsets_release(pw_offsets *o, pw_offsets_pending *p)
{
	if (!settle(o, p))
		p->abandoned = true; /* freed with its tracker */
}

void pw_offsets_untake(pw_offsets *o, pw_offsets_pending *p)
{
	tracker *t = p->t;

	if (settle(o, p))
		return;
	unlink_pending(&t->l, p);
	free(p);
}

size_t pw_offsets_inflight(const pw_offsets *o)
{
	return o->inflight;
}

size_t pw_offsets_inflight_bytes(const pw_offsets *o)
{
	return o->inflight_bytes;
}
