/* A load's journal (FILE.done): one line per row answered 2xx, "LINE HASH", so that a run
 * over the same file skips the rows done before and sends only the others. */
#ifndef CTL_JOURNAL_H
#define CTL_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ctl_exit.h"
#include "pw_status.h"

typedef struct ctl_journal ctl_journal;

/* Reads the journal at path (missing: empty) and opens it for appending. Lines it cannot
 * read (a line cut by a crash) are ignored: their rows are sent again, which the worker
 * answers as before. CTL_EXIT_OK with *out the caller's (ctl_journal_close), or
 * CTL_EXIT_USAGE after a line on err naming path. */
PW_MUST_CHECK ctl_exit ctl_journal_open(ctl_journal **out, const char *path, FILE *err);

/* Was the row on line with this hash answered 2xx by an earlier run? */
bool ctl_journal_has(const ctl_journal *j, unsigned long line, uint64_t hash);

/* Entries read at open. */
size_t ctl_journal_count(const ctl_journal *j);

/* Records a 2xx answer; written out by the next flush at the latest. PW_OK, or
 * PW_E_INTERNAL when writing failed (errno says why). */
PW_MUST_CHECK pw_status ctl_journal_add(ctl_journal *j, unsigned long line, uint64_t hash);

/* Writes out what was added; with sync, to the disk too. PW_OK, or PW_E_INTERNAL (errno). */
PW_MUST_CHECK pw_status ctl_journal_flush(ctl_journal *j, bool sync);

/* Flushes, syncs and closes; PW_OK, or PW_E_INTERNAL when the last writes failed (errno).
 * j is freed either way. NULL is fine. */
PW_MUST_CHECK pw_status ctl_journal_close(ctl_journal *j);

#endif
