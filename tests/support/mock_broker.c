/*
 * mock_broker: FALLBACK Kafka "broker" for the local test stack.
 *
 * scripts/stack.sh runs this only when a real Apache Kafka broker cannot be
 * started (no Java, Maven Central unreachable, or PW_FORCE_MOCK=1).  It wraps
 * librdkafka's built-in mock cluster, which speaks enough of the Kafka
 * protocol for produce/consume/consumer groups, but it is NOT a real broker:
 * in particular it cannot honour topic configs such as
 * message.timestamp.type=LogAppendTime.
 *
 * Usage:   mock_broker TOPIC:PARTITIONS [TOPIC:PARTITIONS ...]
 * Output:  one line on stdout: the bootstrap servers ("127.0.0.1:PORT").
 * Signals: SIGTERM/SIGINT  -> exit cleanly
 *          SIGUSR1         -> take the broker "down" (drop and refuse
 *                             connections) - used by `stack.sh kafka-stop`
 *          SIGUSR2         -> bring it back up - `stack.sh kafka-start`
 *          The mock keeps its in-memory data and port across down/up, which
 *          is what the fault tests need from a broker restart.
 *
 * Build:   cc -O1 -o mock_broker mock_broker.c $(pkg-config --cflags --libs rdkafka)
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MOCK_BROKER_ID 1

/* Signal handlers only set flags; all librdkafka calls happen in main(). */
static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_want_down;
static volatile sig_atomic_t g_want_up;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		g_want_down = 1;
	else if (sig == SIGUSR2)
		g_want_up = 1;
	else
		g_stop = 1;
}

static int install_signals(void)
{
	struct sigaction sa;
	const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (sigaction(sigs[i], &sa, NULL) != 0)
			return -1;
	}
	return 0;
}

/* Parses "name:partitions"; modifies arg in place. */
static int parse_topic(char *arg, const char **name, int *partitions)
{
	char *colon = strrchr(arg, ':');
	char *end = NULL;
	long n;

	if (colon == NULL || colon == arg)
		return -1;
	n = strtol(colon + 1, &end, 10);
	if (end == colon + 1 || *end != '\0' || n < 1 || n > 1000)
		return -1;
	*colon = '\0';
	*name = arg;
	*partitions = (int)n;
	return 0;
}

int main(int argc, char **argv)
{
	char errstr[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	struct timespec tick = {0, 100 * 1000 * 1000}; /* 100 ms */
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s TOPIC:PARTITIONS ...\n", argv[0]);
		return 2;
	}
	if (install_signals() != 0) {
		perror("sigaction");
		return 1;
	}

	/* The mock cluster needs a client handle for its bookkeeping; a
	 * producer that never produces is the cheapest one. */
	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "mock_broker: %s\n", errstr);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		fprintf(stderr, "mock_broker: rd_kafka_new: %s\n", errstr);
		return 1;
	}

	mc = rd_kafka_mock_cluster_new(rk, 1);
	if (mc == NULL) {
		fprintf(stderr, "mock_broker: cannot create mock cluster\n");
		rd_kafka_destroy(rk);
		return 1;
	}

	for (i = 1; i < argc; i++) {
		const char *name = NULL;
		int partitions = 0;
		rd_kafka_resp_err_t err;

		if (parse_topic(argv[i], &name, &partitions) != 0) {
			fprintf(stderr, "mock_broker: bad topic spec '%s'\n", argv[i]);
			rd_kafka_mock_cluster_destroy(mc);
			rd_kafka_destroy(rk);
			return 2;
		}
		err = rd_kafka_mock_topic_create(mc, name, partitions, 1);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(stderr, "mock_broker: create topic %s: %s\n", name,
			        rd_kafka_err2str(err));
			rd_kafka_mock_cluster_destroy(mc);
			rd_kafka_destroy(rk);
			return 1;
		}
		fprintf(stderr, "mock_broker: topic %s (%d partitions)\n", name, partitions);
	}
	fprintf(stderr, "mock_broker: WARNING: librdkafka mock cluster, not a real "
	                "broker; topic configs (e.g. message.timestamp.type="
	                "LogAppendTime) are NOT applied\n");

	/* stack.sh reads this line to learn the (randomly chosen) port. */
	printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);

	while (!g_stop) {
		if (g_want_down) {
			g_want_down = 0;
			rd_kafka_mock_broker_set_down(mc, MOCK_BROKER_ID);
			fprintf(stderr, "mock_broker: broker DOWN\n");
		}
		if (g_want_up) {
			g_want_up = 0;
			rd_kafka_mock_broker_set_up(mc, MOCK_BROKER_ID);
			fprintf(stderr, "mock_broker: broker UP\n");
		}
		nanosleep(&tick, NULL);
	}

	fprintf(stderr, "mock_broker: shutting down\n");
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
