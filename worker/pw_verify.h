/* replay --verify: what a command topic's successful writes imply about the database, and
 * whether the database says the same. Each create answered 201 makes a patient (version 1);
 * each update or delete answered 200 moves it on from the version it named. Afterwards every
 * such patient is compared with its row (fields, version, deleted or not), and rows that
 * claim the topic as their source but no write made are counted. Reads only. */
#ifndef PW_VERIFY_H
#define PW_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "pw_handler.h"
#include "pw_status.h"

typedef struct pw_verify pw_verify;

typedef struct pw_verify_counts {
	unsigned long match;      /**< patients whose row is what the topic implies */
	unsigned long differs;    /**< patients whose row has other values or version */
	unsigned long missing;    /**< patients with no row */
	unsigned long broken;     /**< changes that follow no version the topic made */
	unsigned long unanswered; /**< writes with no answer recorded (no audit row) */
	unsigned long refused;    /**< writes answered 404 or 409: no effect */
	unsigned long orphans;    /**< rows from this topic that no write made */
} pw_verify_counts;

/* c: a read-only session that sees every tenant (borrowed; it must outlive v). */
PW_MUST_CHECK pw_status pw_verify_create(PGconn *c, pw_verify **out);
void pw_verify_destroy(pw_verify *v); /* NULL is fine */

/* A write record of the topic (topic/partition/offset), decided as the worker would and
 * judged at its append time: its answer is read from its audit row. PW_E_INTERNAL when
 * the database cannot be read (with a line on stderr), PW_E_NOMEM. */
PW_MUST_CHECK pw_status pw_verify_record(pw_verify *v, const pw_handler_outcome *o,
                                         const char *topic, int32_t partition, int64_t offset);

/* After the whole topic: applies the changes in version order, compares every patient with
 * its row and counts the rows of the topic that no write made. Blocks. */
PW_MUST_CHECK pw_status pw_verify_finish(pw_verify *v, const char *topic);

const pw_verify_counts *pw_verify_counts_of(const pw_verify *v);

/* True when the database is what the topic implies. */
bool pw_verify_consistent(const pw_verify *v);

#endif
