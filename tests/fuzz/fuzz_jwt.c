/* libFuzzer target: token verification (HS256, small cache) and base64url decoding.
 *
 * The input is verified as a token string as it is, at the command time and again an
 * hour and a half later (the second call is a cache hit when the first succeeded, so the
 * time claims are judged again from the cache). A random signature never verifies, so
 * the input's first two segments are also signed here with the fixed key and that token
 * verified too: mutations of a seed's header and claims then reach every claim check and
 * fill, hit and evict the 8-entry cache. Built and run by scripts/fuzz.sh; the seeds in
 * tests/fuzz/seeds/jwt/ are signed with FUZZ_JWT_SECRET and valid at FUZZ_NOW. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "pw_config.h"
#include "pw_jwt.h"
#include "pw_util.h"

#define FUZZ_NOW        INT64_C(1767225600) /* 2026-01-01T00:00:00Z */
#define FUZZ_LATER      (FUZZ_NOW + 5400)
#define FUZZ_JWT_SECRET "patient-worker-fuzz-secret-0123456789"
#define FUZZ_CACHE_SIZE 8

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pw_config cfg;
static pw_jwt_verifier *verifier;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char secret[] = FUZZ_JWT_SECRET;
	static char issuer[] = "fuzz-issuer";
	static char audience[] = "patient-worker";
	static char owner_claim[] = "sub";

	cfg.jwt_alg = PW_ALG_HS256;
	cfg.jwt_key = (unsigned char *)secret;
	cfg.jwt_key_len = sizeof(secret) - 1;
	cfg.jwt_leeway_s = 30;
	cfg.jwt_owner_claim = owner_claim;
	cfg.jwt_issuer = issuer;
	cfg.jwt_audience = audience;
	cfg.jwt_cache_size = FUZZ_CACHE_SIZE;
	if (pw_jwt_verifier_create(&cfg, &verifier) != PW_OK) {
		fprintf(stderr, "fuzz_jwt: cannot create the verifier\n");
		abort();
	}
	return 0;
}

/* Verifies and checks what the contract promises about the answer. */
static void verify(const char *token, int64_t now_s)
{
	pw_jwt_claims claims;
	char why[256];
	size_t entries = 0;
	pw_status st = pw_jwt_verify(verifier, token, now_s, &claims, why, sizeof(why));

	if (st == PW_OK) {
		size_t n = strnlen(claims.owner, sizeof(claims.owner));
		if (n == 0 || n > PW_JWT_OWNER_MAX || why[0] != '\0')
			abort();
	} else if (st != PW_E_AUTH || why[0] == '\0' || claims.owner[0] != '\0') {
		abort();
	}
	pw_jwt_cache_stats(verifier, NULL, NULL, &entries);
	if (entries > FUZZ_CACHE_SIZE)
		abort();
}

/* "<first two segments>.<their HS256 signature with the fixed key>", or NULL. */
static char *resign(const char *token)
{
	const char *dot1 = strchr(token, '.');
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	size_t input_len = dot2 ? (size_t)(dot2 - token) : strlen(token);
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t mac_len = 0;
	char *out;

	if (dot1 == NULL)
		return NULL;
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, FUZZ_JWT_SECRET,
	              sizeof(FUZZ_JWT_SECRET) - 1, (const unsigned char *)token, input_len, mac,
	              sizeof(mac), &mac_len) == NULL)
		abort();
	size_t sig_size = pw_util_b64url_encoded_len(mac_len) + 1;
	out = malloc(input_len + 1 + sig_size);
	if (out == NULL)
		abort();
	memcpy(out, token, input_len);
	out[input_len] = '.';
	if (pw_util_b64url_encode(mac, mac_len, out + input_len + 1, sig_size) != PW_OK)
		abort();
	return out;
}

static void decode(const char *in, size_t len, size_t out_size)
{
	unsigned char *out = malloc(out_size ? out_size : 1);
	size_t n = 0;

	if (out == NULL)
		abort();
	if (pw_util_b64url_decode(in, len, out, out_size, &n) == PW_OK &&
	    (n >= out_size || out[n] != '\0' || n > len * 3 / 4))
		abort();
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *token = malloc(size + 1);
	char *signed_token;

	if (token == NULL)
		return 0;
	memcpy(token, data, size);
	token[size] = '\0';

	verify(token, FUZZ_NOW);
	verify(token, FUZZ_LATER);
	signed_token = resign(token);
	if (signed_token != NULL) {
		verify(signed_token, FUZZ_NOW);
		verify(signed_token, FUZZ_LATER);
		free(signed_token);
	}

	/* The decoder on the raw bytes (NULs included), with room, with little and with none. */
	decode((const char *)data, size, size * 3 / 4 + 2);
	decode((const char *)data, size, 8);
	decode((const char *)data, size, 0);
	free(token);
	return 0;
}
