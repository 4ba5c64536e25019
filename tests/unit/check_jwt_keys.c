/* Unit tests of token verification with a JWK Set (JWT_JWKS_FILE) and with an Ed25519 PEM:
 * keys made here, the set written to a file and loaded through pw_config_load as the worker
 * loads it, tokens signed here with OpenSSL. Kid selection, keys that do not fit the
 * token's algorithm, the HS256 key-confusion attack against a key set, and the
 * configuration rules for key sources. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "pw_check_main.h"
#include "pw_config.h"
#include "pw_jwt.h"
#include "pw_testkeys.h"
#include "pw_util.h"

#define NOW 1500000000L

static EVP_PKEY *rsa_a, *rsa_b, *ec, *ed;
static char dir[64];

/* Every setting a case may set: unset before each load, since without fork (valgrind)
 * the cases share one environment. */
static const char *const vars[] = {"JWT_ALG",          "JWT_SECRET",         "JWT_PUBLIC_KEY_FILE",
                                   "JWT_JWKS_FILE",    "JWT_JWKS_URL",       "JWT_OIDC_ISSUER",
                                   "JWT_JWKS_CA_FILE", "JWT_JWKS_REFRESH_S", "JWT_ISSUER"};

static void setup(void)
{
	rsa_a = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa_b = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	snprintf(dir, sizeof(dir), "/tmp/pw-jwt-keys-XXXXXX");
	if (!rsa_a || !rsa_b || !ec || !ed || mkdtemp(dir) == NULL)
		abort();
}

static void teardown(void)
{
	EVP_PKEY_free(rsa_a);
	EVP_PKEY_free(rsa_b);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* ---- JWKs and tokens ------------------------------------------------------------------------- */

#define jwk tkk_jwk

static char *set_path(const char *name)
{
	static char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

/* Writes the set to dir/name; its path (until the next call). */
#define write_set(name, ...) (tkk_write_set(set_path(name), __VA_ARGS__), set_path(name))

static char *token(const char *alg, const char *kid, EVP_PKEY *key, const unsigned char *secret,
                   size_t secret_len)
{
	char claims[128];
	snprintf(claims, sizeof(claims), "{\"sub\":\"a@x\",\"exp\":%ld}", NOW + 3600);
	return tkk_token(alg, kid, key, secret, secret_len, claims);
}

static char *tok_of(const char *alg, const char *kid, EVP_PKEY *key)
{
	return token(alg, kid, key, NULL, 0);
}

/* ---- configuration and verification ------------------------------------------------------- */

static char errbuf[4096];

/* Loads the configuration from exactly these settings ("VAR=value"), NULL-terminated. */
static pw_status load(pw_config *cfg, const char *first, ...)
{
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	setenv("KAFKA_BROKERS", "localhost:9092", 1);
	setenv("DATABASE_URL", "postgresql://localhost/x", 1);
	va_list ap;
	va_start(ap, first);
	for (const char *kv = first; kv != NULL; kv = va_arg(ap, const char *)) {
		char name[64];
		const char *eq = strchr(kv, '=');
		snprintf(name, sizeof(name), "%.*s", (int)(eq - kv), kv);
		setenv(name, eq + 1, 1);
	}
	va_end(ap);
	FILE *err = fmemopen(errbuf, sizeof(errbuf), "w");
	pw_status st = pw_config_load(cfg, 0, NULL, PW_CFG_NEED_ALL, err);
	fclose(err);
	return st;
}

static pw_jwt_verifier *verifier(pw_config *cfg)
{
	pw_jwt_verifier *v = NULL;
	ck_assert_int_eq(pw_jwt_verifier_create(cfg, &v), PW_OK);
	return v;
}

/* Verifies tok (freed) and checks the outcome: NULL want_why means accepted. */
static void expect(pw_jwt_verifier *v, char *tok, const char *want_why, const char *name)
{
	pw_jwt_claims c;
	char why[256];
	pw_status st = pw_jwt_verify(v, tok, NOW, &c, why, sizeof(why));
	if (want_why == NULL)
		ck_assert_msg(st == PW_OK && strcmp(c.owner, "a@x") == 0, "%s: refused: %s", name,
		              why);
	else
		ck_assert_msg(st == PW_E_AUTH && strstr(why, want_why) != NULL,
		              "%s: status %d, why '%s', want '%s'", name, st, why, want_why);
	free(tok);
}

START_TEST(kid_selects_the_key)
{
	pw_config cfg;
	const char *path = write_set("all.json", jwk(rsa_a, "ra", NULL), jwk(rsa_b, "rb", "RS256"),
	                             jwk(ec, "e", "ES256"), jwk(ed, "d", NULL), NULL);
	char kv[160];
	snprintf(kv, sizeof(kv), "JWT_JWKS_FILE=%s", path);
	ck_assert_msg(load(&cfg, kv, "JWT_ALG=RS256,ES256,EdDSA", NULL) == PW_OK, "%s", errbuf);
	ck_assert_int_eq(cfg.jwt_source, PW_KEYS_JWKS_FILE);
	pw_jwt_verifier *v = verifier(&cfg);

	expect(v, tok_of("RS256", "ra", rsa_a), NULL, "RS256 by kid ra");
	expect(v, tok_of("RS256", "rb", rsa_b), NULL, "RS256 by kid rb");
	expect(v, tok_of("ES256", "e", ec), NULL, "ES256 by kid");
	expect(v, tok_of("EdDSA", "d", ed), NULL, "EdDSA by kid");
	/* Without a kid: only when exactly one key fits (two RSA keys here, one EC). */
	expect(v, tok_of("ES256", NULL, ec), NULL, "ES256 without kid, one EC key");
	expect(v, tok_of("EdDSA", NULL, ed), NULL, "EdDSA without kid, one Ed25519 key");
	expect(v, tok_of("RS256", NULL, rsa_a), "several keys fit", "RS256 without kid");
	/* The kid names another key than the one that signed. */
	expect(v, tok_of("RS256", "rb", rsa_a), "signature", "RS256 signed by ra, kid rb");
	expect(v, tok_of("RS256", "nope", rsa_a), "not in the key set", "unknown kid");
	/* A kid whose key does not fit the token's alg. */
	expect(v, tok_of("ES256", "ra", ec), "does not fit", "ES256 naming an RSA kid");
	expect(v, tok_of("RS256", "e", rsa_a), "does not fit", "RS256 naming an EC kid");
	expect(v, tok_of("EdDSA", "ra", ed), "does not fit", "EdDSA naming an RSA kid");
	/* HS256 keyed with a published public key (the RSA modulus, the EC x), naming its
	 * kid: the classic confusion attack, refused before any key is touched. */
	unsigned char n[256];
	BIGNUM *bn = NULL;
	ck_assert_int_eq(EVP_PKEY_get_bn_param(rsa_a, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
	int nlen = BN_bn2bin(bn, n);
	BN_free(bn);
	expect(v, token("HS256", "ra", NULL, n, (size_t)nlen), "algorithm",
	       "HS256 with the RSA modulus as secret");
	char *pem = NULL;
	BIO *mem = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_PUBKEY(mem, rsa_a), 1);
	long pem_len = BIO_get_mem_data(mem, &pem);
	expect(v, token("HS256", "ra", NULL, (unsigned char *)pem, (size_t)pem_len), "algorithm",
	       "HS256 with the RSA PEM as secret");
	BIO_free(mem);
	expect(v, token("none", "ra", NULL, NULL, 0), "algorithm", "alg none");
	expect(v, tok_of("RS512", "ra", rsa_a), "algorithm", "RS512");
	pw_jwt_verifier_destroy(v);
	pw_config_free(&cfg);
}
END_TEST

START_TEST(jwt_alg_limits_a_set)
{
	pw_config cfg;
	const char *path = write_set("two.json", jwk(rsa_a, "ra", NULL), jwk(ed, "d", NULL), NULL);
	char kv[160];
	snprintf(kv, sizeof(kv), "JWT_JWKS_FILE=%s", path);
	/* Unset JWT_ALG with a key set is RS256. */
	ck_assert_msg(load(&cfg, kv, NULL) == PW_OK, "%s", errbuf);
	ck_assert_str_eq(cfg.jwt_alg_name, "RS256");
	pw_jwt_verifier *v = verifier(&cfg);
	expect(v, tok_of("RS256", "ra", rsa_a), NULL, "RS256 allowed");
	expect(v, tok_of("EdDSA", "d", ed), "algorithm", "EdDSA not listed");
	pw_jwt_verifier_destroy(v);
	pw_config_free(&cfg);
	/* A JWK's own alg must agree: an RSA key marked RS256 never verifies anything else
	 * (nothing else fits RSA today, so this pins the Ed25519 side: alg EdDSA). */
	path = write_set("marked.json", jwk(ed, "d", "EdDSA"), NULL);
	snprintf(kv, sizeof(kv), "JWT_JWKS_FILE=%s", path);
	ck_assert_msg(load(&cfg, kv, "JWT_ALG=EdDSA", NULL) == PW_OK, "%s", errbuf);
	v = verifier(&cfg);
	expect(v, tok_of("EdDSA", NULL, ed), NULL, "EdDSA, JWK alg EdDSA");
	pw_jwt_verifier_destroy(v);
	pw_config_free(&cfg);
}
END_TEST

START_TEST(eddsa_with_a_pem)
{
	pw_config cfg;
	char path[128];
	snprintf(path, sizeof(path), "%s/ed.pem", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_PUBKEY(f, ed), 1);
	fclose(f);
	char kv[160];
	snprintf(kv, sizeof(kv), "JWT_PUBLIC_KEY_FILE=%s", path);
	ck_assert_msg(load(&cfg, kv, "JWT_ALG=EdDSA", NULL) == PW_OK, "%s", errbuf);
	pw_jwt_verifier *v = verifier(&cfg);
	expect(v, tok_of("EdDSA", NULL, ed), NULL, "EdDSA with a PEM");
	expect(v, tok_of("EdDSA", "any", ed), NULL, "a kid is ignored with one static key");
	/* Another Ed25519 key's signature. */
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	expect(v, tok_of("EdDSA", NULL, other), "signature", "another Ed25519 key");
	EVP_PKEY_free(other);
	expect(v, tok_of("RS256", NULL, rsa_a), "algorithm", "RS256 token, JWT_ALG=EdDSA");
	pw_jwt_verifier_destroy(v);
	pw_config_free(&cfg);
	/* An RSA PEM for EdDSA is a configuration error. */
	snprintf(path, sizeof(path), "%s/rsa.pem", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_PUBKEY(f, rsa_a), 1);
	fclose(f);
	snprintf(kv, sizeof(kv), "JWT_PUBLIC_KEY_FILE=%s", path);
	ck_assert_int_eq(load(&cfg, kv, "JWT_ALG=EdDSA", NULL), PW_E_CONFIG);
	ck_assert_msg(strncmp(errbuf, "JWT_PUBLIC_KEY_FILE: EdDSA needs an Ed25519", 43) == 0, "%s",
	              errbuf);
	pw_config_free(&cfg);
}
END_TEST

/* Each bad combination: PW_E_CONFIG and one line that starts with the setting to fix. */
START_TEST(key_source_rules)
{
	const char *good = write_set("good.json", jwk(rsa_a, "ra", NULL), NULL);
	char jwks[160], bad[160], notjson[160];
	snprintf(jwks, sizeof(jwks), "JWT_JWKS_FILE=%s", good);
	snprintf(bad, sizeof(bad), "JWT_JWKS_FILE=%s/missing.json", dir);
	snprintf(notjson, sizeof(notjson), "%s/not.json", dir);
	FILE *f = fopen(notjson, "w");
	ck_assert_ptr_nonnull(f);
	fputs("{\"keys\": [", f);
	fclose(f);
	char notjson_kv[200];
	snprintf(notjson_kv, sizeof(notjson_kv), "JWT_JWKS_FILE=%s", notjson);
	const char *ecset = write_set("ec.json", jwk(ec, "e", NULL), NULL);
	char ec_kv[160];
	snprintf(ec_kv, sizeof(ec_kv), "JWT_JWKS_FILE=%s", ecset);
	struct {
		const char *a, *b, *c, *want;
	} rows[] = {
	    {jwks, "JWT_SECRET=0123456789abcdef0123456789abcdef", NULL, "JWT_JWKS_FILE: only one"},
	    {jwks, "JWT_JWKS_URL=https://idp.example/jwks", NULL, "JWT_JWKS_URL: only one"},
	    {jwks, "JWT_ALG=HS256", NULL, "JWT_ALG: HS256 needs JWT_SECRET"},
	    {jwks, "JWT_ALG=RS256,HS256", NULL, "JWT_ALG: HS256 needs JWT_SECRET"},
	    {jwks, "JWT_ALG=RS256,PS256", NULL, "JWT_ALG: 'RS256,PS256' is not one of"},
	    {jwks, "JWT_ALG=RS256,", NULL, "JWT_ALG"},
	    {ec_kv, "JWT_ALG=RS256", NULL, "JWT_JWKS_FILE: "},
	    {bad, NULL, NULL, "JWT_JWKS_FILE: cannot read"},
	    {notjson_kv, NULL, NULL, "JWT_JWKS_FILE: "},
	    {"JWT_SECRET=0123456789abcdef0123456789abcdef", "JWT_ALG=HS256,RS256", NULL,
	     "JWT_ALG: a list of algorithms needs a key set"},
	    {"JWT_JWKS_URL=http://idp.example/jwks", NULL, NULL, "JWT_JWKS_URL: must be an https"},
	    {"JWT_JWKS_URL=ftp://127.0.0.1/jwks", NULL, NULL, "JWT_JWKS_URL: must be an https"},
	    {"JWT_OIDC_ISSUER=http://10.0.0.1", NULL, NULL, "JWT_OIDC_ISSUER: must be an https"},
	    {"JWT_JWKS_URL=http://127.0.0.1.example.net/jwks", NULL, NULL,
	     "JWT_JWKS_URL: must be an https"},
	    {"JWT_JWKS_URL=http://localhost.example.net/jwks", NULL, NULL,
	     "JWT_JWKS_URL: must be an https"},
	    {"JWT_OIDC_ISSUER=https://idp.example", "JWT_ISSUER=https://other.example", NULL,
	     "JWT_ISSUER: must be unset or equal"},
	    {jwks, "JWT_JWKS_REFRESH_S=59", NULL, "JWT_JWKS_REFRESH_S"},
	    {jwks, "JWT_JWKS_REFRESH_S=86401", NULL, "JWT_JWKS_REFRESH_S"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_config cfg;
		ck_assert_msg(load(&cfg, rows[i].a, rows[i].b, rows[i].c, NULL) == PW_E_CONFIG,
		              "row %zu (%s %s) accepted", i, rows[i].a, rows[i].b ? rows[i].b : "");
		ck_assert_msg(strncmp(errbuf, rows[i].want, strlen(rows[i].want)) == 0,
		              "row %zu: '%s', want a line starting '%s'", i, errbuf, rows[i].want);
		ck_assert_msg(strchr(errbuf, '\n') == errbuf + strlen(errbuf) - 1,
		              "row %zu: more than one line: %s", i, errbuf);
		pw_config_free(&cfg);
	}
}
END_TEST

/* URLs are checked, not fetched, by the configuration (migrate never fetches keys); the
 * issuer becomes the expected iss. */
START_TEST(network_sources_accepted)
{
	static const char *const ok[] = {
	    "JWT_JWKS_URL=https://idp.example/jwks",
	    "JWT_JWKS_URL=http://127.0.0.1:8080/jwks",
	    "JWT_JWKS_URL=http://[::1]:8080/jwks",
	    "JWT_JWKS_URL=http://localhost:9/jwks",
	    "JWT_OIDC_ISSUER=https://idp.example/realms/r",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		pw_config cfg;
		ck_assert_msg(load(&cfg, ok[i], NULL) == PW_OK, "%s: %s", ok[i], errbuf);
		ck_assert_str_eq(cfg.jwt_alg_name, "RS256");
		if (strncmp(ok[i], "JWT_OIDC", 8) == 0)
			ck_assert_str_eq(cfg.jwt_issuer, "https://idp.example/realms/r");
		pw_config_free(&cfg);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("jwt_keys");
	TCase *tc = tcase_create("jwt_keys");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, kid_selects_the_key);
	tcase_add_test(tc, jwt_alg_limits_a_set);
	tcase_add_test(tc, eddsa_with_a_pem);
	tcase_add_test(tc, key_source_rules);
	tcase_add_test(tc, network_sources_accepted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
