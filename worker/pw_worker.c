/* The worker's loop. One thread: poll a record, decide it, run its create, produce its
 * reply; the offset is stored only from the reply's delivery report, behind a
 * per-partition watermark (pw_offsets). When the database is down, or too much is in
 * flight, every assigned partition is paused and the loop keeps polling so the group
 * keeps us; the records already taken are held and retried, never skipped. */
#include "pw_worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "pw_command.h"
#include "pw_handlers.h"
#include "pw_jwt.h"
#include "pw_kafka.h"
#include "pw_log.h"
#include "pw_metrics.h"
#include "pw_offsets.h"

/* Bytes of records held in memory (values kept for a possible dead letter) before the
 * consumer pauses; with MAX_INFLIGHT it bounds the worker's memory. */
#define INFLIGHT_BYTES_MAX (32u * 1024 * 1024)
#define DB_BACKOFF_MIN_MS  200
#define DB_BACKOFF_MAX_MS  5000
#define POLL_MS            100
#define DR_POLL_MS         1
#define DR_WATCH_US        (200 * 1000)
#define STATS_EVERY_US     (10 * 1000000)
#define METRICS_EVERY_US   1000000
#define STATS_INTERVAL_MS  "5000" /* consumer lag for /metrics */

enum { PAUSE_DB = 1, PAUSE_FULL = 2 };

typedef struct job {
	pw_pending *pending;
	char *src_topic;
	int32_t partition;
	int64_t offset;
	void *key;
	size_t key_len;
	void *value;
	size_t value_len;
	size_t bytes;
	pw_outcome out;
	int dead;      /**< producing the dead letter rather than the reply */
	int64_t t0_us; /**< when the record was taken */
	struct job *next;
} job;

typedef struct job_list {
	job *head, *tail;
	size_t n;
} job_list;

struct pw_worker {
	const pw_config *cfg;
	pw_topic_kind lane; /**< which command topic this instance serves */
	const char *name;   /**< "create" or "query", for logs */
	const char *topic;
	rd_kafka_t *consumer;
	rd_kafka_t *producer;
	pw_db *db;
	pw_jwt_verifier *jwt;
	pw_offsets *offsets;
	pw_metrics *metrics; /**< shared with the other lane and the HTTP thread; may be NULL */
	pw_handler_ctx hc;
	job_list held;             /**< creates waiting for the database */
	job_list retry;            /**< produces to try again (transient errors, dead letters) */
	job_list batch;            /**< commands for the next database transaction */
	int batch_max;             /**< BATCH_MAX on the create lane; 1 on the query lane */
	int64_t batch_deadline_us; /**< when the open batch is written, full or not */
	size_t bytes;              /**< sum of job->bytes in flight */
	int pause_why;             /**< PAUSE_* bits */
	int paused;                /**< assigned partitions are paused */
	int64_t db_next_try_us;
	int db_backoff_ms;
	int fatal;
	int stopping;
	volatile sig_atomic_t *stop;
	unsigned long answered, dead_letters, db_outages;
	unsigned long batches, batch_items; /**< database calls and the commands they carried */
	int64_t db_us;                      /**< time spent in them */
	int64_t stats_at_us;                /**< next periodic stats line */
	int64_t metrics_at_us;              /**< next refresh of the lane's gauges */
	int64_t produced_us;                /**< when a reply was last handed over */
	int joined;                         /**< the group gave this consumer an assignment */
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void list_push(job_list *l, job *j)
{
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
	l->n++;
}

static job *list_pop(job_list *l)
{
	job *j = l->head;
	if (j == NULL)
		return NULL;
	l->head = j->next;
	if (l->head == NULL)
		l->tail = NULL;
	l->n--;
	j->next = NULL;
	return j;
}

static void job_free(pw_worker *w, job *j)
{
	if (j == NULL)
		return;
	w->bytes -= j->bytes;
	pw_outcome_clear(&j->out);
	free(j->src_topic);
	free(j->key);
	free(j->value);
	free(j);
}

static void job_ctx(const job *j, pw_log_ctx *ctx)
{
	ctx->request_id = j->out.request_id;
	ctx->owner = j->out.owner[0] ? j->out.owner : NULL;
	ctx->topic = j->src_topic;
	ctx->partition = j->partition;
	ctx->offset = j->offset;
	ctx->status = j->dead ? 0 : j->out.status;
}

static job *job_new(pw_worker *w, const rd_kafka_message_t *m)
{
	job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	j->src_topic = strdup(rd_kafka_topic_name(m->rkt));
	j->partition = m->partition;
	j->offset = m->offset;
	j->t0_us = now_us();
	j->key_len = m->key_len;
	j->value_len = m->len;
	j->key = malloc(m->key_len ? m->key_len : 1);
	j->value = malloc(m->len ? m->len : 1);
	if (j->src_topic == NULL || j->key == NULL || j->value == NULL)
		goto fail;
	if (m->key_len)
		memcpy(j->key, m->key, m->key_len);
	if (m->len)
		memcpy(j->value, m->payload, m->len);
	j->pending = pw_offsets_track(w->offsets, j->src_topic, j->partition, j->offset);
	if (j->pending == NULL)
		goto fail;
	j->bytes = sizeof(*j) + m->key_len + m->len;
	w->bytes += j->bytes;
	return j;
fail:
	free(j->src_topic);
	free(j->key);
	free(j->value);
	free(j);
	return NULL;
}

/* The reply or dead letter is on the broker: move the partition's watermark. */
static void job_finish(pw_worker *w, job *j)
{
	const char *topic;
	int32_t partition;
	int64_t next;
	pw_log_ctx ctx = PW_LOG_CTX_INIT;

	job_ctx(j, &ctx);
	ctx.ms = (double)(now_us() - j->t0_us) / 1000.0;
	if (j->dead) {
		w->dead_letters++;
		pw_metrics_dead_letter(w->metrics, j->out.dlq);
		PW_LOG_WARN(&ctx, "dead-lettered: %s", pw_envelope_dlq_code(j->out.dlq));
	} else {
		w->answered++;
		pw_metrics_answered(w->metrics, w->lane, j->out.command_type, j->out.status,
		                    now_us() - j->t0_us);
		PW_LOG_DEBUG(&ctx, "answered");
	}
	if (pw_offsets_done(w->offsets, j->pending, &topic, &partition, &next)) {
		rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
		if (l != NULL) {
			rd_kafka_topic_partition_list_add(l, topic, partition)->offset = next;
			rd_kafka_resp_err_t err = rd_kafka_offsets_store(w->consumer, l);
			/* __STATE: the partition was revoked meanwhile; its next owner
			 * answers from the last commit, so nothing is lost. */
			if (err == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[0].err != 0)
				err = l->elems[0].err;
			if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__STATE)
				PW_LOG_WARN(&ctx, "offset store failed: %s", rd_kafka_err2str(err));
			rd_kafka_topic_partition_list_destroy(l);
		}
	}
	j->pending = NULL;
	job_free(w, j);
}

static int permanent_produce_error(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION: /* a kafka_replyPartition the topic lacks */
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
		return 1;
	default:
		return 0;
	}
}

/* A permanent failure: a reply becomes a reply_undeliverable dead letter; a dead letter
 * that cannot be written either is given up, loudly (there is nowhere else to put it). */
static int job_undeliverable(pw_worker *w, job *j, rd_kafka_resp_err_t err)
{
	pw_log_ctx ctx = PW_LOG_CTX_INIT;
	job_ctx(j, &ctx);
	if (!j->dead) {
		PW_LOG_WARN(&ctx, "reply undeliverable to %s: %s", j->out.reply_to,
		            rd_kafka_err2str(err));
		j->dead = 1;
		j->out.dlq = PW_DLQ_REPLY_UNDELIVERABLE;
		return 1;
	}
	PW_LOG_ERROR(&ctx, "dead letter undeliverable to %s: %s; record given up",
	             w->cfg->topic_dlq, rd_kafka_err2str(err));
	return 0;
}

/* A reply's headers (pw_reply_headers), or a dead letter's: why, and where it came from. */
static rd_kafka_headers_t *job_headers(const job *j)
{
	rd_kafka_headers_t *h;
	char src[320];

	if (!j->dead)
		return pw_reply_headers(&j->out, j->out.status);
	h = rd_kafka_headers_new(2);
	if (h == NULL)
		return NULL;
	snprintf(src, sizeof(src), "%s/%d/%lld", j->src_topic, (int)j->partition,
	         (long long)j->offset);
	if (rd_kafka_header_add(h, "error", -1, pw_envelope_dlq_code(j->out.dlq), -1) ||
	    rd_kafka_header_add(h, "source", -1, src, -1)) {
		rd_kafka_headers_destroy(h);
		return NULL;
	}
	return h;
}

/* Hands the job's reply (or dead letter) to the producer. Returns 0 once it is queued
 * (the delivery report takes it from there) or given up, -1 when the producer is in a
 * fatal state. */
static int job_produce(pw_worker *w, job *j)
{
	for (;;) {
		rd_kafka_headers_t *h = job_headers(j);
		rd_kafka_resp_err_t err;

		if (h == NULL) {
			/* Out of memory: wait like a full queue, memory frees as acks come. */
			err = RD_KAFKA_RESP_ERR__QUEUE_FULL;
		} else if (j->dead) {
			err = rd_kafka_producev(
			    w->producer, RD_KAFKA_V_TOPIC(w->cfg->topic_dlq),
			    RD_KAFKA_V_KEY(j->key_len ? j->key : NULL, j->key_len),
			    RD_KAFKA_V_VALUE(j->value_len ? j->value : NULL, j->value_len),
			    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
			    RD_KAFKA_V_OPAQUE(j), RD_KAFKA_V_END);
		} else {
			err = rd_kafka_producev(
			    w->producer, RD_KAFKA_V_TOPIC(j->out.reply_to),
			    RD_KAFKA_V_PARTITION(j->out.reply_partition),
			    RD_KAFKA_V_KEY(j->out.request_id, strlen(j->out.request_id)),
			    RD_KAFKA_V_VALUE(j->out.reply, strlen(j->out.reply)),
			    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
			    RD_KAFKA_V_OPAQUE(j), RD_KAFKA_V_END);
		}
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			w->produced_us = now_us();
			return 0; /* the headers belong to the message now */
		}
		if (h != NULL)
			rd_kafka_headers_destroy(h);
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			/* Serve delivery reports so the queue drains, then try again. */
			rd_kafka_poll(w->producer, POLL_MS);
			if (w->fatal || (w->stop != NULL && *w->stop)) {
				/* Given up unanswered: never acknowledged, so never committed. */
				pw_offsets_release(w->offsets, j->pending);
				job_free(w, j);
				return -1;
			}
			continue;
		}
		if (err == RD_KAFKA_RESP_ERR__FATAL) {
			w->fatal = 1;
			pw_offsets_release(w->offsets, j->pending);
			job_free(w, j);
			return -1;
		}
		if (job_undeliverable(w, j, err))
			continue;
		job_finish(w, j);
		return 0;
	}
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	pw_worker *w = opaque;
	job *j = m->_private;

	(void)rk;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		job_finish(w, j);
		return;
	}
	if (w->stopping && (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
	                    m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)) {
		/* Shutting down past the deadline: not acknowledged, so not committed;
		 * the next worker answers it. */
		pw_offsets_release(w->offsets, j->pending);
		job_free(w, j);
		return;
	}
	if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
		w->fatal = 1;
	} else if (permanent_produce_error(m->err)) {
		if (!job_undeliverable(w, j, m->err)) {
			job_finish(w, j);
			return;
		}
	} else {
		pw_log_ctx ctx = PW_LOG_CTX_INIT;
		job_ctx(j, &ctx);
		PW_LOG_WARN(&ctx, "delivery failed, retrying: %s", rd_kafka_err2str(m->err));
	}
	/* Produced again from the loop, not from inside librdkafka's callback. */
	list_push(&w->retry, j);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	pw_worker *w = opaque;
	char buf[256];

	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_fatal_error(rk, buf, sizeof(buf));
		PW_LOG_ERROR(NULL, "fatal Kafka error: %s", buf);
		w->fatal = 1;
		return;
	}
	PW_LOG_WARN(NULL, "Kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void set_paused(pw_worker *w)
{
	int want = w->pause_why != 0;
	rd_kafka_topic_partition_list_t *a = NULL;

	if (want == w->paused)
		return;
	if (rd_kafka_assignment(w->consumer, &a) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	rd_kafka_resp_err_t err = want ? rd_kafka_pause_partitions(w->consumer, a)
	                               : rd_kafka_resume_partitions(w->consumer, a);
	rd_kafka_topic_partition_list_destroy(a);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		PW_LOG_WARN(NULL, "%s partitions failed: %s", want ? "pausing" : "resuming",
		            rd_kafka_err2str(err));
		return;
	}
	w->paused = want;
	if (want)
		PW_LOG_INFO(NULL, "consumption paused (%s)",
		            (w->pause_why & PAUSE_DB) ? "database unreachable" : "in-flight limit");
	else
		PW_LOG_INFO(NULL, "consumption resumed");
}

/* Drops held creates of partitions being revoked: not answered, not committed, so the
 * partition's next owner answers them. */
static void drop_held(pw_worker *w, const rd_kafka_topic_partition_list_t *parts)
{
	job_list keep = {0};
	job *j;

	while ((j = list_pop(&w->held)) != NULL) {
		int revoked = 0;
		for (int i = 0; i < parts->cnt; i++)
			revoked |= parts->elems[i].partition == j->partition &&
			           strcmp(parts->elems[i].topic, j->src_topic) == 0;
		if (!revoked) {
			list_push(&keep, j);
			continue;
		}
		pw_offsets_release(w->offsets, j->pending);
		job_free(w, j);
	}
	w->held = keep;
}

static void flush_batch(pw_worker *w);

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	pw_worker *w = opaque;
	int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	rd_kafka_error_t *e = NULL;
	rd_kafka_resp_err_t r = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		if (coop)
			e = rd_kafka_incremental_assign(rk, parts);
		else
			r = rd_kafka_assign(rk, parts);
		if (w->paused)
			rd_kafka_pause_partitions(rk, parts);
		w->joined = 1;
		PW_LOG_INFO(NULL, "%s lane: partitions assigned: %d", w->name, parts->cnt);
	} else {
		/* The open batch first: answered now, or held (and dropped below) when the
		 * database is down. */
		flush_batch(w);
		if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && !rd_kafka_assignment_lost(rk)) {
			/* Let replies in flight be acknowledged and their offsets committed
			 * before the partitions move: fewer repeats for the next owner. */
			rd_kafka_flush(w->producer, 5000);
			rd_kafka_commit(rk, NULL, 0);
		}
		drop_held(w, parts);
		for (int i = 0; i < parts->cnt; i++)
			pw_offsets_revoke(w->offsets, parts->elems[i].topic,
			                  parts->elems[i].partition);
		if (rd_kafka_assignment_lost(rk))
			w->joined = 0; /* out of the group until it assigns us again */
		if (coop)
			e = rd_kafka_incremental_unassign(rk, parts);
		else
			r = rd_kafka_assign(rk, NULL);
		PW_LOG_INFO(NULL, "%s lane: partitions revoked: %d", w->name, parts->cnt);
	}
	if (e != NULL) {
		PW_LOG_ERROR(NULL, "rebalance failed: %s", rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
	}
	if (r != RD_KAFKA_RESP_ERR_NO_ERROR)
		PW_LOG_ERROR(NULL, "rebalance failed: %s", rd_kafka_err2str(r));
}

static void db_down(pw_worker *w, const char *why)
{
	if (!(w->pause_why & PAUSE_DB)) {
		w->db_outages++;
		pw_metrics_db_outage(w->metrics, w->lane);
		w->db_backoff_ms = DB_BACKOFF_MIN_MS;
		PW_LOG_WARN(NULL, "database unreachable, pausing: %s", why);
	}
	w->pause_why |= PAUSE_DB;
	w->db_next_try_us = now_us() + (int64_t)w->db_backoff_ms * 1000;
	set_paused(w);
}

/* Runs the jobs' database work (and audit rows) and produces their replies. Returns -1
 * when the database is down (the jobs not yet done are then on the held list, in
 * order). */
static int run_items(pw_worker *w, job **jobs, size_t n)
{
	pw_command *items = calloc(n, sizeof(*items));
	char err[512];
	int rc = 0;

	if (items == NULL) {
		w->fatal = 1;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		pw_outcome *o = &jobs[i]->out;
		items[i] = (pw_command){
		    .kind = o->db_kind,
		    .owner = o->owner,
		    .request_id = o->request_id,
		    .command_type = o->command_type,
		    .src_topic = jobs[i]->src_topic,
		    .src_partition = jobs[i]->partition,
		    .src_offset = jobs[i]->offset,
		    .command_time = o->command_time,
		    .in = &o->in,
		    .query = &o->query,
		    .status = o->status,
		    .reply = o->reply, /* an error decided already; the item holds it now */
		};
		o->reply = NULL;
	}
	int64_t t0 = now_us();
	pw_status st = pw_command_run(w->db, w->hc.cursor_key, items, n, err, sizeof(err));
	w->db_us += now_us() - t0;
	pw_metrics_db_call(w->metrics, w->lane, n, now_us() - t0);
	w->batches++;
	w->batch_items += n;
	for (size_t i = 0; i < n; i++) {
		job *j = jobs[i];
		j->out.reply = items[i].reply;
		j->out.status = items[i].status;
		if (!items[i].done) {
			list_push(&w->held, j);
			continue;
		}
		if (job_produce(w, j) != 0)
			rc = -1;
	}
	if (st == PW_E_RETRY) {
		db_down(w, err);
		rc = -1;
	} else if (st != PW_OK) {
		PW_LOG_ERROR(NULL, "database batch failed: %s", err);
		w->fatal = 1;
		rc = -1;
	}
	free(items);
	return rc;
}

/* Writes the open batch: one transaction for all its creates (pw_db_run). */
static void flush_batch(pw_worker *w)
{
	size_t n = w->batch.n;
	job **jobs;

	if (n == 0)
		return;
	jobs = calloc(n, sizeof(*jobs));
	if (jobs == NULL) {
		w->fatal = 1;
		return;
	}
	for (size_t i = 0; i < n; i++)
		jobs[i] = list_pop(&w->batch);
	run_items(w, jobs, n);
	free(jobs);
}

static void retry_held(pw_worker *w)
{
	char err[512];
	size_t n = w->held.n;
	job **jobs;

	if (!pw_db_connected(w->db)) {
		pw_status st = pw_db_connect(w->db, err, sizeof(err));
		if (st != PW_OK) {
			if (st != PW_E_RETRY) {
				PW_LOG_ERROR(NULL, "database: %s", err);
				w->fatal = 1;
				return;
			}
			w->db_backoff_ms = w->db_backoff_ms * 2 > DB_BACKOFF_MAX_MS
			                       ? DB_BACKOFF_MAX_MS
			                       : w->db_backoff_ms * 2;
			w->db_next_try_us = now_us() + (int64_t)w->db_backoff_ms * 1000;
			PW_LOG_DEBUG(NULL, "database still unreachable: %s", err);
			return;
		}
		pw_metrics_db_reconnect(w->metrics, w->lane);
	}
	jobs = calloc(n ? n : 1, sizeof(*jobs));
	if (jobs == NULL) {
		w->fatal = 1;
		return;
	}
	for (size_t i = 0; i < n; i++)
		jobs[i] = list_pop(&w->held);
	w->pause_why &= ~PAUSE_DB;
	if (run_items(w, jobs, n) == 0) {
		PW_LOG_INFO(NULL, "database reachable again, resuming (%zu held records answered)",
		            n);
		set_paused(w);
	}
	free(jobs);
}

static void handle_message(pw_worker *w, rd_kafka_message_t *m)
{
	const char *topic = rd_kafka_topic_name(m->rkt);
	job *j = job_new(w, m);

	if (j == NULL || pw_handle_record(&w->hc, m, w->lane, &j->out) != PW_OK) {
		/* Not answered and never stored: the record comes back after a restart. */
		PW_LOG_ERROR(NULL, "out of memory handling %s/%d/%lld; stopping", topic,
		             (int)m->partition, (long long)m->offset);
		w->fatal = 1;
		if (j != NULL) {
			pw_offsets_release(w->offsets, j->pending);
			job_free(w, j);
		}
		return;
	}
	switch (j->out.kind) {
	case PW_OUT_DLQ:
		j->dead = 1;
		job_produce(w, j);
		break;
	case PW_OUT_DB:
		if (w->pause_why & PAUSE_DB) {
			list_push(&w->held, j); /* behind the ones already waiting */
			break;
		}
		if (w->batch.n == 0)
			w->batch_deadline_us = now_us() + (int64_t)w->cfg->batch_wait_ms * 1000;
		list_push(&w->batch, j);
		if (w->batch.n >= (size_t)w->batch_max)
			flush_batch(w);
		break;
	}
}

/* librdkafka's statistics (every STATS_INTERVAL_MS): the consumer lag of each assigned
 * partition as Kafka's own tools count it, from the committed offset to the end of the
 * partition; librdkafka knows both without asking the broker again. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	pw_worker *w = opaque;
	pw_lag rows[PW_METRICS_LAG_MAX + 1];
	size_t n = 0;
	json_t *root = json_loadb(json, len, 0, NULL);
	json_t *topics = json_object_get(root, "topics");
	const char *tname;
	json_t *t;

	(void)rk;
	if (root == NULL)
		return 0; /* keep the last table rather than report no lag at all */
	json_object_foreach(topics, tname, t)
	{
		const char *pname;
		json_t *p;
		json_object_foreach(json_object_get(t, "partitions"), pname, p)
		{
			json_int_t part = json_integer_value(json_object_get(p, "partition"));
			json_int_t lag = json_integer_value(json_object_get(p, "consumer_lag"));
			/* -1: the internal "unassigned" partition, or a lag not known yet. */
			if (part < 0 || lag < 0 || !json_is_true(json_object_get(p, "desired")))
				continue;
			if (n == sizeof(rows) / sizeof(rows[0]))
				rows[n - 1].lag += lag; /* the last row is summed anyway */
			else
				rows[n++] = (pw_lag){tname, (int32_t)part, (int64_t)lag};
		}
	}
	pw_metrics_lag(w->metrics, w->lane, rows, n);
	json_decref(root);
	return 0; /* librdkafka frees json */
}

pw_status pw_worker_create(const pw_config *cfg, pw_topic_kind lane,
                           const pw_cursor_key *cursor_key, pw_metrics *metrics, pw_worker **out,
                           char *errstr, size_t errstr_size)
{
	pw_status st = PW_E_CONFIG;
	pw_worker *w = calloc(1, sizeof(*w));
	rd_kafka_conf_t *conf = NULL;
	rd_kafka_topic_partition_list_t *topics = NULL;
	char client_id[64];

	*out = NULL;
	if (w == NULL)
		return PW_E_NOMEM;
	w->cfg = cfg;
	w->lane = lane;
	w->metrics = metrics;
	w->name = lane == PW_TOPIC_CREATE ? "create" : "query";
	w->topic = lane == PW_TOPIC_CREATE ? cfg->topic_create : cfg->topic_query;
	w->hc.cursor_key = cursor_key;
	/* Queries are answered one by one: someone waits on each. */
	w->batch_max = lane == PW_TOPIC_CREATE ? cfg->batch_max : 1;
	snprintf(client_id, sizeof(client_id), "patient-worker-%s", w->name);
	if (pw_jwt_verifier_create(cfg, &w->jwt) != PW_OK) {
		snprintf(errstr, errstr_size, "JWT_SECRET/JWT_PUBLIC_KEY_FILE: no usable key");
		goto out;
	}
	w->hc.cfg = cfg;
	w->hc.jwt = w->jwt;
	if (pw_offsets_create(&w->offsets) != PW_OK) {
		st = PW_E_NOMEM;
		goto out;
	}
	if (pw_command_db(cfg, &w->db, errstr, errstr_size) != PW_OK) {
		st = PW_E_INTERNAL;
		goto out;
	}

	conf = pw_kafka_conf_new(cfg, PW_KAFKA_PRODUCER, errstr, errstr_size);
	if (conf == NULL || pw_kafka_conf_set(conf, "client.id", client_id, errstr, errstr_size))
		goto out;
	/* Queries are answered one by one and someone waits on each: send at once. Creates
	 * come in bulk, where a few ms of batching saves broker round trips. */
	if (lane == PW_TOPIC_QUERY &&
	    pw_kafka_conf_set(conf, "linger.ms", "0", errstr, errstr_size))
		goto out;
	rd_kafka_conf_set_opaque(conf, w);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	w->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
	if (w->producer == NULL)
		goto out;
	conf = NULL; /* the producer owns it */

	conf = pw_kafka_conf_new(cfg, PW_KAFKA_CONSUMER, errstr, errstr_size);
	if (conf == NULL || pw_kafka_conf_set(conf, "client.id", client_id, errstr, errstr_size))
		goto out;
	rd_kafka_conf_set_opaque(conf, w);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	if (metrics != NULL) {
		if (pw_kafka_conf_set(conf, "statistics.interval.ms", STATS_INTERVAL_MS, errstr,
		                      errstr_size))
			goto out;
		rd_kafka_conf_set_stats_cb(conf, stats_cb);
	}
	rd_kafka_conf_set_error_cb(conf, error_cb);
	w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
	if (w->consumer == NULL)
		goto out;
	conf = NULL;
	rd_kafka_poll_set_consumer(w->consumer);

	topics = rd_kafka_topic_partition_list_new(2);
	if (topics == NULL) {
		st = PW_E_NOMEM;
		goto out;
	}
	rd_kafka_topic_partition_list_add(topics, w->topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t err = rd_kafka_subscribe(w->consumer, topics);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(err));
		goto out;
	}
	*out = w;
	w = NULL;
	st = PW_OK;
out:
	if (topics)
		rd_kafka_topic_partition_list_destroy(topics);
	if (conf)
		rd_kafka_conf_destroy(conf);
	pw_worker_destroy(w);
	return st;
}

/* One line every STATS_EVERY_US with the counters since the previous one: what an
 * operator (or a benchmark) needs to see where the time goes. */
static void log_stats(pw_worker *w)
{
	unsigned long items = w->batch_items, batches = w->batches;
	if (batches > 0 || w->answered > 0)
		PW_LOG_INFO(NULL,
		            "%s lane: %lu answered, %lu dead-lettered, %lu database calls "
		            "(%.1f commands each, %.1f ms each), %zu in flight",
		            w->name, w->answered, w->dead_letters, batches,
		            batches ? (double)items / (double)batches : 0.0,
		            batches ? (double)w->db_us / 1000.0 / (double)batches : 0.0,
		            pw_offsets_inflight(w->offsets));
	w->batches = w->batch_items = 0;
	w->db_us = 0;
}

/* The lane's gauges for /metrics and /readyz: assignment, pause state, token cache. */
static void publish_metrics(pw_worker *w)
{
	rd_kafka_topic_partition_list_t *a = NULL;
	unsigned long hits, misses;
	size_t entries;
	int partitions = 0;

	if (w->metrics == NULL)
		return;
	if (rd_kafka_assignment(w->consumer, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		partitions = a->cnt;
		rd_kafka_topic_partition_list_destroy(a);
	}
	pw_metrics_lane(w->metrics, w->lane, w->joined, partitions, (w->pause_why & PAUSE_DB) != 0,
	                pw_offsets_inflight(w->offsets));
	pw_jwt_cache_stats(w->jwt, &hits, &misses, &entries);
	pw_metrics_token_cache(w->metrics, w->lane, hits, misses, entries);
}

static void shutdown_in_order(pw_worker *w)
{
	job *j;
	size_t dropped;

	if (!(w->pause_why & PAUSE_DB))
		flush_batch(w);
	while ((j = list_pop(&w->batch)) != NULL)
		list_push(&w->held, j);
	dropped = w->held.n;

	while ((j = list_pop(&w->held)) != NULL) {
		pw_offsets_release(w->offsets, j->pending);
		job_free(w, j);
	}
	if (dropped)
		PW_LOG_WARN(NULL, "%zu held creates left for the next worker (database down)",
		            dropped);
	while (!w->fatal && (j = list_pop(&w->retry)) != NULL)
		job_produce(w, j);
	if (rd_kafka_flush(w->producer, w->cfg->shutdown_timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
		PW_LOG_WARN(NULL, "replies still unacknowledged at the shutdown deadline; their "
		                  "records will be answered again by the next worker");
	w->stopping = 1;
	/* Commits the stored offsets (auto-commit) and leaves the group. */
	rd_kafka_consumer_close(w->consumer);
	rd_kafka_purge(w->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(w->producer, 0);
}

int pw_worker_run(pw_worker *w, volatile sig_atomic_t *stop)
{
	char err[512];
	pw_status st;

	w->stop = stop;
	st = pw_db_connect(w->db, err, sizeof(err));

	if (st == PW_E_CONFIG) {
		PW_LOG_ERROR(NULL, "%s", err);
		fprintf(stderr, "%s\n", err);
		/* Leave the group properly even now: librdkafka 2.0.2 asserts in the sticky
		 * assignor when a subscribed consumer is destroyed without a close. */
		rd_kafka_consumer_close(w->consumer);
		return 2;
	}
	if (st != PW_OK)
		db_down(w, err);
	PW_LOG_INFO(NULL, "%s lane ready: consuming %s as group %s", w->name, w->topic,
	            w->cfg->group_id);

	while (!*stop && !w->fatal) {
		job *j;
		if ((w->pause_why & PAUSE_DB) && now_us() >= w->db_next_try_us)
			retry_held(w);
		while (!w->fatal && (j = list_pop(&w->retry)) != NULL)
			job_produce(w, j);

		int full = pw_offsets_inflight(w->offsets) >= (size_t)w->cfg->max_inflight ||
		           w->bytes >= INFLIGHT_BYTES_MAX;
		w->pause_why = full ? (w->pause_why | PAUSE_FULL) : (w->pause_why & ~PAUSE_FULL);
		set_paused(w);

		rd_kafka_poll(w->producer, 0);
		if (now_us() >= w->metrics_at_us) {
			publish_metrics(w);
			w->metrics_at_us = now_us() + METRICS_EVERY_US;
		}
		if (now_us() >= w->stats_at_us) {
			log_stats(w);
			w->stats_at_us = now_us() + STATS_EVERY_US;
		}
		/* A batch takes every record that is ready, up to BATCH_MAX; it waits at
		 * most BATCH_WAIT_MS for more, and is written as soon as none is ready
		 * past that. */
		int timeout = POLL_MS;
		if (w->batch.n > 0) {
			int64_t left = (w->batch_deadline_us - now_us()) / 1000;
			timeout = left <= 0 ? 0 : left < POLL_MS ? (int)left : POLL_MS;
		} else if (rd_kafka_outq_len(w->producer) > 0 &&
		           now_us() - w->produced_us < DR_WATCH_US) {
			/* Replies just sent await their acknowledgement: come back for the
			 * delivery reports soon, or a quiet topic would hold each one (its
			 * offset, its latency figure) for a whole poll. Not for long: with the
			 * broker away the loop goes back to its normal pace. */
			timeout = DR_POLL_MS;
		}
		rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, timeout);
		if (m == NULL) {
			if (w->batch.n > 0 && now_us() >= w->batch_deadline_us)
				flush_batch(w);
			continue;
		}
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				PW_LOG_WARN(NULL, "consumer: %s", rd_kafka_message_errstr(m));
		} else {
			handle_message(w, m);
		}
		rd_kafka_message_destroy(m);
	}
	PW_LOG_INFO(NULL, "stopping: finishing the records in hand");
	/* Not ready from here on: a probe watching /readyz sees the worker leaving. */
	w->joined = 0;
	publish_metrics(w);
	shutdown_in_order(w);
	PW_LOG_INFO(NULL, "stopped: %lu answered, %lu dead-lettered, %lu database outages",
	            w->answered, w->dead_letters, w->db_outages);
	return w->fatal ? 1 : 0;
}

void pw_worker_destroy(pw_worker *w)
{
	job *j;

	if (w == NULL)
		return;
	if (w->consumer)
		rd_kafka_destroy(w->consumer);
	if (w->producer)
		rd_kafka_destroy(w->producer);
	while ((j = list_pop(&w->retry)) != NULL)
		job_free(w, j);
	while ((j = list_pop(&w->held)) != NULL)
		job_free(w, j);
	while ((j = list_pop(&w->batch)) != NULL)
		job_free(w, j);
	pw_offsets_destroy(w->offsets);
	pw_db_destroy(w->db);
	pw_jwt_verifier_destroy(w->jwt);
	free(w);
}
