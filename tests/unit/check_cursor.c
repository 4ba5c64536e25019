/* Unit tests of pw_cursor: round trips, the exact shape of a cursor, refusal of every edited,
 * malformed or misplaced cursor (another owner, other filters, another key), and the key. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "pw_check_main.h"
#include "pw_cursor.h"
#include "pw_status.h"

#define SECRET  "cursor-test-secret-0123456789abcdef"
#define SECRET2 "cursor-test-secret-other-fedcba9876"
#define OWNER   "alice@example.com"
#define OWNER_B "bob@example.com"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static const int64_t ids[] = {0, 1, INT64_C(2147483648), INT64_MAX};

static pw_cursor_key key_of(const char *secret)
{
	pw_cursor_key k;
	int generated = -1;

	memset(&k, 0, sizeof(k));
	ck_assert_msg(pw_cursor_key_init(&k, secret, &generated) == PW_OK,
	              "key_init(\"%s\") failed", secret);
	ck_assert_msg(generated == 0, "key_init(\"%s\"): generated %d, want 0", secret, generated);
	return k;
}

static void make(const pw_cursor_key *k, const char *owner, const char *dni, const char *q,
                 int64_t id, char out[PW_CURSOR_LEN + 1])
{
	pw_status st = pw_cursor_encode(k, owner, dni, q, id, out, PW_CURSOR_LEN + 1);

	ck_assert_msg(st == PW_OK, "encode(%s, %s, %s, %lld): status %d", owner, dni ? dni : "NULL",
	              q ? q : "NULL", (long long)id, st);
}

START_TEST(test_round_trip)
{
	static const struct {
		const char *name;
		const char *owner, *dni, *q;
	} rows[] = {
	    {"no filters", OWNER, NULL, NULL},
	    {"dni", OWNER, "45678912", NULL},
	    {"q", OWNER, NULL, "Ana"},
	    {"dni and q", OWNER, "AB-12", "Qu"},
	    {"q empty", OWNER, NULL, ""},
	    {"q with % and _", OWNER, NULL, "%_"},
	    {"q multi-byte", OWNER, NULL,
	     "Nu\xc3\xb1"
	     "ez"},
	    {"empty owner", "", NULL, NULL},
	};
	pw_cursor_key k = key_of(SECRET);

	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			char c[PW_CURSOR_LEN + 1];
			int64_t got = -7;

			make(&k, rows[r].owner, rows[r].dni, rows[r].q, ids[i], c);
			pw_status st =
			    pw_cursor_decode(&k, rows[r].owner, rows[r].dni, rows[r].q, c, &got);
			ck_assert_msg(st == PW_OK, "row '%s' id %lld: decode of %s: status %d",
			              rows[r].name, (long long)ids[i], c, st);
			ck_assert_msg(got == ids[i], "row '%s' id %lld: decoded %lld", rows[r].name,
			              (long long)ids[i], (long long)got);
		}
	}
}
END_TEST

START_TEST(test_shape)
{
	pw_cursor_key k = key_of(SECRET);

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		char c[PW_CURSOR_LEN + 8];

		memset(c, 'x', sizeof(c));
		make(&k, OWNER, "1", "a", ids[i], c);
		ck_assert_msg(strlen(c) == PW_CURSOR_LEN,
		              "id %lld: cursor '%s' has %zu chars, want %d", (long long)ids[i], c,
		              strlen(c), PW_CURSOR_LEN);
		ck_assert_msg(strspn(c, alphabet) == PW_CURSOR_LEN,
		              "id %lld: cursor '%s' has a char outside base64url at %zu",
		              (long long)ids[i], c, strspn(c, alphabet));
	}
}
END_TEST

START_TEST(test_encode_refuses)
{
	static const struct {
		const char *name;
		int64_t id;
		size_t out_size;
	} rows[] = {
	    {"id -1", -1, PW_CURSOR_LEN + 1},
	    {"id INT64_MIN", INT64_MIN, PW_CURSOR_LEN + 1},
	    {"id -2^31", -INT64_C(2147483648), PW_CURSOR_LEN + 1},
	    {"out one byte short", 1, PW_CURSOR_LEN},
	    {"out of size 0", 1, 0},
	};
	pw_cursor_key k = key_of(SECRET);

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char c[PW_CURSOR_LEN + 1];
		pw_status st =
		    pw_cursor_encode(&k, OWNER, NULL, NULL, rows[i].id, c, rows[i].out_size);
		ck_assert_msg(st != PW_OK, "row '%s': encode accepted it", rows[i].name);
	}
}
END_TEST

/* Every single-character edit, to every other alphabet character, at every position. */
START_TEST(test_every_edit_refused)
{
	pw_cursor_key k = key_of(SECRET);

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		char orig[PW_CURSOR_LEN + 1];
		size_t accepted = 0, first_pos = 0;
		char first_from = 0, first_to = 0;
		int64_t first_got = 0;

		make(&k, OWNER, "45678912", "Ana", ids[i], orig);
		for (size_t pos = 0; pos < PW_CURSOR_LEN; pos++) {
			for (const char *a = alphabet; *a; a++) {
				char c[PW_CURSOR_LEN + 1];
				int64_t got = -7;

				if (*a == orig[pos])
					continue;
				memcpy(c, orig, sizeof(c));
				c[pos] = *a;
				pw_status st =
				    pw_cursor_decode(&k, OWNER, "45678912", "Ana", c, &got);
				if (st == PW_E_INVALID)
					continue;
				if (accepted++ == 0) {
					first_pos = pos;
					first_from = orig[pos];
					first_to = *a;
					first_got = st == PW_OK ? got : -(int64_t)st;
				}
			}
		}
		ck_assert_msg(accepted == 0,
		              "id %lld: %zu edited cursors not refused; first: position %zu "
		              "'%c' -> '%c' of %s (decoded id %lld)",
		              (long long)ids[i], accepted, first_pos, first_from, first_to, orig,
		              (long long)first_got);
	}
}
END_TEST

START_TEST(test_malformed)
{
	pw_cursor_key k = key_of(SECRET);
	char good[PW_CURSOR_LEN + 1];

	make(&k, OWNER, NULL, NULL, 42, good);

	static const struct {
		const char *name;
		int cut;            /**< >= 0: keep this many chars of the good cursor */
		const char *suffix; /**< appended after the cut (or after the whole cursor) */
		int at;             /**< >= 0: replace the char at this position by `with` */
		char with;
	} rows[] = {
	    {"empty", 0, "", -1, 0},
	    {"1 char", 1, "", -1, 0},
	    {"truncated by 1", PW_CURSOR_LEN - 1, "", -1, 0},
	    {"truncated by 2", PW_CURSOR_LEN - 2, "", -1, 0},
	    {"truncated by 4", PW_CURSOR_LEN - 4, "", -1, 0},
	    {"half", PW_CURSOR_LEN / 2, "", -1, 0},
	    {"one char longer (A)", -1, "A", -1, 0},
	    {"one char longer (_)", -1, "_", -1, 0},
	    {"two chars longer", -1, "AA", -1, 0},
	    {"padded with ==", -1, "==", -1, 0},
	    {"trailing newline", -1, "\n", -1, 0},
	    {"trailing space", -1, " ", -1, 0},
	    {"last char dropped, = added", PW_CURSOR_LEN - 1, "=", -1, 0},
	    {"'+' inside", -1, "", 10, '+'},
	    {"'/' inside", -1, "", 10, '/'},
	    {"'=' inside", -1, "", 10, '='},
	    {"'.' inside", -1, "", 0, '.'},
	    {"space inside", -1, "", 20, ' '},
	    {"'+' last", -1, "", PW_CURSOR_LEN - 1, '+'},
	    {"'/' first", -1, "", 0, '/'},
	    {"high byte inside", -1, "", 5, '\xc3'},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char c[PW_CURSOR_LEN + 16];
		int64_t got = -7;

		snprintf(c, sizeof(c), "%.*s%s", rows[i].cut >= 0 ? rows[i].cut : PW_CURSOR_LEN,
		         good, rows[i].suffix);
		if (rows[i].at >= 0)
			c[rows[i].at] = rows[i].with;
		pw_status st = pw_cursor_decode(&k, OWNER, NULL, NULL, c, &got);
		ck_assert_msg(st == PW_E_INVALID,
		              "row '%s': decode of '%s': status %d, want "
		              "PW_E_INVALID",
		              rows[i].name, c, st);
	}

	/* Strings that were never cursors, some of the right length. */
	static const char *const junk[] = {
	    "",
	    "abc",
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    "______________________________________________________",
	    "not a cursor at all, but long enough to be one maybe!!",
	    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
	};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		int64_t got = -7;
		pw_status st = pw_cursor_decode(&k, OWNER, NULL, NULL, junk[i], &got);
		ck_assert_msg(st == PW_E_INVALID, "junk '%s': status %d, want PW_E_INVALID",
		              junk[i], st);
	}
}
END_TEST

#define NONE NULL

/* A cursor is good only for the owner and filters it was made for. */
START_TEST(test_bound_to_owner_and_filters)
{
	static const struct {
		const char *name;
		const char *e_owner, *e_dni, *e_q; /**< made with */
		const char *d_owner, *d_dni, *d_q; /**< decoded with */
		int ok;
	} rows[] = {
	    {"same owner, no filters", OWNER, NONE, NONE, OWNER, NONE, NONE, 1},
	    {"owner A decoded for B", OWNER, NONE, NONE, OWNER_B, NONE, NONE, 0},
	    {"owner B decoded for A", OWNER_B, NONE, NONE, OWNER, NONE, NONE, 0},
	    {"owner differing in case", OWNER, NONE, NONE, "Alice@example.com", NONE, NONE, 0},
	    {"owner with trailing space", OWNER, NONE, NONE, OWNER " ", NONE, NONE, 0},
	    {"owner empty vs set", "", NONE, NONE, OWNER, NONE, NONE, 0},
	    {"same dni", OWNER, "1", NONE, OWNER, "1", NONE, 1},
	    {"dni 1 decoded with NULL", OWNER, "1", NONE, OWNER, NONE, NONE, 0},
	    {"dni 1 decoded with 2", OWNER, "1", NONE, OWNER, "2", NONE, 0},
	    {"dni NULL decoded with 1", OWNER, NONE, NONE, OWNER, "1", NONE, 0},
	    {"dni NULL decoded with empty", OWNER, NONE, NONE, OWNER, "", NONE, 0},
	    {"dni 1 for owner B", OWNER, "1", NONE, OWNER_B, "1", NONE, 0},
	    {"same q", OWNER, NONE, "1", OWNER, NONE, "1", 1},
	    {"q 1 decoded with NULL", OWNER, NONE, "1", OWNER, NONE, NONE, 0},
	    {"q 1 decoded with 2", OWNER, NONE, "1", OWNER, NONE, "2", 0},
	    {"q NULL decoded with 1", OWNER, NONE, NONE, OWNER, NONE, "1", 0},
	    {"q NULL decoded with empty", OWNER, NONE, NONE, OWNER, NONE, "", 0},
	    {"q empty decoded with NULL", OWNER, NONE, "", OWNER, NONE, NONE, 0},
	    {"q empty decoded with empty", OWNER, NONE, "", OWNER, NONE, "", 1},
	    {"q Ana decoded with ana", OWNER, NONE, "Ana", OWNER, NONE, "ana", 0},
	    {"q Ana decoded with An (prefix)", OWNER, NONE, "Ana", OWNER, NONE, "An", 0},
	    {"dni 1 moved to q", OWNER, "1", NONE, OWNER, NONE, "1", 0},
	    {"q 1 moved to dni", OWNER, NONE, "1", OWNER, "1", NONE, 0},
	    {"dni and q swapped", OWNER, "12", "Ana", OWNER, "Ana", "12", 0},
	    {"dni|q boundary moved", OWNER, "ab", "c", OWNER, "a", "bc", 0},
	    {"owner|dni boundary moved", "ab", "c", NONE, "a", "bc", NONE, 0},
	    {"dni and q both same", OWNER, "AB-12", "Qu", OWNER, "AB-12", "Qu", 1},
	    {"dni and q, q dropped", OWNER, "AB-12", "Qu", OWNER, "AB-12", NONE, 0},
	    {"dni and q, dni dropped", OWNER, "AB-12", "Qu", OWNER, NONE, "Qu", 0},
	};
	pw_cursor_key k = key_of(SECRET);

	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			char c[PW_CURSOR_LEN + 1];
			int64_t got = -7;

			make(&k, rows[r].e_owner, rows[r].e_dni, rows[r].e_q, ids[i], c);
			pw_status st = pw_cursor_decode(&k, rows[r].d_owner, rows[r].d_dni,
			                                rows[r].d_q, c, &got);
			if (rows[r].ok) {
				ck_assert_msg(st == PW_OK && got == ids[i],
				              "row '%s' id %lld: status %d, id %lld", rows[r].name,
				              (long long)ids[i], st, (long long)got);
			} else {
				ck_assert_msg(st == PW_E_INVALID,
				              "row '%s' id %lld: status %d (id %lld), want "
				              "PW_E_INVALID",
				              rows[r].name, (long long)ids[i], st, (long long)got);
			}
		}
	}
}
END_TEST

START_TEST(test_bound_to_key)
{
	static const struct {
		const char *name;
		const char *e_secret, *d_secret;
		int ok;
	} rows[] = {
	    {"same secret", SECRET, SECRET, 1},
	    {"K1 decoded with K2", SECRET, SECRET2, 0},
	    {"K2 decoded with K1", SECRET2, SECRET, 0},
	    {"secret vs its prefix", SECRET, "cursor-test-secret", 0},
	    {"empty secret vs set", "", SECRET, 0},
	};
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		pw_cursor_key ke = key_of(rows[r].e_secret), kd = key_of(rows[r].d_secret);

		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			char c[PW_CURSOR_LEN + 1];
			int64_t got = -7;

			make(&ke, OWNER, "1", "a", ids[i], c);
			pw_status st = pw_cursor_decode(&kd, OWNER, "1", "a", c, &got);
			ck_assert_msg(st == (rows[r].ok ? PW_OK : PW_E_INVALID),
			              "row '%s' id %lld: status %d, want %s", rows[r].name,
			              (long long)ids[i], st, rows[r].ok ? "PW_OK" : "PW_E_INVALID");
		}
	}

	/* Two random keys: a cursor of one is refused by the other. */
	pw_cursor_key r1, r2;
	int g1 = 0, g2 = 0;
	char c[PW_CURSOR_LEN + 1];
	int64_t got = -7;

	ck_assert_int_eq(pw_cursor_key_init(&r1, NULL, &g1), PW_OK);
	ck_assert_int_eq(pw_cursor_key_init(&r2, NULL, &g2), PW_OK);
	make(&r1, OWNER, NULL, NULL, 5, c);
	ck_assert_int_eq(pw_cursor_decode(&r1, OWNER, NULL, NULL, c, &got), PW_OK);
	ck_assert_int_eq(got, 5);
	ck_assert_int_eq(pw_cursor_decode(&r2, OWNER, NULL, NULL, c, &got), PW_E_INVALID);
}
END_TEST

START_TEST(test_key_init)
{
	static const struct {
		const char *name;
		const char *a, *b;
		int same;
	} rows[] = {
	    {"same secret twice", SECRET, SECRET, 1},
	    {"empty secret twice", "", "", 1},
	    {"different secrets", SECRET, SECRET2, 0},
	    {"differing in the last char", "secret-a", "secret-b", 0},
	    {"differing in case", "Secret", "secret", 0},
	    {"secret vs its prefix", "secret", "secre", 0},
	    {"empty vs one char", "", "a", 0},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_cursor_key a = key_of(rows[i].a), b = key_of(rows[i].b);
		int eq = memcmp(a.bytes, b.bytes, PW_CURSOR_KEY_LEN) == 0;
		ck_assert_msg(eq == rows[i].same, "row '%s': keys %s", rows[i].name,
		              eq ? "equal" : "differ");
	}

	/* NULL: random, and says so. */
	pw_cursor_key r1, r2;
	int g1 = 0, g2 = 0;

	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	ck_assert_int_eq(pw_cursor_key_init(&r1, NULL, &g1), PW_OK);
	ck_assert_int_eq(pw_cursor_key_init(&r2, NULL, &g2), PW_OK);
	ck_assert_msg(g1 == 1 && g2 == 1, "NULL secret: generated %d and %d, want 1", g1, g2);
	ck_assert_msg(memcmp(r1.bytes, r2.bytes, PW_CURSOR_KEY_LEN) != 0,
	              "NULL secret: two calls gave the same key");

	/* A secret after a NULL call: generated is reset to 0. */
	g1 = 1;
	ck_assert_int_eq(pw_cursor_key_init(&r1, SECRET, &g1), PW_OK);
	ck_assert_msg(g1 == 0, "secret after NULL: generated %d, want 0", g1);
}
END_TEST

static Suite *cursor_suite(void)
{
	Suite *s = suite_create("cursor");
	TCase *tc = tcase_create("encode");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_shape);
	tcase_add_test(tc, test_encode_refuses);
	suite_add_tcase(s, tc);

	tc = tcase_create("decode");
	tcase_add_test(tc, test_every_edit_refused);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_bound_to_owner_and_filters);
	tcase_add_test(tc, test_bound_to_key);
	suite_add_tcase(s, tc);

	tc = tcase_create("key");
	tcase_add_test(tc, test_key_init);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(cursor_suite());
}
