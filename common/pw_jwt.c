/* JWT verification. libjwt 1.10 checks the signature only, and takes the algorithm from
 * the token itself; the pinning and every claim rule of the contract live here. */
#include "pw_jwt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>

/* A header larger than this is not a header we issue; it is refused before decoding. */
#define HEADER_MAX 2048

struct pw_jwt_verifier {
	const pw_config *cfg;
	jwt_alg_t alg;
	const char *alg_name;
};

pw_status pw_jwt_verifier_create(const pw_config *cfg, pw_jwt_verifier **out)
{
	pw_jwt_verifier *v;

	*out = NULL;
	/* libjwt 1.10 accepts any token without checking a signature when the key is
	 * empty: refuse to build a verifier that would do that. */
	if (cfg->jwt_key == NULL || cfg->jwt_key_len == 0)
		return PW_E_CONFIG;
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return PW_E_NOMEM;
	v->cfg = cfg;
	switch (cfg->jwt_alg) {
	case PW_ALG_HS256:
		v->alg = JWT_ALG_HS256;
		v->alg_name = "HS256";
		break;
	case PW_ALG_RS256:
		v->alg = JWT_ALG_RS256;
		v->alg_name = "RS256";
		break;
	case PW_ALG_ES256:
		v->alg = JWT_ALG_ES256;
		v->alg_name = "ES256";
		break;
	default:
		free(v);
		return PW_E_CONFIG;
	}
	*out = v;
	return PW_OK;
}

void pw_jwt_verifier_destroy(pw_jwt_verifier *v)
{
	free(v);
}

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long pw_base64url_decode(const char *in, size_t in_len, unsigned char *out, size_t out_size)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;

	if (in_len % 4 == 1) /* no valid encoding has this length */
		return -1;
	for (size_t i = 0; i < in_len; i++) {
		int v = b64url_value((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 >= out_size)
				return -1;
			out[o++] = (unsigned char)((acc >> bits) & 0xff);
		}
	}
	if (out_size == 0)
		return -1;
	out[o] = '\0';
	return (long)o;
}

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(why, why_size, __VA_ARGS__);                                              \
		goto out;                                                                          \
	} while (0)

/* Checks what libjwt would not: three segments of the base64url alphabet, and a header
 * that is a JSON object naming exactly the configured algorithm and no `crit`. */
static int precheck(const pw_jwt_verifier *v, const char *token, char *why, size_t why_size)
{
	const char *dot1 = strchr(token, '.');
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	unsigned char header[HEADER_MAX + 1];
	json_t *h = NULL;
	json_error_t jerr;
	int ok = 0;

	if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
		FAIL("token is not a compact JWS (three segments)");
	if (dot1 == token || dot2 == dot1 + 1 || dot2[1] == '\0')
		FAIL("token has an empty segment");
	for (const char *p = token; *p; p++)
		if (*p != '.' && b64url_value((unsigned char)*p) < 0)
			FAIL("token is not base64url");
	long n = pw_base64url_decode(token, (size_t)(dot1 - token), header, sizeof(header));
	if (n < 0)
		FAIL("token header is not valid");
	h = json_loadb((const char *)header, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(h))
		FAIL("token header is not a JSON object");
	json_t *alg = json_object_get(h, "alg");
	if (!json_is_string(alg) || strcmp(json_string_value(alg), v->alg_name) != 0)
		FAIL("token algorithm is not the one configured");
	/* RFC 7515 4.1.11: extensions named in crit must be understood; we know none. */
	if (json_object_get(h, "crit") != NULL)
		FAIL("token header has critical extensions");
	ok = 1;
out:
	json_decref(h);
	return ok;
}

/* exp, nbf, iat are NumericDate: a JSON number (RFC 7519 2). */
static int numeric_date(json_t *claims, const char *name, int64_t *out, int *present)
{
	json_t *v = json_object_get(claims, name);
	*present = v != NULL;
	if (v == NULL)
		return 1;
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return 1;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d != d || d > 9.2e18 || d < -9.2e18)
			return 0;
		*out = (int64_t)d;
		return 1;
	}
	return 0;
}

static int audience_matches(json_t *aud, const char *want)
{
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	if (json_is_array(aud)) {
		size_t i;
		json_t *a;
		json_array_foreach(aud, i, a)
		{
			if (json_is_string(a) && strcmp(json_string_value(a), want) == 0)
				return 1;
		}
	}
	return 0;
}

static int scope_has(const char *scope, const char *want)
{
	size_t n = strlen(want);
	const char *p = scope;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ' ')
			e++;
		if ((size_t)(e - p) == n && strncmp(p, want, n) == 0)
			return 1;
		p = e;
	}
	return 0;
}

pw_status pw_jwt_verify(const pw_jwt_verifier *v, const char *token, int64_t now_s,
                        pw_claims *claims, char *why, size_t why_size)
{
	const pw_config *cfg = v->cfg;
	pw_status st = PW_E_AUTH;
	jwt_t *jwt = NULL;
	char *grants = NULL;
	json_t *c = NULL;
	json_error_t jerr;
	int64_t t;
	int present;

	memset(claims, 0, sizeof(*claims));
	snprintf(why, why_size, "token refused");
	if (token == NULL || *token == '\0')
		FAIL("token missing");
	if (!precheck(v, token, why, why_size))
		goto out;
	if (jwt_decode(&jwt, token, cfg->jwt_key, (int)cfg->jwt_key_len) != 0 || jwt == NULL)
		FAIL("token signature is not valid");
	/* Pinned twice: the header check above, and what libjwt says it verified. */
	if (jwt_get_alg(jwt) != v->alg)
		FAIL("token algorithm is not the one configured");
	grants = jwt_get_grants_json(jwt, NULL);
	if (grants == NULL)
		FAIL("token claims are not readable");
	c = json_loads(grants, 0, &jerr);
	if (!json_is_object(c))
		FAIL("token claims are not a JSON object");

	if (!numeric_date(c, "exp", &t, &present) || !present)
		FAIL("token has no valid exp");
	if (now_s > t + cfg->jwt_leeway_s)
		FAIL("token expired");
	if (!numeric_date(c, "nbf", &t, &present))
		FAIL("token nbf is not a number");
	if (present && t > now_s + cfg->jwt_leeway_s)
		FAIL("token not yet valid");
	if (!numeric_date(c, "iat", &t, &present))
		FAIL("token iat is not a number");
	if (present && t > now_s + cfg->jwt_leeway_s)
		FAIL("token issued in the future");
	if (cfg->jwt_issuer != NULL) {
		json_t *iss = json_object_get(c, "iss");
		if (!json_is_string(iss) || strcmp(json_string_value(iss), cfg->jwt_issuer) != 0)
			FAIL("token issuer is not accepted");
	}
	if (cfg->jwt_audience != NULL &&
	    !audience_matches(json_object_get(c, "aud"), cfg->jwt_audience))
		FAIL("token audience is not accepted");

	json_t *owner = json_object_get(c, cfg->jwt_owner_claim);
	if (!json_is_string(owner) || json_string_length(owner) == 0)
		FAIL("token has no %s", strcmp(cfg->jwt_owner_claim, "sub") == 0 ? "sub" : "owner");
	if (json_string_length(owner) > PW_OWNER_MAX)
		FAIL("token owner is longer than %d bytes", PW_OWNER_MAX);
	/* The owner goes into SQL parameters and logs; a NUL inside would cut it short. */
	if (strlen(json_string_value(owner)) != json_string_length(owner))
		FAIL("token owner is not valid");
	memcpy(claims->owner, json_string_value(owner), json_string_length(owner) + 1);

	json_t *scope = json_object_get(c, "scope");
	if (json_is_string(scope)) {
		claims->scope_read = scope_has(json_string_value(scope), "patients:read");
		claims->scope_write = scope_has(json_string_value(scope), "patients:write");
	}
	why[0] = '\0';
	st = PW_OK;
out:
	json_decref(c);
	free(grants);
	jwt_free(jwt);
	return st;
}
