/* A worker on a JWK Set file (JWT_JWKS_FILE), its keys rotated while it runs, no restart:
 * tokens of a key added are answered at once; once a key is removed, its tokens are
 * refused, the very token the worker had accepted (and cached) included; /metrics shows
 * the set. Keys and tokens are made here with OpenSSL (tests/support/pw_testkeys). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <openssl/evp.h>

#include "pw_check_main.h"
#include "pw_httpc.h"
#include "pw_jwk.h"
#include "pw_testidp.h"
#include "pw_testkeys.h"
#include "pw_testkit.h"

static char *token_iss(const char *owner, const char *iss, const char *alg, const char *kid,
                       EVP_PKEY *key)
{
	char claims[512];
	snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"iss\":\"%s\",\"exp\":%ld}", owner, iss,
	         (long)time(NULL) + 3600);
	return tkk_token(alg, kid, key, NULL, 0, claims);
}

static char *token_for(const char *owner, const char *alg, const char *kid, EVP_PKEY *key)
{
	return token_iss(owner, "patients-test", alg, kid, key);
}

/* Two fresh keys: a P-256 one (ES256) and an Ed25519 one (EdDSA). */
static void es_and_ed(EVP_PKEY **es, EVP_PKEY **ed)
{
	*es = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	*ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	ck_assert(*es != NULL && *ed != NULL);
}

/* Sends a create signed with token and waits for its reply; the reply's status. */
static int create_status(const tk_world *w, rd_kafka_t *p, const char *rid, const char *token,
                         const char *dni)
{
	char *cmd = tk_create_cmd(rid, token, dni, NULL);
	tk_send(p, w->create, rid, cmd, strlen(cmd), NULL);
	free(cmd);
	tk_records recs = {0};
	const char *keys[] = {rid};
	tk_await(w, w->replies, keys, 1, &recs);
	const tk_record *r = tk_find(&recs, rid, NULL);
	char *st = tk_json_get(r->value, "status");
	int status = st ? atoi(st) : -1;
	free(st);
	tk_records_free(&recs);
	return status;
}

/* The value of a metric line ("name value") in a /metrics page, or -1. */
static long metric(const char *page, const char *name)
{
	char needle[160];
	snprintf(needle, sizeof(needle), "\n%s ", name);
	const char *at = strstr(page, needle);
	return at ? atol(at + strlen(needle)) : -1;
}

START_TEST(rotation_on_a_running_worker)
{
	EVP_PKEY *ka, *kb;
	es_and_ed(&ka, &kb);
	tk_world w;
	tk_world_init(&w, 1);
	char path[256], set_kv[300], addr[64], http_kv[96];
	snprintf(path, sizeof(path), "%s/jwks-%s.json", tk_env("PW_TEST_LOG_DIR"), w.id);
	tkk_write_set(path, tkk_jwk(ka, "a", "ES256"), NULL);
	snprintf(set_kv, sizeof(set_kv), "JWT_JWKS_FILE=%s", path);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", tk_free_port());
	snprintf(http_kv, sizeof(http_kv), "HTTP_ADDR=%s", addr);
	const char *env[] = {"JWT_SECRET", "JWT_ALG=ES256,EdDSA", set_kv, http_kv, NULL};
	tk_worker_start(&w, env);
	rd_kafka_t *p = tk_producer();
	char *owner = tk_owner("keys");
	char *ta = token_for(owner, "ES256", "a", ka), *tb = token_for(owner, "EdDSA", "b", kb);

	ck_assert_int_eq(create_status(&w, p, "k1", ta, "K1"), 201);
	/* B published: its first token is answered, no restart. */
	tkk_write_set(path, tkk_jwk(ka, "a", "ES256"), tkk_jwk(kb, "b", NULL), NULL);
	ck_assert_int_eq(create_status(&w, p, "k2", tb, "K2"), 201);
	/* A withdrawn: the token k1 was accepted with (and cached) is refused now. */
	tkk_write_set(path, tkk_jwk(kb, "b", NULL), NULL);
	if (!tk_log_wait(&w, "removed: a", 15)) {
		tk_dump_log(&w);
		ck_abort_msg("the worker did not log the removal of kid a within 15 s");
	}
	ck_assert_int_eq(create_status(&w, p, "k3", ta, "K3"), 401);
	ck_assert_int_eq(create_status(&w, p, "k4", tb, "K4"), 201);
	/* A broken file keeps B working. */
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("{\"keys\": [", f);
	fclose(f);
	if (!tk_log_wait(&w, "keeping the last good set", 15)) {
		tk_dump_log(&w);
		ck_abort_msg("the worker did not log the failed refresh within 15 s");
	}
	ck_assert_int_eq(create_status(&w, p, "k5", tb, "K5"), 201);

	char *page = NULL, err[256];
	int status = 0;
	ck_assert_msg(pw_httpc_get(addr, "/metrics", 5000, 1 << 20, &status, &page, err,
	                           sizeof(err)) == PW_OK &&
	                  status == 200,
	              "GET /metrics: %s", err);
	ck_assert_int_eq(metric(page, "patient_worker_key_set_keys"), 1);
	ck_assert_int_ge(metric(page, "patient_worker_key_set_changes_total"), 2);
	ck_assert_int_ge(metric(page, "patient_worker_key_set_refreshes_total{result=\"failed\"}"),
	                 1);
	ck_assert_int_ge(metric(page, "patient_worker_key_set_age_seconds"), 0);
	free(page);
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 15), 0);
	rd_kafka_destroy(p);
	free(ta);
	free(tb);
	free(owner);
	unlink(path);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
}
END_TEST

/* Start-up: a set that does not parse, or has no key for JWT_ALG, stops the worker before
 * it takes a record, with one line naming JWT_JWKS_FILE and exit 2. */
START_TEST(a_bad_set_stops_the_start)
{
	tk_world w;
	tk_world_init(&w, 1);
	char path[256], set_kv[300];
	snprintf(path, sizeof(path), "%s/jwks-bad-%s.json", tk_env("PW_TEST_LOG_DIR"), w.id);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("{\"keys\": [{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}]}", f);
	fclose(f);
	snprintf(set_kv, sizeof(set_kv), "JWT_JWKS_FILE=%s", path);
	const char *env[] = {"JWT_SECRET", "JWT_ALG=RS256", set_kv, NULL};
	tk_worker_spawn(&w, env);
	int rc = tk_worker_wait_exit(&w, 30);
	ck_assert_msg(rc == 2, "exit status %d, want 2", rc);
	ck_assert_msg(tk_log_wait(&w, "JWT_JWKS_FILE: ", 1), "no line names JWT_JWKS_FILE");
	unlink(path);
}
END_TEST

/* JWT_OIDC_ISSUER against the stand-in provider in this process: discovery, a key added
 * at the provider answered at once, the provider gone while the worker goes on. */
START_TEST(oidc_provider_on_a_running_worker)
{
	EVP_PKEY *ka = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *kb = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ck_assert(ka != NULL && kb != NULL);
	char *set_a = tkk_set_text(tkk_jwk(ka, "a", "RS256"), NULL);
	tk_idp *idp = tk_idp_start(set_a);
	const char *iss = tk_idp_base(idp);
	tk_world w;
	tk_world_init(&w, 1);
	char iss_kv[128];
	snprintf(iss_kv, sizeof(iss_kv), "JWT_OIDC_ISSUER=%s", iss);
	const char *env[] = {"JWT_SECRET", "JWT_ALG=RS256,ES256", iss_kv, NULL};
	tk_worker_start(&w, env);
	rd_kafka_t *p = tk_producer();
	char *owner = tk_owner("oidc");
	char *ta = token_iss(owner, iss, "RS256", "a", ka);
	char *tb = token_iss(owner, iss, "ES256", "b", kb);
	char *other = token_iss(owner, "http://127.0.0.1:1/other", "RS256", "a", ka);

	ck_assert_int_eq(create_status(&w, p, "o1", ta, "O1"), 201);
	ck_assert_int_eq(create_status(&w, p, "o2", other, "O2"), 401);
	char *set_ab = tkk_set_text(tkk_jwk(ka, "a", "RS256"), tkk_jwk(kb, "b", NULL), NULL);
	tk_idp_set_keys(idp, set_ab);
	ck_assert_int_eq(create_status(&w, p, "o3", tb, "O3"), 201);
	unsigned long fetched = tk_idp_fetches(idp);
	ck_assert_msg(fetched == 2, "%lu fetches of the set, want 2 (start, B's kid)", fetched);
	/* The provider stops listening: both keys go on verifying. */
	tk_idp_pause(idp);
	ck_assert_int_eq(create_status(&w, p, "o4", ta, "O4"), 201);
	ck_assert_int_eq(create_status(&w, p, "o5", tb, "O5"), 201);
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 15), 0);
	rd_kafka_destroy(p);
	tk_idp_stop(idp);
	free(ta);
	free(tb);
	free(other);
	free(owner);
	free(set_a);
	free(set_ab);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
}
END_TEST

/* Sends a create for rid to one partition of w's create topic. */
static void send_create(const tk_world *w, rd_kafka_t *p, int32_t partition, const char *rid,
                        const char *token)
{
	char *cmd = tk_create_cmd(rid, token, rid, NULL);
	tk_send_to(p, w->create, partition, rid, cmd, strlen(cmd), NULL);
	free(cmd);
}

/* rid's only reply among recs: its status, and its patient id in *id. */
static int reply_of(const tk_records *recs, const char *rid, long *id)
{
	size_t n = 0;
	const tk_record *r = tk_find(recs, rid, &n);
	ck_assert_msg(r != NULL && n == 1, "%s: %zu replies, want 1", rid, n);
	char *st = tk_json_get(r->value, "status"), *pid = tk_json_get(r->value, "data.id");
	int status = st ? atoi(st) : -1;
	*id = pid ? atol(pid) : -1;
	free(st);
	free(pid);
	return status;
}

#define WAITING "patient_worker_partitions_waiting_for_keys{lane=\"create\"}"

/* Waits up to 5 s (the gauges are refreshed every second) for a metric to read want. */
static void await_metric(const char *addr, const char *name, long want)
{
	long got = -2;
	for (int i = 0; i < 50 && got != want; i++) {
		char *page = NULL, err[256];
		int status = 0;
		if (pw_httpc_get(addr, "/metrics", 2000, 1 << 20, &status, &page, err,
		                 sizeof(err)) == PW_OK &&
		    status == 200)
			got = metric(page, name);
		free(page);
		if (got != want) {
			struct timespec nap = {0, 100 * 1000 * 1000};
			nanosleep(&nap, NULL);
		}
	}
	ck_assert_msg(got == want, "%s is %ld after 5 s, want %ld", name, got, want);
}

/* JWT_JWKS_URL (the stand-in provider, in this process): a token whose kid the worker
 * does not have yet waits for the set's refresh without holding up the lane. While the
 * provider holds the fetch, the command's partition waits, the command behind it too,
 * and the other partition is answered; once the fetch is let go, both are answered 201,
 * in their partition's order. A worker whose lane waited for the fetch would have
 * answered nothing meanwhile, then the waiting token 401 when the fetch timed out. */
START_TEST(an_unknown_kid_holds_only_its_partition)
{
	EVP_PKEY *ka, *kb;
	es_and_ed(&ka, &kb);
	char *set_a = tkk_set_text(tkk_jwk(ka, "a", "ES256"), NULL);
	char *set_ab = tkk_set_text(tkk_jwk(ka, "a", "ES256"), tkk_jwk(kb, "b", NULL), NULL);
	tk_idp *idp = tk_idp_start(set_a);
	tk_world w;
	tk_world_init(&w, 2);
	char url_kv[128], addr[64], http_kv[96];
	snprintf(url_kv, sizeof(url_kv), "JWT_JWKS_URL=%s/jwks", tk_idp_base(idp));
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", tk_free_port());
	snprintf(http_kv, sizeof(http_kv), "HTTP_ADDR=%s", addr);
	const char *env[] = {"JWT_SECRET", "JWT_ALG=ES256,EdDSA", url_kv, http_kv, NULL};
	tk_worker_start(&w, env);
	rd_kafka_t *p = tk_producer();
	char *owner = tk_owner("hold");
	char *ta = token_for(owner, "ES256", "a", ka), *tb = token_for(owner, "EdDSA", "b", kb);
	tk_records recs = {0};
	long id0, id1, id2, id3;

	/* Both partitions answered first: the lane has them. */
	send_create(&w, p, 0, "h0", ta);
	send_create(&w, p, 1, "h1", ta);
	const char *first[] = {"h0", "h1"};
	tk_await(&w, w.replies, first, 2, &recs);
	ck_assert_int_eq(reply_of(&recs, "h0", &id0), 201);
	ck_assert_int_eq(reply_of(&recs, "h1", &id1), 201);
	tk_records_free(&recs);

	tk_idp_set_keys(idp, set_ab);
	tk_idp_hold(idp, true);
	send_create(&w, p, 0, "h2", tb);
	struct timespec nap = {0, 20 * 1000 * 1000};
	for (int i = 0; i < 500 && tk_idp_held(idp) == 0; i++)
		nanosleep(&nap, NULL);
	if (tk_idp_held(idp) != 1) {
		tk_dump_log(&w);
		ck_abort_msg("the worker did not fetch the set within 10 s of kid b's token");
	}
	send_create(&w, p, 0, "h3", ta);
	send_create(&w, p, 1, "h4", ta);
	const char *other[] = {"h4"};
	tk_await(&w, w.replies, other, 1, &recs);
	ck_assert_int_eq(reply_of(&recs, "h4", &id0), 201);
	ck_assert_msg(tk_find(&recs, "h2", NULL) == NULL && tk_find(&recs, "h3", NULL) == NULL,
	              "partition 0 was answered while the fetch was held");
	tk_records_free(&recs);
	await_metric(addr, WAITING, 1);

	tk_idp_hold(idp, false);
	const char *held[] = {"h2", "h3"};
	tk_await(&w, w.replies, held, 2, &recs);
	ck_assert_int_eq(reply_of(&recs, "h2", &id2), 201);
	ck_assert_int_eq(reply_of(&recs, "h3", &id3), 201);
	ck_assert_msg(id2 < id3, "h2 (patient %ld) was written after h3 (patient %ld)", id2, id3);
	tk_records_free(&recs);
	await_metric(addr, WAITING, 0);
	ck_assert_msg(tk_log_wait(&w, "waits at offset", 1), "no line says what waited");
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 15), 0);
	rd_kafka_destroy(p);
	tk_idp_stop(idp);
	free(ta);
	free(tb);
	free(owner);
	free(set_a);
	free(set_ab);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
}
END_TEST

/* Every reply to rid among recs is the same bytes, and there are want of them. */
static void same_replies(const tk_records *recs, const char *rid, size_t want)
{
	const char *first = NULL;
	size_t n = 0;

	for (size_t i = 0; i < recs->n; i++) {
		if (recs->v[i].key == NULL || strcmp(recs->v[i].key, rid) != 0)
			continue;
		if (first == NULL)
			first = recs->v[i].value;
		else
			ck_assert_msg(strcmp(first, recs->v[i].value) == 0,
			              "%s answered %s, then %s", rid, first, recs->v[i].value);
		n++;
	}
	ck_assert_msg(n == want, "%zu replies to %s, want %zu", n, rid, want);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot read %s", path);
	static char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* A key retired while commands signed with it wait on the topic: those appended before
 * the retirement are answered (the archive still has the key, for their time), later
 * ones refused; a replay of the topic afterwards answers every one exactly as before. */
START_TEST(retired_key_judged_by_the_command_time)
{
	EVP_PKEY *ka, *kb;
	es_and_ed(&ka, &kb);
	tk_world w;
	tk_world_init(&w, 1);
	char path[256], set_kv[300];
	snprintf(path, sizeof(path), "%s/jwks-ret-%s.json", tk_env("PW_TEST_LOG_DIR"), w.id);
	tkk_write_set(path, tkk_jwk(ka, "a", NULL), NULL);
	snprintf(set_kv, sizeof(set_kv), "JWT_JWKS_FILE=%s", path);
	const char *env[] = {"JWT_SECRET", "JWT_ALG=ES256,EdDSA", set_kv, NULL};
	tk_worker_start(&w, env);
	rd_kafka_t *p = tk_producer();
	char *owner = tk_owner("retire");
	char *ta = token_for(owner, "ES256", "a", ka), *tb = token_for(owner, "EdDSA", "b", kb);

	ck_assert_int_eq(create_status(&w, p, "r1", ta, "R1"), 201);
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 15), 0);
	/* Appended while A is still the provider's key, answered after A has gone. */
	char *cmd = tk_create_cmd("r2", ta, "R2", NULL);
	tk_send(p, w.create, "r2", cmd, strlen(cmd), NULL);
	free(cmd);
	sleep(1); /* retired_at and append times are in whole seconds: keep them apart */
	tkk_write_set(path, tkk_jwk(kb, "b", NULL), NULL);
	tk_worker_start(&w, env);
	if (!tk_log_wait(&w, "left the set: retired at", 15)) {
		tk_dump_log(&w);
		ck_abort_msg("the restarted worker did not retire kid a within 15 s");
	}
	const char *r2[] = {"r2"};
	tk_records recs = {0};
	tk_await(&w, w.replies, r2, 1, &recs);
	char *st = tk_json_get(tk_find(&recs, "r2", NULL)->value, "status");
	ck_assert_msg(st != NULL && strcmp(st, "201") == 0, "r2 answered %s, want 201", st);
	free(st);
	tk_records_free(&recs);
	ck_assert_int_eq(create_status(&w, p, "r3", ta, "R3"), 401);
	ck_assert_int_eq(create_status(&w, p, "r4", tb, "R4"), 201);
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 15), 0);
	/* The archive: A retired, B live. */
	char tpa[64], tpb[64], sql[512];
	ck_assert_int_eq(pw_jwk_thumbprint(ka, tpa, sizeof(tpa)), PW_OK);
	ck_assert_int_eq(pw_jwk_thumbprint(kb, tpb, sizeof(tpb)), PW_OK);
	snprintf(sql, sizeof(sql),
	         "SELECT string_agg(kid || '=' || (retired_at IS NOT NULL), ' ' ORDER BY kid)"
	         " FROM jwt_keys WHERE thumbprint IN ('%s', '%s')",
	         tpa, tpb);
	char *archived = tk_sql(sql);
	ck_assert_str_eq(archived, "a=true b=false");
	free(archived);

	/* The replay, keys as they are now (B only), answers every command as before. */
	char out[512];
	snprintf(out, sizeof(out), "%s.replay.out", w.log_path);
	const char *replay[] = {"replay", "--from-beginning", "--reply", NULL};
	ck_assert_int_eq(tk_run_env(&w, replay, env, out, 120), 0);
	const char *report = slurp(out);
	const char *line = strstr(report, "answered 2xx/4xx/5xx:");
	ck_assert_msg(line != NULL, "no answered line in %s", report);
	int ok2 = -1, bad4 = -1, bad5 = -1;
	ck_assert_int_eq(sscanf(line, "answered 2xx/4xx/5xx: %d/%d/%d", &ok2, &bad4, &bad5), 3);
	ck_assert_msg(ok2 == 3 && bad4 == 1 && bad5 == 0, "replay answered %d/%d/%d, want 3/1/0",
	              ok2, bad4, bad5);
	/* Four first answers and four from the replay. */
	rd_kafka_t *c = tk_reader(w.replies);
	tk_records all = {0};
	size_t got = tk_read(c, &all, 8, 30);
	ck_assert_msg(got == 8, "%zu replies on %s within 30 s, want 8", got, w.replies);
	same_replies(&all, "r1", 2);
	same_replies(&all, "r2", 2);
	same_replies(&all, "r3", 2);
	same_replies(&all, "r4", 2);
	tk_records_free(&all);
	rd_kafka_destroy(c);
	rd_kafka_destroy(p);
	free(ta);
	free(tb);
	free(owner);
	unlink(path);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("keys");
	TCase *tc = tcase_create("keys");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, rotation_on_a_running_worker);
	tcase_add_test(tc, a_bad_set_stops_the_start);
	tcase_add_test(tc, oidc_provider_on_a_running_worker);
	tcase_add_test(tc, an_unknown_kid_holds_only_its_partition);
	tcase_add_test(tc, retired_key_judged_by_the_command_time);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
