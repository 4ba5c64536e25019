/* Schema migrations compiled into the binary, applied once each under an advisory lock. */
#ifndef PW_MIGRATE_H
#define PW_MIGRATE_H

#include <stddef.h>

#include "pw_status.h"

typedef struct pw_migration {
	const char *name; /**< file name, e.g. "002_patients.sql"; applied in this order */
	const char *sql;
	size_t len;
} pw_migration;

/* Generated from the files in migrations/ by cmake/embed_text.cmake. */
extern const pw_migration pw_migrate_files[];
extern const size_t pw_migrate_count;

/* Connects with database_url and applies every migration not yet applied, each in its
 * own transaction, holding an advisory lock so replicas starting together take turns.
 * A migration already applied whose text changed stops it (PW_E_INVALID) with the file
 * named in errstr. PW_E_RETRY when the database cannot be reached. *applied counts
 * the migrations this call applied. Blocks. */
PW_MUST_CHECK pw_status pw_migrate_run(const char *database_url, int *applied, char *errstr,
                                       size_t errstr_size);

#endif
