/* libmicrohttpd with one internal polling thread: scrapes and probes are rare and
 * small, and a bounded connection count keeps a misbehaving scraper from costing more. */
#include "pw_http.h"

#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libpq-fe.h>

#include "pw_log.h"
#include "pw_util.h"

#define MAX_CONNECTIONS 16
#define CONN_TIMEOUT_S  10
#define PING_EVERY_S    1
#define PING_TIMEOUT_S  "2"
/* A ping that has not returned in this long counts as a "no" (a connect timeout is 2 s). */
#define PING_STALE_S 5

struct pw_http {
	const pw_config *cfg;
	pw_metrics *m;
	struct MHD_Daemon *d;
	pthread_t pinger;
	bool pinger_started;
	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t wake;
	bool stopping;
	bool db_ok;         /* the last ping's verdict */
	time_t answered_at; /* when the last ping returned; 0 before the first */
};

/* The database ping runs on its own thread, once a second, and a probe only reads its
 * last verdict: PQping can wait its whole connect timeout on an unreachable host, and a
 * probe must never wait for it (an integration.cluster run once saw one /readyz of 238
 * unanswered while the handler pinged). A probe storm never becomes a connection storm
 * either. PQping does not log in. */
static void *pinger_main(void *arg)
{
	pw_http *h = arg;
	const char *keys[] = {"dbname", "connect_timeout", NULL};
	const char *vals[] = {h->cfg->database_url, PING_TIMEOUT_S, NULL};

	pthread_mutex_lock(&h->mu);
	while (!h->stopping) {
		pthread_mutex_unlock(&h->mu);
		bool ok = PQpingParams(keys, vals, 1) == PQPING_OK;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += PING_EVERY_S;
		pthread_mutex_lock(&h->mu);
		h->db_ok = ok;
		h->answered_at = time(NULL);
		while (!h->stopping && pthread_cond_timedwait(&h->wake, &h->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* Whether the database server accepted a connection lately: the last ping said so and
 * returned recently enough that a hung one does not keep an old "yes". */
static bool database_answers(pw_http *h, char *why, size_t why_size)
{
	time_t now = time(NULL);
	bool ok;

	pthread_mutex_lock(&h->mu);
	if (h->answered_at == 0) {
		snprintf(why, why_size, "the database has not been pinged yet");
		ok = false;
	} else if (now - h->answered_at > PING_STALE_S) {
		snprintf(why, why_size, "the database ping has not returned for %lld s",
		         (long long)(now - h->answered_at));
		ok = false;
	} else {
		ok = h->db_ok;
		if (!ok)
			snprintf(why, why_size, "the database does not answer");
	}
	pthread_mutex_unlock(&h->mu);
	return ok;
}

static bool ready(pw_http *h, char *why, size_t why_size)
{
	if (!pw_metrics_lanes_ready(h->m, why, why_size))
		return false;
	if (!database_answers(h, why, why_size))
		return false;
	snprintf(why, why_size, "ready");
	return true;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned code, char *body, size_t len,
                               const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result rc;

	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	if (MHD_add_response_header(r, "Content-Type", type) != MHD_YES ||
	    MHD_add_response_header(r, "Cache-Control", "no-store") != MHD_YES) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	rc = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return rc;
}

/* A one-line plain text answer ("ready\n", "not ready: ...\n"). */
static enum MHD_Result text(struct MHD_Connection *c, unsigned code, const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *body = malloc(n);

	if (body == NULL)
		return MHD_NO;
	snprintf(body, n, "%s%s\n", a, b);
	return respond(c, code, body, strlen(body), "text/plain; charset=utf-8");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
	pw_http *h = cls;
	char why[160];

	(void)version;
	(void)upload;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET", "");
	/* A GET has no body; anything uploaded is ignored. */
	if (*upload_size != 0) {
		*upload_size = 0;
		return MHD_YES;
	}
	(void)state;
	if (strcmp(url, "/healthz") == 0)
		return text(c, MHD_HTTP_OK, "ok", "");
	if (strcmp(url, "/readyz") == 0) {
		if (ready(h, why, sizeof(why)))
			return text(c, MHD_HTTP_OK, "ready", "");
		return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: ", why);
	}
	if (strcmp(url, "/metrics") == 0) {
		char *body;
		size_t len;
		bool ok = ready(h, why, sizeof(why));
		if (pw_metrics_render(h->m, ok, &body, &len) != PW_OK)
			return MHD_NO;
		return respond(c, MHD_HTTP_OK, body, len,
		               "text/plain; version=0.0.4; charset=utf-8");
	}
	return text(c, MHD_HTTP_NOT_FOUND, "not found; try /metrics, /healthz or /readyz", "");
}

pw_status pw_http_start(const pw_config *cfg, pw_metrics *m, pw_http **out, char *err,
                        size_t err_size)
{
	char host[256], port[16];
	struct addrinfo hints, *res = NULL;
	pw_http *h;
	int rc;

	*out = NULL;
	if (cfg->http_addr == NULL)
		return PW_OK; /* switched off */
	if (pw_util_hostport_split(cfg->http_addr, host, sizeof(host), port, sizeof(port)) !=
	    PW_OK) {
		snprintf(err, err_size, "HTTP_ADDR: '%s' is not host:port", cfg->http_addr);
		return PW_E_CONFIG;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, err_size, "HTTP_ADDR: %s: %s", cfg->http_addr, gai_strerror(rc));
		return PW_E_CONFIG;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		freeaddrinfo(res);
		return PW_E_NOMEM;
	}
	h->cfg = cfg;
	h->m = m;
	if (pthread_mutex_init(&h->mu, NULL) != 0) {
		free(h);
		freeaddrinfo(res);
		return PW_E_NOMEM;
	}
	if (pthread_cond_init(&h->wake, NULL) != 0) {
		pthread_mutex_destroy(&h->mu);
		free(h);
		freeaddrinfo(res);
		return PW_E_NOMEM;
	}
	/* From here pw_http_stop undoes whatever was started. */
	if (pthread_create(&h->pinger, NULL, pinger_main, h) != 0) {
		freeaddrinfo(res);
		pw_http_stop(h);
		return PW_E_NOMEM;
	}
	h->pinger_started = true;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	if (res->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, res->ai_addr,
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
	                        MHD_OPTION_END);
	freeaddrinfo(res);
	if (h->d == NULL) {
		snprintf(err, err_size,
		         "HTTP_ADDR: cannot listen on %s (in use, or not an address "
		         "of this host?)",
		         cfg->http_addr);
		pw_http_stop(h);
		return PW_E_CONFIG;
	}
	PW_LOG_INFO(NULL, "metrics and health on http://%s (/metrics, /healthz, /readyz)",
	            cfg->http_addr);
	*out = h;
	return PW_OK;
}

void pw_http_stop(pw_http *h)
{
	if (h == NULL)
		return;
	if (h->d != NULL)
		MHD_stop_daemon(h->d);
	if (h->pinger_started) {
		pthread_mutex_lock(&h->mu);
		h->stopping = true;
		pthread_cond_signal(&h->wake);
		pthread_mutex_unlock(&h->mu);
		/* At most one ping's connect timeout. */
		pthread_join(h->pinger, NULL);
	}
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
