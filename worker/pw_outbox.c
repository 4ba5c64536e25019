/* Produce, delivery report, offset store: the end of every record's way. */
#include "pw_outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw_kafka.h"
#include "pw_log.h"
#include "pw_produce.h"
#include "pw_util.h"

/* How long a failed producer may take to hand back what it held before it is replaced. */
#define RENEW_DRAIN_US (10 * 1000 * 1000)

struct pw_outbox {
	const pw_config *cfg;
	pw_topic_kind lane;
	rd_kafka_t *producer;   /**< owned */
	rd_kafka_t *consumer;   /**< borrowed: offsets are stored on it */
	rd_kafka_queue_t *wake; /**< borrowed: yielded when delivery reports wait; may be NULL */
	pw_offsets *offsets;    /**< borrowed */
	pw_metrics *metrics;    /**< borrowed; may be NULL */
	const atomic_int *stop;
	pw_job_list retry; /**< to produce again: a transient delivery failure */
	bool abandoning;   /**< purged on purpose: those reports are not failures */
	bool renewing;     /**< purged to be produced again by a new producer */
	unsigned long answered, dead_letters;
};

/* The job's partition has every record up to next_offset acknowledged: store it, for the
 * consumer's next commit. */
static void store_offset(pw_outbox *ob, const pw_job *j, const char *topic, int32_t partition,
                         int64_t next_offset)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	pw_log_ctx ctx = PW_LOG_CTX_INIT;
	rd_kafka_resp_err_t err;

	if (l == NULL)
		return; /* the next acknowledgement stores a later offset */
	rd_kafka_topic_partition_list_add(l, topic, partition)->offset = next_offset;
	err = rd_kafka_offsets_store(ob->consumer, l);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[0].err != 0)
		err = l->elems[0].err;
	/* __STATE: the partition was revoked meanwhile; its next owner answers from the last
	 * commit, so nothing is lost. */
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__STATE) {
		pw_job_log_ctx(j, &ctx);
		PW_LOG_WARN(&ctx, "offset store failed: %s", rd_kafka_err2str(err));
	}
	rd_kafka_topic_partition_list_destroy(l);
}

/* Step k's time from its start to its end; -1 when the job did not pass through it (a
 * dead letter skips the database). */
static int64_t step_us(int64_t start, int64_t end)
{
	return start > 0 && end >= start ? end - start : -1;
}

/* Where a reply's time went (pw_metrics_steps). */
static void time_steps(pw_outbox *ob, const pw_job *j, int64_t now)
{
	int64_t us[PW_STEPS];

	us[PW_STEP_KAFKA] = j->age_us;
	us[PW_STEP_VERIFY] = step_us(j->taken_us, j->decided_us);
	us[PW_STEP_WAIT] = step_us(j->decided_us, j->db_start_us);
	us[PW_STEP_DATABASE] = step_us(j->db_start_us, j->db_end_us);
	us[PW_STEP_HANDOFF] = step_us(j->db_end_us, j->sent_us);
	us[PW_STEP_DELIVERY] = step_us(j->sent_us, now);
	pw_metrics_steps(ob->metrics, ob->lane, us);
}

/* The reply or dead letter is on the broker: count it, move the watermark, free the job. */
static void finish(pw_outbox *ob, pw_job *j)
{
	pw_log_ctx ctx = PW_LOG_CTX_INIT;
	int64_t us = pw_util_now_us() - j->taken_us;
	const char *topic;
	int32_t partition;
	int64_t next;

	pw_job_log_ctx(j, &ctx);
	ctx.ms = (double)us / 1000.0;
	if (j->dead) {
		ob->dead_letters++;
		pw_metrics_dead_letter(ob->metrics, j->out.dlq);
		PW_LOG_WARN(&ctx, "dead-lettered: %s", pw_envelope_dlq_code(j->out.dlq));
	} else {
		ob->answered++;
		pw_metrics_answered(ob->metrics, ob->lane, j->out.command_type, j->out.status, us);
		time_steps(ob, j, j->taken_us + us);
		PW_LOG_DEBUG(&ctx, "answered");
	}
	if (pw_offsets_done(ob->offsets, j->pending, &topic, &partition, &next))
		store_offset(ob, j, topic, partition, next);
	j->pending = NULL;
	pw_job_free(j);
}

/* A permanent failure: a reply becomes a reply_undeliverable dead letter (true: produce
 * it); a dead letter that cannot be written either is given up, loudly, since there is
 * nowhere else to put it (false). */
static bool undeliverable(pw_outbox *ob, pw_job *j, rd_kafka_resp_err_t err)
{
	pw_log_ctx ctx = PW_LOG_CTX_INIT;

	pw_job_log_ctx(j, &ctx);
	if (!j->dead) {
		PW_LOG_WARN(&ctx, "reply undeliverable to %s: %s", j->out.reply_to,
		            rd_kafka_err2str(err));
		j->dead = true;
		j->out.dlq = PW_DLQ_REPLY_UNDELIVERABLE;
		return true;
	}
	PW_LOG_ERROR(&ctx, "dead letter undeliverable to %s: %s; record given up",
	             ob->cfg->topic_dlq, rd_kafka_err2str(err));
	return false;
}

void pw_outbox_send(pw_outbox *ob, pw_job *j)
{
	for (;;) {
		pw_produce_dead d = {ob->cfg->topic_dlq, j->key,       j->key_len,
		                     j->value,           j->value_len, j->out.dlq,
		                     j->src_topic,       j->partition, j->offset};
		rd_kafka_resp_err_t err;
		pw_status st = j->dead ? pw_produce_dead_letter(ob->producer, &d, j, ob->stop, &err)
		                       : pw_produce_reply(ob->producer, &j->out, j->out.reply,
		                                          j->out.status, j, ob->stop, &err);
		if (st == PW_OK) {
			j->sent_us = pw_util_now_us();
			return;
		}
		if (st == PW_E_INTERNAL && !atomic_load(ob->stop)) {
			/* The producer failed for good: the one that replaces it sends this. */
			pw_job_list_push(&ob->retry, j);
			return;
		}
		if (st != PW_E_INVALID) {
			/* Stopping: never acknowledged, so never committed; the next worker
			 * answers it. */
			pw_job_drop(j, ob->offsets);
			return;
		}
		if (!undeliverable(ob, j, err)) {
			finish(ob, j);
			return;
		}
	}
}

/* librdkafka's delivery report, called from rd_kafka_poll (pw_outbox_serve) and from the
 * producer's flush and queue-full waits: never from another thread. */
static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	pw_outbox *ob = opaque;
	pw_job *j = m->_private;

	(void)rk;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		finish(ob, j);
		return;
	}
	if (ob->abandoning && (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
	                       m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)) {
		pw_job_drop(j, ob->offsets);
		return;
	}
	if (m->err != RD_KAFKA_RESP_ERR__FATAL && pw_produce_permanent(m->err)) {
		if (!undeliverable(ob, j, m->err)) {
			finish(ob, j);
			return;
		}
	} else if (m->err != RD_KAFKA_RESP_ERR__FATAL && !ob->renewing) {
		pw_log_ctx ctx = PW_LOG_CTX_INIT;
		pw_job_log_ctx(j, &ctx);
		PW_LOG_WARN(&ctx, "delivery failed, retrying: %s", rd_kafka_err2str(m->err));
	}
	/* Produced again by pw_outbox_retry, not from inside librdkafka's callback. */
	pw_job_list_push(&ob->retry, j);
}

/* Called by librdkafka's thread when the producer's queue of reports stops being empty:
 * the lane, waiting for a record, is woken to serve them at once rather than at the end of
 * its poll (it used to come back every millisecond while replies were unacknowledged,
 * which cost more CPU than the replies themselves). Not a call on the producer's handle,
 * as librdkafka requires of this callback. */
static void reports_waiting(rd_kafka_t *rk, void *wake)
{
	(void)rk;
	rd_kafka_queue_yield(wake);
}

/* The lane's producer, reporting to ob; NULL with errstr when librdkafka refuses it. */
static rd_kafka_t *make_producer(pw_outbox *ob, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = pw_kafka_conf_new(ob->cfg, PW_KAFKA_PRODUCER, errstr, errstr_size);
	rd_kafka_t *p = NULL;

	if (conf == NULL || pw_kafka_conf_set(conf, "client.id",
	                                      ob->lane == PW_TOPIC_CREATE ? "patient-worker-create"
	                                                                  : "patient-worker-query",
	                                      errstr, errstr_size) != PW_OK)
		goto out;
	/* Queries are answered one by one and someone waits on each: send at once. Creates
	 * come in bulk, where a few ms of batching saves broker round trips. */
	if (ob->lane == PW_TOPIC_QUERY &&
	    pw_kafka_conf_set(conf, "linger.ms", "0", errstr, errstr_size) != PW_OK)
		goto out;
	rd_kafka_conf_set_opaque(conf, ob);
	rd_kafka_conf_set_dr_msg_cb(conf, delivered);
	p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
	if (p != NULL)
		conf = NULL; /* the producer owns it */
	if (p != NULL && ob->wake != NULL) {
		rd_kafka_queue_t *reports = rd_kafka_queue_get_main(p);
		if (reports == NULL) {
			snprintf(errstr, errstr_size, "out of memory");
			rd_kafka_destroy(p);
			p = NULL;
			goto out;
		}
		rd_kafka_queue_cb_event_enable(reports, reports_waiting, ob->wake);
		rd_kafka_queue_destroy(reports); /* the setting stays with the queue */
	}
out:
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	return p;
}

pw_status pw_outbox_create(const pw_config *cfg, pw_topic_kind lane, rd_kafka_t *consumer,
                           rd_kafka_queue_t *wake, pw_offsets *offsets, pw_metrics *metrics,
                           const atomic_int *stop, pw_outbox **out, char *errstr,
                           size_t errstr_size)
{
	pw_outbox *ob = calloc(1, sizeof(*ob));

	*out = NULL;
	if (ob == NULL)
		return PW_E_NOMEM;
	*ob = (pw_outbox){.cfg = cfg,
	                  .lane = lane,
	                  .consumer = consumer,
	                  .wake = wake,
	                  .offsets = offsets,
	                  .metrics = metrics,
	                  .stop = stop};
	ob->producer = make_producer(ob, errstr, errstr_size);
	if (ob->producer == NULL) {
		pw_outbox_destroy(ob);
		return PW_E_CONFIG;
	}
	*out = ob;
	return PW_OK;
}

/* librdkafka 2.0.2's idempotent producer can fail for good on a leader change it should
 * ride through ("out of order sequence number ... rewound sequence number" after a
 * NOT_LEADER_FOR_PARTITION; fixed in librdkafka 2.3.0): a fatal error, after which it
 * sends nothing. Rather than stop the lane, the replies it held come back (purged, their
 * reports served here) and a new producer sends them again. A reply the old one may have
 * written is then on the topic twice, the same bytes: the contract's redelivery. */
pw_status pw_outbox_renew(pw_outbox *ob, char *errstr, size_t errstr_size)
{
	char why[512];
	rd_kafka_t *old = ob->producer;

	rd_kafka_fatal_error(old, why, sizeof(why));
	ob->renewing = true;
	rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	for (int64_t end = pw_util_now_us() + RENEW_DRAIN_US;
	     rd_kafka_outq_len(old) > 0 && pw_util_now_us() < end;)
		rd_kafka_poll(old, 100);
	ob->renewing = false;
	if (rd_kafka_outq_len(old) > 0) {
		/* Reports that never came: those jobs are still the old producer's. */
		snprintf(errstr, errstr_size, "the failed producer kept %d message(s) for 10 s",
		         rd_kafka_outq_len(old));
		return PW_E_INTERNAL;
	}
	ob->producer = make_producer(ob, errstr, errstr_size);
	if (ob->producer == NULL) {
		ob->producer = old;
		return PW_E_INTERNAL;
	}
	rd_kafka_destroy(old);
	pw_metrics_producer_renewed(ob->metrics, ob->lane);
	PW_LOG_WARN(NULL,
	            "the producer failed for good (%s); a new one sends the %zu "
	            "replies it held again",
	            why, ob->retry.n);
	pw_outbox_retry(ob);
	return PW_OK;
}

void pw_outbox_destroy(pw_outbox *ob)
{
	pw_job *j;

	if (ob == NULL)
		return;
	if (ob->producer != NULL)
		rd_kafka_destroy(ob->producer);
	while ((j = pw_job_list_pop(&ob->retry)) != NULL)
		pw_job_free(j);
	free(ob);
}

void pw_outbox_serve(pw_outbox *ob, int timeout_ms)
{
	rd_kafka_poll(ob->producer, timeout_ms);
}

void pw_outbox_retry(pw_outbox *ob)
{
	pw_job *j;

	while (!pw_outbox_fatal(ob) && (j = pw_job_list_pop(&ob->retry)) != NULL)
		pw_outbox_send(ob, j);
}

bool pw_outbox_fatal(const pw_outbox *ob)
{
	char why[8];

	return rd_kafka_fatal_error(ob->producer, why, sizeof(why)) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

bool pw_outbox_drain(pw_outbox *ob, int timeout_ms)
{
	pw_outbox_retry(ob);
	return rd_kafka_flush(ob->producer, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

void pw_outbox_abandon(pw_outbox *ob)
{
	ob->abandoning = true;
	rd_kafka_purge(ob->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(ob->producer, 0);
}

void pw_outbox_counts(const pw_outbox *ob, unsigned long *answered, unsigned long *dead_letters)
{
	*answered = ob->answered;
	*dead_letters = ob->dead_letters;
}
