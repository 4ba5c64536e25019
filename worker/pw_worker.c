/* One lane's loop. A record's way, in call order:
 *
 *   take_record     rd_kafka_consumer_poll → pw_job_new (its offset tracked, pw_offsets)
 *                   → pw_handler_decide → a dead letter: pw_outbox_send
 *                                       → a command:     pw_sessions_add
 *   (a session's    when its batch is due: pw_batch_take → pw_command_run (the writes in
 *    thread)        one transaction) → the answered jobs handed back, the lane woken
 *   send_answered   pw_sessions_answered → pw_outbox_send for each
 *   serve_reports   pw_outbox_serve → librdkafka's delivery report (pw_outbox.c,
 *                   `delivered`) → the offset stored once its partition's watermark passes
 *
 * The write lane has DB_WRITE_SESSIONS sessions, the query lane DB_QUERY_SESSIONS (pw_sessions.h).
 * When the database is down, or too much is in flight, every assigned partition is
 * paused and the loop keeps polling so the group keeps us; the records already taken are
 * held and retried, never skipped. A record whose token waits for the key set's refresh
 * (an unknown kid) pauses its own partition only, sought back to it: it and the records
 * after it are read again once the refresh is done, and the other partitions go on. */
#include "pw_worker.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "pw_handler.h"
#include "pw_jwt.h"
#include "pw_kafka.h"
#include "pw_log.h"
#include "pw_offsets.h"
#include "pw_outbox.h"
#include "pw_sessions.h"
#include "pw_util.h"

/* Bytes of records held in memory (values kept for a possible dead letter) before the
 * consumer pauses; with MAX_INFLIGHT it bounds the worker's memory. */
#define INFLIGHT_BYTES_MAX (32u * 1024 * 1024)
#define POLL_MS            100
#define STATS_EVERY_US     (10 * 1000000)
#define METRICS_EVERY_US   1000000
#define STATS_INTERVAL_MS  "5000" /* consumer lag for /metrics */

struct pw_worker {
	const pw_config *cfg;
	pw_topic_kind lane;
	const char *name;  /**< "create" or "query", for logs */
	const char *topic; /**< the lane's command topic */
	rd_kafka_t *consumer;
	rd_kafka_queue_t *consumer_q; /**< what the sessions yield to wake the lane */
	pw_offsets *offsets;
	pw_outbox *outbox;     /**< the producer, delivery reports, offset stores */
	pw_sessions *sessions; /**< the database sessions and the jobs waiting for them */
	pw_jwt_verifier *jwt;
	pw_keyring *ring; /**< the key set, when there is one */
	pw_handler handler;
	/** Partitions paused for the key set's refresh, each sought back to the record that
	 * waits (at most the assignment). */
	rd_kafka_topic_partition_list_t *waiting;
	pw_metrics *metrics; /**< shared with the other lane and the HTTP thread; may be NULL */
	const atomic_int *stop;
	bool fatal;  /**< out of memory, or the database refuses work for good */
	bool paused; /**< assigned partitions are paused */
	bool joined; /**< the group gave this consumer an assignment */
	bool idle;   /**< the last poll found no record ready */
	unsigned long db_outages;
	int64_t stats_at_us;   /**< next periodic stats line */
	int64_t metrics_at_us; /**< next refresh of the lane's gauges */
};

/* ---- the database's answers ----------------------------------------------------------- */

/* The jobs the sessions answered go to the outbox, in the order each session answered. */
static void send_answered(pw_worker *w)
{
	pw_job_list l = pw_sessions_answered(w->sessions);
	pw_job *j;

	while ((j = pw_job_list_pop(&l)) != NULL)
		pw_outbox_send(w->outbox, j);
}

/* ---- taking records ------------------------------------------------------------------------ */

/* m's token waits for the key set's refresh: its partition is paused and sought back to it
 * (librdkafka drops what it had fetched after it), so m and the records after it come
 * again, in order, once resume_waiting resumes the partition; nothing of the partition
 * was stored past m. False when librdkafka refuses. */
static bool wait_for_keys(pw_worker *w, const rd_kafka_message_t *m)
{
	const char *topic = rd_kafka_topic_name(m->rkt);
	rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
	rd_kafka_error_t *e = NULL;
	rd_kafka_resp_err_t err;

	if (one == NULL)
		return false;
	rd_kafka_topic_partition_list_add(one, topic, m->partition)->offset = m->offset;
	/* Pause first: a pause sets the next fetch to the record after the last one taken,
	 * the seek after it moves that back to m. */
	err = rd_kafka_pause_partitions(w->consumer, one);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		err = one->elems[0].err;
	/* Without a timeout the seek is queued (its element says in progress) before any
	 * fetch of the partition can be. */
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    (e = rd_kafka_seek_partitions(w->consumer, one, 0)))
		err = rd_kafka_error_code(e);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    one->elems[0].err != RD_KAFKA_RESP_ERR__IN_PROGRESS)
		err = one->elems[0].err;
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		rd_kafka_topic_partition_list_add(w->waiting, topic, m->partition)->offset =
		    m->offset;
	PW_LOG_INFO(NULL, "%s lane: %s/%d waits at offset %lld for the key set's refresh: %s",
	            w->name, topic, (int)m->partition, (long long)m->offset,
	            err == RD_KAFKA_RESP_ERR_NO_ERROR ? "paused" : rd_kafka_err2str(err));
	rd_kafka_error_destroy(e);
	rd_kafka_topic_partition_list_destroy(one);
	return err == RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* The key set's refresh is done: the partitions that waited for it are resumed (left
 * paused while the whole lane is: flow_control resumes them with the others). */
static void resume_waiting(pw_worker *w)
{
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (w->waiting->cnt == 0 || pw_keyring_kid_waits(w->ring))
		return;
	if (!w->paused && (err = rd_kafka_resume_partitions(w->consumer, w->waiting)) !=
	                      RD_KAFKA_RESP_ERR_NO_ERROR) {
		PW_LOG_WARN(NULL, "resuming partitions failed: %s", rd_kafka_err2str(err));
		return; /* tried again at the next turn */
	}
	PW_LOG_INFO(NULL, "%s lane: key set refreshed, %d waiting partitions resume", w->name,
	            w->waiting->cnt);
	while (w->waiting->cnt > 0)
		rd_kafka_topic_partition_list_del_by_idx(w->waiting, w->waiting->cnt - 1);
}

static void handle(pw_worker *w, const rd_kafka_message_t *m)
{
	pw_handler_record r;
	pw_job *j = NULL;

	if (pw_job_new(m, w->offsets, &j) != PW_OK)
		goto oom;
	pw_handler_record_of(m, (int64_t)time(NULL), &r);
	if (pw_handler_decide(&w->handler, &r, w->lane, &j->out) != PW_OK)
		goto oom;
	j->decided_us = pw_util_now_us();
	if (j->out.kind == PW_HANDLER_WAIT) {
		pw_job_untake(j, w->offsets);
		if (!wait_for_keys(w, m)) {
			/* The record cannot be read again: stop before a later one is stored. */
			PW_LOG_ERROR(NULL, "cannot hold %s/%d for the key set; stopping",
			             rd_kafka_topic_name(m->rkt), (int)m->partition);
			w->fatal = true;
		}
	} else if (j->out.kind == PW_HANDLER_DEAD_LETTER) {
		j->dead = true;
		pw_outbox_send(w->outbox, j);
	} else {
		pw_sessions_add(w->sessions, j);
	}
	return;
oom:
	/* Not answered and never stored: the record comes back after a restart. */
	PW_LOG_ERROR(NULL, "out of memory handling %s/%d/%lld; stopping",
	             rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset);
	if (j != NULL)
		pw_job_drop(j, w->offsets);
	w->fatal = true;
}

/* One record, waiting at most timeout_ms for it. False when none came. */
static bool take_record(pw_worker *w, int timeout_ms)
{
	rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, timeout_ms);

	if (m == NULL)
		return false;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
		handle(w, m);
	else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
		PW_LOG_WARN(NULL, "consumer: %s", rd_kafka_message_errstr(m));
	rd_kafka_message_destroy(m);
	return true;
}

/* How long to wait for a record: until an open batch's wait is over (the session needs the
 * lane's idleness then), else one poll. Whatever else the lane serves wakes it: a session's
 * answers, a delivery report (pw_outbox yields the consumer's queue for both). */
static int poll_timeout(const pw_worker *w)
{
	return pw_sessions_wait_ms(w->sessions, pw_util_now_us(), POLL_MS);
}

/* ---- flow control and reporting ------------------------------------------------------------ */

/* Pauses every assigned partition while the database is down or too much is in flight
 * (the memory bound), resumes when neither holds. */
static void flow_control(pw_worker *w)
{
	bool db_down = pw_sessions_db_down(w->sessions);
	bool full = pw_offsets_inflight(w->offsets) >= (size_t)w->cfg->max_inflight ||
	            pw_offsets_inflight_bytes(w->offsets) >= INFLIGHT_BYTES_MAX;
	bool want = db_down || full;
	rd_kafka_topic_partition_list_t *a = NULL;
	rd_kafka_resp_err_t err;

	if (want == w->paused || rd_kafka_assignment(w->consumer, &a) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	/* Partitions waiting for the key set stay paused until it is refreshed. */
	for (int i = 0; !want && i < w->waiting->cnt; i++)
		rd_kafka_topic_partition_list_del(a, w->waiting->elems[i].topic,
		                                  w->waiting->elems[i].partition);
	err = want ? rd_kafka_pause_partitions(w->consumer, a)
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
		            db_down ? "database unreachable" : "in-flight limit");
	else
		PW_LOG_INFO(NULL, "consumption resumed");
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
	pw_metrics_lane(w->metrics, w->lane, w->joined, partitions,
	                pw_sessions_db_down(w->sessions), pw_offsets_inflight(w->offsets));
	pw_metrics_waiting_for_keys(w->metrics, w->lane, w->waiting->cnt);
	pw_jwt_cache_stats(w->jwt, &hits, &misses, &entries);
	pw_metrics_token_cache(w->metrics, w->lane, hits, misses, entries);
}

/* One line every STATS_EVERY_US with the counters since the previous one: what an
 * operator (or a benchmark) needs to see where the time goes. */
static void log_stats(pw_worker *w)
{
	unsigned long answered, dead, items, batches, outages;
	int64_t db_us;

	pw_sessions_stats(w->sessions, &batches, &items, &db_us, &outages);
	w->db_outages += outages;
	pw_outbox_counts(w->outbox, &answered, &dead);
	if (batches > 0 || answered > 0)
		PW_LOG_INFO(NULL,
		            "%s lane: %lu answered, %lu dead-lettered, %lu database calls "
		            "(%.1f commands each, %.1f ms each), %zu in flight",
		            w->name, answered, dead, batches,
		            batches ? (double)items / (double)batches : 0.0,
		            batches ? (double)db_us / 1000.0 / (double)batches : 0.0,
		            pw_offsets_inflight(w->offsets));
}

static void report(pw_worker *w)
{
	int64_t now = pw_util_now_us();

	if (now >= w->metrics_at_us) {
		publish_metrics(w);
		w->metrics_at_us = now + METRICS_EVERY_US;
	}
	if (now >= w->stats_at_us) {
		log_stats(w);
		w->stats_at_us = now + STATS_EVERY_US;
	}
}

/* ---- librdkafka's callbacks, called from inside rd_kafka_consumer_poll ---------------------- */

/* Partitions assigned: taken as they come (paused if the lane is). Partitions revoked: the
 * jobs of theirs still waiting for the database are dropped, not answered (their next
 * owner answers them from the last commit); batches in the database and replies in flight
 * get a moment to be answered, acknowledged and committed first, so the next owner
 * repeats less. No database work here: only the sessions write. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	pw_worker *w = opaque;
	bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	rd_kafka_error_t *e = NULL;
	rd_kafka_resp_err_t r = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		if (coop)
			e = rd_kafka_incremental_assign(rk, parts);
		else
			r = rd_kafka_assign(rk, parts);
		if (w->paused)
			rd_kafka_pause_partitions(rk, parts);
		w->joined = true;
		PW_LOG_INFO(NULL, "%s lane: partitions assigned: %d", w->name, parts->cnt);
	} else {
		pw_sessions_revoke(w->sessions, parts, w->offsets, 5000);
		send_answered(w);
		for (int i = 0; i < parts->cnt; i++)
			rd_kafka_topic_partition_list_del(w->waiting, parts->elems[i].topic,
			                                  parts->elems[i].partition);
		if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && !rd_kafka_assignment_lost(rk)) {
			pw_outbox_drain(w->outbox, 5000);
			rd_kafka_commit(rk, NULL, 0);
		}
		for (int i = 0; i < parts->cnt; i++)
			pw_offsets_revoke(w->offsets, parts->elems[i].topic,
			                  parts->elems[i].partition);
		if (rd_kafka_assignment_lost(rk))
			w->joined = false; /* out of the group until it assigns us again */
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

/* librdkafka's statistics (every STATS_INTERVAL_MS): the consumer lag of each assigned
 * partition as Kafka's own tools count it, from the committed offset to the end of the
 * partition; librdkafka knows both without asking the broker again. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	pw_worker *w = opaque;
	pw_metrics_lag_row rows[PW_METRICS_LAG_MAX + 1];
	size_t n = 0;
	json_t *root = json_loadb(json, len, 0, NULL);
	const char *tname;
	json_t *t;

	(void)rk;
	if (root == NULL)
		return 0; /* keep the last table rather than report no lag at all */
	json_object_foreach(json_object_get(root, "topics"), tname, t)
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
				rows[n++] =
				    (pw_metrics_lag_row){tname, (int32_t)part, (int64_t)lag};
		}
	}
	pw_metrics_lag(w->metrics, w->lane, rows, n);
	json_decref(root);
	return 0; /* librdkafka frees json */
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* One turn: a fixed list of chores, then one record. */
static void run_once(pw_worker *w)
{
	if (pw_sessions_fatal(w->sessions))
		w->fatal = true;
	send_answered(w);              /* what the sessions answered: to the producer */
	pw_outbox_retry(w->outbox);    /* replies whose delivery failed for a transient reason */
	flow_control(w);               /* pause or resume the partitions */
	resume_waiting(w);             /* partitions that waited for the key set */
	pw_outbox_serve(w->outbox, 0); /* delivery reports: replies finished, offsets stored */
	report(w);                     /* /metrics gauges, the stats line */
	w->idle = !take_record(w, poll_timeout(w));
	pw_sessions_set_idle(w->sessions, w->idle);
}

static void shut_down(pw_worker *w)
{
	size_t dropped;

	pw_sessions_stop(w->sessions); /* what waits is answered now, while the database is up */
	send_answered(w);
	dropped = pw_sessions_drop_all(w->sessions, w->offsets);
	if (dropped)
		PW_LOG_WARN(NULL, "%zu held creates left for the next worker (database down)",
		            dropped);
	if (!pw_outbox_drain(w->outbox, w->cfg->shutdown_timeout_ms))
		PW_LOG_WARN(NULL, "replies still unacknowledged at the shutdown deadline; their "
		                  "records will be answered again by the next worker");
	/* Commits the stored offsets (auto-commit) and leaves the group. */
	rd_kafka_consumer_close(w->consumer);
	pw_outbox_abandon(w->outbox);
}

pw_status pw_worker_run(pw_worker *w, char *errstr, size_t errstr_size)
{
	unsigned long answered, dead, calls, items, outages;
	int64_t db_us;
	pw_status st = pw_sessions_start(w->sessions, errstr, errstr_size);

	if (st != PW_OK) {
		/* Leave the group properly even now: librdkafka 2.0.2 asserts in the sticky
		 * assignor when a subscribed consumer is destroyed without a close. */
		rd_kafka_consumer_close(w->consumer);
		return st;
	}
	PW_LOG_INFO(NULL, "%s lane ready: %zu database session%s, consuming %s as group %s",
	            w->name, pw_sessions_count(w->sessions),
	            pw_sessions_count(w->sessions) == 1 ? "" : "s", w->topic, w->cfg->group_id);
	while (!atomic_load(w->stop) && !w->fatal) {
		if (pw_outbox_fatal(w->outbox) &&
		    pw_outbox_renew(w->outbox, errstr, errstr_size) != PW_OK) {
			PW_LOG_ERROR(NULL, "%s lane stops: %s", w->name, errstr);
			break;
		}
		run_once(w);
	}
	PW_LOG_INFO(NULL, "stopping: finishing the records in hand");
	/* Not ready from here on: a probe watching /readyz sees the worker leaving. */
	w->joined = false;
	publish_metrics(w);
	shut_down(w);
	pw_sessions_stats(w->sessions, &calls, &items, &db_us, &outages);
	w->db_outages += outages;
	pw_outbox_counts(w->outbox, &answered, &dead);
	PW_LOG_INFO(NULL, "stopped: %lu answered, %lu dead-lettered, %lu database outages",
	            answered, dead, w->db_outages);
	return w->fatal || pw_outbox_fatal(w->outbox) ? PW_E_INTERNAL : PW_OK;
}

/* ---- making and unmaking a lane ------------------------------------------------------------ */

/* The lane's consumer, with the callbacks above. */
static pw_status make_consumer(pw_worker *w, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = pw_kafka_conf_new(w->cfg, PW_KAFKA_CONSUMER, errstr, errstr_size);
	pw_status st = PW_E_CONFIG;
	char client_id[64];

	snprintf(client_id, sizeof(client_id), "patient-worker-%s", w->name);
	if (conf == NULL ||
	    pw_kafka_conf_set(conf, "client.id", client_id, errstr, errstr_size) != PW_OK)
		goto out;
	rd_kafka_conf_set_opaque(conf, w);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	if (w->metrics != NULL) {
		if (pw_kafka_conf_set(conf, "statistics.interval.ms", STATS_INTERVAL_MS, errstr,
		                      errstr_size) != PW_OK)
			goto out;
		rd_kafka_conf_set_stats_cb(conf, stats_cb);
	}
	w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
	if (w->consumer == NULL)
		goto out;
	conf = NULL; /* the consumer owns it */
	rd_kafka_poll_set_consumer(w->consumer);
	st = PW_OK;
out:
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	return st;
}

/* The last step of making a lane: once subscribed, the consumer must be closed before it
 * is destroyed (pw_worker_run does). */
static pw_status subscribe(pw_worker *w, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_resp_err_t err;

	if (topics == NULL)
		return PW_E_NOMEM;
	rd_kafka_topic_partition_list_add(topics, w->topic, RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(w->consumer, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		return PW_OK;
	snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(err));
	return PW_E_CONFIG;
}

pw_status pw_worker_create(const pw_config *cfg, pw_topic_kind lane,
                           const pw_cursor_key *cursor_key, pw_metrics *metrics,
                           const atomic_int *stop, pw_worker **out, char *errstr,
                           size_t errstr_size)
{
	pw_worker *w = calloc(1, sizeof(*w));
	pw_status st = PW_E_NOMEM;

	*out = NULL;
	if (w == NULL)
		return st;
	w->cfg = cfg;
	w->lane = lane;
	w->metrics = metrics;
	w->stop = stop;
	w->name = lane == PW_TOPIC_CREATE ? "create" : "query";
	w->topic = lane == PW_TOPIC_CREATE ? cfg->topic_create : cfg->topic_query;
	if ((w->waiting = rd_kafka_topic_partition_list_new(4)) == NULL)
		goto out;
	if (pw_jwt_verifier_create(cfg, &w->jwt) != PW_OK) {
		snprintf(errstr, errstr_size,
		         "JWT_SECRET/JWT_PUBLIC_KEY_FILE/JWT_JWKS_FILE: no usable key");
		st = PW_E_CONFIG;
		goto out;
	}
	w->handler = (pw_handler){cfg, w->jwt, cursor_key};
	st = pw_offsets_create(&w->offsets);
	if (st == PW_OK)
		st = make_consumer(w, errstr, errstr_size);
	if (st == PW_OK && (w->consumer_q = rd_kafka_queue_get_consumer(w->consumer)) == NULL)
		st = PW_E_NOMEM;
	/* Queries are answered one at a time per session (someone waits on each), by a few
	 * sessions: a query held up (a descheduled backend under a create flood) then holds
	 * up only its partitions' queries, not the lane's. */
	if (st == PW_OK)
		st = pw_sessions_create(cfg, lane,
		                        (size_t)(lane == PW_TOPIC_CREATE ? cfg->db_write_sessions
		                                                         : cfg->db_query_sessions),
		                        lane == PW_TOPIC_CREATE ? (size_t)cfg->batch_max : 1,
		                        cursor_key, metrics, w->consumer_q, &w->sessions, errstr,
		                        errstr_size);
	if (st == PW_OK)
		st = pw_outbox_create(cfg, lane, w->consumer, w->consumer_q, w->offsets, metrics,
		                      stop, &w->outbox, errstr, errstr_size);
	if (st == PW_OK)
		st = subscribe(w, errstr, errstr_size);
	if (st != PW_OK)
		goto out;
	*out = w;
	w = NULL;
out:
	pw_worker_destroy(w);
	return st;
}

void pw_worker_destroy(pw_worker *w)
{
	if (w == NULL)
		return;
	pw_sessions_destroy(w->sessions); /* its threads yield consumer_q */
	pw_outbox_destroy(w->outbox);     /* its producer's thread yields consumer_q */
	if (w->consumer_q)
		rd_kafka_queue_destroy(w->consumer_q);
	if (w->consumer)
		rd_kafka_destroy(w->consumer);
	pw_offsets_destroy(w->offsets);
	pw_jwt_verifier_destroy(w->jwt);
	if (w->waiting)
		rd_kafka_topic_partition_list_destroy(w->waiting);
	free(w);
}

void pw_worker_use_keyring(pw_worker *w, pw_keyring *ring)
{
	w->ring = ring;
	pw_jwt_verifier_use_keyring(w->jwt, ring);
}
