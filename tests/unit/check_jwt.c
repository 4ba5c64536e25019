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
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pw_config.h"
#include "pw_jwt.h"
#include "pw_status.h"

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

static void make_cfg(pw_config *c, pw_jwt_alg_cfg alg, const char *alg_name, const char *key_file)
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
	}
}

static void teardown_verifiers(void)
{
	for (int i = 0; i < CFG_COUNT; i++) {
		pw_jwt_verifier_destroy(verifiers[i]);
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
} signer;

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

static void run_cases(const tok_case *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const tok_case *c = &rows[i];
		pw_claims cl;
		char why[256] = "";
		char *tok = sign(c->signer, c->claims, NULL);
		memset(&cl, 0x5a, sizeof(cl));
		pw_status st = pw_jwt_verify(verifiers[c->cfg], tok, NOW, &cl, why, sizeof(why));
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
	pw_claims cl;

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
	char sub320[PW_OWNER_MAX + 1], sub321[PW_OWNER_MAX + 2];
	char c320[512], c321[512];

	memset(sub320, 'a', PW_OWNER_MAX);
	sub320[PW_OWNER_MAX] = '\0';
	memset(sub321, 'b', PW_OWNER_MAX + 1);
	sub321[PW_OWNER_MAX + 1] = '\0';
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
		pw_claims cl;
		char why[256] = "";
		ck_assert_msg(pw_jwt_verify(verifiers[CFG_HS], valid, NOW, &cl, why, sizeof(why)) ==
		                  PW_OK,
		              "hand-built valid token refused: %s", why);
		ck_assert_str_eq(cl.owner, OWNER);
	}
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_claims cl;
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
	pw_claims cl;
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
	pw_claims cl;
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
	pw_claims cl;
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
	pw_claims cl;
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

START_TEST(test_base64url_decode)
{
	static const struct {
		const char *name;
		const char *in;
		size_t in_len; /**< 0: strlen */
		size_t out_size;
		long want;
		const char *bytes; /**< with want >= 0 */
	} rows[] = {
	    {"empty", "", 0, 8, 0, ""},
	    {"1 byte", "YQ", 0, 8, 1, "a"},
	    {"2 bytes", "YWI", 0, 8, 2, "ab"},
	    {"3 bytes", "YWJj", 0, 8, 3, "abc"},
	    {"4 bytes", "YWJjZA", 0, 8, 4, "abcd"},
	    {"alphabet - and _", "-_-_", 0, 8, 3, "\xfb\xff\xbf"},
	    {"JSON header", "eyJhbGciOiJub25lIn0", 0, 64, 14, "{\"alg\":\"none\"}"},
	    {"in_len respected", "YWJjZGVm", 4, 8, 3, "abc"},
	    {"exact fit with NUL", "YWJj", 0, 4, 3, "abc"},
	    {"no room for NUL", "YWJj", 0, 3, -1, NULL},
	    {"too small", "YWJjZGVm", 0, 4, -1, NULL},
	    {"padding =", "YQ==", 0, 8, -1, NULL},
	    {"standard +", "+/+/", 0, 8, -1, NULL},
	    {"standard /", "ab/c", 0, 8, -1, NULL},
	    {"space", "YW Jj", 0, 8, -1, NULL},
	    {"dot", "YW.j", 0, 8, -1, NULL},
	    {"non-ASCII", "YW\xc3\xb1", 0, 8, -1, NULL},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		unsigned char out[64];
		size_t in_len = rows[i].in_len ? rows[i].in_len : strlen(rows[i].in);
		memset(out, 0x7e, sizeof(out));
		long got = pw_base64url_decode(rows[i].in, in_len, out, rows[i].out_size);
		ck_assert_msg(got == rows[i].want, "row '%s': got %ld, want %ld", rows[i].name, got,
		              rows[i].want);
		if (got >= 0) {
			ck_assert_msg(memcmp(out, rows[i].bytes, (size_t)got) == 0,
			              "row '%s': wrong bytes", rows[i].name);
			ck_assert_msg(out[got] == '\0', "row '%s': not NUL-terminated",
			              rows[i].name);
		}
		for (size_t k = rows[i].out_size; k < sizeof(out); k++)
			ck_assert_msg(out[k] == 0x7e, "row '%s': wrote past out_size at %zu",
			              rows[i].name, k);
	}
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
	suite_add_tcase(s, tc);

	tc = tcase_create("helpers");
	tcase_add_test(tc, test_verifier_key_is_the_configs);
	tcase_add_test(tc, test_base64url_decode);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(jwt_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
