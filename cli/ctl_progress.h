/* A load's progress on stderr: a bar redrawn in place on a terminal, a plain line every
 * few seconds otherwise (a log file or CI). Counts only: never a patient field. */
#ifndef CTL_PROGRESS_H
#define CTL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ctl_progress_counts {
	unsigned long rows;       /**< rows read, blank lines not counted */
	unsigned long skipped;    /**< done by an earlier run (the journal) */
	unsigned long sent;       /**< queued to the broker */
	unsigned long created;    /**< answered 201 (or 200 to a repeated create) */
	unsigned long updated;    /**< an update answered 200 */
	unsigned long deleted;    /**< a delete answered 200 */
	unsigned long rejected;   /**< answered 4xx or 5xx */
	unsigned long unparsable; /**< not made into a payload (never sent) */
	unsigned long too_large;  /**< over MAX_MESSAGE_BYTES (never sent) */
	unsigned long timeout;    /**< sent, no reply within --timeout */
	unsigned long unsent;     /**< the broker refused or lost the record */
} ctl_progress_counts;

/* Rows answered 2xx, whatever their op. */
unsigned long ctl_progress_done(const ctl_progress_counts *c);

/* Rows that failed for any reason. */
unsigned long ctl_progress_failed(const ctl_progress_counts *c);

typedef struct ctl_progress {
	FILE *out;
	bool tty; /**< out is a terminal: redraw one line */
	int64_t start_ms, next_ms;
	bool drawn; /**< a bar is on the terminal's last line */
} ctl_progress;

/* Starts p (the caller's) for out (borrowed), which must outlive it; now_ms on the
 * monotonic clock (pw_util_now_ms), as every now_ms below. */
void ctl_progress_init(ctl_progress *p, FILE *out, int64_t now_ms);

/* Draws when due (5 times a second on a terminal, every 5 s otherwise) or when force.
 * fraction: the share of the file read, 0 to 1. */
void ctl_progress_tick(ctl_progress *p, const ctl_progress_counts *c, double fraction,
                       int64_t now_ms, bool force);

/* Ends the bar's line on a terminal, so what follows starts on its own line. */
void ctl_progress_end(ctl_progress *p);

#endif
