/* Unit tests of pw_metrics (worker/): the exposition carries what was counted, the
 * histogram is cumulative, readiness names its reason, and the lag table stays bounded
 * with the partitions past the limit summed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "pw_check_main.h"
#include "pw_metrics.h"

/* The value of the sample whose name and labels are exactly series; NAN when absent. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return NAN;
}

static char *render(pw_metrics *m, bool ready)
{
	char *text = NULL;
	size_t len = 0;
	ck_assert_int_eq(pw_metrics_render(m, ready, &text, &len), PW_OK);
	ck_assert_uint_eq(strlen(text), len);
	ck_assert_msg(len > 0 && text[len - 1] == '\n', "exposition not newline-terminated");
	return text;
}

START_TEST(counts_and_histogram)
{
	pw_metrics *m;
	ck_assert_int_eq(pw_metrics_create(&m), PW_OK);
	pw_metrics_answered(m, PW_TOPIC_CREATE, "patient.create", 201, 3000);     /* 3 ms */
	pw_metrics_answered(m, PW_TOPIC_CREATE, "patient.create", 201, 40000);    /* 40 ms */
	pw_metrics_answered(m, PW_TOPIC_CREATE, "patient.create", 409, 60000000); /* 60 s */
	pw_metrics_answered(m, PW_TOPIC_QUERY, "patient.get", 404, 1000);
	pw_metrics_answered(m, PW_TOPIC_CREATE, "no.such.type", 400, 1000);
	pw_metrics_answered(m, PW_TOPIC_QUERY, "patient.list", 299, 1000); /* unusual status */
	pw_metrics_dead_letter(m, PW_DLQ_TOO_LARGE);
	pw_metrics_dead_letter(m, PW_DLQ_TOO_LARGE);
	pw_metrics_db_call(m, PW_TOPIC_CREATE, 3, 1500000);
	pw_metrics_db_outage(m, PW_TOPIC_QUERY);
	pw_metrics_db_reconnect(m, PW_TOPIC_QUERY);
	pw_metrics_producer_renewed(m, PW_TOPIC_CREATE);
	char *t = render(m, true);

	ck_assert_double_eq(sample(t, "patient_worker_ready"), 1);
	ck_assert_double_eq(
	    sample(t, "patient_worker_commands_total{type=\"patient.create\",status=\"201\"}"), 2);
	ck_assert_double_eq(
	    sample(t, "patient_worker_commands_total{type=\"patient.create\",status=\"409\"}"), 1);
	ck_assert_double_eq(
	    sample(t, "patient_worker_commands_total{type=\"patient.get\",status=\"404\"}"), 1);
	ck_assert_double_eq(
	    sample(t, "patient_worker_commands_total{type=\"unknown\",status=\"400\"}"), 1);
	/* Known statuses show at zero; others only once seen. */
	ck_assert_double_eq(
	    sample(t, "patient_worker_commands_total{type=\"patient.list\",status=\"500\"}"), 0);
	ck_assert_double_eq(
	    sample(t, "patient_worker_commands_total{type=\"patient.list\",status=\"299\"}"), 1);
	ck_assert(isnan(
	    sample(t, "patient_worker_commands_total{type=\"patient.list\",status=\"298\"}")));

	const char *b = "patient_worker_command_duration_seconds_bucket{lane=\"create\",le=";
	char s[160];
	/* The create lane saw 1 ms (the unknown type), 3 ms, 40 ms and 60 s. */
	snprintf(s, sizeof(s), "%s\"0.001\"}", b);
	ck_assert_double_eq(sample(t, s), 1);
	snprintf(s, sizeof(s), "%s\"0.0025\"}", b);
	ck_assert_double_eq(sample(t, s), 1);
	snprintf(s, sizeof(s), "%s\"0.005\"}", b);
	ck_assert_double_eq(sample(t, s), 2);
	snprintf(s, sizeof(s), "%s\"0.05\"}", b);
	ck_assert_double_eq(sample(t, s), 3);
	snprintf(s, sizeof(s), "%s\"10\"}", b);
	ck_assert_double_eq(sample(t, s), 3);
	snprintf(s, sizeof(s), "%s\"+Inf\"}", b);
	ck_assert_double_eq(sample(t, s), 4);
	ck_assert_double_eq(
	    sample(t, "patient_worker_command_duration_seconds_count{lane=\"create\"}"), 4);
	ck_assert_double_eq(
	    sample(t, "patient_worker_command_duration_seconds_sum{lane=\"create\"}"), 60.044);

	ck_assert_double_eq(sample(t, "patient_worker_dead_letters_total{reason=\"too_large\"}"),
	                    2);
	ck_assert_double_eq(
	    sample(t, "patient_worker_dead_letters_total{reason=\"reply_undeliverable\"}"), 0);
	ck_assert_double_eq(sample(t, "patient_worker_db_commands_total{lane=\"create\"}"), 3);
	ck_assert_double_eq(sample(t, "patient_worker_db_seconds_total{lane=\"create\"}"), 1.5);
	ck_assert_double_eq(sample(t, "patient_worker_db_outages_total{lane=\"query\"}"), 1);
	ck_assert_double_eq(sample(t, "patient_worker_db_reconnects_total{lane=\"query\"}"), 1);
	ck_assert_double_eq(sample(t, "patient_worker_producer_renewals_total{lane=\"create\"}"),
	                    1);
	ck_assert_double_eq(sample(t, "patient_worker_producer_renewals_total{lane=\"query\"}"), 0);
	free(t);
	pw_metrics_destroy(m);
	pw_metrics_destroy(NULL);
}
END_TEST

/* Each step has its own histogram per lane; an untimed step (< 0) is not counted. */
START_TEST(steps_have_their_histograms)
{
	pw_metrics *m;
	ck_assert_int_eq(pw_metrics_create(&m), PW_OK);
	const int64_t a[PW_STEPS] = {2000, 50, 300, 4000, 100, 600000};
	const int64_t b[PW_STEPS] = {-1, 60, 200, 30000, 100, 700};
	pw_metrics_steps(m, PW_TOPIC_QUERY, a);
	pw_metrics_steps(m, PW_TOPIC_QUERY, b);
	pw_metrics_steps(NULL, PW_TOPIC_QUERY, a);
	char *t = render(m, true);
	const char *q = "patient_worker_step_duration_seconds";

	char s[200];
	snprintf(s, sizeof(s), "%s_count{lane=\"query\",step=\"kafka\"}", q);
	ck_assert_double_eq(sample(t, s), 1);
	snprintf(s, sizeof(s), "%s_count{lane=\"query\",step=\"database\"}", q);
	ck_assert_double_eq(sample(t, s), 2);
	snprintf(s, sizeof(s), "%s_bucket{lane=\"query\",step=\"database\",le=\"0.005\"}", q);
	ck_assert_double_eq(sample(t, s), 1);
	snprintf(s, sizeof(s), "%s_bucket{lane=\"query\",step=\"database\",le=\"0.05\"}", q);
	ck_assert_double_eq(sample(t, s), 2);
	snprintf(s, sizeof(s), "%s_sum{lane=\"query\",step=\"database\"}", q);
	ck_assert_double_eq(sample(t, s), 0.034);
	snprintf(s, sizeof(s), "%s_bucket{lane=\"query\",step=\"delivery\",le=\"0.5\"}", q);
	ck_assert_double_eq(sample(t, s), 1);
	snprintf(s, sizeof(s), "%s_bucket{lane=\"query\",step=\"delivery\",le=\"+Inf\"}", q);
	ck_assert_double_eq(sample(t, s), 2);
	snprintf(s, sizeof(s), "%s_count{lane=\"create\",step=\"database\"}", q);
	ck_assert_double_eq(sample(t, s), 0);
	free(t);
	pw_metrics_destroy(m);
}
END_TEST

START_TEST(readiness_names_the_lane)
{
	pw_metrics *m;
	char why[160];
	ck_assert_int_eq(pw_metrics_create(&m), PW_OK);
	ck_assert(!pw_metrics_lanes_ready(m, why, sizeof(why)));
	ck_assert_str_eq(why, "create lane holds no Kafka assignment");
	pw_metrics_lane(m, PW_TOPIC_CREATE, true, 4, false, 0);
	ck_assert(!pw_metrics_lanes_ready(m, why, sizeof(why)));
	ck_assert_str_eq(why, "query lane holds no Kafka assignment");
	/* Joined with no partition (more replicas than partitions): a ready standby. */
	pw_metrics_lane(m, PW_TOPIC_QUERY, true, 0, false, 0);
	ck_assert(pw_metrics_lanes_ready(m, why, sizeof(why)));
	pw_metrics_lane(m, PW_TOPIC_QUERY, true, 0, true, 7);
	ck_assert(!pw_metrics_lanes_ready(m, why, sizeof(why)));
	ck_assert_str_eq(why, "query lane is waiting for the database");
	pw_metrics_waiting_for_keys(m, PW_TOPIC_CREATE, 2);
	char *t = render(m, false);
	ck_assert_double_eq(
	    sample(t, "patient_worker_partitions_waiting_for_keys{lane=\"create\"}"), 2);
	ck_assert_double_eq(sample(t, "patient_worker_partitions_waiting_for_keys{lane=\"query\"}"),
	                    0);
	ck_assert_double_eq(sample(t, "patient_worker_ready"), 0);
	ck_assert_double_eq(sample(t, "patient_worker_paused_for_database{lane=\"query\"}"), 1);
	ck_assert_double_eq(sample(t, "patient_worker_inflight_records{lane=\"query\"}"), 7);
	ck_assert_double_eq(sample(t, "patient_worker_assigned_partitions{lane=\"create\"}"), 4);
	free(t);
	pw_metrics_destroy(m);
}
END_TEST

START_TEST(lag_table_is_bounded)
{
	enum { N = PW_METRICS_LAG_MAX + 10 };
	static pw_metrics_lag_row rows[N];
	pw_metrics *m;
	ck_assert_int_eq(pw_metrics_create(&m), PW_OK);
	for (int i = 0; i < N; i++)
		rows[i] = (pw_metrics_lag_row){"patients.create", i, i + 1};
	pw_metrics_lag(m, PW_TOPIC_CREATE, rows, N);
	char *t = render(m, true);
	ck_assert_double_eq(
	    sample(t, "patient_worker_consumer_lag{topic=\"patients.create\",partition=\"0\"}"), 1);
	char s[160];
	snprintf(s, sizeof(s),
	         "patient_worker_consumer_lag{topic=\"patients.create\",partition=\"%d\"}",
	         PW_METRICS_LAG_MAX - 1);
	ck_assert_double_eq(sample(t, s), PW_METRICS_LAG_MAX);
	snprintf(s, sizeof(s),
	         "patient_worker_consumer_lag{topic=\"patients.create\",partition=\"%d\"}",
	         PW_METRICS_LAG_MAX);
	ck_assert(isnan(sample(t, s)));
	/* Partitions 256..265 (lags 257..266) summed under -1. */
	double other = 0;
	for (int i = PW_METRICS_LAG_MAX; i < N; i++)
		other += i + 1;
	ck_assert_double_eq(
	    sample(t, "patient_worker_consumer_lag{topic=\"patients.create\",partition=\"-1\"}"),
	    other);
	free(t);
	/* A new table replaces the old one. */
	pw_metrics_lag(m, PW_TOPIC_CREATE, rows, 1);
	t = render(m, true);
	ck_assert(isnan(
	    sample(t, "patient_worker_consumer_lag{topic=\"patients.create\",partition=\"-1\"}")));
	free(t);
	pw_metrics_destroy(m);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, counts_and_histogram);
	tcase_add_test(tc, steps_have_their_histograms);
	tcase_add_test(tc, readiness_names_the_lane);
	tcase_add_test(tc, lag_table_is_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
