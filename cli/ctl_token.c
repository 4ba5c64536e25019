/* Tokens for patientctl; see ctl_token.h. */
#include "ctl_token.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>

#include "pw_util.h"

/* A minted token is renewed when less than this is left of it. */
#define RENEW_MARGIN_S 300
/* Largest token payload we look into for the owner. */
#define CLAIMS_MAX 8192

/* Claims set by ctl_token_mint itself; an owner claim of that name is not added again. */
static bool reserved_claim(const char *name)
{
	static const char *const own[] = {"sub", "iat", "exp", "nbf", "scope", "iss", "aud"};

	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strcmp(name, own[i]) == 0)
			return true;
	return false;
}

/* The claims of a minted token, whatever signs it: sub, iat, exp, scope, the owner claim, and
 * iss and aud the worker expects under cfg. New (caller's); NULL when memory runs out. */
static json_t *mint_claims(const pw_config *cfg, const char *sub, long ttl_s, const char *scope,
                           time_t now)
{
	json_t *c = json_object();
	const char *owner_claim = cfg->jwt_owner_claim ? cfg->jwt_owner_claim : "sub";

	if (c == NULL)
		return NULL;
	/* json_object_set_new takes the value's reference even when it fails. */
	if (json_object_set_new(c, "sub", json_string(sub)) != 0 ||
	    json_object_set_new(c, "iat", json_integer((json_int_t)now)) != 0 ||
	    json_object_set_new(c, "exp", json_integer((json_int_t)now + ttl_s)) != 0 ||
	    json_object_set_new(c, "scope",
	                        json_string(scope ? scope : "patients:read patients:write")) != 0)
		goto fail;
	/* The worker reads the owner from JWT_OWNER_CLAIM and checks iss/aud when set: a
	 * minted token must pass the same configuration the worker runs with. */
	if (!reserved_claim(owner_claim) &&
	    json_object_set_new(c, owner_claim, json_string(sub)) != 0)
		goto fail;
	if (cfg->jwt_issuer && json_object_set_new(c, "iss", json_string(cfg->jwt_issuer)) != 0)
		goto fail;
	if (cfg->jwt_audience && json_object_set_new(c, "aud", json_string(cfg->jwt_audience)) != 0)
		goto fail;
	return c;
fail:
	json_decref(c);
	return NULL;
}

char *ctl_token_mint(const pw_config *cfg, const char *sub, long ttl_s, const char *scope,
                     time_t now)
{
	jwt_t *jwt = NULL;
	json_t *claims = NULL;
	char *text = NULL;
	char *tok = NULL;

	claims = mint_claims(cfg, sub, ttl_s, scope, now);
	if (claims == NULL)
		goto out;
	text = json_dumps(claims, JSON_COMPACT);
	if (text == NULL || jwt_new(&jwt) != 0)
		goto out;
	/* The claims come from mint_claims, the same as ctl_token_mint_jws's. */
	if (jwt_add_grants_json(jwt, text) != 0)
		goto out;
	if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)cfg->jwt_secret,
	                (int)strlen(cfg->jwt_secret)) != 0)
		goto out;
	tok = jwt_encode_str(jwt);
out:
	jwt_free(jwt);
	free(text);
	json_decref(claims);
	return tok;
}

/* base64url of the n bytes at p, NUL-terminated; caller frees; NULL out of memory. */
static char *b64_of(const void *p, size_t n)
{
	size_t size = pw_util_b64url_encoded_len(n) + 1;
	char *s = malloc(size);

	if (s != NULL && pw_util_b64url_encode(p, n, s, size) != PW_OK) {
		free(s);
		s = NULL;
	}
	return s;
}

/* a "." b, freshly allocated; NULL out of memory. */
static char *join(const char *a, const char *b)
{
	size_t size = strlen(a) + 1 + strlen(b) + 1;
	char *s = malloc(size);

	if (s != NULL)
		snprintf(s, size, "%s.%s", a, b);
	return s;
}

char *ctl_token_jws(EVP_PKEY *key, ctl_jwk_alg alg, const char *kid, const char *claims_text,
                    char *errstr, size_t errstr_size)
{
	json_t *header = NULL;
	char *header_text = NULL, *header_b64 = NULL, *claims_b64 = NULL, *sig_b64 = NULL;
	char *input = NULL, *tok = NULL;
	unsigned char sig[CTL_JWK_SIG_MAX];
	size_t sig_len = 0;

	/* The worker picks the key by kid and checks that its type fits alg, so both go in. */
	header = json_pack("{s:s, s:s}", "alg", ctl_jwk_alg_name(alg), "typ", "JWT");
	if (header == NULL || (kid != NULL && json_object_set_new(header, "kid", json_string(kid))))
		goto nomem;
	header_text = json_dumps(header, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (header_text == NULL)
		goto nomem;
	header_b64 = b64_of(header_text, strlen(header_text));
	claims_b64 = b64_of(claims_text, strlen(claims_text));
	if (header_b64 == NULL || claims_b64 == NULL)
		goto nomem;
	input = join(header_b64, claims_b64);
	if (input == NULL)
		goto nomem;
	if (ctl_jwk_sign(key, alg, input, strlen(input), sig, sizeof(sig), &sig_len, errstr,
	                 errstr_size) != PW_OK)
		goto out;
	sig_b64 = b64_of(sig, sig_len);
	if (sig_b64 == NULL)
		goto nomem;
	tok = join(input, sig_b64);
	if (tok == NULL)
		goto nomem;
	goto out;
nomem:
	snprintf(errstr, errstr_size, "out of memory");
out:
	free(sig_b64);
	free(input);
	free(claims_b64);
	free(header_b64);
	free(header_text);
	json_decref(header);
	return tok;
}

char *ctl_token_mint_jws(const pw_config *cfg, EVP_PKEY *key, ctl_jwk_alg alg, const char *kid,
                         const char *sub, long ttl_s, const char *scope, time_t now, char *errstr,
                         size_t errstr_size)
{
	json_t *claims = mint_claims(cfg, sub, ttl_s, scope, now);
	char *claims_text = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
	char *tok = NULL;

	if (claims_text == NULL)
		snprintf(errstr, errstr_size, "out of memory");
	else
		tok = ctl_token_jws(key, alg, kid, claims_text, errstr, errstr_size);
	free(claims_text);
	json_decref(claims);
	return tok;
}

/* The public JWK of key with its kid (o->kid, or the thumbprint), alg and use; NULL after a
 * line on err. */
static json_t *published_jwk(const ctl_opts *o, EVP_PKEY *key, FILE *err)
{
	json_t *jwk = NULL;
	char thumb[CTL_JWK_THUMBPRINT_SIZE];
	char why[256];

	if (ctl_jwk_public(key, o->alg, &jwk, why, sizeof(why)) != PW_OK) {
		fprintf(err, "patientctl: %s\n", why);
		return NULL;
	}
	if (ctl_jwk_thumbprint(jwk, thumb, sizeof(thumb)) != PW_OK) {
		fprintf(err, "patientctl: cannot compute the key's thumbprint\n");
		goto fail;
	}
	/* alg and use pin the key to its one purpose (RFC 7517 4.2, 4.4): the worker refuses a
	 * token whose alg disagrees with them. */
	if (json_object_set_new(jwk, "kid", json_string(o->kid ? o->kid : thumb)) != 0 ||
	    json_object_set_new(jwk, "alg", json_string(ctl_jwk_alg_name(o->alg))) != 0 ||
	    json_object_set_new(jwk, "use", json_string("sig")) != 0) {
		fprintf(err, "patientctl: out of memory\n");
		goto fail;
	}
	return jwk;
fail:
	json_decref(jwk);
	return NULL;
}

ctl_exit ctl_token_jwks(const ctl_opts *o, const pw_config *cfg, FILE *out, FILE *err)
{
	ctl_exit rc = CTL_EXIT_FAILED;
	EVP_PKEY *key = NULL;
	json_t *jwk = NULL;
	char *tok = NULL;
	char why[512];

	if (o->key_in != NULL) {
		if (ctl_jwk_read_private(o->key_in, o->alg, &key, why, sizeof(why)) != PW_OK) {
			fprintf(err, "--key-in: %s\n", why);
			rc = CTL_EXIT_USAGE;
			goto out;
		}
	} else if (ctl_jwk_generate(o->alg, &key, why, sizeof(why)) != PW_OK) {
		fprintf(err, "patientctl: %s\n", why);
		goto out;
	}
	jwk = published_jwk(o, key, err);
	if (jwk == NULL)
		goto out;
	/* Minted before any file is touched: a failure here leaves no key and no set behind. */
	tok = ctl_token_mint_jws(cfg, key, o->alg, json_string_value(json_object_get(jwk, "kid")),
	                         o->sub, o->ttl_s, o->scope, time(NULL), why, sizeof(why));
	if (tok == NULL) {
		fprintf(err, "patientctl: could not mint a token: %s\n", why);
		goto out;
	}
	/* The private key before the set: if the set cannot be written the key is still there
	 * to add with --key-in; the other order would publish a key nobody holds. */
	if (o->key_out != NULL &&
	    ctl_jwk_write_private(o->key_out, key, why, sizeof(why)) != PW_OK) {
		fprintf(err, "--key-out: %s\n", why);
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	if (ctl_jwk_set_put(o->jwks_out, jwk, why, sizeof(why)) != PW_OK) {
		fprintf(err, "--jwks-out: %s\n", why);
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	if (fprintf(out, "%s\n", tok) < 0 || fflush(out) != 0) {
		fprintf(err, "patientctl: cannot write the token\n");
		goto out;
	}
	rc = CTL_EXIT_OK;
out:
	if (tok != NULL) {
		memset(tok, 0, strlen(tok));
		free(tok);
	}
	json_decref(jwk);
	EVP_PKEY_free(key);
	return rc;
}

bool ctl_token_can_mint(const pw_config *cfg, FILE *err)
{
	if (cfg->jwt_alg != PW_ALG_HS256) {
		fprintf(err,
		        "JWT_ALG: patientctl mints HS256 tokens only (JWT_ALG is %s); use "
		        "--token with one from your identity provider\n",
		        cfg->jwt_alg_name);
		return false;
	}
	if (cfg->jwt_secret == NULL) {
		fprintf(err, "JWT_SECRET: required to mint a token\n");
		return false;
	}
	/* The worker refuses shorter HS256 keys (RFC 7518 3.2); a token signed with one
	 * would only come back 401. */
	if (strlen(cfg->jwt_secret) < 32) {
		fprintf(err, "JWT_SECRET: must be at least 32 bytes for HS256\n");
		return false;
	}
	return true;
}

/* The owner claim of a token, read without verifying it: only to tell one owner's journal
 * from another's. "" when the token does not look like a JWT. */
static void read_owner(const char *token, const char *claim, char *out, size_t size)
{
	const char *d1 = strchr(token, '.');
	const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	unsigned char buf[CLAIMS_MAX];
	json_t *claims = NULL;

	out[0] = '\0';
	if (d2 == NULL)
		return;
	size_t n;
	if (pw_util_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf, sizeof(buf), &n) != PW_OK)
		return;
	claims = json_loadb((const char *)buf, n, 0, NULL);
	json_t *v = json_object_get(claims, claim);
	if (json_is_string(v))
		snprintf(out, size, "%s", json_string_value(v));
	json_decref(claims);
}

ctl_exit ctl_token_identity_init(ctl_token_identity *id, const ctl_opts *o, const pw_config *cfg,
                                 FILE *err)
{
	const char *given = o->token;

	memset(id, 0, sizeof(*id));
	id->cfg = cfg;
	if (given == NULL && o->sub == NULL) {
		given = getenv("PW_TOKEN");
		if (given == NULL || *given == '\0') {
			fprintf(err,
			        "--token: required (or --sub EMAIL with JWT_SECRET, or PW_TOKEN "
			        "in the environment)\n");
			return CTL_EXIT_USAGE;
		}
	}
	if (given != NULL) {
		id->token = strdup(given);
		if (id->token == NULL) {
			fprintf(err, "patientctl: out of memory\n");
			return CTL_EXIT_USAGE;
		}
		read_owner(id->token, cfg->jwt_owner_claim ? cfg->jwt_owner_claim : "sub",
		           id->owner, sizeof(id->owner));
		return CTL_EXIT_OK;
	}
	if (!ctl_token_can_mint(cfg, err))
		return CTL_EXIT_USAGE;
	id->sub = o->sub;
	snprintf(id->owner, sizeof(id->owner), "%s", o->sub);
	if (ctl_token_current(id, time(NULL)) == NULL) {
		fprintf(err, "--sub: could not mint a token\n");
		return CTL_EXIT_USAGE;
	}
	return CTL_EXIT_OK;
}

const char *ctl_token_current(ctl_token_identity *id, time_t now)
{
	if (id->sub == NULL || (id->token != NULL && id->expires - now > RENEW_MARGIN_S))
		return id->token;
	char *fresh = ctl_token_mint(id->cfg, id->sub, 3600, NULL, now);
	if (fresh == NULL)
		return NULL;
	free(id->token);
	id->token = fresh;
	id->expires = now + 3600;
	return id->token;
}

void ctl_token_identity_free(ctl_token_identity *id)
{
	if (id->token != NULL) {
		memset(id->token, 0, strlen(id->token));
		free(id->token);
	}
	memset(id, 0, sizeof(*id));
}
