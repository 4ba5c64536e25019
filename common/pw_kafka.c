/* librdkafka configuration for the worker's consumer and producer. */
#include "pw_kafka.h"

#include <stdio.h>
#include <string.h>

#include "pw_log.h"

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	/* syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug */
	pw_log_level l = level <= 3   ? PW_LOG_ERROR
	                 : level == 4 ? PW_LOG_WARN
	                 : level <= 6 ? PW_LOG_INFO
	                              : PW_LOG_DEBUG;
	/* A broker's connection failing is logged here as FAIL and reported to error_cb as
	 * _TRANSPORT too: one line per event (error_cb's warning) is enough. A broker that
	 * is down is a warning, not an error: the client reconnects, or fails over to
	 * another broker of the cluster. */
	if (strcmp(fac, "FAIL") == 0)
		l = PW_LOG_DEBUG;
	PW_LOG(l, NULL, "librdkafka %s: %s", fac, buf);
}

/* The worker's clients: a fatal error (the idempotent producer's) is the one that stops the
 * lane, which asks rd_kafka_fatal_error; the rest librdkafka recovers from. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	char buf[256];

	(void)opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_fatal_error(rk, buf, sizeof(buf));
		PW_LOG_ERROR(NULL, "fatal Kafka error: %s", buf);
		return;
	}
	PW_LOG_WARN(NULL, "Kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

pw_status pw_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                            char *errstr, size_t errstr_size)
{
	if (rd_kafka_conf_set(conf, name, value, errstr, errstr_size) != RD_KAFKA_CONF_OK)
		return PW_E_CONFIG;
	return PW_OK;
}

rd_kafka_conf_t *pw_kafka_conf_new(const pw_config *cfg, pw_kafka_role role, char *errstr,
                                   size_t errstr_size)
{
	static const char *const consumer[][2] = {
	    /* Rebalances move only the partitions that change owner: a worker joining
	     * or leaving does not stop every other worker's work. */
	    {"partition.assignment.strategy", "cooperative-sticky"},
	    /* At-least-once: an offset is stored only after the record's reply or dead
	     * letter is acknowledged (the loop calls rd_kafka_offsets_store). */
	    {"enable.auto.offset.store", "false"},
	    {"enable.auto.commit", "true"},
	    {"auto.commit.interval.ms", "1000"},
	    /* Commands sent before the first worker started are answered. */
	    {"auto.offset.reset", "earliest"},
	    /* A dead worker's partitions move on within 10 s. */
	    {"session.timeout.ms", "10000"},
	    {"heartbeat.interval.ms", "2000"},
	    /* Bound the prefetch queue: memory stays flat under any backlog. */
	    {"queued.max.messages.kbytes", "16384"},
	    {"queued.min.messages", "10000"},
	    {"allow.auto.create.topics", "false"},
	    {NULL, NULL},
	};
	static const char *const producer[][2] = {
	    /* No duplicates or reordering from the producer's own retries. */
	    {"enable.idempotence", "true"},
	    {"linger.ms", "5"},
	    {"queue.buffering.max.kbytes", "65536"},
	    /* Time to notice a reply_to topic that does not exist (then: DLQ). */
	    {"topic.metadata.propagation.max.ms", "10000"},
	    {NULL, NULL},
	};
	const char *const(*extra)[2] = NULL;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	if (conf == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	rd_kafka_conf_set_log_cb(conf, log_cb);
	if (pw_kafka_conf_set(conf, "bootstrap.servers", cfg->kafka_brokers, errstr, errstr_size) !=
	        0 ||
	    pw_kafka_conf_set(conf, "client.id", "patient-worker", errstr, errstr_size) != 0)
		goto fail;
	if (role == PW_KAFKA_CONSUMER) {
		if (pw_kafka_conf_set(conf, "group.id", cfg->group_id, errstr, errstr_size) != 0)
			goto fail;
		extra = consumer;
	} else if (role == PW_KAFKA_PRODUCER) {
		extra = producer;
	}
	if (role != PW_KAFKA_CLIENT)
		rd_kafka_conf_set_error_cb(conf, error_cb);
	for (size_t i = 0; extra != NULL && extra[i][0] != NULL; i++)
		if (pw_kafka_conf_set(conf, extra[i][0], extra[i][1], errstr, errstr_size) != 0)
			goto fail;
	return conf;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

bool pw_kafka_header(const rd_kafka_message_t *m, const char *name, const void **value, size_t *len)
{
	rd_kafka_headers_t *h = NULL;
	if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR || h == NULL)
		return false;
	return rd_kafka_header_get_last(h, name, value, len) == RD_KAFKA_RESP_ERR_NO_ERROR;
}
