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

char *ctl_token_mint(const pw_config *cfg, const char *sub, long ttl_s, const char *scope,
                     time_t now)
{
	jwt_t *jwt = NULL;
	char *tok = NULL;
	const char *owner_claim = cfg->jwt_owner_claim ? cfg->jwt_owner_claim : "sub";

	if (jwt_new(&jwt) != 0)
		return NULL;
	if (jwt_add_grant(jwt, "sub", sub) != 0 || jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
	    jwt_add_grant_int(jwt, "exp", (long)now + ttl_s) != 0 ||
	    jwt_add_grant(jwt, "scope", scope ? scope : "patients:read patients:write") != 0)
		goto out;
	/* The worker reads the owner from JWT_OWNER_CLAIM and checks iss/aud when set: a
	 * minted token must pass the same configuration the worker runs with. */
	if (!reserved_claim(owner_claim) && jwt_add_grant(jwt, owner_claim, sub) != 0)
		goto out;
	if (cfg->jwt_issuer && jwt_add_grant(jwt, "iss", cfg->jwt_issuer) != 0)
		goto out;
	if (cfg->jwt_audience && jwt_add_grant(jwt, "aud", cfg->jwt_audience) != 0)
		goto out;
	if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)cfg->jwt_secret,
	                (int)strlen(cfg->jwt_secret)) != 0)
		goto out;
	tok = jwt_encode_str(jwt);
out:
	jwt_free(jwt);
	return tok;
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
