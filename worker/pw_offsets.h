/* Per-partition offset watermarks: an offset is stored only when every record before it
 * in the partition has been acknowledged, so a crash never skips a command. */
#ifndef PW_OFFSETS_H
#define PW_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pw_status.h"

typedef struct pw_offsets pw_offsets;
typedef struct pw_offsets_pending pw_offsets_pending;

PW_MUST_CHECK pw_status pw_offsets_create(pw_offsets **out);
/* Frees every tracker and every record still pending, revoked ones included. NULL is fine. */
void pw_offsets_destroy(pw_offsets *o);

/* Appends a record taken from topic/partition at offset, holding bytes of memory until it
 * is acknowledged or released (records of one partition are tracked in the order they
 * were consumed). NULL when memory runs out. */
pw_offsets_pending *pw_offsets_track(pw_offsets *o, const char *topic, int32_t partition,
                                     int64_t offset, size_t bytes);

/* The record is acknowledged (its reply or dead letter is on the broker). Frees p.
 * True, with *topic (borrowed, valid until the next call), *partition and *next_offset
 * (the offset to store: last done + 1), when the partition's watermark moved; false
 * otherwise (also for a record of a revoked partition). */
bool pw_offsets_done(pw_offsets *o, pw_offsets_pending *p, const char **topic, int32_t *partition,
                     int64_t *next_offset);

/* The partition was revoked: its records are detached (their acknowledgements will
 * store nothing) and its tracker freed. */
void pw_offsets_revoke(pw_offsets *o, const char *topic, int32_t partition);

/* The record will never be acknowledged (dropped at a revoke or at shutdown). Its
 * offset is then never stored: the watermark of a partition still assigned stays
 * before it, so the record is answered again after a restart. */
void pw_offsets_release(pw_offsets *o, pw_offsets_pending *p);

/* The record will be taken again (its partition was sought back to it): forgotten as if
 * never taken. Only for the partition's last tracked record. Frees p. */
void pw_offsets_untake(pw_offsets *o, pw_offsets_pending *p);

/* Records tracked and not yet acknowledged or released, and the bytes they hold. */
size_t pw_offsets_inflight(const pw_offsets *o);
size_t pw_offsets_inflight_bytes(const pw_offsets *o);

#endif
