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
#include "pw_testidp.h"
#include "pw_testkeys.h"
#include "pw_util.h"

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

/* Not decided yet: the token waits for the set's refresh (PW_E_RETRY). tok is freed. */
static void expect_wait(pw_jwt_verifier *v, char *t, const char *name)
{
	pw_jwt_claims c;
	char why[256];
	pw_status st = pw_jwt_verify(v, t, NOW, &c, why, sizeof(why));
	ck_assert_msg(st == PW_E_RETRY, "%s: status %d (%s), want a wait for the refresh", name, st,
	              why);
	free(t);
}

/* Waits up to 10 s for the ring's thread to finish what tokens wait for. */
static void await_refresh(pw_keyring *ring)
{
	struct timespec nap = {0, 20 * 1000 * 1000};
	for (int i = 0; i < 500 && pw_keyring_kid_waits(ring); i++)
		nanosleep(&nap, NULL);
	ck_assert_msg(!pw_keyring_kid_waits(ring), "tokens still wait for the set after 10 s");
}

typedef struct fixture {
	pw_config cfg;
	pw_keyring *ring;
	pw_jwt_verifier *v;
} fixture;

/* The settings of a worker on one key source (var=value), ES256 and EdDSA allowed. */
static void key_env(const char *var, const char *value)
{
	static const char *const sources[] = {"JWT_SECRET",      "JWT_PUBLIC_KEY_FILE",
	                                      "JWT_JWKS_FILE",   "JWT_JWKS_URL",
	                                      "JWT_OIDC_ISSUER", "JWT_ISSUER"};
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
		unsetenv(sources[i]);
	setenv(var, value, 1);
	setenv("JWT_ALG", "ES256,EdDSA", 1);
	setenv("KAFKA_BROKERS", "localhost:9092", 1);
	setenv("DATABASE_URL", "postgresql://localhost/x", 1);
}

/* The set holds A (kid "a"); a verifier with a cache, on a ring (no thread). */
static void open_ring(fixture *f)
{
	tkk_write_set(path, tkk_jwk(ka, "a", NULL), NULL);
	key_env("JWT_JWKS_FILE", path);
	ck_assert_int_eq(pw_config_load(&f->cfg, 0, NULL, PW_CFG_NEED_ALL, stderr), PW_OK);
	char err[256];
	ck_assert_msg(pw_keyring_create(&f->cfg, 0, &f->ring, err, sizeof(err)) == PW_OK, "%s",
	              err);
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
	/* With the thread running, A's kid asks it for a refresh and waits for that, then is
	 * refused; within the 30 s, at once. */
	expect_wait(f.v, tok("ES256", "a", ka), "A, gone from the file");
	await_refresh(f.ring);
	expect(f.v, tok("ES256", "a", ka), "not in the key set", "A, gone from the file");
	expect(f.v, tok("ES256", "a", ka), "not in the key set", "A again, within the 30 s");
	expect(f.v, tok("EdDSA", "b", kb), NULL, "B, in the file now");
	close_ring(&f);
}
END_TEST

/* ---- a set over HTTP: OpenID Connect discovery against the stand-in provider ------------ */

static char *tok_iss(const char *iss, const char *alg, const char *kid, EVP_PKEY *key)
{
	char claims[256];
	snprintf(claims, sizeof(claims), "{\"sub\":\"a@x\",\"iss\":\"%s\",\"exp\":%ld}", iss,
	         NOW + 3600);
	return tkk_token(alg, kid, key, NULL, 0, claims);
}

static pw_status open_oidc(fixture *f, tk_idp *idp, int start_s, char *err, size_t err_size)
{
	key_env("JWT_OIDC_ISSUER", tk_idp_base(idp));
	ck_assert_int_eq(pw_config_load(&f->cfg, 0, NULL, PW_CFG_NEED_ALL, stderr), PW_OK);
	pw_status st = pw_keyring_create(&f->cfg, start_s, &f->ring, err, err_size);
	if (st != PW_OK)
		return st;
	ck_assert_int_eq(pw_jwt_verifier_create(&f->cfg, &f->v), PW_OK);
	pw_jwt_verifier_use_keyring(f->v, f->ring);
	return PW_OK;
}

START_TEST(oidc_rotation_and_outage)
{
	char *set_a = tkk_set_text(tkk_jwk(ka, "a", NULL), NULL);
	tk_idp *idp = tk_idp_start(set_a);
	const char *iss = tk_idp_base(idp);
	fixture f;
	char err[512];
	pw_keyring_stats s;

	ck_assert_msg(open_oidc(&f, idp, 0, err, sizeof(err)) == PW_OK, "%s", err);
	ck_assert_uint_eq(tk_idp_fetches(idp), 1);
	expect(f.v, tok_iss(iss, "ES256", "a", ka), NULL, "A");
	/* iss is the issuer's, whatever JWT_ISSUER says (unset here). */
	expect(f.v, tok_iss("http://elsewhere", "ES256", "a", ka), "iss", "A from another issuer");
	/* B published: accepted at once, one fetch. */
	char *set_ab = tkk_set_text(tkk_jwk(ka, "a", NULL), tkk_jwk(kb, "b", NULL), NULL);
	tk_idp_set_keys(idp, set_ab);
	expect(f.v, tok_iss(iss, "EdDSA", "b", kb), NULL, "B through its unknown kid");
	ck_assert_uint_eq(tk_idp_fetches(idp), 2);
	/* A flood of made-up kids within the 30 s: no fetch at all. */
	for (int i = 0; i < 100; i++) {
		char kid[24];
		snprintf(kid, sizeof(kid), "nope-%d", i);
		expect(f.v, tok_iss(iss, "ES256", kid, ka), "not in the key set", "made-up kid");
	}
	ck_assert_uint_eq(tk_idp_fetches(idp), 2);
	/* The provider answers 500, then stops listening: valid tokens keep verifying. */
	tk_idp_set_failing(idp, true);
	pw_keyring_refresh(f.ring);
	expect(f.v, tok_iss(iss, "ES256", "a", ka), NULL, "A while the provider answers 500");
	tk_idp_pause(idp);
	pw_keyring_refresh(f.ring);
	expect(f.v, tok_iss(iss, "EdDSA", "b", kb), NULL, "B while the provider is gone");
	pw_keyring_get_stats(f.ring, &s);
	ck_assert_uint_eq(s.refresh_failed, 2);
	ck_assert_uint_eq(s.keys, 2);
	ck_assert_int_le(s.period_s, 60); /* a failed refresh is tried again within a minute */
	/* Back, without A: A refused after the refresh. */
	tk_idp_resume(idp);
	tk_idp_set_failing(idp, false);
	char *set_b = tkk_set_text(tkk_jwk(kb, "b", NULL), NULL);
	tk_idp_set_keys(idp, set_b);
	tk_idp_set_max_age(idp, 120);
	pw_keyring_refresh(f.ring);
	expect(f.v, tok_iss(iss, "ES256", "a", ka), "not in the key set", "A after its removal");
	expect(f.v, tok_iss(iss, "EdDSA", "b", kb), NULL, "B");
	pw_keyring_get_stats(f.ring, &s);
	ck_assert_int_eq(s.period_s, 120); /* max-age within the bounds */
	tk_idp_set_max_age(idp, 5);
	pw_keyring_refresh(f.ring);
	pw_keyring_get_stats(f.ring, &s);
	ck_assert_int_eq(s.period_s, 600); /* below 60: JWT_JWKS_REFRESH_S */
	close_ring(&f);
	tk_idp_stop(idp);
	free(set_a);
	free(set_ab);
	free(set_b);
}
END_TEST

/* With the thread running, a token's unknown kid never waits for the provider: the call
 * returns "wait" while the provider holds the fetch (a verifier that fetched itself would
 * only return once the fetch ended), known kids go on, and after the refresh the token is
 * accepted; one refresh for every kid that waited. */
START_TEST(an_unknown_kid_does_not_wait_for_the_provider)
{
	char *set_a = tkk_set_text(tkk_jwk(ka, "a", NULL), NULL);
	char *set_ab = tkk_set_text(tkk_jwk(ka, "a", NULL), tkk_jwk(kb, "b", NULL), NULL);
	tk_idp *idp = tk_idp_start(set_a);
	const char *iss = tk_idp_base(idp);
	fixture f;
	char err[512];
	pw_keyring_stats s;

	ck_assert_msg(open_oidc(&f, idp, 0, err, sizeof(err)) == PW_OK, "%s", err);
	ck_assert_int_eq(pw_keyring_start(f.ring), PW_OK);
	expect(f.v, tok_iss(iss, "ES256", "a", ka), NULL, "A");
	tk_idp_set_keys(idp, set_ab);
	tk_idp_hold(idp, true);
	expect_wait(f.v, tok_iss(iss, "EdDSA", "b", kb), "B, new kid");
	struct timespec nap = {0, 20 * 1000 * 1000};
	for (int i = 0; i < 500 && tk_idp_held(idp) == 0; i++)
		nanosleep(&nap, NULL);
	ck_assert_msg(tk_idp_held(idp) == 1, "the thread did not fetch the set within 10 s");
	ck_assert(pw_keyring_kid_waits(f.ring));
	expect_wait(f.v, tok_iss(iss, "EdDSA", "b", kb), "B again, the fetch held");
	expect_wait(f.v, tok_iss(iss, "ES256", "made-up", ka), "a made-up kid, the fetch held");
	expect(f.v, tok_iss(iss, "ES256", "a", ka), NULL, "A, the fetch held");
	tk_idp_hold(idp, false);
	await_refresh(f.ring);
	expect(f.v, tok_iss(iss, "EdDSA", "b", kb), NULL, "B after the refresh");
	expect(f.v, tok_iss(iss, "ES256", "made-up", ka), "not in the key set", "made-up kid");
	pw_keyring_get_stats(f.ring, &s);
	ck_assert_uint_eq(s.unknown_kid, 1);
	ck_assert_uint_eq(tk_idp_fetches(idp), 2);
	close_ring(&f);
	tk_idp_stop(idp);
	free(set_a);
	free(set_ab);
}
END_TEST

/* A worker that could not read the key archive yet (its database down at start) does not
 * refuse a kid it lacks: the key may be a retired one, valid for the command's time. The
 * token waits until the archive is read; the kids of the set pass meanwhile. */
START_TEST(an_unknown_kid_waits_for_an_unread_archive)
{
	fixture f;

	open_ring(&f); /* DATABASE_URL names a database that does not exist */
	ck_assert_msg(!pw_keyring_use_archive(f.ring, true), "an archive read from nowhere");
	ck_assert_int_eq(pw_keyring_start(f.ring), PW_OK);
	expect(f.v, tok("ES256", "a", ka), NULL, "A, in the set");
	expect_wait(f.v, tok("EdDSA", "old", kb), "a kid only the archive may know");
	ck_assert(pw_keyring_kid_waits(f.ring));
	close_ring(&f);
}
END_TEST

START_TEST(discovery_is_checked)
{
	char *set_a = tkk_set_text(tkk_jwk(ka, "a", NULL), NULL);
	tk_idp *idp = tk_idp_start(set_a);
	fixture f;
	char err[512];

	/* The document names another issuer: no set. */
	tk_idp_set_issuer(idp, "http://127.0.0.1:1/other");
	ck_assert_int_eq(open_oidc(&f, idp, 0, err, sizeof(err)), PW_E_CONFIG);
	ck_assert_msg(strstr(err, "JWT_OIDC_ISSUER") && strstr(err, "another issuer"), "%s", err);
	pw_config_free(&f.cfg);
	/* A set without a usable key. */
	tk_idp_set_issuer(idp, NULL);
	tk_idp_set_keys(idp, "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}");
	ck_assert_int_eq(open_oidc(&f, idp, 0, err, sizeof(err)), PW_E_CONFIG);
	ck_assert_msg(strstr(err, "no usable signature key"), "%s", err);
	pw_config_free(&f.cfg);
	/* Nothing listening: tried for start_s seconds, then given up. */
	tk_idp_pause(idp);
	time_t t0 = time(NULL);
	ck_assert_int_eq(open_oidc(&f, idp, 3, err, sizeof(err)), PW_E_CONFIG);
	ck_assert_int_ge(time(NULL) - t0, 2);
	ck_assert_msg(strstr(err, "within 3 s"), "%s", err);
	pw_config_free(&f.cfg);
	tk_idp_stop(idp);
	free(set_a);
}
END_TEST

/* ---- HTTPS: the system store, JWT_JWKS_CA_FILE, the host checked ----------------------- */

/* A self-signed certificate for san (an openssl CLI run), in dir; its PEM text. */
static char *make_cert(const char *name, const char *san, char *cert_path, size_t size,
                       char **key_pem)
{
	char cmd[1024], key_path[160];
	snprintf(cert_path, size, "%s/%s.crt", dir, name);
	snprintf(key_path, sizeof(key_path), "%s/%s.key", dir, name);
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1"
	         " -subj /CN=%s -addext subjectAltName=%s -keyout %s -out %s 2>/dev/null",
	         name, san, key_path, cert_path);
	ck_assert_msg(system(cmd) == 0, "openssl could not make a certificate: %s", cmd);
	size_t len;
	char *cert = NULL;
	ck_assert_int_eq(pw_util_read_file(cert_path, 65536, &cert, &len), PW_OK);
	ck_assert_int_eq(pw_util_read_file(key_path, 65536, key_pem, &len), PW_OK);
	unlink(key_path);
	return cert;
}

/* start_s: the good case may take a few tries under valgrind (a TLS handshake with both
 * ends in one instrumented process); a refusal comes before the slow part. */
static pw_status open_url(fixture *f, const char *url, const char *ca, int start_s, char *err,
                          size_t size)
{
	key_env("JWT_JWKS_URL", url);
	if (ca != NULL)
		setenv("JWT_JWKS_CA_FILE", ca, 1);
	else
		unsetenv("JWT_JWKS_CA_FILE");
	ck_assert_int_eq(pw_config_load(&f->cfg, 0, NULL, PW_CFG_NEED_ALL, stderr), PW_OK);
	pw_status st = pw_keyring_create(&f->cfg, start_s, &f->ring, err, size);
	pw_keyring_destroy(f->ring);
	pw_config_free(&f->cfg);
	unsetenv("JWT_JWKS_CA_FILE");
	return st;
}

START_TEST(https_trusts_the_ca_file_and_checks_the_host)
{
	char *set_a = tkk_set_text(tkk_jwk(ka, "a", NULL), NULL);
	char good_crt[160], other_crt[160], *good_key = NULL, *other_key = NULL, url[128];
	char err[512];
	fixture f;
	char *good = make_cert("loopback", "IP:127.0.0.1", good_crt, sizeof(good_crt), &good_key);
	char *other =
	    make_cert("elsewhere", "DNS:idp.example", other_crt, sizeof(other_crt), &other_key);

	tk_idp *idp = tk_idp_start_tls(set_a, good, good_key);
	snprintf(url, sizeof(url), "%s/jwks", tk_idp_base(idp));
	ck_assert_msg(strncmp(url, "https://", 8) == 0, "%s", url);
	ck_assert_msg(open_url(&f, url, good_crt, 10, err, sizeof(err)) == PW_OK, "%s", err);
	/* The system store alone does not know a self-signed certificate. */
	ck_assert_int_eq(open_url(&f, url, NULL, 0, err, sizeof(err)), PW_E_CONFIG);
	ck_assert_msg(strstr(err, "certificate"), "%s", err);
	tk_idp_stop(idp);
	/* A certificate the CA file trusts, for another host. */
	idp = tk_idp_start_tls(set_a, other, other_key);
	snprintf(url, sizeof(url), "%s/jwks", tk_idp_base(idp));
	ck_assert_int_eq(open_url(&f, url, other_crt, 0, err, sizeof(err)), PW_E_CONFIG);
	ck_assert_msg(strstr(err, "127.0.0.1") && strstr(err, "certificate"), "%s", err);
	tk_idp_stop(idp);
	free(good);
	free(good_key);
	free(other);
	free(other_key);
	free(set_a);
	unlink(good_crt);
	unlink(other_crt);
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
	tcase_add_test(tc, oidc_rotation_and_outage);
	tcase_add_test(tc, an_unknown_kid_does_not_wait_for_the_provider);
	tcase_add_test(tc, an_unknown_kid_waits_for_an_unread_archive);
	tcase_add_test(tc, discovery_is_checked);
	tcase_add_test(tc, https_trusts_the_ca_file_and_checks_the_host);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
