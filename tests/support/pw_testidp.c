/* The stand-in identity provider (see pw_testidp.h). */
#include "pw_testidp.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

struct tk_idp {
	struct MHD_Daemon *d;
	char *cert, *key; /**< PEM: HTTPS when set */
	int port;
	char base[64];
	pthread_mutex_t mu;
	char *keys, *issuer;
	bool failing;
	long max_age;
	unsigned long fetches;
	pthread_cond_t gate; /**< signalled when holding ends */
	bool holding;        /**< /jwks requests wait while set */
	int held;            /**< requests waiting now */
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, char *body, long max_age)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	if (max_age >= 0) {
		char cc[64];
		snprintf(cc, sizeof(cc), "public, max-age=%ld", max_age);
		MHD_add_response_header(r, "Cache-Control", cc);
	}
	enum MHD_Result rc = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result handle(void *arg, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
	tk_idp *p = arg;
	char *body = NULL;
	unsigned code = 200;
	long max_age = -1;
	(void)method;
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)state;

	pthread_mutex_lock(&p->mu);
	if (strcmp(url, "/jwks") == 0) {
		/* Held at most 30 s, so a test that forgets the gate still ends. */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 30;
		p->held++;
		while (p->holding && pthread_cond_timedwait(&p->gate, &p->mu, &until) == 0)
			;
		p->held--;
		p->fetches++;
	}
	if (p->failing) {
		code = 500;
		body = strdup("{\"error\":\"down\"}");
	} else if (strcmp(url, "/.well-known/openid-configuration") == 0) {
		size_t n = strlen(p->base) + 256 + (p->issuer ? strlen(p->issuer) : 0);
		body = malloc(n);
		if (body != NULL)
			snprintf(body, n, "{\"issuer\":\"%s\",\"jwks_uri\":\"%s/jwks\"}",
			         p->issuer ? p->issuer : p->base, p->base);
	} else if (strcmp(url, "/jwks") == 0) {
		body = strdup(p->keys);
		max_age = p->max_age;
	} else {
		code = 404;
		body = strdup("{}");
	}
	pthread_mutex_unlock(&p->mu);
	return body == NULL ? MHD_NO : reply(c, code, body, max_age);
}

static void listen_on(tk_idp *p)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)p->port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (p->cert != NULL)
		p->d =
		    MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_TLS,
		                     0, NULL, NULL, handle, p, MHD_OPTION_SOCK_ADDR,
		                     (struct sockaddr *)&a, MHD_OPTION_HTTPS_MEM_CERT, p->cert,
		                     MHD_OPTION_HTTPS_MEM_KEY, p->key, MHD_OPTION_END);
	else
		p->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL,
		                        NULL, handle, p, MHD_OPTION_SOCK_ADDR,
		                        (struct sockaddr *)&a, MHD_OPTION_END);
	ck_assert_msg(p->d != NULL, "the stand-in identity provider cannot listen on %d", p->port);
}

int tk_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static tk_idp *start(const char *set_json, const char *cert_pem, const char *key_pem)
{
	tk_idp *p = calloc(1, sizeof(*p));
	ck_assert_ptr_nonnull(p);
	if (cert_pem != NULL) {
		p->cert = strdup(cert_pem);
		p->key = strdup(key_pem);
		ck_assert(p->cert != NULL && p->key != NULL);
	}
	p->port = tk_free_port();
	snprintf(p->base, sizeof(p->base), "%s://127.0.0.1:%d", cert_pem ? "https" : "http",
	         p->port);
	ck_assert_int_eq(pthread_mutex_init(&p->mu, NULL), 0);
	ck_assert_int_eq(pthread_cond_init(&p->gate, NULL), 0);
	p->keys = strdup(set_json);
	p->max_age = -1;
	listen_on(p);
	return p;
}

tk_idp *tk_idp_start(const char *set_json)
{
	return start(set_json, NULL, NULL);
}

tk_idp *tk_idp_start_tls(const char *set_json, const char *cert_pem, const char *key_pem)
{
	return start(set_json, cert_pem, key_pem);
}

void tk_idp_hold(tk_idp *p, bool hold)
{
	pthread_mutex_lock(&p->mu);
	p->holding = hold;
	pthread_cond_broadcast(&p->gate);
	pthread_mutex_unlock(&p->mu);
}

int tk_idp_held(tk_idp *p)
{
	pthread_mutex_lock(&p->mu);
	int n = p->held;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void tk_idp_pause(tk_idp *p)
{
	tk_idp_hold(p, false); /* the daemon's thread is joined: nothing may wait in it */
	if (p->d != NULL)
		MHD_stop_daemon(p->d);
	p->d = NULL;
}

void tk_idp_resume(tk_idp *p)
{
	listen_on(p);
}

void tk_idp_stop(tk_idp *p)
{
	if (p == NULL)
		return;
	tk_idp_pause(p);
	pthread_cond_destroy(&p->gate);
	pthread_mutex_destroy(&p->mu);
	free(p->keys);
	free(p->issuer);
	free(p->cert);
	free(p->key);
	free(p);
}

const char *tk_idp_base(const tk_idp *p)
{
	return p->base;
}

void tk_idp_set_keys(tk_idp *p, const char *set_json)
{
	char *k = strdup(set_json);
	ck_assert_ptr_nonnull(k);
	pthread_mutex_lock(&p->mu);
	free(p->keys);
	p->keys = k;
	pthread_mutex_unlock(&p->mu);
}

void tk_idp_set_failing(tk_idp *p, bool failing)
{
	pthread_mutex_lock(&p->mu);
	p->failing = failing;
	pthread_mutex_unlock(&p->mu);
}

void tk_idp_set_issuer(tk_idp *p, const char *issuer)
{
	char *i = issuer ? strdup(issuer) : NULL;
	pthread_mutex_lock(&p->mu);
	free(p->issuer);
	p->issuer = i;
	pthread_mutex_unlock(&p->mu);
}

void tk_idp_set_max_age(tk_idp *p, long max_age)
{
	pthread_mutex_lock(&p->mu);
	p->max_age = max_age;
	pthread_mutex_unlock(&p->mu);
}

unsigned long tk_idp_fetches(tk_idp *p)
{
	pthread_mutex_lock(&p->mu);
	unsigned long n = p->fetches;
	pthread_mutex_unlock(&p->mu);
	return n;
}
