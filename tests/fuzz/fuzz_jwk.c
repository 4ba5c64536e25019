/* libFuzzer target: JWK Set parsing (pw_jwk_set_parse).
 *
 * The input, as it is (not NUL-terminated, so a read past its end is an ASan report), is
 * parsed as a JWK Set and the answer checked against the contract in pw_jwk.h: PW_OK keeps
 * 1..PW_JWK_SET_MAX_KEYS keys, each with an OpenSSL key of its type, the thumbprint that key
 * gives, an alg that fits its type and a kid no other kept key has; a failure leaves the
 * caller's set as it was and says why; every array element that is not kept is reported
 * once through the skip callback. The input is parsed a second time with no callback and a
 * one-byte reason buffer: the same answer (the parse depends on nothing but the text).
 * Built and run by scripts/fuzz.sh. The seeds in tests/fuzz/seeds/jwk/ started as sets
 * written by `patientctl token --jwks-out` (an RSA 2048, a P-256 and an Ed25519 key), edited
 * with jq into the cases the parser must skip or refuse; a 1024-bit modulus came from
 * `openssl genpkey`. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "pw_jwk.h"
#include "pw_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the skip callback saw. */
typedef struct skips {
	size_t n;
} skips;

static void on_skip(void *ctx, const char *kid, const char *why)
{
	skips *s = ctx;

	/* The kid is the document's (or ""), bounded like a kept one; why is a sentence. */
	if (kid == NULL || why == NULL || why[0] == '\0' || strlen(kid) > PW_JWK_KID_MAX)
		abort();
	s->n++;
}

/* The number of elements of the document's "keys" array, parsed as the parser does;
 * 0 when there is none (then nothing may be reported as skipped). */
static size_t array_size(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *doc;
	size_t n;

	if (size > PW_JWK_SET_MAX_BYTES)
		return 0;
	doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	n = json_array_size(json_object_get(doc, "keys")); /* 0 for a non-array or NULL */
	json_decref(doc);
	return n;
}

static bool type_matches(const pw_jwk *k)
{
	switch (k->type) {
	case PW_JWK_RSA:
		return EVP_PKEY_is_a(k->pkey, "RSA");
	case PW_JWK_P256:
		return EVP_PKEY_is_a(k->pkey, "EC");
	case PW_JWK_ED25519:
		return EVP_PKEY_is_a(k->pkey, "ED25519");
	}
	return false;
}

/* Every promise pw_jwk.h makes about a set it returned. */
static void check_set(const pw_jwk_set *s)
{
	if (s->n == 0 || s->n > PW_JWK_SET_MAX_KEYS || s->keys == NULL)
		abort();
	for (size_t i = 0; i < s->n; i++) {
		const pw_jwk *k = &s->keys[i];
		char again[PW_JWK_THUMBPRINT_LEN + 1];

		if (k->pkey == NULL || !type_matches(k))
			abort();
		/* 43 characters of the base64url alphabet, the value the key itself gives. */
		if (strnlen(k->thumbprint, sizeof(k->thumbprint)) != PW_JWK_THUMBPRINT_LEN ||
		    !pw_util_b64url_alphabet(k->thumbprint, PW_JWK_THUMBPRINT_LEN) ||
		    pw_jwk_thumbprint(k->pkey, again, sizeof(again)) != PW_OK ||
		    strcmp(again, k->thumbprint) != 0)
			abort();
		if (k->alg[0] != '\0' && strcmp(k->alg, pw_jwk_type_alg(k->type)) != 0)
			abort();
		if (strnlen(k->kid, sizeof(k->kid)) > PW_JWK_KID_MAX ||
		    (!k->has_kid && k->kid[0] != '\0'))
			abort();
		/* A token naming a kid must find one key, never choose between two. */
		for (size_t j = 0; j < i; j++)
			if (k->has_kid && s->keys[j].has_kid && strcmp(k->kid, s->keys[j].kid) == 0)
				abort();
	}
}

/* The same answer as the first parse, which returned st and (on PW_OK) first. */
static void parse_again(const uint8_t *data, size_t size, pw_status st, const pw_jwk_set *first)
{
	pw_jwk_set s = {0};
	char why[1] = {'x'};
	pw_status again =
	    pw_jwk_set_parse((const char *)data, size, &s, NULL, NULL, why, sizeof(why));

	if (again != st)
		abort();
	if (st != PW_OK) {
		/* A one-byte buffer holds only the terminator: snprintf must have written it. */
		if (why[0] != '\0' || s.keys != NULL || s.n != 0)
			abort();
		return;
	}
	if (s.n != first->n)
		abort();
	for (size_t i = 0; i < s.n; i++)
		if (s.keys[i].type != first->keys[i].type ||
		    strcmp(s.keys[i].thumbprint, first->keys[i].thumbprint) != 0 ||
		    strcmp(s.keys[i].kid, first->keys[i].kid) != 0)
			abort();
	pw_jwk_set_clear(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A set the parse must leave alone on failure: a marker pointer that is never freed. */
	static pw_jwk marker;
	pw_jwk_set s = {.keys = &marker, .n = 0};
	skips sk = {0};
	char why[256];
	size_t elements = array_size(data, size);
	pw_status st;

	memset(why, 'x', sizeof(why));
	st = pw_jwk_set_parse((const char *)data, size, &s, on_skip, &sk, why, sizeof(why));
	if (st == PW_OK) {
		check_set(&s);
		/* Each element is kept or reported once: none vanishes silently. */
		if (s.n + sk.n != elements)
			abort();
	} else {
		/* Only PW_E_INVALID and PW_E_NOMEM are promised; the set is untouched and the
		 * reason a NUL-terminated sentence. */
		if ((st != PW_E_INVALID && st != PW_E_NOMEM) || s.keys != &marker || s.n != 0 ||
		    why[0] == '\0' || strnlen(why, sizeof(why)) == sizeof(why))
			abort();
		if (sk.n != elements)
			abort();
		s.keys = NULL; /* the marker is not the parser's to free */
	}
	parse_again(data, size, st, &s);
	pw_jwk_set_clear(&s);
	/* A cleared set and NULL are fine, again and again. */
	pw_jwk_set_clear(&s);
	pw_jwk_set_clear(NULL);
	if (s.keys != NULL || s.n != 0)
		abort();
	/* The parser leaves OpenSSL's per-thread error queue empty (libpq and librdkafka
	 * share it in the worker). */
	if (ERR_peek_error() != 0)
		abort();
	return 0;
}
