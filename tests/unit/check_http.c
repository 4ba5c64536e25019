/* Unit tests of pw_http (worker/): /readyz answers at once while the database ping
 * hangs, and says why it is not ready; stopping the listener waits at most one ping. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "pw_check_main.h"
#include "pw_http.h"
#include "pw_httpc.h"

/* A loopback port that takes connections into its backlog and never answers: a
 * database server that hangs. The listening socket in *fd (caller closes). */
static int silent_listener(int *fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	*fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(*fd, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(*fd, 16), 0);
	ck_assert_int_eq(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

/* A free loopback port for the listener (bound, read, released). */
static int free_port(void)
{
	int fd, port = silent_listener(&fd);
	close(fd);
	return port;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

START_TEST(readyz_never_waits_for_the_ping)
{
	int db_fd, db_port = silent_listener(&db_fd);
	char url[128], addr[64], err[256] = "";
	pw_config cfg;
	pw_metrics *m;
	pw_http *h;

	snprintf(url, sizeof(url), "host=127.0.0.1 port=%d dbname=none user=none", db_port);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", free_port());
	memset(&cfg, 0, sizeof(cfg));
	cfg.database_url = url;
	cfg.http_addr = addr;
	ck_assert_int_eq(pw_metrics_create(&m), PW_OK);
	/* Both lanes hold an assignment: the database is the only thing left to ask. */
	pw_metrics_lane(m, PW_TOPIC_CREATE, true, 1, false, 0);
	pw_metrics_lane(m, PW_TOPIC_QUERY, true, 1, false, 0);
	ck_assert_msg(pw_http_start(&cfg, m, &h, err, sizeof(err)) == PW_OK, "start: %s", err);

	/* Each ping waits its whole 2 s connect timeout; over 5 s of probes, every one is
	 * answered within 1 s (the handler used to ping itself and hold the probe 2 s). */
	double until = now_s() + 5;
	int probes = 0;
	while (now_s() < until) {
		int status = 0;
		char *body = NULL;
		pw_status st =
		    pw_httpc_get(addr, "/readyz", 1000, 4096, &status, &body, err, sizeof(err));
		ck_assert_msg(st == PW_OK, "probe %d not answered within 1 s: %s", probes, err);
		ck_assert_int_eq(status, 503);
		ck_assert_msg(strstr(body, "database") != NULL, "reason names no database: %s",
		              body);
		free(body);
		probes++;
		nanosleep(&(struct timespec){.tv_nsec = 200 * 1000 * 1000}, NULL);
	}
	ck_assert_int_ge(probes, 5);

	/* Stopping waits for the ping under way, never longer than its timeout. */
	double t0 = now_s();
	pw_http_stop(h);
	ck_assert_msg(now_s() - t0 < 4, "stop took %.1f s", now_s() - t0);
	pw_metrics_destroy(m);
	close(db_fd);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("readyz");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, readyz_never_waits_for_the_ping);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
