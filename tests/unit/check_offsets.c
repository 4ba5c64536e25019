/* Unit tests of pw_offsets, the watermark that decides which offset may be stored: never
 * past a record whose reply is not acknowledged, whatever order the acknowledgements come
 * in, and nothing at all for a partition that was revoked or a record given up. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "pw_check_main.h"
#include "pw_offsets.h"

#define T "patients.create"

static pw_offsets *o;

static void setup(void)
{
	ck_assert_int_eq(pw_offsets_create(&o), PW_OK);
}

static void teardown(void)
{
	pw_offsets_destroy(o);
	o = NULL;
}

/* Acknowledges p and returns the offset to store, or -1 when the watermark did not move. */
static int64_t ack(pw_offsets_pending *p, const char *want_topic, int32_t want_partition)
{
	const char *topic = NULL;
	int32_t partition = -1;
	int64_t next = -1;

	if (!pw_offsets_done(o, p, &topic, &partition, &next))
		return -1;
	ck_assert_str_eq(topic, want_topic);
	ck_assert_int_eq(partition, want_partition);
	return next;
}

static pw_offsets_pending *track(int32_t partition, int64_t offset)
{
	pw_offsets_pending *p = pw_offsets_track(o, T, partition, offset, 100);
	ck_assert_ptr_nonnull(p);
	return p;
}

START_TEST(in_order_acks_move_the_watermark_one_by_one)
{
	pw_offsets_pending *p[3];
	for (int i = 0; i < 3; i++)
		p[i] = track(0, 10 + i);
	ck_assert_uint_eq(pw_offsets_inflight(o), 3);
	ck_assert_uint_eq(pw_offsets_inflight_bytes(o), 300);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(ack(p[i], T, 0), 11 + i);
	ck_assert_uint_eq(pw_offsets_inflight(o), 0);
	ck_assert_uint_eq(pw_offsets_inflight_bytes(o), 0);
}
END_TEST

/* Acknowledgements in every order of five records: the stored offset only ever moves to
 * one past the longest acknowledged prefix, and ends one past the last record. */
START_TEST(out_of_order_acks_wait_for_the_gap)
{
	static const int orders[][5] = {
	    {4, 3, 2, 1, 0}, {1, 2, 3, 4, 0}, {0, 2, 4, 1, 3}, {2, 0, 1, 4, 3}, {3, 4, 0, 2, 1},
	};
	for (size_t k = 0; k < sizeof(orders) / sizeof(orders[0]); k++) {
		pw_offsets_pending *p[5];
		bool acked[5] = {false};
		int64_t stored = -1;
		for (int i = 0; i < 5; i++)
			p[i] = track(3, 100 + i);
		for (int s = 0; s < 5; s++) {
			int i = orders[k][s];
			acked[i] = true;
			int prefix = 0;
			while (prefix < 5 && acked[prefix])
				prefix++;
			int64_t got = ack(p[i], T, 3);
			int64_t want = prefix > 0 && 100 + prefix > stored ? 100 + prefix : -1;
			ck_assert_msg(got == want,
			              "order %zu, step %d (record %d): stored %lld, want %lld", k,
			              s, i, (long long)got, (long long)want);
			if (got >= 0)
				stored = got;
		}
		ck_assert_int_eq(stored, 105);
	}
}
END_TEST

START_TEST(partitions_are_independent)
{
	pw_offsets_pending *a = track(0, 5), *b = track(1, 7), *c = track(0, 6);
	pw_offsets_pending *d = pw_offsets_track(o, "patients.query", 0, 9, 1);

	ck_assert_int_eq(ack(b, T, 1), 8);
	ck_assert_int_eq(ack(c, T, 0), -1); /* 5 is still out */
	ck_assert_int_eq(ack(d, "patients.query", 0), 10);
	ck_assert_int_eq(ack(a, T, 0), 7);
}
END_TEST

/* A record given up (never to be answered here) holds its partition's watermark for
 * good: storing past it would lose the command. */
START_TEST(a_released_record_holds_the_watermark)
{
	pw_offsets_pending *a = track(0, 1), *b = track(0, 2), *c = track(0, 3);

	ck_assert_int_eq(ack(a, T, 0), 2);
	pw_offsets_release(o, b);
	ck_assert_uint_eq(pw_offsets_inflight(o), 1);
	ck_assert_int_eq(ack(c, T, 0), -1);
	pw_offsets_pending *d = track(0, 4);
	ck_assert_int_eq(ack(d, T, 0), -1);
	ck_assert_uint_eq(pw_offsets_inflight(o), 0);
}
END_TEST

/* Revoked: acknowledgements still to come store nothing (the partition's next owner
 * answers from the last commit), and the counts come down as they arrive. */
/* A record taken back (its partition sought back to it, to be read again) is forgotten:
 * the watermark moves past the records before it, and its second reading is tracked
 * afresh and stored when acknowledged. */
START_TEST(an_untaken_record_is_read_again)
{
	pw_offsets_pending *a = track(0, 10), *b = track(0, 11);
	pw_offsets_untake(o, b);
	ck_assert_uint_eq(pw_offsets_inflight(o), 1);
	ck_assert_uint_eq(pw_offsets_inflight_bytes(o), 100);
	ck_assert_int_eq(ack(a, T, 0), 11); /* up to b, not past it */
	b = track(0, 11);
	pw_offsets_pending *c = track(0, 12);
	ck_assert_int_eq(ack(c, T, 0), -1);
	ck_assert_int_eq(ack(b, T, 0), 13);
	ck_assert_uint_eq(pw_offsets_inflight(o), 0);
}
END_TEST

START_TEST(revocation_detaches_the_pending)
{
	pw_offsets_pending *a = track(0, 1), *b = track(0, 2), *other = track(1, 1);

	ck_assert_int_eq(ack(a, T, 0), 2);
	pw_offsets_pending *c = track(0, 3);
	pw_offsets_release(o, c);
	pw_offsets_revoke(o, T, 0);
	ck_assert_uint_eq(pw_offsets_inflight(o), 2); /* b and other are still in flight */
	ck_assert_int_eq(ack(b, T, 0), -1);
	ck_assert_uint_eq(pw_offsets_inflight(o), 1);
	ck_assert_int_eq(ack(other, T, 1), 2); /* the other partition is untouched */
	/* Revoking a partition that was never tracked, or twice, is harmless. */
	pw_offsets_revoke(o, T, 0);
	pw_offsets_revoke(o, T, 42);
	pw_offsets_pending *d = track(0, 50);
	ck_assert_int_eq(ack(d, T, 0), 51);
}
END_TEST

/* Assigned again after a revocation, the partition is consumed from its last commit: the
 * same offsets come back and are tracked afresh; late acknowledgements of the first round
 * store nothing and do not disturb the second. */
START_TEST(reassignment_starts_afresh)
{
	pw_offsets_pending *old[3], *again[3];
	for (int i = 0; i < 3; i++)
		old[i] = track(2, 20 + i);
	ck_assert_int_eq(ack(old[0], T, 2), 21);
	pw_offsets_revoke(o, T, 2);
	for (int i = 0; i < 3; i++)
		again[i] = track(2, 21 + i);
	ck_assert_int_eq(ack(old[2], T, 2), -1);
	ck_assert_int_eq(ack(again[0], T, 2), 22);
	ck_assert_int_eq(ack(old[1], T, 2), -1);
	ck_assert_int_eq(ack(again[2], T, 2), -1);
	ck_assert_int_eq(ack(again[1], T, 2), 24);
	ck_assert_uint_eq(pw_offsets_inflight(o), 0);
}
END_TEST

/* A seek back (or a broker redelivering) hands the same offset twice while the first copy
 * is in flight: the watermark follows consumption order and never skips an unacknowledged
 * copy; it may store a lower offset again, which costs a repeat, never a loss. */
START_TEST(redelivered_offsets_are_tracked_in_consumption_order)
{
	pw_offsets_pending *a = track(0, 7), *b = track(0, 8), *a2 = track(0, 7);

	ck_assert_int_eq(ack(a2, T, 0), -1);
	ck_assert_int_eq(ack(b, T, 0), -1);
	ck_assert_int_eq(ack(a, T, 0), 8); /* the last of the acknowledged prefix: a2 (7) */
}
END_TEST

/* Destroying with records still pending frees everything (valgrind checks). */
START_TEST(destroy_with_records_pending)
{
	track(0, 1);
	track(1, 1);
	pw_offsets_release(o, track(1, 2));
	pw_offsets_revoke(o, T, 1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("offsets");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, in_order_acks_move_the_watermark_one_by_one);
	tcase_add_test(tc, out_of_order_acks_wait_for_the_gap);
	tcase_add_test(tc, partitions_are_independent);
	tcase_add_test(tc, a_released_record_holds_the_watermark);
	tcase_add_test(tc, an_untaken_record_is_read_again);
	tcase_add_test(tc, revocation_detaches_the_pending);
	tcase_add_test(tc, reassignment_starts_afresh);
	tcase_add_test(tc, redelivered_offsets_are_tracked_in_consumption_order);
	tcase_add_test(tc, destroy_with_records_pending);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
