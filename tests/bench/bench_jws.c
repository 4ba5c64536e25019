/* Signing for the benchmarks: header and claims in base64url, the signature over them. */
#include "bench_jws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>

#include "pw_util.h"

/* base64url of n bytes into a new string; NULL when out of memory. */
static char *b64url(const void *in, size_t n)
{
	size_t size = pw_util_b64url_encoded_len(n) + 1;
	char *out = malloc(size);

	if (out != NULL && pw_util_b64url_encode(in, n, out, size) != PW_OK) {
		free(out);
		out = NULL;
	}
	return out;
}

/* The signature of input into sig (room for RSA 2048): its length, 0 on failure. Ed25519
 * hashes the message itself (no digest named); ES256 goes from DER to R || S. */
static size_t sign(const char *alg, EVP_PKEY *key, const char *input, unsigned char *sig,
                   size_t sig_size)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t n = sig_size;
	int ok = md != NULL &&
	         EVP_DigestSignInit(md, NULL, strcmp(alg, "EdDSA") == 0 ? NULL : EVP_sha256(), NULL,
	                            key) == 1 &&
	         EVP_DigestSign(md, sig, &n, (const unsigned char *)input, strlen(input)) == 1;

	EVP_MD_CTX_free(md);
	if (ok && strcmp(alg, "ES256") == 0) {
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
		ok = es != NULL && BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) == 32 &&
		     BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) == 32;
		ECDSA_SIG_free(es);
		n = 64;
	}
	return ok ? n : 0;
}

char *bench_jws(const char *alg, const char *kid, EVP_PKEY *key, const char *claims)
{
	json_t *h = NULL;
	char *hs = NULL, *h64 = NULL, *c64 = NULL, *s64 = NULL, *input = NULL, *tok = NULL;
	unsigned char sig[512];
	size_t n, len;

	if (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0 && strcmp(alg, "EdDSA") != 0)
		return NULL;
	h = json_pack("{s:s, s:s}", "alg", alg, "typ", "JWT");
	if (h == NULL || (kid != NULL && json_object_set_new(h, "kid", json_string(kid)) != 0) ||
	    (hs = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL ||
	    (h64 = b64url(hs, strlen(hs))) == NULL ||
	    (c64 = b64url(claims, strlen(claims))) == NULL)
		goto out;
	len = strlen(h64) + 1 + strlen(c64);
	if ((input = malloc(len + 1)) == NULL)
		goto out;
	snprintf(input, len + 1, "%s.%s", h64, c64);
	if ((n = sign(alg, key, input, sig, sizeof(sig))) == 0 || (s64 = b64url(sig, n)) == NULL)
		goto out;
	if ((tok = malloc(len + 1 + strlen(s64) + 1)) != NULL)
		snprintf(tok, len + 1 + strlen(s64) + 1, "%s.%s", input, s64);
out:
	json_decref(h);
	free(hs);
	free(h64);
	free(c64);
	free(s64);
	free(input);
	return tok;
}
