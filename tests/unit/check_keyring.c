/* Unit tests of pw_keyring with the verifier: a JWK Set file rotated while verifiers use
 * it. A key added is accepted at once through the unknown-kid refresh; a key removed is
 * refused after the refresh, also for a token the cache had accepted; a flood of made-up
 * kids refreshes once per 30 s; a broken file keeps the last good set; the refresh thread
 * notices a changed file by itself (a bounded wait on the generation). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <openssl/evp.h>

#include "pw_check_main.h"
#include "pw_config.h"
#include "pw_jwt.h"
#include "pw_keyring.h"
#include "pw_testkeys.h"

#define NOW 1500000000L

static EVP_PKEY *ka, *kb, *kc;
static char dir[64], path[128];

static void setup(void)
{
	ka = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	kb = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	kc = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	snprintf(dir, sizeof(dir), "/tmp/pw-keyring-XXXXXX");
	if (!ka || !kb || !kc || mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/jwks.json", dir);
}

static void teardown(void)
{
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
	EVP_PKEY_free(kc);
	unlink(path);
	rmdir(dir);
}

static char *tok(const char *alg, const char *kid, EVP_PKEY *key)
{
	char claims[128];
	snprintf(claims, sizeof(claims), "{\"sub\":\"a@x\",\"exp\":%ld}", NOW + 3600);
	return tkk_token(alg, kid, key, NULL, 0, claims);
}

/* Accepted (want NULL) or refused with a reason containing want. tok is freed. */
static void expect(pw_jwt_verifier *v, char *t, const char *want, const char *name)
{
	pw_jwt_claims c;
	char why[256];
	pw_status st = pw_jwt_verify(v, t, NOW, &c, why, sizeof(why));
	if (want == NULL)
		ck_assert_msg(st == PW_OK, "%s: refused: %s", name, why);
	else
		ck_assert_msg(st == PW_E_AUTH && strstr(why, want) != NULL,
		              "%s: status %d (%s), want refused with '%s'", name, st, why, want);
	free(t);
}

typedef struct fixture {
	pw_config cfg;
	pw_keyring *ring;
	pw_jwt_verifier *v;
} fixture;

/* The set holds A (kid "a"); a verifier with a cache, on a ring (no thread). */
static void open_ring(fixture *f)
{
	tkk_write_set(path, tkk_jwk(ka, "a", NULL), NULL);
	setenv("JWT_JWKS_FILE", path, 1);
	setenv("JWT_ALG", "ES256,EdDSA", 1);
	setenv("KAFKA_BROKERS", "localhost:9092", 1);
	setenv("DATABASE_URL", "postgresql://localhost/x", 1);
	unsetenv("JWT_SECRET");
	unsetenv("JWT_PUBLIC_KEY_FILE");
	ck_assert_int_eq(pw_config_load(&f->cfg, 0, NULL, PW_CFG_NEED_ALL, stderr), PW_OK);
	char err[256];
	ck_assert_msg(pw_keyring_create(&f->cfg, &f->ring, err, sizeof(err)) == PW_OK, "%s", err);
	ck_assert_int_eq(pw_jwt_verifier_create(&f->cfg, &f->v), PW_OK);
	pw_jwt_verifier_use_keyring(f->v, f->ring);
}

static void close_ring(fixture *f)
{
	pw_jwt_verifier_destroy(f->v);
	pw_keyring_destroy(f->ring);
	pw_config_free(&f->cfg);
}

START_TEST(rotation_without_restart)
{
	fixture f;
	pw_keyring_stats s;

	open_ring(&f);
	char *ta = tok("ES256", "a", ka);
	expect(f.v, strdup(ta), NULL, "A");
	expect(f.v, strdup(ta), NULL, "A again (from the cache)");
	/* B published: its first token refreshes the set through its unknown kid. */
	tkk_write_set(path, tkk_jwk(ka, "a", NULL), tkk_jwk(kb, "b", NULL), NULL);
	expect(f.v, tok("EdDSA", "b", kb), NULL, "B, new kid");
	pw_keyring_get_stats(f.ring, &s);
	ck_assert_uint_eq(s.unknown_kid, 1);
	ck_assert_uint_eq(s.keys, 2);
	expect(f.v, strdup(ta), NULL, "A still");
	/* A withdrawn: refused after the refresh, though the cache had it. */
	tkk_write_set(path, tkk_jwk(kb, "b", NULL), NULL);
	pw_keyring_refresh(f.ring);
	expect(f.v, strdup(ta), "not in the key set", "A after its removal");
	expect(f.v, tok("EdDSA", "b", kb), NULL, "B after A's removal");
	pw_keyring_get_stats(f.ring, &s);
	ck_assert_uint_eq(s.keys, 1);
	ck_assert_uint_eq(s.refresh_changed, 2);
	free(ta);
	close_ring(&f);
}
END_TEST

START_TEST(unknown_kids_refresh_once_per_30_s)
{
	fixture f;
	pw_keyring_stats s;

	open_ring(&f);
	for (int i = 0; i < 200; i++) {
		char kid[32];
		snprintf(kid, sizeof(kid), "made-up-%d-%ld", i, (long)time(NULL));
		expect(f.v, tok("ES256", kid, ka), "not in the key set", "a made-up kid");
	}
	pw_keyring_get_stats(f.ring, &s);
	ck_assert_msg(s.unknown_kid == 1, "%lu refreshes for 200 unknown kids", s.unknown_kid);
	ck_assert_uint_eq(s.refresh_ok, 2); /* the start and the one refresh */
	/* Within the 30 s, a real new key is not fetched for its token either: the next
	 * refresh (the file watch, or the period) brings it. */
	tkk_write_set(path, tkk_jwk(ka, "a", NULL), tkk_jwk(kc, "c", NULL), NULL);
	expect(f.v, tok("ES256", "c", kc), "not in the key set", "C within the 30 s");
	pw_keyring_refresh(f.ring);
	expect(f.v, tok("ES256", "c", kc), NULL, "C after the refresh");
	close_ring(&f);
}
END_TEST

START_TEST(a_broken_set_keeps_the_last_good_one)
{
	fixture f;
	pw_keyring_stats s;

	open_ring(&f);
	static const char *broken[] = {"{\"keys\": [", "{\"keys\": []}",
	                               "{\"keys\": [{\"kty\": \"oct\", \"k\": \"AAAA\"}]}", ""};
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		FILE *fp = fopen(path, "w");
		ck_assert_ptr_nonnull(fp);
		fputs(broken[i], fp);
		fclose(fp);
		pw_keyring_refresh(f.ring);
		expect(f.v, tok("ES256", "a", ka), NULL, "A while the set is broken");
	}
	unlink(path);
	pw_keyring_refresh(f.ring);
	expect(f.v, tok("ES256", "a", ka), NULL, "A while the file is gone");
	pw_keyring_get_stats(f.ring, &s);
	ck_assert_uint_eq(s.refresh_failed, 5);
	ck_assert_uint_eq(s.keys, 1);
	close_ring(&f);
}
END_TEST

START_TEST(the_thread_notices_a_changed_file)
{
	fixture f;

	open_ring(&f);
	ck_assert_int_eq(pw_keyring_start(f.ring), PW_OK);
	uint64_t g = pw_keyring_generation(f.ring);
	/* A rename over the file, as deployment tools (and Kubernetes' config maps) do. */
	tkk_write_set(path, tkk_jwk(kb, "b", NULL), NULL);
	struct timespec nap = {0, 50 * 1000 * 1000};
	int waited_ms = 0;
	while (pw_keyring_generation(f.ring) == g && waited_ms < 5000) {
		nanosleep(&nap, NULL);
		waited_ms += 50;
	}
	ck_assert_msg(pw_keyring_generation(f.ring) != g,
	              "the set did not change within 5 s of the file's");
	expect(f.v, tok("ES256", "a", ka), "not in the key set", "A, gone from the file");
	expect(f.v, tok("EdDSA", "b", kb), NULL, "B, in the file now");
	close_ring(&f);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("keyring");
	TCase *tc = tcase_create("keyring");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, rotation_without_restart);
	tcase_add_test(tc, unknown_kids_refresh_once_per_30_s);
	tcase_add_test(tc, a_broken_set_keeps_the_last_good_one);
	tcase_add_test(tc, the_thread_notices_a_changed_file);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
