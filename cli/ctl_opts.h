/* patientctl's command line: which command, its options, their checks, and --help. */
#ifndef CTL_OPTS_H
#define CTL_OPTS_H

#include <stdio.h>

#include "ctl_exit.h"

typedef enum ctl_cmd {
	CTL_CMD_NONE = 0,
	CTL_CMD_TOKEN,
	CTL_CMD_CREATE,
	CTL_CMD_GET,
	CTL_CMD_LIST,
	CTL_CMD_LOAD,
} ctl_cmd;

typedef enum ctl_format {
	CTL_FMT_AUTO = 0,
	CTL_FMT_CSV,
	CTL_FMT_JSONL,
} ctl_format;

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
extern const char *const ctl_field_names[CTL_NFIELDS];

#define CTL_MAX_CFG_ARGS 32
#define CTL_TIMEOUT_MAX  86400

typedef struct ctl_opts {
	ctl_cmd cmd;
	int help;
	const char *token;       /**< --token; NULL: --sub or PW_TOKEN */
	const char *sub;         /**< --sub */
	const char *reply_topic; /**< NULL: TOPIC_REPLIES */
	const char *request_id;  /**< NULL: random */
	int timeout_s;
	long ttl_s;
	const char *scope;
	const char *payload;             /**< create --payload, checked to be a JSON object */
	const char *fields[CTL_NFIELDS]; /**< create's fields; fields[CTL_F_DNI] is list's filter */
	long long id;                    /**< get --id; 0: not given */
	int has_limit;
	long long limit;
	const char *cursor, *q;
	const char *file; /**< load FILE */
	ctl_format format;
	int inflight;
	const char *id_prefix, *journal, *errors;
	/* Setting flags (--kafka-brokers=...) for pw_config_load; [0] is the program name. */
	int cfg_argc;
	char *cfg_argv[CTL_MAX_CFG_ARGS + 1];
} ctl_opts;

/* Parses argv (argv[1] is the command) into o, which borrows argv's strings. Returns
 * CTL_EXIT_OK, or CTL_EXIT_USAGE after one line on err that starts with what is wrong
 * (the option, the setting or the command). With --help anywhere, o->help is set and the
 * other checks are skipped. */
ctl_exit ctl_opts_parse(ctl_opts *o, int argc, char **argv, FILE *err);

/* Usage of cmd (CTL_CMD_NONE: the overview), every option of it listed. */
void ctl_opts_help(FILE *out, ctl_cmd cmd);

/* Parses "3600", "90s", "30m", "1h" or "2d" into seconds (1 s to 366 d); 0 or -1. */
int ctl_parse_duration(const char *s, long *out);

#endif
