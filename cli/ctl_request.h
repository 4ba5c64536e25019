/* One command, one reply: patientctl create, get and list. */
#ifndef CTL_REQUEST_H
#define CTL_REQUEST_H

#include <stdio.h>

#include "ctl_exit.h"
#include "ctl_opts.h"
#include "ctl_token.h"
#include "pw_config.h"
#include "pw_status.h"

/* Builds the command o describes, sends it, waits for the reply keyed by its request id
 * and prints the reply's JSON on out; blocks at most o->timeout_s. Returns the exit status
 * (ctl_exit.h): 0 for 2xx, 1 for any other status, 2 before sending when the command
 * cannot be built or its topic does not exist, 3 when no reply came within o->timeout_s of
 * the start. The reply is read from reply_topic, which the command names as its reply_to. */
PW_MUST_CHECK ctl_exit ctl_request_run(const ctl_opts *o, const pw_config *cfg,
                                       ctl_token_identity *id, const char *reply_topic, FILE *out,
                                       FILE *err);

#endif
