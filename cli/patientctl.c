/* patientctl: the client of patient-worker. `token` mints a development token; `create`,
 * `get` and `list` send one command and print its reply; `load` sends a file's rows. The
 * settings are the worker's (pw_config); see `patientctl --help`. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_exit.h"
#include "ctl_load.h"
#include "ctl_opts.h"
#include "ctl_request.h"
#include "ctl_token.h"
#include "pw_config.h"
#include "pw_envelope.h"

static ctl_exit cmd_token(const ctl_opts *o, const pw_config *cfg)
{
	char *tok;

	/* A key of patientctl's own: no JWT_SECRET involved, whatever JWT_ALG says. */
	if (o->jwks_out != NULL)
		return ctl_token_jwks(o, cfg, stdout, stderr);
	if (!ctl_token_can_mint(cfg, stderr))
		return CTL_EXIT_USAGE;
	tok = ctl_token_mint(cfg, o->sub, o->ttl_s, o->scope, time(NULL));
	if (tok == NULL) {
		fprintf(stderr, "patientctl: could not mint a token (libjwt)\n");
		return CTL_EXIT_FAILED;
	}
	printf("%s\n", tok);
	memset(tok, 0, strlen(tok));
	free(tok);
	return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILED;
}

int main(int argc, char **argv)
{
	ctl_opts o;
	pw_config cfg;
	ctl_token_identity id;
	ctl_exit rc;

	memset(&cfg, 0, sizeof(cfg));
	memset(&id, 0, sizeof(id));
	/* A closed stdout (patientctl list | head) is a write error to report, not a kill. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		fprintf(stderr, "patientctl: cannot ignore SIGPIPE\n");
		return CTL_EXIT_FAILED;
	}
	rc = ctl_opts_parse(&o, argc, argv, stderr);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (o.help) {
		ctl_opts_help(stdout, o.cmd);
		return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILED;
	}
	/* Only what a client uses is required: a token needs no broker. */
	if (pw_config_load(&cfg, o.cfg_argc, o.cfg_argv,
	                   o.cmd == CTL_CMD_TOKEN ? 0u : (unsigned)PW_CFG_NEED_KAFKA,
	                   stderr) != PW_OK) {
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	if (o.cmd == CTL_CMD_TOKEN) {
		rc = cmd_token(&o, &cfg);
		goto out;
	}
	const char *reply_topic = o.reply_topic ? o.reply_topic : cfg.topic_replies;
	if (!pw_envelope_reply_to_allowed(reply_topic, cfg.topic_replies)) {
		/* The worker refuses any other reply_to: the command would go unanswered. */
		fprintf(stderr, "--reply-topic: must be '%s' or start with '%s.'\n",
		        cfg.topic_replies, cfg.topic_replies);
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	rc = ctl_token_identity_init(&id, &o, &cfg, stderr);
	if (rc != CTL_EXIT_OK)
		goto out;
	if (o.cmd == CTL_CMD_LOAD)
		rc = ctl_load_run(&o, &cfg, &id, reply_topic, stdout, stderr);
	else
		rc = ctl_request_run(&o, &cfg, &id, reply_topic, stdout, stderr);
	if (fflush(stdout) != 0 && rc == CTL_EXIT_OK)
		rc = CTL_EXIT_FAILED;
out:
	ctl_token_identity_free(&id);
	pw_config_free(&cfg);
	return rc;
}
