/* Unit tests of pw_httpc: a GET to a port nobody listens on fails cleanly within its
 * timeout, and an address without a port is refused before any connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "pw_check_main.h"
#include "pw_httpc.h"

START_TEST(get_without_listener_fails_in_time)
{
	char err[256] = "", *body = NULL;
	int status = -1;
	time_t t0 = time(NULL);
	/* Port 1 on the loopback: refused at once on any sane host. */
	pw_status st =
	    pw_httpc_get("127.0.0.1:1", "/readyz", 2000, 1024, &status, &body, err, sizeof(err));
	ck_assert_int_eq(st, PW_E_RETRY);
	ck_assert_ptr_null(body);
	ck_assert_int_eq(status, 0);
	ck_assert_msg(strstr(err, "127.0.0.1") != NULL, "error names no address: %s", err);
	ck_assert_int_le(time(NULL) - t0, 3);
	ck_assert_int_eq(pw_httpc_get("no-port", "/", 100, 16, &status, &body, err, sizeof(err)),
	                 PW_E_INVALID);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("httpc");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, get_without_listener_fails_in_time);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
