/* patient-worker: `migrate` applies the schema, `run` serves commands until SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pw_config.h"
#include "pw_log.h"
#include "pw_migrate.h"
#include "pw_worker.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	if (stop_requested)
		_exit(1); /* a second signal: the operator wants out now */
	stop_requested = 1;
}

static int setup_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
		return -1;
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: patient-worker run|migrate [--setting=value ...]\n"
	             "  run      serve patient commands from Kafka until SIGTERM or SIGINT\n"
	             "  migrate  apply the built-in database migrations (safe to repeat)\n\n");
	pw_config_print_help(out);
}

static int cmd_migrate(const pw_config *cfg)
{
	char err[1024];
	int applied = 0;
	pw_status st = pw_migrate_run(cfg->database_url, &applied, err, sizeof(err));

	if (st != PW_OK) {
		PW_LOG_ERROR(NULL, "migrate failed: %s", err);
		return 1;
	}
	PW_LOG_INFO(NULL, "migrate done: %d applied, %zu known", applied, pw_migrations_count);
	return 0;
}

static int cmd_run(const pw_config *cfg)
{
	char err[512] = "";
	pw_worker *w = NULL;
	int rc;

	if (setup_signals() != 0) {
		PW_LOG_ERROR(NULL, "cannot install signal handlers");
		return 1;
	}
	pw_config_log(cfg);
	pw_status st = pw_worker_create(cfg, &w, err, sizeof(err));
	if (st != PW_OK) {
		fprintf(stderr, "%s\n", err[0] ? err : "cannot start the worker");
		return st == PW_E_CONFIG ? 2 : 1;
	}
	rc = pw_worker_run(w, &stop_requested);
	pw_worker_destroy(w);
	return rc;
}

int main(int argc, char **argv)
{
	pw_config cfg;
	unsigned need;
	int rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "run") == 0) {
		need = PW_CFG_NEED_ALL;
	} else if (strcmp(argv[1], "migrate") == 0) {
		need = PW_CFG_NEED_DB;
	} else {
		fprintf(stderr, "unknown command '%s'; try patient-worker --help\n", argv[1]);
		return 2;
	}
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		}
	if (pw_config_load(&cfg, argc - 1, argv + 1, need, stderr) != PW_OK) {
		pw_config_free(&cfg);
		return 2;
	}
	rc = strcmp(argv[1], "run") == 0 ? cmd_run(&cfg) : cmd_migrate(&cfg);
	pw_config_free(&cfg);
	return rc;
}
