/* Unit tests of pw_jwt: tokens made here with libjwt (and by hand, for the ones libjwt
 * will not make), verified against hand-built configurations. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "pw_check_main.h"
#include "pw_config.h"
#include "pw_jwt.h"
#include "pw_status.h"
#include "pw_util.h"

#ifndef PW_FIXTURES_DIR
#define PW_FIXTURES_DIR "tests/fixtures"
#endif

/* The command's time: 2017-07-14. It lies in the past of the wall clock, so a verifier that
 * judged exp against time(NULL) instead of now_s would refuse every "valid" token here. */
#define NOW    INT64_C(1500000000)
#define SECRET "0123456789abcdef0123456789abcdef-hs256-test-secret"
#define OTHER  "fedcba9876543210fedcba9876543210-other-test-secret"
#define OWNER  "alice@example.com"
#define ISSUER "https://issuer.example"
#define AUD    "patients-api"

/* ---- fixtures and token making ---------------------------------------------------------- */

static unsigned char *read_fixture(const char *name, size_t *len)
{
	const char *dir = getenv("PW_FIXTURES");
	char path[1024];
	FILE *f;
	unsigned char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : PW_FIXTURES_DIR, name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open fixture %s", path);
	ck_assert(fseek(f, 0, SEEK_END) == 0);
	n = ftell(f);
	ck_assert(n > 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static char *b64url(const unsigned char *in, size_t len)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(len * 4 / 3 + 4);
	size_t o = 0, i;

	ck_assert_ptr_nonnull(out);
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
		out[o++] = abc[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
	}
	out[o] = '\0';
	return out;
}

static char *b64url_str(const char *s)
{
	return b64url((const unsigned char *)s, strlen(s));
}

/* A token assembled by hand: base64url(header).base64url(payload).HMAC-SHA256 under key. */
static char *hand_token(const char *header, const char *payload, const char *key)
{
	char *h = b64url_str(header), *p = b64url_str(payload), *sig = NULL, *tok;
	size_t n = strlen(h) + strlen(p) + 2;
	char *input = malloc(n);

	ck_assert_ptr_nonnull(input);
	snprintf(input, n, "%s.%s", h, p);
	if (key != NULL) {
		unsigned char mac[EVP_MAX_MD_SIZE];
		unsigned int mac_len = 0;
		ck_assert_ptr_nonnull(HMAC(EVP_sha256(), key, (int)strlen(key),
		                           (const unsigned char *)input, strlen(input), mac,
		                           &mac_len));
		sig = b64url(mac, mac_len);
	}
	n += (sig ? strlen(sig) : 0) + 1;
	tok = malloc(n);
	ck_assert_ptr_nonnull(tok);
	snprintf(tok, n, "%s.%s", input, sig ? sig : "");
	free(h);
	free(p);
	free(sig);
	free(input);
	return tok;
}

/* A token made by libjwt: claims is a JSON object text, extra_headers NULL or one. */
static char *lib_token(jwt_alg_t alg, const unsigned char *key, size_t key_len, const char *claims,
                       const char *extra_headers)
{
	jwt_t *jwt = NULL;
	char *tok;

	ck_assert_int_eq(jwt_new(&jwt), 0);
	ck_assert_msg(jwt_add_grants_json(jwt, claims) == 0, "libjwt refused claims %s", claims);
	if (extra_headers)
		ck_assert_int_eq(jwt_add_headers_json(jwt, extra_headers), 0);
	ck_assert_int_eq(jwt_set_alg(jwt, alg, key, (int)key_len), 0);
	tok = jwt_encode_str(jwt);
	ck_assert_msg(tok != NULL, "libjwt could not encode (alg %d)", alg);
	jwt_free(jwt);
	return tok;
}

/* ---- configurations -------------------------------------------------------------------- */

typedef enum cfg_kind {
	CFG_HS = 0,     /**< HS256, leeway 30, owner claim sub */
	CFG_RS,         /**< RS256 with rsa_public.pem */
	CFG_ES,         /**< ES256 with ec_public.pem */
	CFG_HS_ISSAUD,  /**< HS256 with JWT_ISSUER and JWT_AUDIENCE */
	CFG_HS_EMAIL,   /**< HS256 with JWT_OWNER_CLAIM=email */
	CFG_HS_LEEWAY0, /**< HS256 with JWT_LEEWAY_S=0 */
	CFG_COUNT,
} cfg_kind;

static pw_config cfgs[CFG_COUNT];
static pw_jwt_verifier *verifiers[CFG_COUNT];
/* The same configurations with a cache of CACHED_SIZE tokens: every table row is verified
 * uncached, then twice cached, and the three answers must agree. */
#define CACHED_SIZE 64
static pw_config cfgs_cached[CFG_COUNT];
static pw_jwt_verifier *verifiers_cached[CFG_COUNT];

static void make_cfg(pw_config *c, pw_config_jwt_alg alg, const char *alg_name,
                     const char *key_file)
{
	memset(c, 0, sizeof(*c));
	c->jwt_alg = alg;
	c->jwt_alg_name = strdup(alg_name);
	c->jwt_leeway_s = 30;
	c->jwt_owner_claim = strdup("sub");
	c->topic_replies = strdup("patients.replies");
	if (key_file == NULL) {
		c->jwt_secret = strdup(SECRET);
		c->jwt_key = (unsigned char *)strdup(SECRET);
		c->jwt_key_len = strlen(SECRET);
	} else {
		c->jwt_public_key_file = strdup(key_file);
		c->jwt_key = read_fixture(key_file, &c->jwt_key_len);
	}
}

static void setup_verifiers(void)
{
	make_cfg(&cfgs[CFG_HS], PW_ALG_HS256, "HS256", NULL);
	make_cfg(&cfgs[CFG_RS], PW_ALG_RS256, "RS256", "rsa_public.pem");
	make_cfg(&cfgs[CFG_ES], PW_ALG_ES256, "ES256", "ec_public.pem");
	make_cfg(&cfgs[CFG_HS_ISSAUD], PW_ALG_HS256, "HS256", NULL);
	cfgs[CFG_HS_ISSAUD].jwt_issuer = strdup(ISSUER);
	cfgs[CFG_HS_ISSAUD].jwt_audience = strdup(AUD);
	make_cfg(&cfgs[CFG_HS_EMAIL], PW_ALG_HS256, "HS256", NULL);
	free(cfgs[CFG_HS_EMAIL].jwt_owner_claim);
	cfgs[CFG_HS_EMAIL].jwt_owner_claim = strdup("email");
	make_cfg(&cfgs[CFG_HS_LEEWAY0], PW_ALG_HS256, "HS256", NULL);
	cfgs[CFG_HS_LEEWAY0].jwt_leeway_s = 0;
	for (int i = 0; i < CFG_COUNT; i++) {
		verifiers[i] = NULL;
		ck_assert_msg(pw_jwt_verifier_create(&cfgs[i], &verifiers[i]) == PW_OK,
		              "verifier %d not created", i);
		ck_assert_ptr_nonnull(verifiers[i]);
		cfgs_cached[i] = cfgs[i]; /* shares the strings of cfgs[i]: freed once, there */
		cfgs_cached[i].jwt_cache_size = CACHED_SIZE;
		verifiers_cached[i] = NULL;
		ck_assert_msg(pw_jwt_verifier_create(&cfgs_cached[i], &verifiers_cached[i]) ==
		                  PW_OK,
		              "cached verifier %d not created", i);
	}
}

static void teardown_verifiers(void)
{
	for (int i = 0; i < CFG_COUNT; i++) {
		pw_jwt_verifier_destroy(verifiers[i]);
		pw_jwt_verifier_destroy(verifiers_cached[i]);
		pw_config_free(&cfgs[i]);
	}
}

/* The reason must be there and must not quote the token or any long piece of it. */
static void check_why(const char *name, const char *why, const char *token)
{
	ck_assert_msg(why[0] != '\0', "case '%s': refused without a reason", name);
	if (token[0] != '\0')
		ck_assert_msg(strstr(why, token) == NULL, "case '%s': why quotes the token", name);
	const char *seg = token;
	while (seg && *seg) {
		const char *dot = strchr(seg, '.');
		size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
		if (n >= 12) {
			char piece[13];
			memcpy(piece, seg + n / 2 - 6, 12); /* 12 bytes from the segment's middle */
			piece[12] = '\0';
			ck_assert_msg(strstr(why, piece) == NULL,
			              "case '%s': why '%s' quotes part of the token", name, why);
		}
		seg = dot ? dot + 1 : NULL;
	}
}

/* ---- table of signed tokens ------------------------------------------------------------ */

typedef enum signer {
	SIGN_SECRET = 0, /**< HS256 with SECRET */
	SIGN_OTHER,      /**< HS256 with another secret */
	SIGN_RSA,        /**< RS256 with rsa_private.pem */
	SIGN_RSA2,       /**< RS256 with the other RSA key */
	SIGN_EC,         /**< ES256 with ec_private.pem */
	SIGN_HS_RSA_PUB, /**< HS256 with the text of rsa_public.pem as the HMAC secret */
	SIGN_HS_EC_PUB,  /**< HS256 with the text of ec_public.pem as the HMAC secret */
	SIGN_HS512,      /**< HS512 with SECRET */
	SIGN_RS512,      /**< RS512 with rsa_private.pem */
	SIGN_NONE,       /**< alg none, made by libjwt */
	SIGN_EC2,        /**< ES256 with a P-256 key made for the test: the wrong EC key */
} signer;

/* A key made here, as PEM text: type "EC" with a curve name, "RSA", "RSA-PSS", "ED25519". */
static char *gen_key_pem(const char *type, const char *curve, int public_only, size_t *len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *pem;
	long n;

	ck_assert_ptr_nonnull(ctx);
	ck_assert_ptr_nonnull(bio);
	ck_assert_int_eq(EVP_PKEY_keygen_init(ctx), 1);
	if (curve != NULL)
		ck_assert_int_eq(EVP_PKEY_CTX_set_group_name(ctx, curve), 1);
	ck_assert_msg(EVP_PKEY_generate(ctx, &pkey) == 1, "cannot make a %s key", type);
	if (public_only)
		ck_assert_int_eq(PEM_write_bio_PUBKEY(bio, pkey), 1);
	else
		ck_assert_int_eq(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &data);
	ck_assert(n > 0);
	pem = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(pem);
	memcpy(pem, data, (size_t)n);
	pem[n] = '\0';
	if (len)
		*len = (size_t)n;
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return pem;
}

static char *sign(signer s, const char *claims, const char *extra_headers)
{
	unsigned char *key = NULL;
	size_t len = 0;
	jwt_alg_t alg = JWT_ALG_HS256;
	char *tok;

	switch (s) {
	case SIGN_SECRET:
		key = (unsigned char *)strdup(SECRET);
		len = strlen(SECRET);
		break;
	case SIGN_OTHER:
		key = (unsigned char *)strdup(OTHER);
		len = strlen(OTHER);
		break;
	case SIGN_HS512:
		key = (unsigned char *)strdup(SECRET);
		len = strlen(SECRET);
		alg = JWT_ALG_HS512;
		break;
	case SIGN_RSA:
		key = read_fixture("rsa_private.pem", &len);
		alg = JWT_ALG_RS256;
		break;
	case SIGN_RS512:
		key = read_fixture("rsa_private.pem", &len);
		alg = JWT_ALG_RS512;
		break;
	case SIGN_RSA2:
		key = read_fixture("rsa2_private.pem", &len);
		alg = JWT_ALG_RS256;
		break;
	case SIGN_EC:
		key = read_fixture("ec_private.pem", &len);
		alg = JWT_ALG_ES256;
		break;
	case SIGN_HS_RSA_PUB:
		key = read_fixture("rsa_public.pem", &len);
		break;
	case SIGN_HS_EC_PUB:
		key = read_fixture("ec_public.pem", &len);
		break;
	case SIGN_NONE:
		alg = JWT_ALG_NONE;
		break;
	case SIGN_EC2:
		key = (unsigned char *)gen_key_pem("EC", "P-256", 0, &len);
		alg = JWT_ALG_ES256;
		break;
	}
	tok = lib_token(alg, key, len, claims, extra_headers);
	free(key);
	return tok;
}

typedef struct tok_case {
	const char *name;
	cfg_kind cfg;
	signer signer;
	const char *claims; /**< JSON object; times are absolute (NOW is 1500000000) */
	int ok;
	const char *owner; /**< with ok: the owner expected (NULL: OWNER) */
	int scope_read, scope_write;
} tok_case;

/* The cached twin of the verifier answers a token twice exactly as the verifier does once:
 * same status, same reason, same claims; the second answer comes from the cache only when
 * the token was accepted. */
static void check_cached_twin(const char *name, cfg_kind cfg, const char *tok, pw_status st,
                              const pw_jwt_claims *cl, const char *why)
{
	for (int round = 0; round < 2; round++) {
		pw_jwt_claims cl2;
		char why2[256] = "";
		unsigned long h0, h1;
		pw_jwt_cache_stats(verifiers_cached[cfg], &h0, NULL, NULL);
		memset(&cl2, 0x5a, sizeof(cl2));
		pw_status st2 =
		    pw_jwt_verify(verifiers_cached[cfg], tok, NOW, &cl2, why2, sizeof(why2));
		pw_jwt_cache_stats(verifiers_cached[cfg], &h1, NULL, NULL);
		ck_assert_msg(st2 == st && strcmp(why2, why) == 0,
		              "case '%s', cached round %d: status %d '%s', uncached %d '%s'", name,
		              round, st2, why2, st, why);
		ck_assert_msg(memcmp(&cl2, cl, sizeof(cl2)) == 0,
		              "case '%s', cached round %d: claims differ", name, round);
		ck_assert_msg(h1 - h0 == (round == 1 && st == PW_OK ? 1u : 0u),
		              "case '%s', cached round %d: %lu hits, status %d", name, round,
		              h1 - h0, st);
	}
}

static void run_cases(const tok_case *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const tok_case *c = &rows[i];
		pw_jwt_claims cl;
		char why[256] = "";
		char *tok = sign(c->signer, c->claims, NULL);
		memset(&cl, 0x5a, sizeof(cl));
		pw_status st = pw_jwt_verify(verifiers[c->cfg], tok, NOW, &cl, why, sizeof(why));
		check_cached_twin(c->name, c->cfg, tok, st, &cl, why);
		if (c->ok) {
			ck_assert_msg(st == PW_OK, "case '%s': status %d, want PW_OK (why: %s)",
			              c->name, st, why);
			const char *want = c->owner ? c->owner : OWNER;
			ck_assert_msg(memchr(cl.owner, '\0', sizeof(cl.owner)) != NULL &&
			                  strcmp(cl.owner, want) == 0,
			              "case '%s': owner '%.40s', want '%.40s'", c->name, cl.owner,
			              want);
			ck_assert_msg(cl.scope_read == c->scope_read &&
			                  cl.scope_write == c->scope_write,
			              "case '%s': scopes read=%d write=%d, want %d/%d", c->name,
			              cl.scope_read, cl.scope_write, c->scope_read, c->scope_write);
		} else {
			ck_assert_msg(st == PW_E_AUTH, "case '%s': status %d, want PW_E_AUTH",
			              c->name, st);
			check_why(c->name, why, tok);
		}
		free(tok);
	}
}

#define C_SUB "\"sub\":\"" OWNER "\""

START_TEST(test_algorithms)
{
	/* exp written as an absolute number: NOW + 3600 = 1500003600. */
	static const tok_case rows[] = {
	    {"valid HS256", CFG_HS, SIGN_SECRET, "{" C_SUB ",\"exp\":1500003600}", 1, NULL, 0, 0},
	    {"valid RS256", CFG_RS, SIGN_RSA, "{" C_SUB ",\"exp\":1500003600}", 1, NULL, 0, 0},
	    {"valid ES256", CFG_ES, SIGN_EC, "{" C_SUB ",\"exp\":1500003600}", 1, NULL, 0, 0},
	    {"HS256 signed with another secret", CFG_HS, SIGN_OTHER,
	     "{" C_SUB ",\"exp\":1500003600}", 0, NULL, 0, 0},
	    {"RS256 signed with another RSA key", CFG_RS, SIGN_RSA2,
	     "{" C_SUB ",\"exp\":1500003600}", 0, NULL, 0, 0},
	    {"RS256 token when JWT_ALG=HS256", CFG_HS, SIGN_RSA, "{" C_SUB ",\"exp\":1500003600}",
	     0, NULL, 0, 0},
	    {"ES256 token when JWT_ALG=RS256", CFG_RS, SIGN_EC, "{" C_SUB ",\"exp\":1500003600}", 0,
	     NULL, 0, 0},
	    {"RS256 token when JWT_ALG=ES256", CFG_ES, SIGN_RSA, "{" C_SUB ",\"exp\":1500003600}",
	     0, NULL, 0, 0},
	    {"key confusion: HS256 keyed with the RSA public PEM", CFG_RS, SIGN_HS_RSA_PUB,
	     "{" C_SUB ",\"exp\":1500003600}", 0, NULL, 0, 0},
	    {"key confusion: HS256 keyed with the EC public PEM", CFG_ES, SIGN_HS_EC_PUB,
	     "{" C_SUB ",\"exp\":1500003600}", 0, NULL, 0, 0},
	    {"HS512 with the right secret when JWT_ALG=HS256", CFG_HS, SIGN_HS512,
	     "{" C_SUB ",\"exp\":1500003600}", 0, NULL, 0, 0},
	    {"RS512 with the right key when JWT_ALG=RS256", CFG_RS, SIGN_RS512,
	     "{" C_SUB ",\"exp\":1500003600}", 0, NULL, 0, 0},
	    {"alg none (libjwt) on HS256", CFG_HS, SIGN_NONE, "{" C_SUB ",\"exp\":1500003600}", 0,
	     NULL, 0, 0},
	    {"alg none (libjwt) on RS256", CFG_RS, SIGN_NONE, "{" C_SUB ",\"exp\":1500003600}", 0,
	     NULL, 0, 0},
	};
	run_cases(rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

START_TEST(test_times)
{
	/* NOW = 1500000000; leeway 30 s except CFG_HS_LEEWAY0. */
	static const tok_case rows[] = {
	    {"exp 60 s before now (beyond leeway)", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1499999940}", 0, NULL, 0, 0},
	    {"exp 1 day before now", CFG_HS, SIGN_SECRET, "{" C_SUB ",\"exp\":1499913600}", 0, NULL,
	     0, 0},
	    {"exp 10 s before now (within leeway)", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1499999990}", 1, NULL, 0, 0},
	    {"exp 1 s after now", CFG_HS, SIGN_SECRET, "{" C_SUB ",\"exp\":1500000001}", 1, NULL, 0,
	     0},
	    {"exp missing", CFG_HS, SIGN_SECRET, "{" C_SUB "}", 0, NULL, 0, 0},
	    {"exp a string", CFG_HS, SIGN_SECRET, "{" C_SUB ",\"exp\":\"1500003600\"}", 0, NULL, 0,
	     0},
	    {"exp null", CFG_HS, SIGN_SECRET, "{" C_SUB ",\"exp\":null}", 0, NULL, 0, 0},
	    {"exp true", CFG_HS, SIGN_SECRET, "{" C_SUB ",\"exp\":true}", 0, NULL, 0, 0},
	    {"nbf 60 s after now", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"nbf\":1500000060}", 0, NULL, 0, 0},
	    {"nbf 10 s after now (within leeway)", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"nbf\":1500000010}", 1, NULL, 0, 0},
	    {"nbf 10 s before now", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"nbf\":1499999990}", 1, NULL, 0, 0},
	    {"nbf a string", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"nbf\":\"1499999990\"}", 0, NULL, 0, 0},
	    {"iat 60 s after now", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iat\":1500000060}", 0, NULL, 0, 0},
	    {"iat 1 day after now", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500090000,\"iat\":1500086400}", 0, NULL, 0, 0},
	    {"iat 10 s after now (within leeway)", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iat\":1500000010}", 1, NULL, 0, 0},
	    {"iat an hour before now", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iat\":1499996400}", 1, NULL, 0, 0},
	    {"leeway 0: exp 1 s before now", CFG_HS_LEEWAY0, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1499999999}", 0, NULL, 0, 0},
	    {"leeway 0: exp 1 s after now", CFG_HS_LEEWAY0, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500000001}", 1, NULL, 0, 0},
	    {"leeway 0: nbf 1 s after now", CFG_HS_LEEWAY0, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"nbf\":1500000001}", 0, NULL, 0, 0},
	    {"leeway 0: iat 1 s after now", CFG_HS_LEEWAY0, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iat\":1500000001}", 0, NULL, 0, 0},
	    {"leeway 0: nbf and iat equal to now", CFG_HS_LEEWAY0, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"nbf\":1500000000,\"iat\":1500000000}", 1, NULL, 0, 0},
	};
	run_cases(rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

/* The time judged is now_s, not the wall clock: a token valid today is refused for a command
 * the broker took after it expired, and the answer does not change later. */
START_TEST(test_time_of_command)
{
	long long wall = (long long)time(NULL);
	char claims[256], why[256] = "";
	pw_jwt_claims cl;

	snprintf(claims, sizeof(claims), "{" C_SUB ",\"exp\":%lld}", wall + 3600);
	char *tok = sign(SIGN_SECRET, claims, NULL);
	ck_assert_msg(pw_jwt_verify(verifiers[CFG_HS], tok, wall, &cl, why, sizeof(why)) == PW_OK,
	              "valid at wall time: %s", why);
	ck_assert_msg(pw_jwt_verify(verifiers[CFG_HS], tok, wall + 7200, &cl, why, sizeof(why)) ==
	                  PW_E_AUTH,
	              "expired at the command's time, yet accepted");
	free(tok);
}
END_TEST

START_TEST(test_iss_aud)
{
	static const tok_case rows[] = {
	    {"iss and aud right", CFG_HS_ISSAUD, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iss\":\"" ISSUER "\",\"aud\":\"" AUD "\"}", 1, NULL,
	     0, 0},
	    {"iss wrong", CFG_HS_ISSAUD, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iss\":\"https://evil.example\",\"aud\":\"" AUD "\"}",
	     0, NULL, 0, 0},
	    {"iss a prefix of the expected", CFG_HS_ISSAUD, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iss\":\"https://issuer\",\"aud\":\"" AUD "\"}", 0,
	     NULL, 0, 0},
	    {"iss missing", CFG_HS_ISSAUD, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"aud\":\"" AUD "\"}", 0, NULL, 0, 0},
	    {"iss an array", CFG_HS_ISSAUD, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iss\":[\"" ISSUER "\"],\"aud\":\"" AUD "\"}", 0, NULL,
	     0, 0},
	    {"aud wrong", CFG_HS_ISSAUD, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iss\":\"" ISSUER "\",\"aud\":\"billing-api\"}", 0,
	     NULL, 0, 0},
	    {"aud missing", CFG_HS_ISSAUD, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iss\":\"" ISSUER "\"}", 0, NULL, 0, 0},
	    {"aud array containing the expected", CFG_HS_ISSAUD, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iss\":\"" ISSUER "\",\"aud\":[\"billing-api\",\"" AUD
	     "\"]}",
	     1, NULL, 0, 0},
	    {"aud array not containing the expected", CFG_HS_ISSAUD, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iss\":\"" ISSUER
	     "\",\"aud\":[\"billing-api\",\"patients-api-x\"]}",
	     0, NULL, 0, 0},
	    {"aud empty array", CFG_HS_ISSAUD, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iss\":\"" ISSUER "\",\"aud\":[]}", 0, NULL, 0, 0},
	    {"aud a number", CFG_HS_ISSAUD, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iss\":\"" ISSUER "\",\"aud\":7}", 0, NULL, 0, 0},
	    {"iss and aud not checked when not configured", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"iss\":\"anyone\",\"aud\":\"anything\"}", 1, NULL, 0,
	     0},
	};
	run_cases(rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

START_TEST(test_owner)
{
	char sub320[PW_JWT_OWNER_MAX + 1], sub321[PW_JWT_OWNER_MAX + 2];
	char c320[512], c321[512];

	memset(sub320, 'a', PW_JWT_OWNER_MAX);
	sub320[PW_JWT_OWNER_MAX] = '\0';
	memset(sub321, 'b', PW_JWT_OWNER_MAX + 1);
	sub321[PW_JWT_OWNER_MAX + 1] = '\0';
	snprintf(c320, sizeof(c320), "{\"sub\":\"%s\",\"exp\":1500003600}", sub320);
	snprintf(c321, sizeof(c321), "{\"sub\":\"%s\",\"exp\":1500003600}", sub321);
	const tok_case rows[] = {
	    {"sub missing", CFG_HS, SIGN_SECRET, "{\"exp\":1500003600}", 0, NULL, 0, 0},
	    {"sub empty", CFG_HS, SIGN_SECRET, "{\"sub\":\"\",\"exp\":1500003600}", 0, NULL, 0, 0},
	    {"sub a number", CFG_HS, SIGN_SECRET, "{\"sub\":42,\"exp\":1500003600}", 0, NULL, 0, 0},
	    {"sub null", CFG_HS, SIGN_SECRET, "{\"sub\":null,\"exp\":1500003600}", 0, NULL, 0, 0},
	    {"sub 320 bytes", CFG_HS, SIGN_SECRET, c320, 1, sub320, 0, 0},
	    {"sub 321 bytes", CFG_HS, SIGN_SECRET, c321, 0, NULL, 0, 0},
	    {"owner claim email", CFG_HS_EMAIL, SIGN_SECRET,
	     "{\"sub\":\"00u1abcd\",\"email\":\"bob@example.com\",\"exp\":1500003600}", 1,
	     "bob@example.com", 0, 0},
	    {"owner claim email, email missing", CFG_HS_EMAIL, SIGN_SECRET,
	     "{\"sub\":\"00u1abcd\",\"exp\":1500003600}", 0, NULL, 0, 0},
	    {"owner claim email, email empty", CFG_HS_EMAIL, SIGN_SECRET,
	     "{\"sub\":\"00u1abcd\",\"email\":\"\",\"exp\":1500003600}", 0, NULL, 0, 0},
	};
	run_cases(rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

START_TEST(test_scope)
{
	static const tok_case rows[] = {
	    {"scope read and write", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"scope\":\"patients:read patients:write\"}", 1, NULL,
	     1, 1},
	    {"scope write read, among others", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"scope\":\"openid patients:write email "
	     "patients:read\"}",
	     1, NULL, 1, 1},
	    {"scope read only", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"scope\":\"patients:read\"}", 1, NULL, 1, 0},
	    {"scope write only", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"scope\":\"patients:write\"}", 1, NULL, 0, 1},
	    {"scope patients:readx", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"scope\":\"patients:readx\"}", 1, NULL, 0, 0},
	    {"scope xpatients:write", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"scope\":\"xpatients:write\"}", 1, NULL, 0, 0},
	    {"scope patients:read:all patients:writer", CFG_HS, SIGN_SECRET,
	     "{" C_SUB ",\"exp\":1500003600,\"scope\":\"patients:read:all patients:writer\"}", 1,
	     NULL, 0, 0},
	    {"scope missing", CFG_HS, SIGN_SECRET, "{" C_SUB ",\"exp\":1500003600}", 1, NULL, 0, 0},
	    {"scope empty", CFG_HS, SIGN_SECRET, "{" C_SUB ",\"exp\":1500003600,\"scope\":\"\"}", 1,
	     NULL, 0, 0},
	};
	run_cases(rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

/* Tokens libjwt will not make: each is built by hand and, where it has a signature, signed
 * with the right HS256 secret, so that only the defect named can be the reason to refuse. */
START_TEST(test_malformed)
{
	const char *good_payload = "{\"sub\":\"" OWNER "\",\"exp\":1500003600}";
	char *valid = hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", good_payload, SECRET);
	char *h = b64url_str("{\"alg\":\"HS256\"}");
	char *p = b64url_str(good_payload);
	char buf[4][1024];
	char *none_tok = malloc(512);
	struct {
		const char *name;
		const char *token;
		int owned;
	} rows[] = {
	    {"alg none, hand-built, empty signature", NULL, 1},
	    {"alg none, hand-built, signed", NULL, 1},
	    {"alg None", NULL, 1},
	    {"alg hs256 (lower case)", NULL, 1},
	    {"alg missing", NULL, 1},
	    {"alg a number", NULL, 1},
	    {"header JSON an array", NULL, 1},
	    {"header JSON a string", NULL, 1},
	    {"header not JSON", NULL, 1},
	    {"header with crit", NULL, 1},
	    {"header with crit, empty", NULL, 1},
	    {"duplicated alg in header", NULL, 1},
	    {"payload an array", NULL, 1},
	    {"payload not JSON", NULL, 1},
	    {"2 segments", buf[0], 0},
	    {"4 segments", buf[1], 0},
	    {"non-base64url character in payload", buf[2], 0},
	    {"standard base64 '+' in header", buf[3], 0},
	    {"empty token", "", 0},
	    {"only dots", "..", 0},
	};
	ck_assert_ptr_nonnull(none_tok);
	{
		char *nh = b64url_str("{\"alg\":\"none\"}");
		snprintf(none_tok, 512, "%s.%s.", nh, p);
		free(nh);
	}
	rows[0].token = none_tok;
	/* The exact literal from the brief: eyJhbGciOiJub25lIn0 is {"alg":"none"}. */
	ck_assert_msg(strncmp(rows[0].token, "eyJhbGciOiJub25lIn0.", 20) == 0, "b64url broken: %s",
	              rows[0].token);
	rows[1].token = hand_token("{\"alg\":\"none\"}", good_payload, SECRET);
	rows[2].token = hand_token("{\"alg\":\"None\"}", good_payload, SECRET);
	rows[3].token = hand_token("{\"alg\":\"hs256\"}", good_payload, SECRET);
	rows[4].token = hand_token("{\"typ\":\"JWT\"}", good_payload, SECRET);
	rows[5].token = hand_token("{\"alg\":256}", good_payload, SECRET);
	rows[6].token = hand_token("[\"HS256\"]", good_payload, SECRET);
	rows[7].token = hand_token("\"HS256\"", good_payload, SECRET);
	rows[8].token = hand_token("alg=HS256", good_payload, SECRET);
	rows[9].token = hand_token("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", good_payload, SECRET);
	rows[10].token = hand_token("{\"alg\":\"HS256\",\"crit\":[]}", good_payload, SECRET);
	rows[11].token = hand_token("{\"alg\":\"HS256\",\"alg\":\"none\"}", good_payload, SECRET);
	rows[12].token = hand_token("{\"alg\":\"HS256\"}", "[\"" OWNER "\"]", SECRET);
	rows[13].token = hand_token("{\"alg\":\"HS256\"}", "sub=" OWNER, SECRET);
	snprintf(buf[0], sizeof(buf[0]), "%s.%s", h, p);
	snprintf(buf[1], sizeof(buf[1]), "%s.x", valid);
	snprintf(buf[2], sizeof(buf[2]), "%s", valid);
	{
		char *dot = strchr(buf[2], '.');
		dot[3] = '*';
	}
	snprintf(buf[3], sizeof(buf[3]), "+%s", valid);

	/* The hand-built valid token passes: the defects below are the only difference. */
	{
		pw_jwt_claims cl;
		char why[256] = "";
		ck_assert_msg(pw_jwt_verify(verifiers[CFG_HS], valid, NOW, &cl, why, sizeof(why)) ==
		                  PW_OK,
		              "hand-built valid token refused: %s", why);
		ck_assert_str_eq(cl.owner, OWNER);
	}
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_jwt_claims cl;
		char why[256] = "";
		pw_status st =
		    pw_jwt_verify(verifiers[CFG_HS], rows[i].token, NOW, &cl, why, sizeof(why));
		ck_assert_msg(st == PW_E_AUTH, "case '%s': status %d, want PW_E_AUTH", rows[i].name,
		              st);
		check_why(rows[i].name, why, rows[i].token);
		/* Same token against RS256: the algorithm pin must refuse it there too. */
		why[0] = '\0';
		st = pw_jwt_verify(verifiers[CFG_RS], rows[i].token, NOW, &cl, why, sizeof(why));
		ck_assert_msg(st == PW_E_AUTH, "case '%s' (RS256): status %d, want PW_E_AUTH",
		              rows[i].name, st);
		if (rows[i].owned)
			free((char *)rows[i].token);
	}
	free(valid);
	free(h);
	free(p);
}
END_TEST

/* libjwt-made token with a crit header, properly signed. */
START_TEST(test_crit_libjwt)
{
	char why[256] = "";
	pw_jwt_claims cl;
	char *tok = sign(SIGN_SECRET, "{" C_SUB ",\"exp\":1500003600}", "{\"crit\":[\"b64\"]}");

	ck_assert_msg(pw_jwt_verify(verifiers[CFG_HS], tok, NOW, &cl, why, sizeof(why)) ==
	                  PW_E_AUTH,
	              "token with crit accepted");
	check_why("crit (libjwt)", why, tok);
	free(tok);
}
END_TEST

/* A changed payload under the original signature is refused. */
START_TEST(test_tampered_payload)
{
	char why[256] = "";
	pw_jwt_claims cl;
	char *tok = sign(SIGN_SECRET, "{\"sub\":\"alice@example.com\",\"exp\":1500003600}", NULL);
	char *evil = b64url_str("{\"sub\":\"mallory@example.com\",\"exp\":1500003600}");
	char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
	char forged[2048];

	snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(d1 - tok), tok, evil, d2);
	ck_assert_msg(pw_jwt_verify(verifiers[CFG_HS], forged, NOW, &cl, why, sizeof(why)) ==
	                  PW_E_AUTH,
	              "tampered payload accepted, owner '%s'", cl.owner);
	free(tok);
	free(evil);
}
END_TEST

/* why is truncated to why_size, NUL-terminated, and nothing after it is written. */
START_TEST(test_why_size)
{
	char why[64];
	pw_jwt_claims cl;
	char *tok = sign(SIGN_OTHER, "{" C_SUB ",\"exp\":1500003600}", NULL);

	memset(why, '#', sizeof(why));
	ck_assert(pw_jwt_verify(verifiers[CFG_HS], tok, NOW, &cl, why, 8) == PW_E_AUTH);
	ck_assert_msg(memchr(why, '\0', 8) != NULL, "why not NUL-terminated within why_size");
	for (size_t i = 8; i < sizeof(why); i++)
		ck_assert_msg(why[i] == '#', "why written past why_size at %zu", i);
	free(tok);
}
END_TEST

/* Two verifiers from the same kind of configuration do not share keys. */
START_TEST(test_verifier_key_is_the_configs)
{
	pw_config c;
	pw_jwt_verifier *v = NULL;
	char why[256] = "";
	pw_jwt_claims cl;
	char *tok = sign(SIGN_SECRET, "{" C_SUB ",\"exp\":1500003600}", NULL);

	memset(&c, 0, sizeof(c));
	c.jwt_alg = PW_ALG_HS256;
	c.jwt_alg_name = strdup("HS256");
	c.jwt_secret = strdup(OTHER);
	c.jwt_key = (unsigned char *)strdup(OTHER);
	c.jwt_key_len = strlen(OTHER);
	c.jwt_leeway_s = 30;
	c.jwt_owner_claim = strdup("sub");
	ck_assert_int_eq(pw_jwt_verifier_create(&c, &v), PW_OK);
	ck_assert_msg(pw_jwt_verify(v, tok, NOW, &cl, why, sizeof(why)) == PW_E_AUTH,
	              "token signed with SECRET accepted by a verifier keyed with OTHER");
	pw_jwt_verifier_destroy(v);
	pw_jwt_verifier_destroy(NULL);
	pw_config_free(&c);
	free(tok);
}
END_TEST

/* ---- signatures against the parsed key ------------------------------------------------- */

typedef enum sig_mut {
	MUT_KEEP = 0,
	MUT_FLIP_FIRST, /**< first signature byte xor 0x01 */
	MUT_FLIP_LAST,  /**< last signature byte xor 0x80 */
	MUT_DROP_LAST,  /**< one byte short (ES256: 63) */
	MUT_ADD_ZERO,   /**< a zero byte appended (ES256: 65) */
	MUT_ZERO_FIRST, /**< a zero byte prepended (ES256: 65, R||S shifted) */
	MUT_HALF,       /**< the first half only */
	MUT_SWAP_RS,    /**< ES256: S||R */
	MUT_ZEROS,      /**< as many zero bytes */
	MUT_DER,        /**< ES256: R||S re-encoded as a DER ECDSA-Sig-Value */
} sig_mut;

/* The ES256 signature sig (R||S) as DER; checks that OpenSSL itself accepts that DER for the
 * signing input, so that a refusal can only be about the encoding. */
static size_t es256_to_der(const unsigned char *sig, unsigned char *der, const char *input,
                           size_t input_len)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	unsigned char *p = der;
	size_t pem_len;
	unsigned char *pem = read_fixture("ec_public.pem", &pem_len);
	BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
	EVP_PKEY *pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	ck_assert_ptr_nonnull(es);
	ck_assert_ptr_nonnull(pub);
	ck_assert_int_eq(
	    ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)), 1);
	int n = i2d_ECDSA_SIG(es, &p);
	ck_assert(n > 0 && n <= 72);
	ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
	ck_assert_msg(
	    EVP_DigestVerify(md, der, (size_t)n, (const unsigned char *)input, input_len) == 1,
	    "the DER signature made by the test is not genuine");
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pub);
	BIO_free(bio);
	free(pem);
	ECDSA_SIG_free(es);
	return (size_t)n;
}

/* tok with its signature segment changed by m. */
static char *mutate_sig(const char *tok, sig_mut m)
{
	const char *dot = strrchr(tok, '.');
	unsigned char sig[600], out[600];
	size_t n = 0, o = 0;

	ck_assert(pw_util_b64url_decode(dot + 1, strlen(dot + 1), sig, sizeof(sig), &n) == PW_OK &&
	          n > 0);
	switch (m) {
	case MUT_KEEP:
		memcpy(out, sig, (size_t)n);
		o = (size_t)n;
		break;
	case MUT_FLIP_FIRST:
		memcpy(out, sig, (size_t)n);
		out[0] ^= 0x01;
		o = (size_t)n;
		break;
	case MUT_FLIP_LAST:
		memcpy(out, sig, (size_t)n);
		out[n - 1] ^= 0x80;
		o = (size_t)n;
		break;
	case MUT_DROP_LAST:
		memcpy(out, sig, (size_t)n - 1);
		o = (size_t)n - 1;
		break;
	case MUT_ADD_ZERO:
		memcpy(out, sig, (size_t)n);
		out[n] = 0;
		o = (size_t)n + 1;
		break;
	case MUT_ZERO_FIRST:
		out[0] = 0;
		memcpy(out + 1, sig, (size_t)n);
		o = (size_t)n + 1;
		break;
	case MUT_HALF:
		memcpy(out, sig, (size_t)n / 2);
		o = (size_t)n / 2;
		break;
	case MUT_SWAP_RS:
		ck_assert_int_eq(n, 64);
		memcpy(out, sig + 32, 32);
		memcpy(out + 32, sig, 32);
		o = 64;
		break;
	case MUT_ZEROS:
		memset(out, 0, (size_t)n);
		o = (size_t)n;
		break;
	case MUT_DER:
		ck_assert_int_eq(n, 64);
		o = es256_to_der(sig, out, tok, (size_t)(dot - tok));
		break;
	}
	char *s64 = b64url(out, o);
	size_t len = (size_t)(dot - tok) + strlen(s64) + 2;
	char *res = malloc(len);
	ck_assert_ptr_nonnull(res);
	snprintf(res, len, "%.*s.%s", (int)(dot - tok), tok, s64);
	free(s64);
	return res;
}

START_TEST(test_parsed_key)
{
	static const struct {
		const char *name;
		cfg_kind cfg;
		signer signer;
		sig_mut mut;
		int ok;
		size_t sig_len; /**< length of the signature sent, checked (0: not checked) */
	} rows[] = {
	    {"RS256 valid", CFG_RS, SIGN_RSA, MUT_KEEP, 1, 256},
	    {"RS256 wrong key", CFG_RS, SIGN_RSA2, MUT_KEEP, 0, 256},
	    {"RS256 first signature byte flipped", CFG_RS, SIGN_RSA, MUT_FLIP_FIRST, 0, 256},
	    {"RS256 last signature byte flipped", CFG_RS, SIGN_RSA, MUT_FLIP_LAST, 0, 256},
	    {"RS256 signature one byte short", CFG_RS, SIGN_RSA, MUT_DROP_LAST, 0, 255},
	    {"RS256 signature one byte long", CFG_RS, SIGN_RSA, MUT_ADD_ZERO, 0, 257},
	    {"RS256 signature with a leading zero", CFG_RS, SIGN_RSA, MUT_ZERO_FIRST, 0, 257},
	    {"RS256 signature half", CFG_RS, SIGN_RSA, MUT_HALF, 0, 128},
	    {"RS256 signature all zero", CFG_RS, SIGN_RSA, MUT_ZEROS, 0, 256},
	    {"ES256 valid", CFG_ES, SIGN_EC, MUT_KEEP, 1, 64},
	    {"ES256 wrong key", CFG_ES, SIGN_EC2, MUT_KEEP, 0, 64},
	    {"ES256 first byte of R flipped", CFG_ES, SIGN_EC, MUT_FLIP_FIRST, 0, 64},
	    {"ES256 last byte of S flipped", CFG_ES, SIGN_EC, MUT_FLIP_LAST, 0, 64},
	    {"ES256 signature of 63 bytes", CFG_ES, SIGN_EC, MUT_DROP_LAST, 0, 63},
	    {"ES256 signature of 65 bytes (zero appended)", CFG_ES, SIGN_EC, MUT_ADD_ZERO, 0, 65},
	    {"ES256 signature of 65 bytes (zero prepended)", CFG_ES, SIGN_EC, MUT_ZERO_FIRST, 0,
	     65},
	    {"ES256 signature of 32 bytes", CFG_ES, SIGN_EC, MUT_HALF, 0, 32},
	    {"ES256 S||R", CFG_ES, SIGN_EC, MUT_SWAP_RS, 0, 64},
	    {"ES256 R and S zero", CFG_ES, SIGN_EC, MUT_ZEROS, 0, 64},
	    {"ES256 DER signature instead of R||S", CFG_ES, SIGN_EC, MUT_DER, 0, 0},
	    {"key confusion: HS256 keyed with rsa_public.pem, JWT_ALG=RS256", CFG_RS,
	     SIGN_HS_RSA_PUB, MUT_KEEP, 0, 32},
	    {"key confusion: HS256 keyed with ec_public.pem, JWT_ALG=ES256", CFG_ES, SIGN_HS_EC_PUB,
	     MUT_KEEP, 0, 32},
	    {"RS256 token, JWT_ALG=ES256", CFG_ES, SIGN_RSA, MUT_KEEP, 0, 256},
	    {"ES256 token, JWT_ALG=RS256", CFG_RS, SIGN_EC, MUT_KEEP, 0, 64},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *orig = sign(rows[i].signer, "{" C_SUB ",\"exp\":1500003600}", NULL);
		char *tok = mutate_sig(orig, rows[i].mut);
		pw_jwt_claims cl;
		char why[256] = "";

		if (rows[i].sig_len != 0) {
			unsigned char sig[600];
			const char *dot = strrchr(tok, '.');
			size_t n = 0;
			ck_assert(pw_util_b64url_decode(dot + 1, strlen(dot + 1), sig, sizeof(sig),
			                                &n) == PW_OK);
			ck_assert_msg(n == rows[i].sig_len, "case '%s': signature of %zu bytes",
			              rows[i].name, n);
		}
		pw_status st =
		    pw_jwt_verify(verifiers[rows[i].cfg], tok, NOW, &cl, why, sizeof(why));
		if (rows[i].ok) {
			ck_assert_msg(st == PW_OK, "case '%s': refused: %s", rows[i].name, why);
			ck_assert_str_eq(cl.owner, OWNER);
		} else {
			ck_assert_msg(st == PW_E_AUTH, "case '%s': status %d, want PW_E_AUTH",
			              rows[i].name, st);
			check_why(rows[i].name, why, tok);
		}
		check_cached_twin(rows[i].name, rows[i].cfg, tok, st, &cl, why);
		free(tok);
		free(orig);
	}
}
END_TEST

/* The PEM is parsed when the verifier is made: a key of the wrong type is a configuration
 * error there, not a refusal of every token later. */
START_TEST(test_create_key)
{
	typedef enum key_src {
		KEY_FILE = 0, /**< file: the fixture named */
		KEY_GEN,      /**< a public key made here: type, curve */
		KEY_HALF,     /**< the first half of the fixture */
		KEY_EMPTY,    /**< a zero-length key */
		KEY_SECRET,   /**< SECRET */
	} key_src;
	static const struct {
		const char *name;
		pw_config_jwt_alg alg;
		key_src src;
		const char *file_or_type;
		const char *curve;
		int cache_size;
		pw_status want;
	} rows[] = {
	    {"RS256, RSA public key", PW_ALG_RS256, KEY_FILE, "rsa_public.pem", NULL, 0, PW_OK},
	    {"ES256, EC P-256 public key", PW_ALG_ES256, KEY_FILE, "ec_public.pem", NULL, 0, PW_OK},
	    {"HS256, secret", PW_ALG_HS256, KEY_SECRET, NULL, NULL, 0, PW_OK},
	    {"HS256, secret, cache 10000", PW_ALG_HS256, KEY_SECRET, NULL, NULL, 10000, PW_OK},
	    {"RS256, EC key", PW_ALG_RS256, KEY_FILE, "ec_public.pem", NULL, 0, PW_E_CONFIG},
	    {"ES256, RSA key", PW_ALG_ES256, KEY_FILE, "rsa_public.pem", NULL, 0, PW_E_CONFIG},
	    {"RS256, not a PEM", PW_ALG_RS256, KEY_FILE, "not_a_key.pem", NULL, 0, PW_E_CONFIG},
	    {"ES256, not a PEM", PW_ALG_ES256, KEY_FILE, "not_a_key.pem", NULL, 0, PW_E_CONFIG},
	    {"RS256, a private key PEM", PW_ALG_RS256, KEY_FILE, "rsa_private.pem", NULL, 0,
	     PW_E_CONFIG},
	    {"RS256, half a PEM", PW_ALG_RS256, KEY_HALF, "rsa_public.pem", NULL, 0, PW_E_CONFIG},
	    {"ES256, EC P-384 key", PW_ALG_ES256, KEY_GEN, "EC", "P-384", 0, PW_E_CONFIG},
	    {"ES256, EC secp256k1 key", PW_ALG_ES256, KEY_GEN, "EC", "secp256k1", 0, PW_E_CONFIG},
	    {"ES256, EC P-256 key made here", PW_ALG_ES256, KEY_GEN, "EC", "P-256", 0, PW_OK},
	    {"ES256, Ed25519 key", PW_ALG_ES256, KEY_GEN, "ED25519", NULL, 0, PW_E_CONFIG},
	    {"RS256, Ed25519 key", PW_ALG_RS256, KEY_GEN, "ED25519", NULL, 0, PW_E_CONFIG},
	    {"RS256, RSA-PSS key", PW_ALG_RS256, KEY_GEN, "RSA-PSS", NULL, 0, PW_E_CONFIG},
	    {"RS256, empty key", PW_ALG_RS256, KEY_EMPTY, NULL, NULL, 0, PW_E_CONFIG},
	    {"HS256, empty key", PW_ALG_HS256, KEY_EMPTY, NULL, NULL, 0, PW_E_CONFIG},
	    {"HS256, negative cache size", PW_ALG_HS256, KEY_SECRET, NULL, NULL, -1, PW_E_CONFIG},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_config c;
		pw_jwt_verifier *v = (pw_jwt_verifier *)&c; /* must be reset to NULL on failure */

		memset(&c, 0, sizeof(c));
		c.jwt_alg = rows[i].alg;
		c.jwt_leeway_s = 30;
		c.jwt_cache_size = rows[i].cache_size;
		switch (rows[i].src) {
		case KEY_FILE:
			c.jwt_key = read_fixture(rows[i].file_or_type, &c.jwt_key_len);
			break;
		case KEY_HALF:
			c.jwt_key = read_fixture(rows[i].file_or_type, &c.jwt_key_len);
			c.jwt_key_len /= 2;
			c.jwt_key[c.jwt_key_len] = '\0';
			break;
		case KEY_GEN:
			c.jwt_key = (unsigned char *)gen_key_pem(rows[i].file_or_type,
			                                         rows[i].curve, 1, &c.jwt_key_len);
			break;
		case KEY_EMPTY:
			c.jwt_key = (unsigned char *)strdup("");
			break;
		case KEY_SECRET:
			c.jwt_key = (unsigned char *)strdup(SECRET);
			c.jwt_key_len = strlen(SECRET);
			break;
		}
		pw_status st = pw_jwt_verifier_create(&c, &v);
		ck_assert_msg(st == rows[i].want, "case '%s': status %d, want %d", rows[i].name, st,
		              rows[i].want);
		if (st != PW_OK)
			ck_assert_msg(v == NULL, "case '%s': *out not NULL on failure",
			              rows[i].name);
		else
			ck_assert_ptr_nonnull(v);
		pw_jwt_verifier_destroy(v);
		free(c.jwt_key);
	}
}
END_TEST

/* ---- the cache of verified tokens -------------------------------------------------------- */

/* A verifier like cfgs[base] with a cache of size entries; *c must outlive it. */
static pw_jwt_verifier *cache_verifier(pw_config *c, cfg_kind base, int size)
{
	pw_jwt_verifier *v = NULL;

	*c = cfgs[base]; /* shares the strings of cfgs[base], freed in the fixture */
	c->jwt_cache_size = size;
	ck_assert_int_eq(pw_jwt_verifier_create(c, &v), PW_OK);
	return v;
}

static void expect_stats(const char *name, const pw_jwt_verifier *v, unsigned long hits,
                         unsigned long misses, size_t entries)
{
	unsigned long h = 99, m = 99;
	size_t e = 99;

	pw_jwt_cache_stats(v, &h, &m, &e);
	ck_assert_msg(h == hits && m == misses && e == entries,
	              "%s: hits %lu misses %lu entries %zu, want %lu %lu %zu", name, h, m, e, hits,
	              misses, entries);
}

/* The same token twice: the second answer is a hit with the same claims, for each algorithm. */
START_TEST(test_cache_hit)
{
	static const struct {
		cfg_kind cfg;
		signer signer;
	} rows[] = {{CFG_HS, SIGN_SECRET}, {CFG_RS, SIGN_RSA}, {CFG_ES, SIGN_EC}};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_config c;
		pw_jwt_verifier *v = cache_verifier(&c, rows[i].cfg, 8);
		char *tok =
		    sign(rows[i].signer,
		         "{" C_SUB ",\"exp\":1500003600,\"scope\":\"patients:write\"}", NULL);
		pw_jwt_claims a, b;
		char why[256];

		memset(&a, 0x11, sizeof(a));
		memset(&b, 0x22, sizeof(b));
		ck_assert_int_eq(pw_jwt_verify(v, tok, NOW, &a, why, sizeof(why)), PW_OK);
		expect_stats("first use", v, 0, 1, 1);
		ck_assert_int_eq(pw_jwt_verify(v, tok, NOW + 60, &b, why, sizeof(why)), PW_OK);
		expect_stats("second use", v, 1, 1, 1);
		ck_assert(memcmp(&a, &b, sizeof(a)) == 0);
		ck_assert_str_eq(b.owner, OWNER);
		ck_assert(b.scope_write == 1 && b.scope_read == 0);
		ck_assert_str_eq(why, "");
		free(tok);
		pw_jwt_verifier_destroy(v);
	}
}
END_TEST

/* The time claims of a cached token are judged at every use, at that use's now_s, with the
 * same reasons as a verifier without a cache. */
START_TEST(test_cache_times)
{
	/* exp NOW+3600, nbf NOW-600, iat NOW-600; leeway 30. */
	static const struct {
		int64_t at;      /**< now_s - NOW */
		const char *why; /**< "": accepted */
	} rows[] = {
	    {0, ""},
	    {3600 + 31, "token expired"},
	    {3600 + 30, ""},
	    {86400 * 365, "token expired"},
	    {-600 - 31, "token not yet valid"},
	    {-600 - 30, ""},
	    {1, ""},
	};
	pw_config c;
	pw_jwt_verifier *v = cache_verifier(&c, CFG_HS, 8);
	char *tok =
	    sign(SIGN_SECRET,
	         "{" C_SUB ",\"exp\":1500003600,\"nbf\":1499999400,\"iat\":1499999400}", NULL);
	pw_jwt_claims cl;
	char why[256];

	ck_assert_int_eq(pw_jwt_verify(v, tok, NOW, &cl, why, sizeof(why)), PW_OK);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char why0[256] = "";
		pw_jwt_claims cl0;
		pw_status want = pw_jwt_verify(verifiers[CFG_HS], tok, NOW + rows[i].at, &cl0, why0,
		                               sizeof(why0));
		pw_status st = pw_jwt_verify(v, tok, NOW + rows[i].at, &cl, why, sizeof(why));
		ck_assert_msg(st == (rows[i].why[0] ? PW_E_AUTH : PW_OK) &&
		                  strcmp(why, rows[i].why) == 0,
		              "at NOW%+lld: status %d '%s', want '%s'", (long long)rows[i].at, st,
		              why, rows[i].why);
		ck_assert_msg(st == want && strcmp(why, why0) == 0,
		              "at NOW%+lld: cached '%s', uncached '%s'", (long long)rows[i].at, why,
		              why0);
		expect_stats("cached token", v, i + 1, 1, 1);
	}
	/* iat in the future, from the cache. */
	char *tok2 = sign(SIGN_SECRET, "{" C_SUB ",\"exp\":1500003600,\"iat\":1500000000}", NULL);
	ck_assert_int_eq(pw_jwt_verify(v, tok2, NOW, &cl, why, sizeof(why)), PW_OK);
	ck_assert_int_eq(pw_jwt_verify(v, tok2, NOW - 31, &cl, why, sizeof(why)), PW_E_AUTH);
	ck_assert_str_eq(why, "token issued in the future");
	ck_assert_str_eq(cl.owner, "");
	free(tok2);
	free(tok);
	pw_jwt_verifier_destroy(v);
}
END_TEST

/* A token refused for its time at first use is not cached; accepted later, it is. */
START_TEST(test_cache_nbf_later)
{
	pw_config c;
	pw_jwt_verifier *v = cache_verifier(&c, CFG_HS, 8);
	char *tok = sign(SIGN_SECRET, "{" C_SUB ",\"exp\":1500003600,\"nbf\":1500000600}", NULL);
	pw_jwt_claims cl;
	char why[256];

	ck_assert_int_eq(pw_jwt_verify(v, tok, NOW, &cl, why, sizeof(why)), PW_E_AUTH);
	ck_assert_str_eq(why, "token not yet valid");
	expect_stats("refused at NOW", v, 0, 1, 0);
	ck_assert_int_eq(pw_jwt_verify(v, tok, NOW, &cl, why, sizeof(why)), PW_E_AUTH);
	expect_stats("refused again at NOW", v, 0, 2, 0);
	ck_assert_int_eq(pw_jwt_verify(v, tok, NOW + 600, &cl, why, sizeof(why)), PW_OK);
	expect_stats("accepted at NOW+600", v, 0, 3, 1);
	ck_assert_int_eq(pw_jwt_verify(v, tok, NOW + 601, &cl, why, sizeof(why)), PW_OK);
	expect_stats("hit at NOW+601", v, 1, 3, 1);
	ck_assert_int_eq(pw_jwt_verify(v, tok, NOW, &cl, why, sizeof(why)), PW_E_AUTH);
	ck_assert_str_eq(why, "token not yet valid");
	expect_stats("hit, refused, at NOW", v, 2, 3, 1);
	free(tok);
	pw_jwt_verifier_destroy(v);
}
END_TEST

/* At most jwt_cache_size entries; the least recently used goes first. */
START_TEST(test_cache_bound)
{
	/* Steps on a cache of 3: the token used, and whether it must be a hit. */
	static const struct {
		int tok;
		int hit;
	} steps[] = {
	    {0, 0}, {1, 0}, {2, 0}, {3, 0}, /* 4 distinct: 0 evicted */
	    {0, 0},                         /* a miss; evicts 1 */
	    {2, 1}, {3, 1}, {0, 1},         /* recency now 0, 3, 2 */
	    {1, 0},                         /* evicts 2, the least recently used */
	    {3, 1}, {0, 1}, {2, 0},         /* evicts 1 */
	    {1, 0}, {4, 0}, {4, 1},
	};
	char *toks[5];
	pw_config c;
	pw_jwt_verifier *v = cache_verifier(&c, CFG_HS, 3);
	unsigned long hits = 0, misses = 0;

	for (int i = 0; i < 5; i++) {
		char claims[128];
		snprintf(claims, sizeof(claims),
		         "{\"sub\":\"user%d@example.com\",\"exp\":1500003600}", i);
		toks[i] = sign(SIGN_SECRET, claims, NULL);
	}
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		pw_jwt_claims cl;
		char why[256], want[64];
		unsigned long h, m;
		size_t e;

		ck_assert_int_eq(pw_jwt_verify(v, toks[steps[i].tok], NOW, &cl, why, sizeof(why)),
		                 PW_OK);
		snprintf(want, sizeof(want), "user%d@example.com", steps[i].tok);
		ck_assert_str_eq(cl.owner, want);
		hits += steps[i].hit ? 1 : 0;
		misses += steps[i].hit ? 0 : 1;
		pw_jwt_cache_stats(v, &h, &m, &e);
		ck_assert_msg(h == hits && m == misses,
		              "step %zu (token %d): hits %lu misses %lu, want %lu %lu", i,
		              steps[i].tok, h, m, hits, misses);
		ck_assert_msg(e <= 3 && e == (i < 3 ? i + 1 : 3), "step %zu: %zu entries", i, e);
	}
	for (int i = 0; i < 5; i++)
		free(toks[i]);
	pw_jwt_verifier_destroy(v);
}
END_TEST

/* JWT_CACHE_SIZE=0: no cache, never a hit. */
START_TEST(test_cache_disabled)
{
	pw_config c;
	pw_jwt_verifier *v = cache_verifier(&c, CFG_RS, 0);
	char *tok = sign(SIGN_RSA, "{" C_SUB ",\"exp\":1500003600}", NULL);
	pw_jwt_claims cl;
	char why[256];

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pw_jwt_verify(v, tok, NOW, &cl, why, sizeof(why)), PW_OK);
	expect_stats("no cache", v, 0, 3, 0);
	pw_jwt_cache_clear(v);
	expect_stats("no cache, cleared", v, 0, 3, 0);
	free(tok);
	pw_jwt_verifier_destroy(v);
}
END_TEST

/* Refused tokens are refused every time and never take a place in the cache: a flood of
 * them does not evict the good ones. */
START_TEST(test_cache_refused)
{
	static const struct {
		const char *name;
		signer signer;
		const char *claims;
	} bad[] = {
	    {"bad signature", SIGN_OTHER, "{" C_SUB ",\"exp\":1500003600}"},
	    {"alg none", SIGN_NONE, "{" C_SUB ",\"exp\":1500003600}"},
	    {"HS512", SIGN_HS512, "{" C_SUB ",\"exp\":1500003600}"},
	    {"expired, signature valid", SIGN_SECRET, "{" C_SUB ",\"exp\":1499990000}"},
	    {"no sub, signature valid", SIGN_SECRET, "{\"exp\":1500003600}"},
	    {"no exp, signature valid", SIGN_SECRET, "{" C_SUB "}"},
	};
	char *good[3];
	pw_config c;
	pw_jwt_verifier *v = cache_verifier(&c, CFG_HS, 3);
	pw_jwt_claims cl;
	char why[256], why1[256];
	unsigned long misses = 0;

	for (int i = 0; i < 3; i++) {
		char claims[128];
		snprintf(claims, sizeof(claims),
		         "{\"sub\":\"good%d@example.com\",\"exp\":1500003600}", i);
		good[i] = sign(SIGN_SECRET, claims, NULL);
		ck_assert_int_eq(pw_jwt_verify(v, good[i], NOW, &cl, why, sizeof(why)), PW_OK);
		misses++;
	}
	for (int round = 0; round < 20; round++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char *tok = sign(bad[i].signer, bad[i].claims, NULL);
			ck_assert_int_eq(pw_jwt_verify(v, tok, NOW, &cl, why1, sizeof(why1)),
			                 PW_E_AUTH);
			ck_assert_int_eq(pw_jwt_verify(v, tok, NOW, &cl, why, sizeof(why)),
			                 PW_E_AUTH);
			ck_assert_msg(strcmp(why, why1) == 0, "case '%s': '%s' then '%s'",
			              bad[i].name, why1, why);
			check_why(bad[i].name, why, tok);
			misses += 2;
			free(tok);
		}
	}
	expect_stats("after the flood", v, 0, misses, 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(pw_jwt_verify(v, good[i], NOW, &cl, why, sizeof(why)), PW_OK);
		free(good[i]);
	}
	expect_stats("good tokens still cached", v, 3, misses, 3);
	pw_jwt_verifier_destroy(v);
}
END_TEST

/* A forged token is not a hit for the token it was made from: the whole token is the key. */
START_TEST(test_cache_key_is_whole_token)
{
	pw_config c;
	pw_jwt_verifier *v = cache_verifier(&c, CFG_ES, 8);
	char *tok = sign(SIGN_EC, "{" C_SUB ",\"exp\":1500003600}", NULL);
	char *flipped = mutate_sig(tok, MUT_FLIP_LAST);
	char *evil = b64url_str("{\"sub\":\"mallory@example.com\",\"exp\":1500003600}");
	char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
	char forged[2048];
	pw_jwt_claims cl;
	char why[256];

	snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(d1 - tok), tok, evil, d2);
	ck_assert_int_eq(pw_jwt_verify(v, tok, NOW, &cl, why, sizeof(why)), PW_OK);
	ck_assert_int_eq(pw_jwt_verify(v, forged, NOW, &cl, why, sizeof(why)), PW_E_AUTH);
	ck_assert_int_eq(pw_jwt_verify(v, flipped, NOW, &cl, why, sizeof(why)), PW_E_AUTH);
	expect_stats("forgeries", v, 0, 3, 1);
	free(tok);
	free(flipped);
	free(evil);
	pw_jwt_verifier_destroy(v);
}
END_TEST

START_TEST(test_cache_clear)
{
	pw_config c;
	pw_jwt_verifier *v = cache_verifier(&c, CFG_HS, 8);
	char *tok = sign(SIGN_SECRET, "{" C_SUB ",\"exp\":1500003600}", NULL);
	pw_jwt_claims cl;
	char why[256];

	ck_assert_int_eq(pw_jwt_verify(v, tok, NOW, &cl, why, sizeof(why)), PW_OK);
	ck_assert_int_eq(pw_jwt_verify(v, tok, NOW, &cl, why, sizeof(why)), PW_OK);
	expect_stats("before clear", v, 1, 1, 1);
	pw_jwt_cache_clear(v);
	expect_stats("after clear", v, 1, 1, 0);
	ck_assert_int_eq(pw_jwt_verify(v, tok, NOW, &cl, why, sizeof(why)), PW_OK);
	expect_stats("after clear, used again", v, 1, 2, 1);
	pw_jwt_cache_clear(NULL);
	pw_jwt_cache_stats(NULL, NULL, NULL, NULL);
	free(tok);
	pw_jwt_verifier_destroy(v);
}
END_TEST

static Suite *jwt_suite(void)
{
	Suite *s = suite_create("jwt");
	TCase *tc = tcase_create("verify");

	tcase_add_checked_fixture(tc, setup_verifiers, teardown_verifiers);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_algorithms);
	tcase_add_test(tc, test_times);
	tcase_add_test(tc, test_time_of_command);
	tcase_add_test(tc, test_iss_aud);
	tcase_add_test(tc, test_owner);
	tcase_add_test(tc, test_scope);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_crit_libjwt);
	tcase_add_test(tc, test_tampered_payload);
	tcase_add_test(tc, test_why_size);
	tcase_add_test(tc, test_parsed_key);
	suite_add_tcase(s, tc);

	tc = tcase_create("cache");
	tcase_add_checked_fixture(tc, setup_verifiers, teardown_verifiers);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_cache_hit);
	tcase_add_test(tc, test_cache_times);
	tcase_add_test(tc, test_cache_nbf_later);
	tcase_add_test(tc, test_cache_bound);
	tcase_add_test(tc, test_cache_disabled);
	tcase_add_test(tc, test_cache_refused);
	tcase_add_test(tc, test_cache_key_is_whole_token);
	tcase_add_test(tc, test_cache_clear);
	suite_add_tcase(s, tc);

	tc = tcase_create("helpers");
	tcase_add_test(tc, test_verifier_key_is_the_configs);
	tcase_add_test(tc, test_create_key);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(jwt_suite());
}
