/* Request ids; see ctl_reqid.h. */
#include "ctl_reqid.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

static bool prefix_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

pw_status ctl_reqid_random(char out[CTL_REQID_UUID_SIZE])
{
	unsigned char b[16];
	size_t got = 0;

	/* Two clients started in the same microsecond must not share an id (the worker would
	 * answer the second with the first's reply), so time and pid are not enough. */
	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return PW_E_INTERNAL;
		got += (size_t)n;
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, CTL_REQID_UUID_SIZE,
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
	         b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
	         b[15]);
	return PW_OK;
}

bool ctl_reqid_prefix_valid(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > CTL_REQID_PREFIX_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!prefix_char(p[i]))
			return false;
	return true;
}

void ctl_reqid_prefix_from_path(const char *path, char *out, size_t size)
{
	const char *base = strrchr(path, '/');
	size_t n = 0;

	base = base ? base + 1 : path;
	for (; *base && n + 1 < size && n < CTL_REQID_PREFIX_MAX; base++)
		out[n++] = prefix_char(*base) ? *base : '_';
	if (n == 0 && size > 1)
		out[n++] = '_'; /* "dir/": an id needs a non-empty prefix */
	if (size > 0)
		out[n] = '\0';
}
