/* Unit tests of pw_httpc: HTTP_ADDR forms split as the listener and the probe read
 * them, and a GET to a port nobody listens on fails cleanly within its timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "pw_check_main.h"
#include "pw_httpc.h"

START_TEST(splits_host_and_port)
{
	static const struct {
		const char *addr, *host, *port; /* host NULL: refused */
	} cases[] = {
	    {"127.0.0.1:9464", "127.0.0.1", "9464"},
	    {"0.0.0.0:1", "0.0.0.0", "1"},
	    {"localhost:80", "localhost", "80"},
	    {"[::1]:9464", "::1", "9464"},
	    {"[::]:9464", "::", "9464"},
	    {"9464", NULL, NULL},
	    {":9464", NULL, NULL},
	    {"host:", NULL, NULL},
	    {"[::1:9464", NULL, NULL},
	    {"[]:9464", NULL, NULL},
	    {"::1:9464", NULL, NULL},
	    {"a:1,b:2", NULL, NULL},
	    {"", NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char host[64] = "", port[16] = "";
		int rc = pw_hostport_split(cases[i].addr, host, sizeof(host), port, sizeof(port));
		if (cases[i].host == NULL) {
			ck_assert_msg(rc != 0, "'%s' accepted", cases[i].addr);
			continue;
		}
		ck_assert_msg(rc == 0, "'%s' refused", cases[i].addr);
		ck_assert_str_eq(host, cases[i].host);
		ck_assert_str_eq(port, cases[i].port);
	}
	/* A host longer than the buffer is refused, not cut. */
	char tiny[4], port[16];
	ck_assert_int_ne(
	    pw_hostport_split("example.com:80", tiny, sizeof(tiny), port, sizeof(port)), 0);
}
END_TEST

START_TEST(get_without_listener_fails_in_time)
{
	char err[256] = "", *body = NULL;
	int status = -1;
	time_t t0 = time(NULL);
	/* Port 1 on the loopback: refused at once on any sane host. */
	pw_status st =
	    pw_http_get("127.0.0.1:1", "/readyz", 2000, 1024, &status, &body, err, sizeof(err));
	ck_assert_int_eq(st, PW_E_RETRY);
	ck_assert_ptr_null(body);
	ck_assert_int_eq(status, 0);
	ck_assert_msg(strstr(err, "127.0.0.1") != NULL, "error names no address: %s", err);
	ck_assert_int_le(time(NULL) - t0, 3);
	ck_assert_int_eq(pw_http_get("no-port", "/", 100, 16, &status, &body, err, sizeof(err)),
	                 PW_E_INVALID);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("httpc");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, splits_host_and_port);
	tcase_add_test(tc, get_without_listener_fails_in_time);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
