/* jwt_bench: token verifications per second on one core, printed one per line ("name value").
 * Not a test: it asserts nothing, it measures.
 *
 *   jwt_bench [--fixtures DIR] [--tokens N] [--seconds S]
 *
 * For HS256, RS256 and ES256 (keys from the test fixtures, default tests/fixtures):
 *   jwt_<alg>_cold_per_s     N distinct tokens, no cache: header, signature, claims each time
 *   jwt_<alg>_cached_per_s   the same tokens again, all in the verifier's cache
 * and, for comparison, jwt_<alg>_libjwt_per_s: libjwt 1.10 jwt_decode with the PEM text,
 * parsed again for every token (what pw_jwt did before it parsed the key once).
 *
 * Then, for RS256, ES256 and EdDSA, a key set against a static key (issue 12): keys made
 * here, N tokens naming their kid, all signed by one key that is both the static key
 * (JWT_PUBLIC_KEY_FILE, a PEM) and one of a JWK Set of ten keys of that type
 * (JWT_JWKS_FILE). The same tokens go through both verifiers:
 *   jwt_<alg>_static_per_s, jwt_<alg>_jwks10_per_s                 no cache
 *   jwt_<alg>_static_cached_per_s, jwt_<alg>_jwks10_cached_per_s   all in the cache
 *   jwt_<alg>_jwks10_to_static, jwt_<alg>_jwks10_cached_to_static  the ratios
 * The two are measured in turns, ROUNDS times each, and the best of each is printed, so a
 * burst of load from another process on a shared machine tilts neither side. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ctl_token.h"
#include "pw_config.h"
#include "pw_jwt.h"
#include "pw_util.h"

/* Keys in the set of the key-set figures, and turns each side of a comparison gets. */
#define SET_KEYS 10
#define ROUNDS   3

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned char *read_file(const char *dir, const char *name, size_t *len)
{
	char path[1024];
	FILE *f;
	unsigned char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0) {
		fprintf(stderr, "jwt_bench: cannot read %s\n", path);
		exit(2);
	}
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "jwt_bench: cannot read %s\n", path);
		exit(2);
	}
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* n distinct tokens (sub differs) signed by libjwt, exp an hour after exp_base. */
static char **make_tokens(jwt_alg_t alg, const unsigned char *key, size_t key_len, int n,
                          long long exp_base)
{
	char **toks = calloc((size_t)n, sizeof(*toks));

	if (toks == NULL)
		exit(2);
	for (int i = 0; i < n; i++) {
		jwt_t *jwt = NULL;
		char sub[64];
		snprintf(sub, sizeof(sub), "user%d@example.com", i);
		if (jwt_new(&jwt) != 0 || jwt_add_grant(jwt, "sub", sub) != 0 ||
		    jwt_add_grant_int(jwt, "exp", exp_base + 3600) != 0 ||
		    jwt_add_grant(jwt, "scope", "patients:read patients:write") != 0 ||
		    jwt_set_alg(jwt, alg, key, (int)key_len) != 0 ||
		    (toks[i] = jwt_encode_str(jwt)) == NULL) {
			fprintf(stderr, "jwt_bench: libjwt cannot sign\n");
			exit(2);
		}
		jwt_free(jwt);
	}
	return toks;
}

/* Verifications per second over the tokens, round and round, for at least secs seconds. */
static double rate(pw_jwt_verifier *v, char **toks, int n, int64_t at, double secs)
{
	long count = 0;
	double t0 = now_s(), t;

	do {
		for (int i = 0; i < n; i++) {
			pw_jwt_claims cl;
			char why[128];
			if (pw_jwt_verify(v, toks[i], at, &cl, why, sizeof(why)) != PW_OK) {
				fprintf(stderr, "jwt_bench: token refused: %s\n", why);
				exit(1);
			}
		}
		count += n;
		t = now_s() - t0;
	} while (t < secs);
	return (double)count / t;
}

static double libjwt_rate(char **toks, int n, const unsigned char *key, size_t key_len, double secs)
{
	long count = 0;
	double t0 = now_s(), t;

	do {
		for (int i = 0; i < n; i++) {
			jwt_t *jwt = NULL;
			if (jwt_decode(&jwt, toks[i], key, (int)key_len) != 0) {
				fprintf(stderr, "jwt_bench: libjwt refused a token\n");
				exit(1);
			}
			jwt_free(jwt);
		}
		count += n;
		t = now_s() - t0;
	} while (t < secs);
	return (double)count / t;
}

/* Verifies every token once, untimed, so that each is in the verifier's cache. */
static void fill_cache(pw_jwt_verifier *v, char **toks, int n, int64_t at)
{
	for (int i = 0; i < n; i++) {
		pw_jwt_claims cl;
		char why[128];
		if (pw_jwt_verify(v, toks[i], at, &cl, why, sizeof(why)) != PW_OK) {
			fprintf(stderr, "jwt_bench: token refused: %s\n", why);
			exit(1);
		}
	}
}

/* ---- a key set against a static key ------------------------------------------------------ */

/* Every failure below is a broken environment (OpenSSL, memory), not a figure: stop. */
static void die(const char *what)
{
	fprintf(stderr, "jwt_bench: %s\n", what);
	exit(2);
}

static const char *alg_text(pw_config_jwt_alg alg)
{
	return alg == PW_ALG_RS256 ? "RS256" : alg == PW_ALG_ES256 ? "ES256" : "EdDSA";
}

/* A new key of the type alg verifies: RSA 2048, EC P-256, Ed25519. */
static EVP_PKEY *new_key(pw_config_jwt_alg alg)
{
	EVP_PKEY *k = alg == PW_ALG_RS256   ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
	              : alg == PW_ALG_ES256 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
	                                    : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

	if (k == NULL)
		die("cannot make a key");
	return k;
}

/* base64url of n bytes into a new string (the caller frees). */
static char *b64url(const unsigned char *in, size_t n)
{
	size_t size = pw_util_b64url_encoded_len(n) + 1;
	char *out = malloc(size);

	if (out == NULL || pw_util_b64url_encode(in, n, out, size) != PW_OK)
		die("cannot encode base64url");
	return out;
}

/* Sets a JWK member to a BIGNUM parameter of k: minimal big-endian, or pad bytes. */
static void set_bn_member(json_t *jwk, const char *member, const EVP_PKEY *k, const char *param,
                          int pad)
{
	BIGNUM *bn = NULL;
	unsigned char buf[512]; /* RSA 2048: 256 bytes */
	int n;
	char *text;

	if (EVP_PKEY_get_bn_param(k, param, &bn) != 1)
		die("cannot read a key parameter");
	n = pad > 0 ? BN_bn2binpad(bn, buf, pad)
	            : (BN_num_bytes(bn) <= (int)sizeof(buf) ? BN_bn2bin(bn, buf) : -1);
	BN_free(bn);
	if (n <= 0)
		die("cannot write a key parameter");
	text = b64url(buf, (size_t)n);
	if (json_object_set_new(jwk, member, json_string(text)) != 0)
		die("out of memory");
	free(text);
}

/* The public JWK of k, with kid, alg and use, as a provider publishes it. */
static json_t *public_jwk(const EVP_PKEY *k, pw_config_jwt_alg alg, const char *kid)
{
	json_t *jwk = json_pack("{s:s, s:s, s:s}", "kid", kid, "alg", alg_text(alg), "use", "sig");

	if (jwk == NULL)
		die("out of memory");
	if (alg == PW_ALG_RS256) {
		if (json_object_set_new(jwk, "kty", json_string("RSA")) != 0)
			die("out of memory");
		set_bn_member(jwk, "n", k, OSSL_PKEY_PARAM_RSA_N, 0);
		set_bn_member(jwk, "e", k, OSSL_PKEY_PARAM_RSA_E, 0);
	} else if (alg == PW_ALG_ES256) {
		if (json_object_set_new(jwk, "kty", json_string("EC")) != 0 ||
		    json_object_set_new(jwk, "crv", json_string("P-256")) != 0)
			die("out of memory");
		/* RFC 7518 6.2.1.2: coordinates are the full 32 bytes, leading zeros kept. */
		set_bn_member(jwk, "x", k, OSSL_PKEY_PARAM_EC_PUB_X, 32);
		set_bn_member(jwk, "y", k, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
	} else {
		unsigned char raw[32];
		size_t n = sizeof(raw);
		char *x;
		if (EVP_PKEY_get_raw_public_key(k, raw, &n) != 1 || n != sizeof(raw))
			die("cannot read an Ed25519 key");
		x = b64url(raw, n);
		if (json_object_set_new(jwk, "kty", json_string("OKP")) != 0 ||
		    json_object_set_new(jwk, "crv", json_string("Ed25519")) != 0 ||
		    json_object_set_new(jwk, "x", json_string(x)) != 0)
			die("out of memory");
		free(x);
	}
	return jwk;
}

/* The PEM text of k's public key (SubjectPublicKeyInfo, what JWT_PUBLIC_KEY_FILE holds),
 * NUL-terminated as pw_config_load leaves it; the caller frees. */
static unsigned char *public_pem(EVP_PKEY *k, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	unsigned char *out;

	if (bio == NULL || PEM_write_bio_PUBKEY(bio, k) != 1 ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0)
		die("cannot write a PEM");
	out = malloc((size_t)n + 1);
	if (out == NULL)
		die("out of memory");
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	BIO_free(bio);
	return out;
}

/* n distinct tokens (sub differs) naming kid, signed by alg with key, exp an hour after
 * exp_base: the same claims as make_tokens. */
static char **kid_tokens(pw_config_jwt_alg alg, EVP_PKEY *key, const char *kid, int n,
                         long long exp_base)
{
	char **toks = calloc((size_t)n, sizeof(*toks));
	char claims[192], err[256];
	ctl_jwk_alg jalg;

	if (toks == NULL)
		die("out of memory");
	for (int i = 0; i < n; i++) {
		if (snprintf(claims, sizeof(claims),
		             "{\"sub\":\"user%d@example.com\",\"exp\":%lld,"
		             "\"scope\":\"patients:read patients:write\"}",
		             i, exp_base + 3600) >= (int)sizeof(claims))
			die("claims too long");
		if (ctl_jwk_alg_parse(alg_text(alg), &jalg) != PW_OK ||
		    (toks[i] = ctl_token_jws(key, jalg, kid, claims, err, sizeof(err))) == NULL)
			die("cannot sign");
	}
	return toks;
}

/* The best of ROUNDS turns each of a and b, alternating, into *ra and *rb. */
static void best_of_turns(pw_jwt_verifier *a, pw_jwt_verifier *b, char **toks, int n, int64_t at,
                          double secs, double *ra, double *rb)
{
	*ra = *rb = 0;
	for (int r = 0; r < ROUNDS; r++) {
		double x = rate(a, toks, n, at, secs), y = rate(b, toks, n, at, secs);
		*ra = x > *ra ? x : *ra;
		*rb = y > *rb ? y : *rb;
	}
}

/* Prints the key-set figures of one algorithm (see the top of the file). */
static void key_set_figures(pw_config_jwt_alg alg, const char *name, int ntok, long long wall,
                            double secs)
{
	EVP_PKEY *keys[SET_KEYS];
	json_t *set = json_array();
	char kid[64], *set_text;
	unsigned char *pem;
	size_t pem_len;
	pw_config pem_cfg, set_cfg;
	pw_jwt_verifier *v[4] = {NULL, NULL, NULL, NULL}; /* static, set; cold, cached */
	double rs, rj, rsc, rjc;

	if (set == NULL)
		die("out of memory");
	for (int i = 0; i < SET_KEYS; i++) {
		keys[i] = new_key(alg);
		snprintf(kid, sizeof(kid), "bench-%s-%d", name, i);
		if (json_array_append_new(set, public_jwk(keys[i], alg, kid)) != 0)
			die("out of memory");
	}
	json_t *doc = json_pack("{s:o}", "keys", set); /* takes set, even on failure */
	set_text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (set_text == NULL)
		die("cannot write the key set");
	/* The tokens name the last key: every kid of the set is compared on the way to it. */
	snprintf(kid, sizeof(kid), "bench-%s-%d", name, SET_KEYS - 1);
	char **toks = kid_tokens(alg, keys[SET_KEYS - 1], kid, ntok, wall);
	pem = public_pem(keys[SET_KEYS - 1], &pem_len);

	/* As pw_config_load leaves them: JWT_PUBLIC_KEY_FILE pins the one algorithm;
	 * JWT_JWKS_FILE with JWT_ALG=<alg> lists it in jwt_algs (jwt_alg the first listed). */
	memset(&pem_cfg, 0, sizeof(pem_cfg));
	pem_cfg.jwt_leeway_s = 30;
	pem_cfg.jwt_owner_claim = (char *)"sub";
	pem_cfg.jwt_alg = alg;
	pem_cfg.jwt_algs = PW_ALG_BIT(alg);
	set_cfg = pem_cfg;
	pem_cfg.jwt_source = PW_KEYS_PEM;
	pem_cfg.jwt_key = pem;
	pem_cfg.jwt_key_len = pem_len;
	set_cfg.jwt_source = PW_KEYS_JWKS_FILE;
	set_cfg.jwt_key = (unsigned char *)set_text;
	set_cfg.jwt_key_len = strlen(set_text);
	/* The verifiers keep a pointer to their configuration: these live until the end. */
	pw_config pem_cached = pem_cfg, set_cached = set_cfg;
	pem_cached.jwt_cache_size = set_cached.jwt_cache_size = ntok;
	if (pw_jwt_verifier_create(&pem_cfg, &v[0]) != PW_OK ||
	    pw_jwt_verifier_create(&set_cfg, &v[1]) != PW_OK ||
	    pw_jwt_verifier_create(&pem_cached, &v[2]) != PW_OK ||
	    pw_jwt_verifier_create(&set_cached, &v[3]) != PW_OK) {
		fprintf(stderr, "jwt_bench: cannot make the %s verifiers\n", name);
		exit(2);
	}

	best_of_turns(v[0], v[1], toks, ntok, wall, secs, &rs, &rj);
	printf("jwt_%s_static_per_s %.0f\njwt_%s_jwks10_per_s %.0f\njwt_%s_jwks10_to_static %.3f\n",
	       name, rs, name, rj, name, rj / rs);
	fill_cache(v[2], toks, ntok, wall);
	fill_cache(v[3], toks, ntok, wall);
	best_of_turns(v[2], v[3], toks, ntok, wall, secs, &rsc, &rjc);
	printf("jwt_%s_static_cached_per_s %.0f\njwt_%s_jwks10_cached_per_s %.0f\n"
	       "jwt_%s_jwks10_cached_to_static %.3f\n",
	       name, rsc, name, rjc, name, rjc / rsc);
	fflush(stdout);

	for (int i = 0; i < 4; i++)
		pw_jwt_verifier_destroy(v[i]);
	for (int i = 0; i < ntok; i++)
		free(toks[i]);
	free(toks);
	for (int i = 0; i < SET_KEYS; i++)
		EVP_PKEY_free(keys[i]);
	free(pem);
	free(set_text);
}

int main(int argc, char **argv)
{
	const char *fixtures = "tests/fixtures";
	int ntok = 1000;
	double secs = 1.0;
	static const struct {
		const char *name;
		pw_config_jwt_alg cfg_alg;
		jwt_alg_t alg;
		const char *sign_key; /**< fixture; NULL: the HS256 secret */
		const char *verify_key;
	} algs[] = {
	    {"hs256", PW_ALG_HS256, JWT_ALG_HS256, NULL, NULL},
	    {"rs256", PW_ALG_RS256, JWT_ALG_RS256, "rsa_private.pem", "rsa_public.pem"},
	    {"es256", PW_ALG_ES256, JWT_ALG_ES256, "ec_private.pem", "ec_public.pem"},
	};
	static const char secret[] = "0123456789abcdef0123456789abcdef-bench-secret";

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--fixtures") == 0 && a + 1 < argc)
			fixtures = argv[++a];
		else if (strcmp(argv[a], "--tokens") == 0 && a + 1 < argc)
			ntok = atoi(argv[++a]);
		else if (strcmp(argv[a], "--seconds") == 0 && a + 1 < argc)
			secs = atof(argv[++a]);
		else {
			fprintf(stderr,
			        "usage: jwt_bench [--fixtures DIR] [--tokens N] [--seconds S]\n");
			return 2;
		}
	}
	if (ntok <= 0 || secs <= 0) {
		fprintf(stderr, "jwt_bench: --tokens and --seconds must be positive\n");
		return 2;
	}
	long long wall = (long long)time(NULL);

	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		unsigned char *skey, *vkey;
		size_t skey_len, vkey_len;
		pw_config cold, cached;
		pw_jwt_verifier *vc = NULL, *vh = NULL;

		if (algs[i].sign_key == NULL) {
			skey = (unsigned char *)strdup(secret);
			vkey = (unsigned char *)strdup(secret);
			skey_len = vkey_len = strlen(secret);
		} else {
			skey = read_file(fixtures, algs[i].sign_key, &skey_len);
			vkey = read_file(fixtures, algs[i].verify_key, &vkey_len);
		}
		char **toks = make_tokens(algs[i].alg, skey, skey_len, ntok, wall);

		memset(&cold, 0, sizeof(cold));
		/* As pw_config_load leaves them: JWT_SECRET or JWT_PUBLIC_KEY_FILE, one alg. */
		cold.jwt_source = algs[i].sign_key == NULL ? PW_KEYS_SECRET : PW_KEYS_PEM;
		cold.jwt_alg = algs[i].cfg_alg;
		cold.jwt_algs = PW_ALG_BIT(algs[i].cfg_alg);
		cold.jwt_leeway_s = 30;
		cold.jwt_owner_claim = (char *)"sub";
		cold.jwt_key = vkey;
		cold.jwt_key_len = vkey_len;
		cached = cold;
		cached.jwt_cache_size = ntok;
		if (pw_jwt_verifier_create(&cold, &vc) != PW_OK ||
		    pw_jwt_verifier_create(&cached, &vh) != PW_OK) {
			fprintf(stderr, "jwt_bench: cannot make a %s verifier\n", algs[i].name);
			return 2;
		}
		printf("jwt_%s_cold_per_s %.0f\n", algs[i].name, rate(vc, toks, ntok, wall, secs));
		fill_cache(vh, toks, ntok, wall);
		printf("jwt_%s_cached_per_s %.0f\n", algs[i].name,
		       rate(vh, toks, ntok, wall, secs));
		printf("jwt_%s_libjwt_per_s %.0f\n", algs[i].name,
		       libjwt_rate(toks, ntok, vkey, vkey_len, secs));
		fflush(stdout);
		pw_jwt_verifier_destroy(vc);
		pw_jwt_verifier_destroy(vh);
		for (int k = 0; k < ntok; k++)
			free(toks[k]);
		free(toks);
		free(skey);
		free(vkey);
	}
	key_set_figures(PW_ALG_RS256, "rs256", ntok, wall, secs);
	key_set_figures(PW_ALG_ES256, "es256", ntok, wall, secs);
	key_set_figures(PW_ALG_EDDSA, "eddsa", ntok, wall, secs);
	return 0;
}
