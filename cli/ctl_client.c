/* patientctl's Kafka session; see ctl_client.h. */
#include "ctl_client.h"

#include <stdlib.h>
#include <string.h>

#include "ctl_opts.h"
#include "ctl_reqid.h"
#include "pw_kafka.h"
#include "pw_util.h"

struct ctl_client {
	rd_kafka_t *producer;
	rd_kafka_t *consumer;
	ctl_client_conf conf;
};

static int left_ms(int64_t deadline_ms)
{
	int64_t left = deadline_ms - pw_util_now_ms();

	return left <= 0 ? 0 : left > 3600000 ? 3600000 : (int)left;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	ctl_client *c = opaque;

	(void)rk;
	if (c->conf.on_delivery != NULL)
		c->conf.on_delivery(c->conf.ctx, m->_private, m->err);
}

static pw_status set_all(rd_kafka_conf_t *conf, const char *const (*kv)[2], char *errstr,
                         size_t size)
{
	for (size_t i = 0; kv[i][0] != NULL; i++)
		if (pw_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr, size) != PW_OK)
			return PW_E_CONFIG;
	return PW_OK;
}

static rd_kafka_t *new_producer(ctl_client *c, char *errstr, size_t size)
{
	static const char *const common[][2] = {
	    {"client.id", "patientctl"},
	    /* A mistyped topic must be an error, not a new topic. */
	    {"allow.auto.create.topics", "false"},
	    {"queue.buffering.max.kbytes", "65536"},
	    /* A patient's writes are keyed to one partition (ctl_op_key); the producer's own
	     * retries must not reorder them. */
	    {"enable.idempotence", "true"},
	    {NULL, NULL},
	};
	static const char *const one[][2] = {{"linger.ms", "0"}, {NULL, NULL}};
	static const char *const bulk[][2] = {{"linger.ms", "5"}, {NULL, NULL}};
	rd_kafka_conf_t *conf = pw_kafka_conf_new(c->conf.cfg, PW_KAFKA_CLIENT, errstr, size);
	rd_kafka_t *rk = NULL;

	if (conf == NULL)
		return NULL;
	if (set_all(conf, common, errstr, size) != PW_OK ||
	    set_all(conf, c->conf.bulk ? bulk : one, errstr, size) != PW_OK)
		goto out;
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_opaque(conf, c);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, size);
	if (rk != NULL)
		conf = NULL; /* rd_kafka_new owns it now */
out:
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	return rk;
}

static rd_kafka_t *new_consumer(ctl_client *c, char *errstr, size_t size)
{
	static const char *const props[][2] = {
	    {"client.id", "patientctl"},
	    /* Partitions are assigned, never subscribed: nothing is committed, and no group
	     * rebalance waits on us. */
	    {"enable.auto.commit", "false"},
	    {"enable.auto.offset.store", "false"},
	    {"allow.auto.create.topics", "false"},
	    /* A reply waits at most this long in the broker before we see it. */
	    {"fetch.wait.max.ms", "50"},
	    /* A busy shared reply topic must not fill our memory with other clients'
	     * replies. */
	    {"queued.max.messages.kbytes", "16384"},
	    {NULL, NULL},
	};
	char group[64] = "patientctl-";
	rd_kafka_conf_t *conf = pw_kafka_conf_new(c->conf.cfg, PW_KAFKA_CLIENT, errstr, size);
	rd_kafka_t *rk = NULL;

	if (conf == NULL)
		return NULL;
	if (ctl_reqid_random(group + strlen(group)) != PW_OK) {
		snprintf(errstr, size, "no random bytes for a group id");
		goto out;
	}
	if (set_all(conf, props, errstr, size) != PW_OK ||
	    pw_kafka_conf_set(conf, "group.id", group, errstr, size) != PW_OK)
		goto out;
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, size);
	if (rk != NULL)
		conf = NULL;
out:
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	return rk;
}

/* Puts the topic's partition count in *count. CTL_EXIT_OK; CTL_EXIT_USAGE when the topic
 * does not exist, CTL_EXIT_TIMEOUT when the broker did not answer, CTL_EXIT_FAILED
 * otherwise; each after a line on err. Asked through the handle that will use the topic: a
 * producer that already knows the command topic's partitions sends the first record at
 * once, where otherwise it waits for librdkafka's once-a-second topic scan. */
static ctl_exit partitions_of(rd_kafka_t *rk, const char *topic, const char *setting,
                              int64_t deadline_ms, int *count, FILE *err)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
	ctl_exit rc = CTL_EXIT_FAILED;

	if (t == NULL) {
		fprintf(err, "%s: '%s': %s\n", setting, topic,
		        rd_kafka_err2str(rd_kafka_last_error()));
		return rc;
	}
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, left_ms(deadline_ms));
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(err, "patientctl: the broker (KAFKA_BROKERS) did not answer in time: %s\n",
		        rd_kafka_err2str(e));
		rc = CTL_EXIT_TIMEOUT;
	} else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
	           md->topics[0].partition_cnt < 1) {
		fprintf(err, "%s: topic '%s' does not exist\n", setting, topic);
		rc = CTL_EXIT_USAGE;
	} else {
		*count = md->topics[0].partition_cnt;
		rc = CTL_EXIT_OK;
	}
	if (md != NULL)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	return rc;
}

/* Reads every partition of the reply topic from its end as of now: a reply to a command
 * sent afterwards cannot be missed, and older replies are never read. */
static ctl_exit read_from_end(ctl_client *c, int partitions, int64_t deadline_ms, FILE *err)
{
	const char *topic = c->conf.reply_topic;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
	ctl_exit rc = CTL_EXIT_FAILED;

	if (l == NULL) {
		fprintf(err, "patientctl: out of memory\n");
		return rc;
	}
	for (int i = 0; i < partitions; i++) {
		int64_t lo, hi;
		rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(c->consumer, topic, i, &lo,
		                                                         &hi, left_ms(deadline_ms));
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(err, "%s: the end of '%s' [%d] is unknown: %s\n",
			        c->conf.reply_setting, topic, i, rd_kafka_err2str(e));
			rc = e == RD_KAFKA_RESP_ERR__TIMED_OUT ? CTL_EXIT_TIMEOUT : CTL_EXIT_FAILED;
			goto out;
		}
		rd_kafka_topic_partition_list_add(l, topic, i)->offset = hi;
	}
	rd_kafka_resp_err_t e = rd_kafka_assign(c->consumer, l);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(err, "%s: cannot read '%s': %s\n", c->conf.reply_setting, topic,
		        rd_kafka_err2str(e));
		goto out;
	}
	rc = CTL_EXIT_OK;
out:
	rd_kafka_topic_partition_list_destroy(l);
	return rc;
}

ctl_exit ctl_client_open(ctl_client **out, const ctl_client_conf *conf, int64_t deadline_ms,
                         FILE *err)
{
	char errstr[512];
	ctl_client *c = calloc(1, sizeof(*c));
	ctl_exit rc = CTL_EXIT_FAILED;

	*out = NULL;
	if (c == NULL) {
		fprintf(err, "patientctl: out of memory\n");
		return rc;
	}
	c->conf = *conf;
	if ((c->producer = new_producer(c, errstr, sizeof(errstr))) == NULL ||
	    (c->consumer = new_consumer(c, errstr, sizeof(errstr))) == NULL) {
		fprintf(err, "patientctl: Kafka client: %s\n", errstr);
		goto out;
	}
	int n = 0;
	rc = partitions_of(c->producer, conf->command_topic, conf->command_setting, deadline_ms, &n,
	                   err);
	if (rc != CTL_EXIT_OK)
		goto out;
	rc = partitions_of(c->consumer, conf->reply_topic, conf->reply_setting, deadline_ms, &n,
	                   err);
	if (rc != CTL_EXIT_OK)
		goto out;
	rc = read_from_end(c, n, deadline_ms, err);
	if (rc != CTL_EXIT_OK)
		goto out;
	*out = c;
	c = NULL; /* the caller's now */
out:
	ctl_client_close(c, 0);
	return rc;
}

pw_status ctl_client_send(ctl_client *c, const char *key, const char *value, size_t len,
                          void *opaque, int64_t deadline_ms, rd_kafka_resp_err_t *err)
{
	for (;;) {
		rd_kafka_resp_err_t e = rd_kafka_producev(
		    c->producer, RD_KAFKA_V_TOPIC(c->conf.command_topic),
		    RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)value, len),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(opaque),
		    RD_KAFKA_V_END);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
			return PW_OK;
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || pw_util_now_ms() >= deadline_ms) {
			*err = e;
			return e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? PW_E_RETRY : PW_E_INVALID;
		}
		rd_kafka_poll(c->producer, 20);
	}
}

void ctl_client_serve(ctl_client *c, int timeout_ms)
{
	rd_kafka_poll(c->producer, timeout_ms);
}

rd_kafka_message_t *ctl_client_reply(ctl_client *c, int timeout_ms)
{
	rd_kafka_message_t *m = rd_kafka_consumer_poll(c->consumer, timeout_ms);

	/* Consumer errors (a broker reconnecting) are librdkafka's to retry; they are logged
	 * by its log callback. */
	if (m != NULL && m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		rd_kafka_message_destroy(m);
		return NULL;
	}
	return m;
}

void ctl_client_close(ctl_client *c, int timeout_ms)
{
	if (c == NULL)
		return;
	if (c->producer != NULL) {
		if (timeout_ms > 0)
			rd_kafka_flush(c->producer, timeout_ms);
		rd_kafka_destroy(c->producer);
	}
	if (c->consumer != NULL) {
		rd_kafka_consumer_close(c->consumer);
		rd_kafka_destroy(c->consumer);
	}
	free(c);
}
