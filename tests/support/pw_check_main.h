/* The part of main that every Check executable shares: run the suite, count failures. */
#ifndef PW_CHECK_MAIN_H
#define PW_CHECK_MAIN_H

#include <stdlib.h>

#include <check.h>

/* Runs every test of s (forking per test, as Check does by default); the failures. */
static inline int pw_check_failures(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed;
}

/* The exit status for main: success only when every test passed. */
static inline int pw_check_run(Suite *s)
{
	return pw_check_failures(s) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
