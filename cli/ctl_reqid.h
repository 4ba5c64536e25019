/* Request ids: random ones for single commands, derived ones for the rows of a load. */
#ifndef CTL_REQID_H
#define CTL_REQID_H

#include <stddef.h>

/* The contract's limit on a request id. */
#define CTL_REQUEST_ID_MAX 128
/* "load:" + prefix + ":" + a line number of up to 20 digits fits CTL_REQUEST_ID_MAX. */
#define CTL_ID_PREFIX_MAX (CTL_REQUEST_ID_MAX - 5 - 1 - 20)
/* A UUID's text and its NUL. */
#define CTL_UUID_SIZE 37

/* A random (version 4) UUID from the kernel's random source; 0, or -1 when it failed. */
int ctl_request_id_random(char out[CTL_UUID_SIZE]);

/* 1 when p is 1 to CTL_ID_PREFIX_MAX characters of [A-Za-z0-9._-]. */
int ctl_id_prefix_valid(const char *p);

/* The default prefix of a load's request ids: the file's base name with every character
 * outside [A-Za-z0-9._-] made '_', cut to CTL_ID_PREFIX_MAX. out needs CTL_ID_PREFIX_MAX+1. */
void ctl_id_prefix_from_path(const char *path, char *out, size_t size);

#endif
