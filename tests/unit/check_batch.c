/* Unit tests of pw_batch, the assembly of a lane's database work: when a batch is due,
 * that jobs leave in the order they came, that an outage holds them (and the ones that
 * arrive meanwhile) and backs off, and that a revocation drops exactly the jobs of the
 * revoked partitions, releasing their offsets. Times are passed in: no clock, no sleep. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "pw_batch.h"
#include "pw_check_main.h"
#include "pw_job.h"
#include "pw_offsets.h"

#define T  "patients.create"
#define MS 1000 /* microseconds */

static pw_offsets *o;
static pw_batch *b;

static void setup(void)
{
	ck_assert_int_eq(pw_offsets_create(&o), PW_OK);
}

static void teardown(void)
{
	pw_batch_destroy(b);
	pw_offsets_destroy(o);
	b = NULL;
	o = NULL;
}

/* A job as the loop makes one, without a broker: its record's place and its offset. */
static pw_job *job(int32_t partition, int64_t offset)
{
	pw_job *j = calloc(1, sizeof(*j));

	ck_assert_ptr_nonnull(j);
	j->src_topic = strdup(T);
	j->partition = partition;
	j->offset = offset;
	j->pending = pw_offsets_track(o, T, partition, offset, 10);
	ck_assert_ptr_nonnull(j->pending);
	return j;
}

/* Takes the batch and checks it holds exactly these offsets, in this order, and that
 * left jobs stay waiting; frees them (their offsets acknowledged). */
static void take_expect_left(const int64_t *offsets, size_t n, size_t left)
{
	pw_job_list l = pw_batch_take(b);
	pw_job *j;
	size_t i = 0;

	ck_assert_uint_eq(l.n, n);
	while ((j = pw_job_list_pop(&l)) != NULL) {
		const char *topic;
		int32_t partition;
		int64_t next;
		ck_assert_msg(i < n && j->offset == offsets[i], "job %zu is offset %lld", i,
		              (long long)j->offset);
		(void)pw_offsets_done(o, j->pending, &topic, &partition, &next);
		j->pending = NULL;
		pw_job_free(j);
		i++;
	}
	ck_assert_uint_eq(pw_batch_size(b), left);
}

static void take_expect(const int64_t *offsets, size_t n)
{
	take_expect_left(offsets, n, 0);
}

/* Due when full, or once it has waited BATCH_WAIT_MS and no record is ready: while records
 * keep coming, the batch keeps taking them, up to BATCH_MAX (a load is written in large
 * transactions, not a few records every 5 ms). */
START_TEST(a_batch_is_due_when_full_or_waited_and_idle)
{
	ck_assert_int_eq(pw_batch_create(3, 5, &b), PW_OK);
	ck_assert(!pw_batch_due(b, 0, true));
	ck_assert_int_eq(pw_batch_wait_ms(b, 0, 100), 100); /* nothing waits: a whole poll */
	pw_batch_add(b, job(0, 1), 1000 * MS);
	pw_batch_add(b, job(0, 2), 1003 * MS); /* the first job started the wait */
	ck_assert(!pw_batch_due(b, 1004 * MS, true));
	ck_assert_int_eq(pw_batch_wait_ms(b, 1001 * MS, 100), 4);
	ck_assert_int_eq(pw_batch_wait_ms(b, 1001 * MS, 2), 2);
	ck_assert(!pw_batch_due(b, 1005 * MS, false)); /* waited, but a record was ready */
	ck_assert_int_eq(pw_batch_wait_ms(b, 1005 * MS, 100), 0); /* take what is ready */
	ck_assert(pw_batch_due(b, 1005 * MS, true));
	ck_assert(pw_batch_due(b, 9000 * MS, true));
	take_expect((int64_t[]){1, 2}, 2);
	ck_assert(!pw_batch_due(b, 20000 * MS, true));

	pw_batch_add(b, job(0, 3), 30000 * MS);
	pw_batch_add(b, job(0, 4), 30000 * MS);
	ck_assert(!pw_batch_due(b, 30000 * MS, true));
	pw_batch_add(b, job(1, 9), 30000 * MS);
	ck_assert(pw_batch_due(b, 30000 * MS, false)); /* full: no waiting */
	ck_assert_int_eq(pw_batch_wait_ms(b, 30000 * MS, 100), 0);
	take_expect((int64_t[]){3, 4, 9}, 3);
}
END_TEST

START_TEST(the_query_lane_writes_each_at_once)
{
	ck_assert_int_eq(pw_batch_create(1, 5, &b), PW_OK);
	pw_batch_add(b, job(0, 1), 0);
	ck_assert(pw_batch_due(b, 0, false));
	take_expect((int64_t[]){1}, 1);
}
END_TEST

/* The database goes away while a batch is written: the jobs not done are held again in
 * their order, those arriving meanwhile wait behind them, and the database is tried again
 * after 200 ms, then 400, 800 ... up to 5 s; once back, everything held leaves first. */
START_TEST(an_outage_holds_in_order_and_backs_off)
{
	ck_assert_int_eq(pw_batch_create(10, 5, &b), PW_OK);
	for (int i = 1; i <= 3; i++)
		pw_batch_add(b, job(0, i), 0);
	pw_job_list taken = pw_batch_take(b);
	pw_batch_unget(b, &taken); /* none was done */
	ck_assert(pw_batch_outage(b, 10 * MS));
	ck_assert(!pw_batch_outage(b, 11 * MS)); /* the same outage: not counted twice */
	ck_assert(pw_batch_db_down(b));
	pw_batch_add(b, job(0, 4), 12 * MS); /* held, behind 1, 2, 3 */
	ck_assert(!pw_batch_due(b, 210 * MS, true));
	ck_assert_int_eq(pw_batch_wait_ms(b, 111 * MS, 500), 100);
	ck_assert(pw_batch_due(b, 211 * MS, false)); /* records coming or not */

	int64_t now = 211 * MS;
	int expect_ms[] = {400, 800, 1600, 3200, 5000, 5000};
	for (size_t k = 0; k < sizeof(expect_ms) / sizeof(expect_ms[0]); k++) {
		pw_batch_backoff(b, now); /* the reconnect failed */
		ck_assert(!pw_batch_due(b, now + expect_ms[k] * MS - 1, true));
		ck_assert(pw_batch_due(b, now + expect_ms[k] * MS, true));
		now += expect_ms[k] * MS;
	}
	pw_batch_recovered(b);
	ck_assert(!pw_batch_db_down(b));
	pw_batch_add(b, job(0, 5), now);
	ck_assert(pw_batch_due(b, now, false)); /* what was held goes at once */
	take_expect((int64_t[]){1, 2, 3, 4, 5}, 5);

	/* A new outage starts from the shortest backoff again. */
	ck_assert(pw_batch_outage(b, now));
	ck_assert(pw_batch_due(b, now + 200 * MS, true));
}
END_TEST

/* A take is one transaction's worth, BATCH_MAX at most, held jobs first: what waited
 * through an outage, or came while the session was busy, is not written as one long
 * transaction; the rest stays, in order, and the batch is due again at once. */
START_TEST(a_take_is_at_most_batch_max_held_first)
{
	ck_assert_int_eq(pw_batch_create(3, 5, &b), PW_OK);
	pw_batch_add(b, job(0, 1), 0);
	pw_batch_add(b, job(0, 2), 0); /* open when the database goes away: held first */
	ck_assert(pw_batch_outage(b, 0));
	for (int i = 3; i <= 4; i++)
		pw_batch_add(b, job(0, i), 0); /* held while down, behind 1 and 2 */
	pw_batch_recovered(b);
	for (int i = 5; i <= 8; i++)
		pw_batch_add(b, job(0, i), 0); /* open, behind what is held */
	ck_assert_uint_eq(pw_batch_size(b), 8);

	pw_job_list l = pw_batch_take(b);
	ck_assert_uint_eq(l.n, 3);
	/* A job added while the take was in the database (a session's lane goes on). */
	pw_batch_add(b, job(0, 9), 0);
	pw_batch_unget(b, &l);                /* none done: first again, in their order */
	ck_assert(pw_batch_due(b, 0, false)); /* what is left goes at once */
	take_expect_left((int64_t[]){1, 2, 3}, 3, 6);
	ck_assert(pw_batch_due(b, 0, false)); /* 6 left, more than a batch: at once */
	l = pw_batch_take(b);                 /* 4, 5, 6 ... */
	ck_assert(pw_batch_outage(b, 0));     /* ... fail: the database went away */
	pw_batch_unget(b, &l);
	pw_batch_add(b, job(0, 10), 0); /* held while down, behind everything */
	pw_batch_recovered(b);
	take_expect_left((int64_t[]){4, 5, 6}, 3, 4);
	take_expect_left((int64_t[]){7, 8, 9}, 3, 1);
	take_expect((int64_t[]){10}, 1);
}
END_TEST

/* Partitions revoked: their jobs leave the batch unanswered, their offsets released (the
 * watermark stays before them for the next owner); the others keep their order. */
START_TEST(a_revocation_drops_the_jobs_of_its_partitions)
{
	ck_assert_int_eq(pw_batch_create(100, 5, &b), PW_OK);
	pw_batch_add(b, job(0, 1), 0);
	pw_batch_add(b, job(1, 1), 0);
	pw_batch_add(b, job(0, 2), 0);
	pw_batch_add(b, job(2, 1), 0);
	ck_assert(pw_batch_outage(b, 0));
	pw_batch_add(b, job(1, 2), 0); /* held */
	ck_assert_uint_eq(pw_offsets_inflight(o), 5);

	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(2);
	rd_kafka_topic_partition_list_add(parts, T, 1);
	rd_kafka_topic_partition_list_add(parts, "patients.query", 0);
	ck_assert_uint_eq(pw_batch_drop(b, parts, o), 2);
	rd_kafka_topic_partition_list_destroy(parts);
	ck_assert_uint_eq(pw_offsets_inflight(o), 3);
	ck_assert_uint_eq(pw_batch_size(b), 3);
	pw_batch_recovered(b);
	take_expect((int64_t[]){1, 2, 1}, 3);

	/* At shutdown everything goes. */
	pw_batch_add(b, job(3, 1), 0);
	ck_assert(pw_batch_outage(b, 0));
	pw_batch_add(b, job(3, 2), 0);
	ck_assert_uint_eq(pw_batch_drop(b, NULL, o), 2);
	ck_assert_uint_eq(pw_batch_size(b), 0);
	ck_assert_uint_eq(pw_offsets_inflight(o), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("batch");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, a_batch_is_due_when_full_or_waited_and_idle);
	tcase_add_test(tc, the_query_lane_writes_each_at_once);
	tcase_add_test(tc, an_outage_holds_in_order_and_backs_off);
	tcase_add_test(tc, a_take_is_at_most_batch_max_held_first);
	tcase_add_test(tc, a_revocation_drops_the_jobs_of_its_partitions);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
