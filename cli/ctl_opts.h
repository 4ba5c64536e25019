/* patientctl's command line: which command, its options, their checks, and --help. */
#ifndef CTL_OPTS_H
#define CTL_OPTS_H

#include <stdbool.h>
#include <stdio.h>

#include "ctl_exit.h"
#include "ctl_input.h"
#include "ctl_jwk.h"
#include "pw_status.h"

/* The commands. The constants keep their short CTL_CMD_ family name: every module that
 * dispatches on a command spells them. */
typedef enum ctl_opts_cmd {
	CTL_CMD_NONE = 0,
	CTL_CMD_TOKEN,
	CTL_CMD_CREATE,
	CTL_CMD_UPDATE,
	CTL_CMD_DELETE,
	CTL_CMD_GET,
	CTL_CMD_LIST,
	CTL_CMD_LOAD,
} ctl_opts_cmd;

/* create's field flags (--nombre ...); the same names as the payload's fields. */
enum {
	CTL_F_NOMBRE,
	CTL_F_APELLIDO_PATERNO,
	CTL_F_APELLIDO_MATERNO,
	CTL_F_DNI,
	CTL_F_FECHA_NACIMIENTO,
	CTL_F_SEXO,
	CTL_NFIELDS,
};
/* The payload's name of each field flag, by CTL_F_* index. */
extern const char *const ctl_opts_field_names[CTL_NFIELDS];

#define CTL_OPTS_MAX_CFG_ARGS 32

typedef struct ctl_opts {
	ctl_opts_cmd cmd;
	bool help;
	const char *token;       /**< --token; NULL: --sub or PW_TOKEN */
	const char *sub;         /**< --sub */
	const char *reply_topic; /**< NULL: TOPIC_REPLIES */
	const char *request_id;  /**< NULL: random */
	int timeout_s;
	long ttl_s;
	const char *scope;
	/* token --jwks-out: patientctl signs with a key of its own and publishes it. */
	const char *jwks_out; /**< the JWK Set to add the public key to; NULL: HS256 */
	bool has_alg;
	ctl_jwk_alg alg;     /**< --alg, when has_alg */
	const char *kid;     /**< NULL: the key's RFC 7638 thumbprint */
	const char *key_in;  /**< PEM private key to sign with; NULL: a new key */
	const char *key_out; /**< where a new key is written (PKCS#8, 0600); NULL: nowhere */
	const char *payload; /**< create/update --payload, checked to be a JSON object */
	const char *fields[CTL_NFIELDS]; /**< create's and update's fields; fields[CTL_F_DNI] is
	                                      list's filter */
	long long id;                    /**< get, update, delete --id; 0: not given */
	long long version;               /**< update, delete --version; 0: not given */
	bool has_limit;
	long long limit;
	const char *cursor, *q;
	const char *file;        /**< load FILE */
	ctl_input_format format; /**< load: never CTL_INPUT_AUTO once parsed */
	int inflight;
	const char *id_prefix, *journal, *errors;
	/* Setting flags (--kafka-brokers=...) for pw_config_load; [0] is the program name. */
	int cfg_argc;
	char *cfg_argv[CTL_OPTS_MAX_CFG_ARGS + 1];
} ctl_opts;

/* Parses argv (argv[1] is the command) into o, which borrows argv's strings. Returns
 * CTL_EXIT_OK, or CTL_EXIT_USAGE after one line on err that starts with what is wrong
 * (the option, the setting or the command). With --help anywhere, o->help is set and the
 * other checks are skipped. */
PW_MUST_CHECK ctl_exit ctl_opts_parse(ctl_opts *o, int argc, char **argv, FILE *err);

/* Usage of cmd (CTL_CMD_NONE: the overview), every option of it listed. */
void ctl_opts_help(FILE *out, ctl_opts_cmd cmd);

/* Parses "3600", "90s", "30m", "1h" or "2d" into *out, in seconds. PW_OK, or PW_E_INVALID
 * (*out untouched) for anything else or a duration outside 1 s to 366 d. */
PW_MUST_CHECK pw_status ctl_opts_parse_duration(const char *s, long *out);

#endif
