/* patient-worker: `migrate` applies the schema, `run` serves commands until SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "pw_command.h"
#include "pw_config.h"
#include "pw_cursor.h"
#include "pw_http.h"
#include "pw_httpc.h"
#include "pw_log.h"
#include "pw_metrics.h"
#include "pw_migrate.h"
#include "pw_replay.h"
#include "pw_worker.h"

/* Set by the signal handler and by a lane that ends (on its own thread); read by both
 * lanes. A lock-free atomic int is safe to store from a signal handler. */
static atomic_int stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	if (atomic_exchange(&stop_requested, 1))
		_exit(1); /* a second signal: the operator wants out now */
}

/* A configuration problem found after the settings were read (the database's role or
 * schema, a key): one log line, and the plain line on stderr the contract promises. */
static int config_error(const char *line)
{
	PW_LOG_ERROR(NULL, "%s", line);
	fprintf(stderr, "%s\n", line);
	return 2;
}

/* The exit status for a lane's or a command's status. */
static int exit_status(pw_status st)
{
	return st == PW_OK ? 0 : st == PW_E_CONFIG ? 2 : 1;
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
	fprintf(out, "usage: patient-worker run|migrate|replay|healthcheck [options] "
	             "[--setting=value ...]\n"
	             "  run      serve patient commands from Kafka until SIGTERM or SIGINT;\n"
	             "           /metrics, /healthz and /readyz on HTTP_ADDR\n"
	             "  migrate  apply the built-in database migrations (safe to repeat)\n"
	             "  healthcheck [--path /readyz]\n"
	             "           ask the worker listening on HTTP_ADDR; exit 0 when it answers\n"
	             "           200 (a container's health probe: the image has no curl)\n"
	             "  replay --from-beginning [--topic T] [--verify] [--reply]\n"
	             "           read a command topic from its start under a throwaway group;\n"
	             "           process every command again (publishing replies only with\n"
	             "           --reply), or with --verify write nothing and report whether the\n"
	             "           database agrees with the topic (exit 1 when it does not; needs a\n"
	             "           login that bypasses row-level security)\n\n");
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
	PW_LOG_INFO(NULL, "migrate done: %d applied, %zu known", applied, pw_migrate_count);
	return 0;
}

typedef struct lane_run {
	pw_worker *w;
	pw_status st;
	char err[512];
} lane_run;

static void *query_lane(void *arg)
{
	lane_run *l = arg;
	l->st = pw_worker_run(l->w, l->err, sizeof(l->err));
	atomic_store(&stop_requested, 1); /* a lane that ends takes the process down with it */
	return NULL;
}

/* A database that is reachable but unusable (a role that bypasses row-level security, a
 * schema not migrated) is bad configuration: say so before any Kafka client joins the
 * group. Unreachable is fine: the lanes wait for it. Returns an exit status, 0 to go on. */
static int check_database(const pw_config *cfg)
{
	char err[512] = "";
	pw_db *probe = NULL;
	pw_status st = pw_command_db(cfg, &probe, err, sizeof(err));

	if (st == PW_OK)
		st = pw_db_connect(probe, err, sizeof(err));
	pw_db_destroy(probe);
	if (st == PW_E_CONFIG)
		return config_error(err);
	if (st != PW_OK && st != PW_E_RETRY) {
		fprintf(stderr, "%s\n", err[0] ? err : "out of memory");
		return 1;
	}
	return 0;
}

/* Both lanes, creates on this thread and queries on their own, each with its own
 * consumer, producer and database session: a query never waits behind a bulk load.
 * Returns the exit status: the worse of the two lanes'. */
static int run_lanes(pw_worker *creates, lane_run *queries)
{
	char err[512] = "";
	pthread_t th;
	pw_status st;

	if (pthread_create(&th, NULL, query_lane, queries) != 0) {
		PW_LOG_ERROR(NULL, "cannot start the query lane");
		return 1;
	}
	st = pw_worker_run(creates, err, sizeof(err));
	atomic_store(&stop_requested, 1);
	pthread_join(th, NULL);
	if (st == PW_E_CONFIG)
		config_error(err);
	else if (queries->st == PW_E_CONFIG)
		config_error(queries->err);
	int rc = exit_status(st), qrc = exit_status(queries->st);
	return qrc > rc ? qrc : rc;
}

/* A key set is loaded (over the network: for up to a minute) and joined with the key
 * archive before any lane takes a record, then watched on its own thread, shared by both
 * lanes. */
static pw_status start_keyring(const pw_config *cfg, pw_keyring **ring, char *err, size_t err_size)
{
	pw_status st = pw_keyring_create(cfg, PW_KEYRING_START_S, ring, err, err_size);

	/* Every worker records what its set holds, so all of them (and replays) judge a
	 * command by the keys of its time. */
	if (st == PW_OK)
		(void)pw_keyring_use_archive(*ring, true); /* unread: commands wait for it */
	if (st == PW_OK && (st = pw_keyring_start(*ring)) != PW_OK)
		snprintf(err, err_size, "cannot start the key set's refresh thread");
	return st;
}

static int cmd_run(const pw_config *cfg)
{
	char err[512] = "";
	pw_worker *creates = NULL;
	lane_run queries = {NULL, PW_OK, ""};
	pw_metrics *metrics = NULL;
	pw_http *http = NULL;
	pw_keyring *ring = NULL;
	pw_cursor_key key;
	int generated, rc;
	pw_status st;

	if (setup_signals() != 0) {
		PW_LOG_ERROR(NULL, "cannot install signal handlers");
		return 1;
	}
	pw_config_log(cfg);
	if (pw_cursor_key_init(&key, cfg->cursor_secret, &generated) != PW_OK) {
		fprintf(stderr, "CURSOR_SECRET: cannot derive or generate a key\n");
		return 2;
	}
	if (generated)
		PW_LOG_WARN(NULL, "CURSOR_SECRET unset: generated a random cursor key; "
		                  "patient.list cursors will not survive a restart or work on "
		                  "other workers");
	if ((rc = check_database(cfg)) != 0)
		return rc;
	/* Listening before the lanes start: /healthz answers (and /readyz says why not yet)
	 * while the group is still being joined. */
	st = pw_metrics_create(&metrics);
	if (st == PW_OK)
		st = pw_http_start(cfg, metrics, &http, err, sizeof(err));
	if (st == PW_OK && cfg->jwt_source >= PW_KEYS_JWKS_FILE)
		st = start_keyring(cfg, &ring, err, sizeof(err));
	if (st == PW_OK)
		st = pw_worker_create(cfg, PW_TOPIC_CREATE, &key, metrics, &stop_requested,
		                      &creates, err, sizeof(err));
	if (st == PW_OK)
		st = pw_worker_create(cfg, PW_TOPIC_QUERY, &key, metrics, &stop_requested,
		                      &queries.w, err, sizeof(err));
	if (st == PW_OK && ring != NULL) {
		pw_metrics_keyring(metrics, ring);
		pw_worker_use_keyring(creates, ring);
		pw_worker_use_keyring(queries.w, ring);
	}
	if (st == PW_OK) {
		rc = run_lanes(creates, &queries);
	} else {
		fprintf(stderr, "%s\n", err[0] ? err : "cannot start the worker");
		rc = st == PW_E_CONFIG ? 2 : 1;
	}
	pw_worker_destroy(creates);
	pw_worker_destroy(queries.w);
	pw_http_stop(http);
	pw_keyring_destroy(ring);
	pw_metrics_destroy(metrics);
	OPENSSL_cleanse(&key, sizeof(key));
	return rc;
}

/* Exit 0 when the listener answers path with 200, 1 otherwise; prints the answer. */
static int cmd_healthcheck(const pw_config *cfg, const char *path)
{
	char err[256];
	char *body = NULL;
	int status = 0;

	if (cfg->http_addr == NULL) {
		fprintf(stderr, "HTTP_ADDR: empty, so there is no listener to ask\n");
		return 2;
	}
	if (pw_httpc_get(cfg->http_addr, path, 3000, 64 * 1024, &status, &body, err, sizeof(err)) !=
	    PW_OK) {
		fprintf(stderr, "healthcheck: %s\n", err);
		return 1;
	}
	printf("%d %s", status, body);
	free(body);
	return status == 200 ? 0 : 1;
}

/* Takes replay's own options out of argv (what is left are settings). Returns 0, or
 * -1 after printing one line naming the bad option. */
static int replay_options(int *argc, char **argv, pw_replay_opts *o)
{
	int from_beginning = 0, out = 2;

	memset(o, 0, sizeof(*o));
	for (int i = 2; i < *argc; i++) {
		if (strcmp(argv[i], "--from-beginning") == 0) {
			from_beginning = 1;
		} else if (strcmp(argv[i], "--verify") == 0) {
			o->verify = true;
		} else if (strcmp(argv[i], "--reply") == 0) {
			o->reply = true;
		} else if (strcmp(argv[i], "--topic") == 0 && i + 1 < *argc) {
			o->topic = argv[++i];
		} else if (strncmp(argv[i], "--topic=", 8) == 0) {
			o->topic = argv[i] + 8;
		} else {
			argv[out++] = argv[i];
		}
	}
	*argc = out;
	if (!from_beginning) {
		fprintf(stderr,
		        "--from-beginning: required (replay reads a topic from its start)\n");
		return -1;
	}
	if (o->verify && o->reply) {
		fprintf(stderr, "--reply: not with --verify, which publishes and writes nothing\n");
		return -1;
	}
	return 0;
}

/* Takes healthcheck's --path out of argv, as replay_options does for replay. */
static int healthcheck_options(int *argc, char **argv, const char **path)
{
	int out = 2;

	for (int i = 2; i < *argc; i++) {
		if (strcmp(argv[i], "--path") == 0 && i + 1 < *argc)
			*path = argv[++i];
		else if (strncmp(argv[i], "--path=", 7) == 0)
			*path = argv[i] + 7;
		else
			argv[out++] = argv[i];
	}
	*argc = out;
	if ((*path)[0] != '/') {
		fprintf(stderr, "--path: must start with '/'\n");
		return -1;
	}
	return 0;
}

static int cmd_replay(const pw_config *cfg, const pw_replay_opts *opts)
{
	pw_cursor_key key;
	int generated;

	if (pw_cursor_key_init(&key, cfg->cursor_secret, &generated) != PW_OK) {
		fprintf(stderr, "CURSOR_SECRET: cannot derive or generate a key\n");
		return 2;
	}
	bool consistent;
	pw_status st = pw_replay_run(cfg, &key, opts, &consistent);
	OPENSSL_cleanse(&key, sizeof(key));
	if (st != PW_OK)
		return exit_status(st);
	return opts->verify && !consistent ? 1 : 0;
}

int main(int argc, char **argv)
{
	pw_config cfg;
	pw_replay_opts replay;
	const char *health_path = "/readyz";
	unsigned need;
	int rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		}
	if (strcmp(argv[1], "run") == 0 || strcmp(argv[1], "replay") == 0) {
		need = PW_CFG_NEED_ALL;
	} else if (strcmp(argv[1], "migrate") == 0) {
		need = PW_CFG_NEED_DB;
	} else if (strcmp(argv[1], "healthcheck") == 0) {
		need = 0;
	} else {
		fprintf(stderr, "unknown command '%s'; try patient-worker --help\n", argv[1]);
		return 2;
	}
	if (strcmp(argv[1], "replay") == 0 && replay_options(&argc, argv, &replay) != 0)
		return 2;
	if (strcmp(argv[1], "healthcheck") == 0 &&
	    healthcheck_options(&argc, argv, &health_path) != 0)
		return 2;
	if (pw_config_load(&cfg, argc - 1, argv + 1, need, stderr) != PW_OK) {
		pw_config_free(&cfg);
		return 2;
	}
	if (strcmp(argv[1], "run") == 0)
		rc = cmd_run(&cfg);
	else if (strcmp(argv[1], "replay") == 0)
		rc = cmd_replay(&cfg, &replay);
	else if (strcmp(argv[1], "healthcheck") == 0)
		rc = cmd_healthcheck(&cfg, health_path);
	else
		rc = cmd_migrate(&cfg);
	pw_config_free(&cfg);
	return rc;
}
