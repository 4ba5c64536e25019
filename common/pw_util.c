/* Shared helpers: base64url, UTF-8, host:port, growable memory, the monotonic clock. */
#include "pw_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- base64url ---------------------------------------------------------------------------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

size_t pw_util_b64url_encoded_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

pw_status pw_util_b64url_encode(const void *in, size_t n, char *out, size_t out_size)
{
	const unsigned char *b = in;
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;

	if (out_size <= pw_util_b64url_encoded_len(n))
		return PW_E_INVALID;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | b[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64url[(acc >> bits) & 0x3f];
		}
	}
	if (bits > 0)
		out[o++] = b64url[(acc << (6 - bits)) & 0x3f];
	out[o] = '\0';
	return PW_OK;
}

pw_status pw_util_b64url_decode(const char *in, size_t in_len, unsigned char *out, size_t out_size,
                                size_t *out_len)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;

	if (in_len % 4 == 1 || out_size == 0) /* no encoding has this length */
		return PW_E_INVALID;
	for (size_t i = 0; i < in_len; i++) {
		int v = b64url_value((unsigned char)in[i]);
		if (v < 0)
			return PW_E_INVALID;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 >= out_size)
				return PW_E_INVALID;
			out[o++] = (unsigned char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	*out_len = o;
	return PW_OK;
}

bool pw_util_b64url_alphabet(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b64url_value((unsigned char)s[i]) < 0)
			return false;
	return true;
}

/* ---- UTF-8 -------------------------------------------------------------------------------- */

pw_status pw_util_utf8_length(const char *s, size_t *chars)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	while (*p) {
		unsigned c = *p, cp;
		int extra;
		if (c < 0x80) {
			p++;
			n++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			cp = c & 0x1f;
			extra = 1;
		} else if ((c & 0xf0) == 0xe0) {
			cp = c & 0x0f;
			extra = 2;
		} else if ((c & 0xf8) == 0xf0) {
			cp = c & 0x07;
			extra = 3;
		} else {
			return PW_E_INVALID;
		}
		for (int i = 1; i <= extra; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return PW_E_INVALID; /* also catches the NUL of a cut sequence */
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
		    (extra == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return PW_E_INVALID;
		p += extra + 1;
		n++;
	}
	*chars = n;
	return PW_OK;
}

bool pw_util_utf8_has_control(const char *s)
{
	/* In valid UTF-8 a C1 control (U+0080-U+009F) is 0xc2 followed by 0x80-0x9f. */
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
			return true;
	return false;
}

/* ---- host:port ---------------------------------------------------------------------------- */

pw_status pw_util_hostport_split(const char *addr, char *host, size_t host_size, char *port,
                                 size_t port_size)
{
	const char *colon = strrchr(addr, ':');
	const char *h = addr;
	size_t hlen;

	if (colon == NULL || colon == addr || colon[1] == '\0')
		return PW_E_INVALID;
	hlen = (size_t)(colon - addr);
	if (addr[0] == '[') {
		if (hlen < 2 || addr[hlen - 1] != ']')
			return PW_E_INVALID;
		h = addr + 1;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= host_size || strlen(colon + 1) >= port_size)
		return PW_E_INVALID;
	/* An IPv6 address goes in brackets; anything else with a ':' is two addresses. */
	if (addr[0] != '[' && memchr(h, ':', hlen) != NULL)
		return PW_E_INVALID;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	snprintf(port, port_size, "%s", colon + 1);
	return PW_OK;
}

/* ---- growable memory ---------------------------------------------------------------------- */

pw_status pw_util_grow(void **items, size_t *cap, size_t need, size_t elem_size, size_t max)
{
	size_t n = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return PW_OK;
	if (need > max || elem_size == 0 || max > SIZE_MAX / elem_size)
		return PW_E_NOMEM;
	if (n > max)
		n = max;
	while (n < need)
		n = n > max / 2 ? max : n * 2;
	p = realloc(*items, n * elem_size);
	if (p == NULL)
		return PW_E_NOMEM;
	*items = p;
	*cap = n;
	return PW_OK;
}

pw_status pw_util_buf_append(pw_util_buf *b, const void *s, size_t n)
{
	size_t max = b->max ? b->max : SIZE_MAX / 2;
	void *p = b->p;

	if (n > max - b->len)
		return PW_E_NOMEM;
	/* One byte past the limit for the NUL. */
	if (pw_util_grow(&p, &b->cap, b->len + n + 1, 1, max + 1) != PW_OK)
		return PW_E_NOMEM;
	b->p = p;
	if (n > 0)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return PW_OK;
}

pw_status pw_util_buf_take(pw_util_buf *b, char **out)
{
	if (pw_util_buf_append(b, "", 0) != PW_OK) /* allocates the NUL of an empty one */
		return PW_E_NOMEM;
	*out = b->p;
	b->p = NULL;
	b->len = b->cap = 0;
	return PW_OK;
}

void pw_util_buf_reset(pw_util_buf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

void pw_util_buf_free(pw_util_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- the monotonic clock ------------------------------------------------------------------ */

int64_t pw_util_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t pw_util_now_ms(void)
{
	return pw_util_now_us() / 1000;
}

pw_status pw_util_read_file(const char *path, size_t max, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	pw_util_buf b = {.max = max};
	char chunk[4096];
	size_t r;
	pw_status st = PW_E_INVALID;

	*out = NULL;
	if (f == NULL)
		return PW_E_INVALID;
	while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (pw_util_buf_append(&b, chunk, r) != PW_OK) {
			bool big = max > 0 && b.len + r > max;
			errno = big ? EFBIG : ENOMEM;
			st = big ? PW_E_INVALID : PW_E_NOMEM;
			goto out;
		}
	st = PW_E_INVALID;
	if (ferror(f)) {
		errno = EIO;
		goto out;
	}
	*len = b.len;
	st = pw_util_buf_take(&b, out);
out:
	pw_util_buf_free(&b);
	fclose(f);
	return st;
}
