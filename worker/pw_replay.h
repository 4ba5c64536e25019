/* `patient-worker replay`: read a command topic from the start, outside the group. */
#ifndef PW_REPLAY_H
#define PW_REPLAY_H

#include "pw_config.h"
#include "pw_cursor.h"

typedef struct pw_replay_opts {
	const char *topic; /**< a command topic: TOPIC_CREATE (default) or TOPIC_QUERY */
	int verify;        /**< write nothing; compare the database with the topic */
	int reply;         /**< without verify: publish the replies again */
} pw_replay_opts;

/* Runs a replay. Without verify, each command is processed as the worker would (a
 * create already answered changes nothing; its audit row exists already) and nothing
 * is published unless opts->reply. With verify, nothing is written (a read-only
 * session) and a report goes to stdout. Progress goes to stderr. Returns the exit
 * status: 0, 1 when verify finds a disagreement or the run fails, 2 for bad settings. */
int pw_replay_run(const pw_config *cfg, const pw_cursor_key *key, const pw_replay_opts *opts);

#endif
