/* A load's rows in flight; see ctl_inflight.h. */
#include "ctl_inflight.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct ctl_inflight {
	ctl_inflight_row *slots;
	int capacity;
	int *free_slots; /**< a stack of free slot indexes */
	int nfree;
	int *table;  /**< slot index + 1; 0: empty */
	size_t mask; /**< the table's size - 1: a power of two, at least twice capacity */
};

static size_t bucket(const ctl_inflight *f, unsigned long line)
{
	return (size_t)(((uint64_t)line * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & f->mask;
}

static void table_put(ctl_inflight *f, int s)
{
	size_t b = bucket(f, f->slots[s].line);

	while (f->table[b] != 0)
		b = (b + 1) & f->mask;
	f->table[b] = s + 1;
}

/* Linear probing's deletion: entries after the hole move back when their home bucket
 * allows, so lookups never stop early at the hole. */
static void table_del(ctl_inflight *f, unsigned long line)
{
	size_t b = bucket(f, line);

	while (f->slots[f->table[b] - 1].line != line)
		b = (b + 1) & f->mask;
	f->table[b] = 0;
	for (size_t i = (b + 1) & f->mask; f->table[i] != 0; i = (i + 1) & f->mask) {
		size_t home = bucket(f, f->slots[f->table[i] - 1].line);
		/* Move it into the hole when its home is not within (b, i]. */
		int between = b <= i ? (home > b && home <= i) : (home > b || home <= i);
		if (!between) {
			f->table[b] = f->table[i];
			f->table[i] = 0;
			b = i;
		}
	}
}

pw_status ctl_inflight_create(ctl_inflight **out, int capacity)
{
	ctl_inflight *f = NULL;
	size_t tsize = 1;
	pw_status st = PW_E_NOMEM;

	*out = NULL;
	if (capacity < 1)
		return PW_E_INVALID;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return PW_E_NOMEM;
	while (tsize < (size_t)capacity * 2)
		tsize <<= 1;
	f->mask = tsize - 1;
	f->capacity = capacity;
	f->slots = calloc((size_t)capacity, sizeof(*f->slots));
	f->free_slots = malloc((size_t)capacity * sizeof(*f->free_slots));
	f->table = calloc(tsize, sizeof(*f->table));
	if (f->slots == NULL || f->free_slots == NULL || f->table == NULL)
		goto out;
	/* Taken from the top: slot 0 first. */
	for (int i = 0; i < capacity; i++)
		f->free_slots[i] = capacity - 1 - i;
	f->nfree = capacity;
	*out = f;
	f = NULL; /* the caller's now */
	st = PW_OK;
out:
	ctl_inflight_destroy(f);
	return st;
}

void ctl_inflight_destroy(ctl_inflight *f)
{
	if (f == NULL)
		return;
	for (int s = 0; f->slots != NULL && s < f->capacity; s++)
		free(f->slots[s].payload);
	free(f->slots);
	free(f->free_slots);
	free(f->table);
	free(f);
}

int ctl_inflight_count(const ctl_inflight *f)
{
	return f->capacity - f->nfree;
}

bool ctl_inflight_full(const ctl_inflight *f)
{
	return f->nfree == 0;
}

ctl_inflight_row *ctl_inflight_add(ctl_inflight *f, unsigned long line, uint64_t hash,
                                   int64_t sent_ms, char *payload)
{
	int s;

	if (f->nfree == 0 || line == 0)
		return NULL;
	s = f->free_slots[--f->nfree];
	f->slots[s].line = line;
	f->slots[s].hash = hash;
	f->slots[s].sent_ms = sent_ms;
	f->slots[s].payload = payload;
	table_put(f, s);
	return &f->slots[s];
}

ctl_inflight_row *ctl_inflight_find(ctl_inflight *f, unsigned long line)
{
	for (size_t b = bucket(f, line);; b = (b + 1) & f->mask) {
		int s = f->table[b];
		if (s == 0)
			return NULL;
		if (f->slots[s - 1].line == line)
			return &f->slots[s - 1];
	}
}

void ctl_inflight_remove(ctl_inflight *f, ctl_inflight_row *r)
{
	int s = (int)(r - f->slots);

	table_del(f, r->line);
	free(r->payload);
	memset(r, 0, sizeof(*r));
	f->free_slots[f->nfree++] = s;
}

ctl_inflight_row *ctl_inflight_next(ctl_inflight *f, const ctl_inflight_row *prev)
{
	for (int s = prev ? (int)(prev - f->slots) + 1 : 0; s < f->capacity; s++)
		if (f->slots[s].line != 0)
			return &f->slots[s];
	return NULL;
}
