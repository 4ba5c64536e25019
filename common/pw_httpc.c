/* HTTP/1.0 GET over a blocking socket with send/receive timeouts (Linux applies
 * SO_SNDTIMEO to connect as well), one address family at a time. */
#include "pw_httpc.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "pw_util.h"

static int connect_to(const char *host, const char *port, int timeout_ms, char *err,
                      size_t err_size)
{
	struct addrinfo hints, *res = NULL;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int fd = -1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, err_size, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
		if (fd < 0)
			continue;
		if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0 &&
		    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
		    connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		snprintf(err, err_size, "connect to %s:%s: %s", host, port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

pw_status pw_httpc_get(const char *addr, const char *path, int timeout_ms, size_t max_body,
                       int *status, char **body, char *err, size_t err_size)
{
	char host[256], port[16], req[512];
	char *buf = NULL;
	size_t len = 0, cap = max_body + 1024; /* the body and a status line and headers */
	pw_status st = PW_E_RETRY;
	int fd = -1;

	*status = 0;
	*body = NULL;
	if (pw_util_hostport_split(addr, host, sizeof(host), port, sizeof(port)) != PW_OK) {
		snprintf(err, err_size, "'%s' is not host:port", addr);
		return PW_E_INVALID;
	}
	/* A listener on every address answers on the loopback one. */
	if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	else if (strcmp(host, "::") == 0)
		snprintf(host, sizeof(host), "::1");
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr);
	if (n < 0 || (size_t)n >= sizeof(req)) {
		snprintf(err, err_size, "request too long");
		return PW_E_INVALID;
	}
	fd = connect_to(host, port, timeout_ms, err, err_size);
	if (fd < 0)
		return PW_E_RETRY;
	buf = malloc(cap + 1);
	if (buf == NULL) {
		st = PW_E_NOMEM;
		goto out;
	}
	for (size_t off = 0; off < (size_t)n;) {
		ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
		if (w <= 0) {
			snprintf(err, err_size, "send: %s", strerror(errno));
			goto out;
		}
		off += (size_t)w;
	}
	/* HTTP/1.0: the server closes the connection after the body. */
	for (;;) {
		ssize_t r = recv(fd, buf + len, cap - len, 0);
		if (r == 0)
			break;
		if (r < 0) {
			snprintf(err, err_size, "receive: %s", strerror(errno));
			goto out;
		}
		len += (size_t)r;
		if (len == cap) {
			snprintf(err, err_size, "response larger than %zu bytes", max_body);
			goto out;
		}
	}
	buf[len] = '\0';
	int code;
	if (sscanf(buf, "HTTP/%*d.%*d %d", &code) != 1) {
		snprintf(err, err_size, "not an HTTP response");
		goto out;
	}
	char *start = strstr(buf, "\r\n\r\n");
	start = start ? start + 4 : buf + len;
	*body = strdup(start);
	if (*body == NULL) {
		st = PW_E_NOMEM;
		goto out;
	}
	*status = code;
	st = PW_OK;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return st;
}
