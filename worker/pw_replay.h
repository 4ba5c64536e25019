/* `patient-worker replay`: read a command topic from the start, outside the group. */
#ifndef PW_REPLAY_H
#define PW_REPLAY_H

#include <stdbool.h>

#include "pw_config.h"
#include "pw_cursor.h"
#include "pw_status.h"

typedef struct pw_replay_opts {
	const char *topic; /**< a command topic: TOPIC_CREATE (default) or TOPIC_QUERY */
	bool verify;       /**< write nothing; compare the database with the topic */
	bool reply;        /**< without verify: publish the replies again */
} pw_replay_opts;

/* Runs a replay. Without verify, each command is processed as the worker would (a
 * create already answered changes nothing; its audit row exists already) and nothing
 * is published unless opts->reply. With verify, nothing is written (a read-only
 * session), a report goes to stdout and *consistent says whether the database agrees
 * with the topic. Progress and failures go to stderr. PW_OK once the whole topic was
 * read; PW_E_CONFIG for settings that make the run impossible; another status when it
 * failed on the way. Blocks for the whole run. */
PW_MUST_CHECK pw_status pw_replay_run(const pw_config *cfg, const pw_cursor_key *key,
                                      const pw_replay_opts *opts, bool *consistent);

#endif
