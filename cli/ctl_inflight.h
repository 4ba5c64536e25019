/* A load's rows in flight: sent and not answered yet, at most a fixed number of them, found
 * by line number. The rows live in a fixed array of slots, indexed by an open-addressing
 * table twice that size: a reply's key carries the line, so matching it costs no search,
 * and memory stays bounded whatever the file's size. */
#ifndef CTL_INFLIGHT_H
#define CTL_INFLIGHT_H

#include <stdbool.h>
#include <stdint.h>

#include "pw_status.h"

typedef struct ctl_inflight ctl_inflight;

typedef struct ctl_inflight_row {
	unsigned long line; /**< from 1; 0: the slot is free */
	uint64_t hash;      /**< the row's hash, for the journal */
	int64_t sent_ms;    /**< when it was sent (pw_util_now_ms) */
	char *payload;      /**< the row as JSON text, for the errors file (the set's) */
} ctl_inflight_row;

/* Room for capacity rows (at least 1). PW_OK with *out the caller's (ctl_inflight_destroy);
 * PW_E_INVALID for a capacity under 1, PW_E_NOMEM. */
PW_MUST_CHECK pw_status ctl_inflight_create(ctl_inflight **out, int capacity);

/* Frees the set and every row's payload. NULL is fine. */
void ctl_inflight_destroy(ctl_inflight *f);

/* Rows in the set. */
int ctl_inflight_count(const ctl_inflight *f);

/* Is every slot taken? */
bool ctl_inflight_full(const ctl_inflight *f);

/* Adds the row on line (from 1, and not in the set), taking payload (malloc'd; the set frees
 * it). Returns the row, the set's until ctl_inflight_remove; NULL when the set is full or
 * line is 0, and then payload is still the caller's. The slot freed last is reused first. */
ctl_inflight_row *ctl_inflight_add(ctl_inflight *f, unsigned long line, uint64_t hash,
                                   int64_t sent_ms, char *payload);

/* The row on line (the set's); NULL when it is not in the set. */
ctl_inflight_row *ctl_inflight_find(ctl_inflight *f, unsigned long line);

/* Takes r, a row of f, out of the set and frees its payload. */
void ctl_inflight_remove(ctl_inflight *f, ctl_inflight_row *r);

/* The first row in slot order after prev (NULL: the first of all); NULL after the last.
 * Removing prev before asking for the next one is fine. */
ctl_inflight_row *ctl_inflight_next(ctl_inflight *f, const ctl_inflight_row *prev);

#endif
