/* Small self-contained helpers the other modules share: base64url, UTF-8 checks, host:port,
 * a growable buffer with a limit, and the monotonic clock. No I/O, no logging, no state. */
#ifndef PW_UTIL_H
#define PW_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pw_status.h"

/* ---- base64url (RFC 4648 section 5), never padded ---------------------------------------- */

/* Characters needed to encode n bytes, without the NUL. */
size_t pw_util_b64url_encoded_len(size_t n);

/* Encodes n bytes into out (NUL-terminated). PW_E_INVALID when out_size is too small. */
PW_MUST_CHECK pw_status pw_util_b64url_encode(const void *in, size_t n, char *out, size_t out_size);

/* Decodes in_len characters into out and NUL-terminates it (so out_size must leave room for
 * one more byte); *out_len is the number of bytes decoded. PW_E_INVALID when a character is
 * outside the alphabet, the length is not one any encoding has, or it does not fit. Spare
 * bits of the last character are ignored (callers that need one canonical form check them). */
PW_MUST_CHECK pw_status pw_util_b64url_decode(const char *in, size_t in_len, unsigned char *out,
                                              size_t out_size, size_t *out_len);

/* True when every one of the n characters is in the base64url alphabet. */
bool pw_util_b64url_alphabet(const char *s, size_t n);

/* ---- UTF-8 ------------------------------------------------------------------------------- */

/* Counts the code points of a NUL-terminated string into *chars. PW_E_INVALID when it is not
 * valid UTF-8 (overlong forms, surrogates and values above U+10FFFF are invalid). */
PW_MUST_CHECK pw_status pw_util_utf8_length(const char *s, size_t *chars);

/* True when s (valid UTF-8) holds a C0 control, DEL or a C1 control (U+0080-U+009F). */
bool pw_util_utf8_has_control(const char *s);

/* ---- host:port --------------------------------------------------------------------------- */

/* Splits "host:port" or "[v6]:port" into host and port (both NUL-terminated). PW_E_INVALID
 * when addr has no port, an unbracketed host holds a ':', or a part does not fit. */
PW_MUST_CHECK pw_status pw_util_hostport_split(const char *addr, char *host, size_t host_size,
                                               char *port, size_t port_size);

/* ---- growable memory --------------------------------------------------------------------- */

/* Makes room for need elements of elem_size bytes in *items (capacity *cap, in elements),
 * doubling from 16; never beyond max elements. PW_E_NOMEM when that limit or memory runs
 * out, leaving *items and *cap as they were. */
PW_MUST_CHECK pw_status pw_util_grow(void **items, size_t *cap, size_t need, size_t elem_size,
                                     size_t max);

/* A byte buffer that is always NUL-terminated once anything was appended. Zero-initialise it;
 * max (bytes, NUL excluded) bounds it, 0 meaning no bound but memory. */
typedef struct pw_util_buf {
	char *p;    /**< owned; NULL until the first append */
	size_t len; /**< bytes held, the NUL not counted */
	size_t cap; /**< bytes allocated */
	size_t max; /**< the limit; 0: none */
} pw_util_buf;

/* Appends n bytes. PW_E_NOMEM (the buffer unchanged) past max or out of memory. */
PW_MUST_CHECK pw_status pw_util_buf_append(pw_util_buf *b, const void *s, size_t n);
/* Hands the text over: *out is the NUL-terminated bytes ("" when nothing was appended), the
 * caller's to free; the buffer is left empty. PW_E_NOMEM (nothing handed over). */
PW_MUST_CHECK pw_status pw_util_buf_take(pw_util_buf *b, char **out);
/* Empties the buffer, keeping its memory. */
void pw_util_buf_reset(pw_util_buf *b);
/* Frees the memory; the buffer is empty and reusable (max kept). */
void pw_util_buf_free(pw_util_buf *b);

/* Reads a whole file of at most max bytes into *out (NUL-terminated, caller frees) and its
 * length. PW_E_INVALID with errno set (EFBIG when larger than max); PW_E_NOMEM. */
PW_MUST_CHECK pw_status pw_util_read_file(const char *path, size_t max, char **out, size_t *len);

/* ---- the monotonic clock ----------------------------------------------------------------- */

/* Deadlines and durations: these never move when the wall clock does. */
int64_t pw_util_now_us(void);
int64_t pw_util_now_ms(void);

#endif
