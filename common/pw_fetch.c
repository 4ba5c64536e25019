/* libcurl, one easy handle per fetch: fetches are rare (a refresh every few minutes), so
 * nothing is kept between them and no state is shared across threads. */
#include "pw_fetch.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pw_util.h"

/* Where Debian keeps the system's trusted CAs as hashed files: used beside an extra CA
 * file, because libcurl's CAINFO replaces the default bundle rather than adding to it. */
#define SYSTEM_CA_DIR "/etc/ssl/certs"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static CURLcode init_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
	init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* A loopback host: 127.0.0.0/8, ::1 or localhost (which the resolver keeps local). */
static bool loopback_host(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	char bare[64];
	size_t n = strlen(host);

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n > 2 && n < sizeof(bare) && host[0] == '[' && host[n - 1] == ']') {
		memcpy(bare, host + 1, n - 2);
		bare[n - 2] = '\0';
		return inet_pton(AF_INET6, bare, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	}
	return false;
}

bool pw_fetch_url_allowed(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	bool ok = false;

	/* libcurl's own parser: the host it would connect to, not a prefix of the text (a
	 * prefix test would let http://127.0.0.1.example.net/ through). */
	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
		goto out;
	if (strcmp(scheme, "https") == 0)
		ok = true;
	else if (strcmp(scheme, "http") == 0)
		ok = loopback_host(host);
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

typedef struct sink {
	pw_util_buf buf;
	bool too_big;
	long max_age;
} sink;

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	sink *s = arg;

	/* Returning less than given makes libcurl stop with CURLE_WRITE_ERROR. */
	if (pw_util_buf_append(&s->buf, data, size * n) != PW_OK) {
		s->too_big = true;
		return 0;
	}
	return size * n;
}

/* Cache-Control: ... max-age=N ... (RFC 9111 5.2.2.1); the first one seen wins. */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	sink *s = arg;
	size_t len = size * n;
	static const char name[] = "cache-control:";

	if (s->max_age < 0 && len > sizeof(name) &&
	    strncasecmp(data, name, sizeof(name) - 1) == 0) {
		for (size_t i = sizeof(name) - 1; i + 8 <= len; i++) {
			if (strncasecmp(data + i, "max-age=", 8) != 0)
				continue;
			long v = 0;
			size_t k = i + 8;
			while (k < len && isdigit((unsigned char)data[k]) && v < 100000000)
				v = v * 10 + (data[k++] - '0');
			if (k > i + 8)
				s->max_age = v;
			break;
		}
	}
	return len;
}

pw_status pw_fetch_get(const char *url, const char *ca_file, size_t max, pw_fetch_result *out,
                       char *err, size_t err_size)
{
	sink s = {.buf = {.max = max}, .max_age = -1};
	char curl_err[CURL_ERROR_SIZE] = "";
	CURL *c = NULL;
	long code = 0;
	pw_status st = PW_E_RETRY;

	*out = (pw_fetch_result){NULL, 0, -1};
	if (!pw_fetch_url_allowed(url)) {
		snprintf(err, err_size, "%s: only https://, or http:// to a loopback host", url);
		return PW_E_INVALID;
	}
	pthread_once(&once, global_init);
	if (init_rc != CURLE_OK || (c = curl_easy_init()) == NULL) {
		snprintf(err, err_size, "libcurl cannot start");
		return PW_E_NOMEM;
	}
	bool set =
	    curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http") == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)PW_FETCH_TIMEOUT_MS) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)PW_FETCH_TIMEOUT_MS) == CURLE_OK &&
	    /* No signals from a thread that is not the main one. */
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_HEADERDATA, &s) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_USERAGENT, "patient-worker") == CURLE_OK;
	if (set && ca_file != NULL)
		set = curl_easy_setopt(c, CURLOPT_CAINFO, ca_file) == CURLE_OK &&
		      curl_easy_setopt(c, CURLOPT_CAPATH, SYSTEM_CA_DIR) == CURLE_OK;
	if (!set) {
		snprintf(err, err_size, "libcurl refused an option");
		st = PW_E_INTERNAL;
		goto out;
	}
	CURLcode rc = curl_easy_perform(c);
	if (s.too_big) {
		snprintf(err, err_size, "%s: the response is larger than %zu bytes", url, max);
		goto out;
	}
	if (rc != CURLE_OK) {
		snprintf(err, err_size, "%s: %s", url,
		         curl_err[0] ? curl_err : curl_easy_strerror(rc));
		goto out;
	}
	if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code != 200) {
		snprintf(err, err_size, "%s: HTTP status %ld", url, code);
		goto out;
	}
	out->len = s.buf.len;
	out->max_age = s.max_age;
	if (pw_util_buf_take(&s.buf, &out->body) != PW_OK) {
		snprintf(err, err_size, "out of memory");
		st = PW_E_NOMEM;
		goto out;
	}
	st = PW_OK;
out:
	pw_util_buf_free(&s.buf);
	curl_easy_cleanup(c);
	return st;
}
