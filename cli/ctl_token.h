/* Who patientctl speaks as: a token given, or one minted (HS256, development) for --sub;
 * and `token --jwks-out`, development tokens signed with a key whose public half patientctl
 * publishes in a JWK Set itself. */
#ifndef CTL_TOKEN_H
#define CTL_TOKEN_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include <openssl/evp.h>

#include "ctl_exit.h"
#include "ctl_jwk.h"
#include "ctl_opts.h"
#include "pw_config.h"
#include "pw_status.h"

/* A development token for sub, signed with cfg's JWT_SECRET (HS256), valid ttl_s from now,
 * with scope (NULL: read and write), and the owner claim, iss and aud the worker expects
 * under cfg. Caller frees; NULL when libjwt failed. */
char *ctl_token_mint(const pw_config *cfg, const char *sub, long ttl_s, const char *scope,
                     time_t now);

/* A compact JWS of claims_text (JSON) signed with key for alg, under the header
 * {"alg","typ":"JWT"} with "kid" when kid is not NULL. Caller frees; NULL with the reason on
 * errstr. Safe from several threads when each has its own key. */
char *ctl_token_jws(EVP_PKEY *key, ctl_jwk_alg alg, const char *kid, const char *claims_text,
                    char *errstr, size_t errstr_size);

/* The same claims as ctl_token_mint, signed with key (which must fit alg) under the header
 * {"alg","typ":"JWT","kid"}. Caller frees; NULL with the reason on errstr. */
char *ctl_token_mint_jws(const pw_config *cfg, EVP_PKEY *key, ctl_jwk_alg alg, const char *kid,
                         const char *sub, long ttl_s, const char *scope, time_t now, char *errstr,
                         size_t errstr_size);

/* `patientctl token --jwks-out FILE` (o->jwks_out set, o->has_alg): reads o->key_in or makes
 * a new key (written to o->key_out when given), adds its public JWK to FILE, and prints a
 * token signed with it on out. The private key is never printed. CTL_EXIT_OK; CTL_EXIT_USAGE
 * after one line on err naming the option when a key or file is wrong or cannot be written;
 * CTL_EXIT_FAILED when OpenSSL or out fails. Needs no JWT_SECRET. */
PW_MUST_CHECK ctl_exit ctl_token_jwks(const ctl_opts *o, const pw_config *cfg, FILE *out,
                                      FILE *err);

/* Can cfg mint tokens at all? When not, says why on err, naming the setting (JWT_ALG,
 * JWT_SECRET). */
bool ctl_token_can_mint(const pw_config *cfg, FILE *err);

typedef struct ctl_token_identity {
	char *token;     /**< the current token (owned) */
	const char *sub; /**< non-NULL: token is minted for it and renewed before it expires */
	time_t expires;  /**< of a minted token */
	char owner[321]; /**< the owner claim read from the token, unverified; "" if none */
	const pw_config *cfg;
} ctl_token_identity;

/* Fills id (the caller's; free it with ctl_token_identity_free) from --token, --sub or
 * PW_TOKEN (in that order); it borrows cfg and o->sub. CTL_EXIT_OK, or CTL_EXIT_USAGE after
 * a line naming what is missing or wrong. The token is never printed. */
PW_MUST_CHECK ctl_exit ctl_token_identity_init(ctl_token_identity *id, const ctl_opts *o,
                                               const pw_config *cfg, FILE *err);

/* The token to put in a command sent now (id's, valid until the next call); a minted one is
 * renewed when it has under five minutes left, so a long load never sends an expired one.
 * NULL when renewal failed. */
const char *ctl_token_current(ctl_token_identity *id, time_t now);

/* Wipes and frees the token; id can be filled again. */
void ctl_token_identity_free(ctl_token_identity *id);

#endif
