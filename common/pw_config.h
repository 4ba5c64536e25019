/* Configuration: every setting is an environment variable, a --flag may override it. */
#ifndef PW_CONFIG_H
#define PW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "pw_status.h"

typedef enum pw_config_jwt_alg {
	PW_ALG_HS256 = 0,
	PW_ALG_RS256,
	PW_ALG_ES256,
	PW_ALG_EDDSA,
} pw_config_jwt_alg;

/* The bit of an algorithm in pw_config.jwt_algs. */
#define PW_ALG_BIT(a) (1u << (unsigned)(a))

/* Where the keys come from: exactly one source is configured. */
typedef enum pw_config_key_source {
	PW_KEYS_SECRET = 0, /**< JWT_SECRET, HS256 */
	PW_KEYS_PEM,        /**< JWT_PUBLIC_KEY_FILE, one public key */
	PW_KEYS_JWKS_FILE,  /**< JWT_JWKS_FILE, a JWK Set on disk */
	PW_KEYS_JWKS_URL,   /**< JWT_JWKS_URL */
	PW_KEYS_OIDC,       /**< JWT_OIDC_ISSUER */
} pw_config_key_source;

typedef struct pw_config {
	char *kafka_brokers;
	char *group_id;
	char *database_url; /**< secret: may hold a password */
	char *database_role;
	char *jwt_alg_name;
	pw_config_jwt_alg jwt_alg;
	char *jwt_secret; /**< secret */
	char *jwt_public_key_file;
	char *jwt_jwks_file;
	char *jwt_jwks_url;
	char *jwt_oidc_issuer;
	int jwt_jwks_refresh_s;
	char *jwt_jwks_ca_file;
	char *jwt_issuer;   /**< NULL: not checked */
	char *jwt_audience; /**< NULL: not checked */
	int jwt_leeway_s;
	char *jwt_owner_claim;
	int jwt_require_scope;
	char *topic_create;
	char *topic_query;
	char *topic_replies;
	char *topic_dlq;
	int max_message_bytes;
	int max_inflight;        /**< records read but not yet acknowledged, at most */
	int shutdown_timeout_ms; /**< how long SIGTERM waits for replies in flight */
	char *log_level;
	char *cursor_secret;   /**< secret; NULL: a random key per process */
	int batch_max;         /**< creates written in one transaction, at most */
	int batch_wait_ms;     /**< how long a batch waits to fill */
	int db_write_sessions; /**< the write lane's database sessions (threads) */
	int db_query_sessions; /**< the query lane's database sessions (threads) */
	int jwt_cache_size;    /**< verified tokens kept per lane (0: no cache) */
	char *http_addr;       /**< host:port of the metrics/health listener; NULL: none */

	/* Derived at load time. */
	pw_config_key_source jwt_source;
	unsigned jwt_algs;      /**< PW_ALG_BIT of every algorithm a token may name */
	unsigned char *jwt_key; /**< secret bytes, PEM text or JWK Set text, NUL-terminated */
	size_t jwt_key_len;
} pw_config;

/* Which settings a command needs: `migrate` needs no broker and no key. */
enum {
	PW_CFG_NEED_KAFKA = 1 << 0,
	PW_CFG_NEED_DB = 1 << 1,
	PW_CFG_NEED_JWT = 1 << 2,
	PW_CFG_NEED_ALL = 0x7,
};

/* Fills cfg from the environment, then from argv flags (--name=value or --name value,
 * the name being the variable in lower case with '-' for '_'). Leftover positional
 * arguments are not touched. On a bad setting, writes one line per problem to err,
 * each naming the setting, and returns PW_E_CONFIG; cfg must still be freed. cfg owns
 * its strings and key either way (pw_config_free). A valid LOG_LEVEL takes effect at
 * once (pw_log_min_level). Reads JWT_PUBLIC_KEY_FILE or JWT_JWKS_FILE when the command
 * needs the key (and parses it, so a bad key is a configuration error): the only I/O, a
 * local file. */
PW_MUST_CHECK pw_status pw_config_load(pw_config *cfg, int argc, char **argv, unsigned need,
                                       FILE *err);

/* Frees every string the config owns. NULL-safe; cfg is left zeroed. */
void pw_config_free(pw_config *cfg);

/* True when var (an environment variable name) is one of the settings above. */
bool pw_config_is_setting(const char *var);

/* Prints every setting with its default and meaning. */
void pw_config_print_help(FILE *out);

/* Logs the effective configuration, secrets masked. */
void pw_config_log(const pw_config *cfg);

#endif
