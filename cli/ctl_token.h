/* Who patientctl speaks as: a token given, or one minted (HS256, development) for --sub. */
#ifndef CTL_TOKEN_H
#define CTL_TOKEN_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "ctl_exit.h"
#include "ctl_opts.h"
#include "pw_config.h"
#include "pw_status.h"

/* A development token for sub, signed with cfg's JWT_SECRET (HS256), valid ttl_s from now,
 * with scope (NULL: read and write), and the owner claim, iss and aud the worker expects
 * under cfg. Caller frees; NULL when libjwt failed. */
char *ctl_token_mint(const pw_config *cfg, const char *sub, long ttl_s, const char *scope,
                     time_t now);

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
