/* jwt_bench: token verifications per second on one core, printed one per line ("name value").
 * Not a test: it asserts nothing, it measures.
 *
 *   jwt_bench [--fixtures DIR] [--tokens N] [--seconds S]
 *
 * For HS256, RS256 and ES256 (keys from the test fixtures, default tests/fixtures):
 *   jwt_<alg>_cold_per_s     N distinct tokens, no cache: header, signature, claims each time
 *   jwt_<alg>_cached_per_s   the same tokens again, all in the verifier's cache
 * and, for comparison, jwt_<alg>_libjwt_per_s: libjwt 1.10 jwt_decode with the PEM text,
 * parsed again for every token (what pw_jwt did before it parsed the key once). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jwt.h>

#include "pw_config.h"
#include "pw_jwt.h"

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
		cold.jwt_alg = algs[i].cfg_alg;
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
		for (int k = 0; k < ntok; k++) { /* fill the cache, untimed */
			pw_jwt_claims cl;
			char why[128];
			if (pw_jwt_verify(vh, toks[k], wall, &cl, why, sizeof(why)) != PW_OK)
				return 1;
		}
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
	return 0;
}
