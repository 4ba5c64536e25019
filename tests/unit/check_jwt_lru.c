/* Unit tests of pw_jwt_lru, the verifier's cache of verified tokens, on its own: copies in
 * and out, the bound and the least-recently-used order, keys that share a bucket, clearing.
 * check_jwt tests the same cache through pw_jwt_verify. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <check.h>

#include "pw_check_main.h"
#include "pw_jwt.h"
#include "pw_jwt_lru.h"
#include "pw_status.h"

/* A key whose first eight bytes (the bucket) are `bucket` and whose last byte is `id`. */
static void make_key(unsigned char key[PW_JWT_LRU_KEY_LEN], unsigned bucket, unsigned id)
{
	memset(key, 0, PW_JWT_LRU_KEY_LEN);
	memcpy(key, &bucket, sizeof(bucket));
	key[PW_JWT_LRU_KEY_LEN - 1] = (unsigned char)id;
}

static void put(pw_jwt_lru *c, unsigned bucket, unsigned id)
{
	unsigned char key[PW_JWT_LRU_KEY_LEN];
	pw_jwt_lru_times t = {.exp = 1000 + id, .nbf = 0, .iat = 0};
	pw_jwt_claims cl;

	memset(&cl, 0, sizeof(cl));
	snprintf(cl.owner, sizeof(cl.owner), "user%u@example.com", id);
	make_key(key, bucket, id);
	ck_assert_int_eq(pw_jwt_lru_put(c, key, &t, &cl), PW_OK);
}

/* Whether id is held; when it is, that what comes back is what went in. */
static bool held(pw_jwt_lru *c, unsigned bucket, unsigned id)
{
	unsigned char key[PW_JWT_LRU_KEY_LEN];
	pw_jwt_lru_times t;
	pw_jwt_claims cl;
	char want[64];

	make_key(key, bucket, id);
	if (!pw_jwt_lru_get(c, key, &t, &cl))
		return false;
	snprintf(want, sizeof(want), "user%u@example.com", id);
	ck_assert_str_eq(cl.owner, want);
	ck_assert_int_eq(t.exp, 1000 + id);
	return true;
}

START_TEST(test_create)
{
	pw_jwt_lru *c = (pw_jwt_lru *)&c;

	ck_assert_int_eq(pw_jwt_lru_create(0, &c), PW_E_INVALID);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(pw_jwt_lru_create(SIZE_MAX, &c), PW_E_NOMEM);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(pw_jwt_lru_create(1, &c), PW_OK);
	ck_assert_uint_eq(pw_jwt_lru_count(c), 0);
	pw_jwt_lru_destroy(c);
	pw_jwt_lru_destroy(NULL);
}
END_TEST

/* Everything put comes back as it was; a miss leaves the caller's structs alone. */
START_TEST(test_copies)
{
	pw_jwt_lru *c = NULL;
	unsigned char key[PW_JWT_LRU_KEY_LEN], other[PW_JWT_LRU_KEY_LEN];
	pw_jwt_lru_times in = {.exp = 1500003600, .nbf = 1499999400, .iat = -5};
	pw_jwt_lru_times out;
	pw_jwt_claims cl, back;

	in.has_nbf = true;
	in.has_iat = true;
	memset(&cl, 0, sizeof(cl));
	memset(cl.owner, 'a', PW_JWT_OWNER_MAX); /* the longest owner */
	cl.scope_write = true;
	make_key(key, 7, 1);
	make_key(other, 7, 2);
	ck_assert_int_eq(pw_jwt_lru_create(4, &c), PW_OK);
	ck_assert_int_eq(pw_jwt_lru_put(c, key, &in, &cl), PW_OK);

	memset(&out, 0x5a, sizeof(out));
	memset(&back, 0x5a, sizeof(back));
	ck_assert(!pw_jwt_lru_get(c, other, &out, &back));
	ck_assert_int_eq(back.owner[0], 0x5a);
	ck_assert_int_eq(((unsigned char *)&out)[0], 0x5a);

	memset(&back, 0, sizeof(back));
	ck_assert(pw_jwt_lru_get(c, key, &out, &back));
	ck_assert(out.exp == in.exp && out.nbf == in.nbf && out.iat == in.iat);
	ck_assert(out.has_nbf && out.has_iat);
	ck_assert(memcmp(&back, &cl, sizeof(cl)) == 0);

	/* Longer than PW_JWT_OWNER_MAX (no NUL in the array): refused, nothing held. */
	memset(cl.owner, 'b', sizeof(cl.owner));
	ck_assert_int_eq(pw_jwt_lru_put(c, other, &in, &cl), PW_E_INVALID);
	ck_assert_uint_eq(pw_jwt_lru_count(c), 1);
	pw_jwt_lru_destroy(c);
}
END_TEST

/* At most cap entries; a get makes an entry the most recent, a put of a held key does not. */
START_TEST(test_order)
{
	pw_jwt_lru *c = NULL;
	unsigned char key[PW_JWT_LRU_KEY_LEN];
	pw_jwt_lru_times t = {.exp = 1}, got;
	pw_jwt_claims cl, back;

	ck_assert_int_eq(pw_jwt_lru_create(3, &c), PW_OK);
	put(c, 1, 0);
	put(c, 2, 1);
	put(c, 3, 2);
	ck_assert(held(c, 1, 0)); /* recency now 0, 2, 1 */
	put(c, 4, 3);             /* forgets 1 */
	ck_assert_uint_eq(pw_jwt_lru_count(c), 3);
	ck_assert(!held(c, 2, 1));
	ck_assert(held(c, 3, 2) && held(c, 1, 0) && held(c, 4, 3)); /* now 3, 0, 2 */

	/* Held already: the entry and its place stay as they were. */
	memset(&cl, 0, sizeof(cl));
	strcpy(cl.owner, "someone-else");
	make_key(key, 3, 2);
	ck_assert_int_eq(pw_jwt_lru_put(c, key, &t, &cl), PW_OK);
	put(c, 5, 4); /* forgets 2, still the least recent */
	ck_assert(!pw_jwt_lru_get(c, key, &got, &back));
	ck_assert(held(c, 1, 0) && held(c, 4, 3) && held(c, 5, 4));
	ck_assert_uint_eq(pw_jwt_lru_count(c), 3);
	pw_jwt_lru_destroy(c);
}
END_TEST

/* Keys in one bucket: each is found, and forgetting one keeps the rest of its chain. */
START_TEST(test_one_bucket)
{
	pw_jwt_lru *c = NULL;

	ck_assert_int_eq(pw_jwt_lru_create(4, &c), PW_OK);
	for (unsigned id = 0; id < 4; id++)
		put(c, 9, id);
	ck_assert(held(c, 9, 0) && held(c, 9, 2)); /* recency 2, 0, 3, 1 */
	put(c, 9, 4);                              /* forgets 1, mid-chain */
	put(c, 9, 5);                              /* forgets 3 */
	ck_assert(!held(c, 9, 1) && !held(c, 9, 3));
	ck_assert(held(c, 9, 0) && held(c, 9, 2) && held(c, 9, 4) && held(c, 9, 5));
	ck_assert_uint_eq(pw_jwt_lru_count(c), 4);
	pw_jwt_lru_destroy(c);
}
END_TEST

START_TEST(test_clear)
{
	pw_jwt_lru *c = NULL;

	ck_assert_int_eq(pw_jwt_lru_create(8, &c), PW_OK);
	for (unsigned id = 0; id < 8; id++)
		put(c, id, id);
	pw_jwt_lru_clear(c);
	ck_assert_uint_eq(pw_jwt_lru_count(c), 0);
	for (unsigned id = 0; id < 8; id++)
		ck_assert(!held(c, id, id));
	put(c, 3, 3);
	ck_assert(held(c, 3, 3));
	ck_assert_uint_eq(pw_jwt_lru_count(c), 1);
	pw_jwt_lru_destroy(c);
}
END_TEST

static Suite *jwt_lru_suite(void)
{
	Suite *s = suite_create("jwt_lru");
	TCase *tc = tcase_create("lru");

	tcase_add_test(tc, test_create);
	tcase_add_test(tc, test_copies);
	tcase_add_test(tc, test_order);
	tcase_add_test(tc, test_one_bucket);
	tcase_add_test(tc, test_clear);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(jwt_lru_suite());
}
