/* patientctl load: every row of a file as a patient.create, many in flight, resumable. */
#ifndef CTL_LOAD_H
#define CTL_LOAD_H

#include <stdio.h>

#include "ctl_exit.h"
#include "ctl_opts.h"
#include "ctl_token.h"
#include "pw_config.h"
#include "pw_status.h"

/* Loads o->file: rows in the journal (o->journal, default FILE.done) with the same text
 * are skipped; every other row is sent with request id load:PREFIX:LINE, at most
 * o->inflight unanswered at a time, and matched to its reply by that key on reply_topic.
 * 2xx rows are added to the journal; failed rows (4xx/5xx, unparsable, too large, no
 * reply within o->timeout_s of being sent) are written to o->errors (default
 * FILE.errors.jsonl, replaced on each run). Progress goes to err, the summary to out.
 * Blocks until every row is answered or has failed (SIGINT/SIGTERM stop it early).
 * Returns (ctl_exit.h) 0 when every row is fine, 1 when some row failed, 2 for a file or
 * setting problem found before sending, 3 when some row timed out, 130 when interrupted. */
PW_MUST_CHECK ctl_exit ctl_load_run(const ctl_opts *o, const pw_config *cfg, ctl_token_identity *id,
                                    const char *reply_topic, FILE *out, FILE *err);

#endif
