/* The outbox against librdkafka's mock cluster (no broker): replies acknowledged move the
 * offset watermark, and a producer that fails for good (librdkafka's fatal error, as
 * librdkafka 2.0.2's idempotent producer raises on some leader changes) is replaced and
 * what it held is sent again, rather than lost or the lane stopped. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "pw_check_main.h"
#include "pw_config.h"
#include "pw_outbox.h"

#define TOPIC_CMDS    "cmds"
#define TOPIC_REPLIES "replies"

typedef struct fixture {
	rd_kafka_t *owner; /**< holds the mock cluster */
	rd_kafka_mock_cluster_t *mc;
	rd_kafka_t *consumer;   /**< where the outbox stores offsets */
	rd_kafka_queue_t *wake; /**< what the lane waits on; the outbox yields it */
	rd_kafka_topic_t *cmds;
	pw_offsets *offsets;
	pw_outbox *ob;
	pw_config cfg;
	char brokers[256], group[32], dlq[32];
	atomic_int stop;
} fixture;

static void quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk, (void)level, (void)fac, (void)buf;
}

static void fixture_up(fixture *f)
{
	char err[256];
	rd_kafka_conf_t *c = rd_kafka_conf_new();

	memset(f, 0, sizeof(*f));
	rd_kafka_conf_set_log_cb(c, quiet);
	f->owner = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
	ck_assert_msg(f->owner != NULL, "%s", err);
	f->mc = rd_kafka_mock_cluster_new(f->owner, 1);
	ck_assert_ptr_nonnull(f->mc);
	ck_assert_int_eq(rd_kafka_mock_topic_create(f->mc, TOPIC_CMDS, 1, 1), 0);
	ck_assert_int_eq(rd_kafka_mock_topic_create(f->mc, TOPIC_REPLIES, 1, 1), 0);
	snprintf(f->brokers, sizeof(f->brokers), "%s", rd_kafka_mock_cluster_bootstraps(f->mc));
	snprintf(f->group, sizeof(f->group), "outbox-test");
	snprintf(f->dlq, sizeof(f->dlq), "dlq");
	f->cfg.kafka_brokers = f->brokers;
	f->cfg.group_id = f->group;
	f->cfg.topic_dlq = f->dlq;

	c = rd_kafka_conf_new();
	ck_assert_int_eq(rd_kafka_conf_set(c, "bootstrap.servers", f->brokers, err, sizeof(err)),
	                 RD_KAFKA_CONF_OK);
	ck_assert_int_eq(rd_kafka_conf_set(c, "group.id", f->group, err, sizeof(err)),
	                 RD_KAFKA_CONF_OK);
	/* As the worker's: offsets stored only when the outbox says, committed when asked. */
	ck_assert_int_eq(
	    rd_kafka_conf_set(c, "enable.auto.offset.store", "false", err, sizeof(err)),
	    RD_KAFKA_CONF_OK);
	ck_assert_int_eq(rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err)),
	                 RD_KAFKA_CONF_OK);
	rd_kafka_conf_set_log_cb(c, quiet);
	f->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
	ck_assert_msg(f->consumer != NULL, "%s", err);
	f->cmds = rd_kafka_topic_new(f->consumer, TOPIC_CMDS, NULL);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, TOPIC_CMDS, 0);
	ck_assert_int_eq(rd_kafka_assign(f->consumer, l), 0);
	rd_kafka_topic_partition_list_destroy(l);
	ck_assert_int_eq(pw_offsets_create(&f->offsets), PW_OK);
	f->wake = rd_kafka_queue_new(f->consumer);
	ck_assert_ptr_nonnull(f->wake);
	ck_assert_int_eq(pw_outbox_create(&f->cfg, PW_TOPIC_CREATE, f->consumer, f->wake,
	                                  f->offsets, NULL, &f->stop, &f->ob, err, sizeof(err)),
	                 PW_OK);
}

/* The offset committed for the command partition, after committing what was stored. */
static int64_t committed(fixture *f)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, TOPIC_CMDS, 0);
	ck_assert_int_eq(rd_kafka_commit(f->consumer, NULL, 0), 0);
	ck_assert_int_eq(rd_kafka_committed(f->consumer, l, 5000), 0);
	int64_t off = l->elems[0].offset;
	rd_kafka_topic_partition_list_destroy(l);
	return off;
}

static void fixture_down(fixture *f)
{
	rd_kafka_assign(f->consumer, NULL);
	pw_outbox_destroy(f->ob);
	rd_kafka_queue_destroy(f->wake);
	pw_offsets_destroy(f->offsets);
	rd_kafka_topic_destroy(f->cmds);
	rd_kafka_destroy(f->consumer);
	rd_kafka_mock_cluster_destroy(f->mc);
	rd_kafka_destroy(f->owner);
}

/* The job of the command at offset, answered 201 with a reply naming it. */
static pw_job *job_at(fixture *f, int64_t offset)
{
	char value[64], rid[32];
	rd_kafka_message_t m;
	pw_job *j = NULL;

	snprintf(rid, sizeof(rid), "r-%lld", (long long)offset);
	snprintf(value, sizeof(value), "{\"request_id\":\"%s\"}", rid);
	memset(&m, 0, sizeof(m));
	m.rkt = f->cmds;
	m.partition = 0;
	m.offset = offset;
	m.payload = value;
	m.len = strlen(value);
	ck_assert_int_eq(pw_job_new(&m, f->offsets, &j), PW_OK);
	j->out.kind = PW_HANDLER_COMMAND;
	j->out.request_id = strdup(rid);
	j->out.reply_to = strdup(TOPIC_REPLIES);
	j->out.reply_partition = RD_KAFKA_PARTITION_UA;
	j->out.reply = strdup("{\"status\":201}");
	j->out.status = 201;
	snprintf(j->out.command_type, sizeof(j->out.command_type), "patient.create");
	ck_assert(j->out.request_id && j->out.reply_to && j->out.reply);
	return j;
}

/* Serves delivery reports until every reply was acknowledged (answered == want), 10 s at
 * most; renews the producer when it failed for good, as the lane's loop does. */
static unsigned long serve_until(fixture *f, unsigned long want, int *renewals)
{
	unsigned long answered = 0, dead = 0;
	char err[256];

	for (time_t end = time(NULL) + 10; answered < want && time(NULL) < end;) {
		if (pw_outbox_fatal(f->ob)) {
			ck_assert_msg(pw_outbox_renew(f->ob, err, sizeof(err)) == PW_OK,
			              "renew: %s", err);
			(*renewals)++;
		}
		pw_outbox_serve(f->ob, 50);
		pw_outbox_retry(f->ob);
		pw_outbox_counts(f->ob, &answered, &dead);
	}
	ck_assert_uint_eq(dead, 0);
	return answered;
}

START_TEST(a_producer_that_fails_for_good_is_replaced)
{
	enum { N = 20 };
	fixture f;
	int renewals = 0;

	fixture_up(&f);
	/* Every reply of the first ten acknowledged by the first producer. */
	for (int i = 0; i < N / 2; i++)
		pw_outbox_send(f.ob, job_at(&f, i));
	ck_assert_uint_eq(serve_until(&f, N / 2, &renewals), N / 2);
	ck_assert_int_eq(renewals, 0);

	/* The broker answers the next produce with the error librdkafka 2.0.2 cannot recover
	 * from: the producer fails for good, holding the next ten replies. */
	rd_kafka_mock_push_request_errors(f.mc, 0 /* ApiKey Produce */, 1,
	                                  RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	for (int i = N / 2; i < N; i++)
		pw_outbox_send(f.ob, job_at(&f, i));
	unsigned long answered = serve_until(&f, N, &renewals);
	ck_assert_msg(renewals == 1, "the producer was renewed %d times, want 1", renewals);
	ck_assert_msg(answered == N, "%lu of %d replies acknowledged after the renewal", answered,
	              N);
	ck_assert(!pw_outbox_fatal(f.ob));
	/* Every record's offset stored: none was dropped with the failed producer. */
	ck_assert_int_eq(committed(&f), N);
	fixture_down(&f);
}
END_TEST

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The lane waits on its queue for as long as a poll; a reply's delivery report wakes it at
 * once (the outbox yields the queue from librdkafka's thread), so an answer never waits
 * for the end of a poll, and the lane need not come back every millisecond to look. */
START_TEST(a_delivery_report_wakes_the_lane)
{
	fixture f;
	unsigned long answered = 0, dead = 0;

	fixture_up(&f);
	pw_outbox_send(f.ob, job_at(&f, 0));
	double t0 = now_s();
	rd_kafka_event_t *ev = rd_kafka_queue_poll(f.wake, 10000);
	double waited = now_s() - t0;
	rd_kafka_event_destroy(ev);
	ck_assert_msg(waited < 5, "the lane slept %.1f s of its 10 s poll with a report waiting",
	              waited);
	pw_outbox_serve(f.ob, 0);
	pw_outbox_counts(f.ob, &answered, &dead);
	ck_assert_uint_eq(answered, 1);
	ck_assert_int_eq(committed(&f), 1);
	fixture_down(&f);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("outbox");
	TCase *tc = tcase_create("outbox");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_producer_that_fails_for_good_is_replaced);
	tcase_add_test(tc, a_delivery_report_wakes_the_lane);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
