/* The key archive (migrations/006_key_archive.sql): every public key a worker's set has
 * held, by RFC 7638 thumbprint, with the time it left the set. It is what lets a command be
 * judged by the keys of its own time, after a rotation, on any worker and in a replay. */
#ifndef PW_KEYARCHIVE_H
#define PW_KEYARCHIVE_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "pw_config.h"
#include "pw_jwk.h"
#include "pw_status.h"

/* A session for the archive: DATABASE_URL, then SET ROLE DATABASE_ROLE. NULL (err says
 * why) when the database cannot be reached now. */
PGconn *pw_keyarchive_connect(const pw_config *cfg, char *err, size_t err_size);

/* In one transaction: with record, adds the current set's keys (a key already archived
 * keeps its row) and retires, at now_s, every archived key the set lacks that is not
 * retired yet; then reads the archive. *out becomes the keys a token may be checked with:
 * the current set's, each with the retired_at the archive gives it (a key that reappeared
 * after its retirement stays retired), and the archived keys the set lacks. Without
 * record (a replay) nothing is written. PW_E_RETRY (err says why) when the database fails;
 * PW_E_NOMEM. */
PW_MUST_CHECK pw_status pw_keyarchive_sync(PGconn *c, const pw_jwk_set *current, int64_t now_s,
                                           bool record, pw_jwk_set *out, char *err,
                                           size_t err_size);

#endif
