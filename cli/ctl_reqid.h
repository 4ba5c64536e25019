/* Request ids: random ones for single commands, derived ones for the rows of a load. */
#ifndef CTL_REQID_H
#define CTL_REQID_H

#include <stdbool.h>
#include <stddef.h>

#include "pw_status.h"

/* The contract's limit on a request id. */
#define CTL_REQID_MAX 128
/* "load:" + prefix + ":" + a line number of up to 20 digits fits CTL_REQID_MAX. */
#define CTL_REQID_PREFIX_MAX (CTL_REQID_MAX - 5 - 1 - 20)
/* A UUID's text and its NUL. */
#define CTL_REQID_UUID_SIZE 37

/* Writes a random (version 4) UUID from the kernel's random source into out. PW_OK, or
 * PW_E_INTERNAL when no random bytes could be had (out is then unspecified). */
PW_MUST_CHECK pw_status ctl_reqid_random(char out[CTL_REQID_UUID_SIZE]);

/* Is p 1 to CTL_REQID_PREFIX_MAX characters of [A-Za-z0-9._-]? */
bool ctl_reqid_prefix_valid(const char *p);

/* Writes the default prefix of a load's request ids into out (size bytes, the caller's):
 * the file's base name with every character outside [A-Za-z0-9._-] made '_', cut to
 * CTL_REQID_PREFIX_MAX. out needs CTL_REQID_PREFIX_MAX+1 for the whole prefix. */
void ctl_reqid_prefix_from_path(const char *path, char *out, size_t size);

#endif
