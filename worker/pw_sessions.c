/* The sessions' threads; one mutex guards every session's batch and the shared lists. The
 * database work itself (pw_command_run) runs without it. */
#include "pw_sessions.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pw_batch.h"
#include "pw_command.h"
#include "pw_db.h"
#include "pw_log.h"
#include "pw_util.h"

/* A transaction the server asks to retry while the connection stays up (a deadlock between
 * two sessions writing the same owner's dni or request id, a serialization failure) is
 * tried again at once, up to this many times in a row; then it counts as an outage. */
#define CONFLICT_RETRIES 3

/* How long a session sleeps when nothing can make it due but a signal: a bound, so that a
 * lost wake-up (there should be none) costs at most this much. */
#define IDLE_WAIT_MS 100

typedef struct session {
	struct pw_sessions *owner;
	size_t index;
	pw_db *db;
	pw_batch *batch;   /**< guarded by owner->mu */
	pthread_cond_t cv; /**< a job came, the lane went idle, or stop */
	pthread_t thread;
	bool started;
	bool busy;     /**< a batch of its is in the database */
	int conflicts; /**< transactions retried in a row on a live connection */
} session;

struct pw_sessions {
	const pw_config *cfg;
	pw_topic_kind lane;
	const pw_cursor_key *cursor_key;
	pw_metrics *metrics;
	rd_kafka_queue_t *wake;
	size_t n;
	session *s;
	pthread_mutex_t mu;
	pthread_cond_t quiet; /**< a session finished a batch (pw_sessions_revoke waits) */
	pw_job_list answered;
	bool idle, stopping, fatal;
	unsigned long calls, items, outages;
	int64_t db_us;
};

/* ---- one session's work (its thread) --------------------------------------------------------- */

static void database_down(session *x, const char *why)
{
	if (pw_batch_outage(x->batch, pw_util_now_us())) {
		x->owner->outages++;
		pw_metrics_db_outage(x->owner->metrics, x->owner->lane);
		PW_LOG_WARN(NULL, "database unreachable, pausing (session %zu): %s", x->index + 1,
		            why);
	}
}

/* After an outage, once the backoff has passed; called and returns with mu held, which it
 * lets go of while it connects. True when the session is back. */
static bool reconnect(session *x)
{
	pw_sessions *s = x->owner;
	char err[512];
	pw_status st;

	pthread_mutex_unlock(&s->mu);
	st = pw_db_connect(x->db, err, sizeof(err));
	pthread_mutex_lock(&s->mu);
	if (st == PW_OK) {
		pw_metrics_db_reconnect(s->metrics, s->lane);
		return true;
	}
	if (st == PW_E_RETRY) {
		pw_batch_backoff(x->batch, pw_util_now_us());
		PW_LOG_DEBUG(NULL, "database still unreachable: %s", err);
	} else {
		PW_LOG_ERROR(NULL, "database: %s", err);
		s->fatal = true;
	}
	return false;
}

/* The jobs' database work, without the lock: each command made from its job, run, and
 * its reply moved back. */
static pw_status run_jobs(session *x, pw_job **jobs, pw_command *cmds, size_t n, char *err,
                          size_t err_size)
{
	for (size_t i = 0; i < n; i++)
		pw_handler_to_command(&jobs[i]->out, jobs[i]->src_topic, jobs[i]->partition,
		                      jobs[i]->offset, &cmds[i]);
	pw_status st = pw_command_run(x->db, x->owner->cursor_key, cmds, n, err, err_size);
	for (size_t i = 0; i < n; i++)
		pw_handler_from_command(&jobs[i]->out, &cmds[i]);
	return st;
}

/* Takes the session's next batch and writes it; called and returns with mu held. The
 * answered jobs go to the lane, the others are held, in order, for the next try. */
static void run_batch(session *x)
{
	pw_sessions *s = x->owner;
	pw_job_list taken = pw_batch_take(x->batch);
	size_t n = taken.n;
	pw_job **jobs = calloc(n ? n : 1, sizeof(*jobs));
	pw_command *cmds = calloc(n ? n : 1, sizeof(*cmds));
	bool was_down = pw_batch_db_down(x->batch);
	char err[512] = "";
	pw_status st = PW_E_NOMEM;
	int64_t t0 = pw_util_now_us(), us;

	if (jobs != NULL && cmds != NULL) {
		for (size_t i = 0; i < n; i++)
			jobs[i] = pw_job_list_pop(&taken);
		x->busy = true;
		pthread_mutex_unlock(&s->mu);
		st = run_jobs(x, jobs, cmds, n, err, sizeof(err));
		int64_t t1 = pw_util_now_us();
		for (size_t i = 0; i < n; i++) {
			jobs[i]->db_start_us = t0;
			jobs[i]->db_end_us = t1;
		}
		pthread_mutex_lock(&s->mu);
		x->busy = false;
		us = t1 - t0;
		pw_metrics_db_call(s->metrics, s->lane, n, us);
		s->calls++;
		s->items += n;
		s->db_us += us;
		for (size_t i = 0; i < n; i++)
			pw_job_list_push(cmds[i].done ? &s->answered : &taken, jobs[i]);
	}
	pw_batch_unget(x->batch, &taken); /* not done: first again, in order */
	if (st == PW_E_RETRY && pw_db_connected(x->db) && x->conflicts < CONFLICT_RETRIES) {
		x->conflicts++; /* held: due again at once */
		PW_LOG_INFO(NULL, "session %zu: transaction retried: %s", x->index + 1, err);
	} else if (st == PW_E_RETRY) {
		database_down(x, err);
	} else if (st != PW_OK) {
		PW_LOG_ERROR(NULL, "database batch failed: %s",
		             st == PW_E_NOMEM ? "out of memory" : err);
		s->fatal = true;
	} else if (was_down) {
		pw_batch_recovered(x->batch);
		PW_LOG_INFO(
		    NULL,
		    "database reachable again, resuming (session %zu: %zu held records answered)",
		    x->index + 1, n);
	}
	if (st == PW_OK)
		x->conflicts = 0;
	free(jobs);
	free(cmds);
	pthread_cond_broadcast(&s->quiet);
}

/* The monotonic clock's time us from now, for a timed wait (every condition variable here
 * waits on that clock, like every deadline in the worker). */
static struct timespec after_us(int64_t us)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(us / 1000000);
	ts.tv_nsec += (long)(us % 1000000) * 1000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static void wait_ms(session *x, int ms)
{
	struct timespec ts = after_us((int64_t)ms * 1000);

	(void)pthread_cond_timedwait(&x->cv, &x->owner->mu, &ts);
}

/* The session's loop: a batch when it is due (the database, or a reconnect first), else
 * a wait for a job, the lane's idleness or the backoff's end. At stop, what waits is
 * written while the database answers. */
static void *session_main(void *arg)
{
	session *x = arg;
	pw_sessions *s = x->owner;

	pthread_mutex_lock(&s->mu);
	while (!s->fatal) {
		int64_t now = pw_util_now_us();
		bool down = pw_batch_db_down(x->batch);
		bool due;

		if (s->stopping) {
			if (down || pw_batch_size(x->batch) == 0)
				break; /* what is held is left for the next worker */
			due = true;
		} else {
			due = pw_batch_due(x->batch, now, s->idle);
		}
		if (!due) {
			int ms = pw_batch_wait_ms(x->batch, now, IDLE_WAIT_MS);
			/* 0: the batch has waited, and the lane is not idle yet; it says when. */
			wait_ms(x, ms > 0 ? ms : IDLE_WAIT_MS);
			continue;
		}
		if (down && !reconnect(x))
			continue;
		run_batch(x);
		if (s->answered.n > 0) {
			pthread_mutex_unlock(&s->mu);
			rd_kafka_queue_yield(s->wake); /* the lane sends the replies */
			pthread_mutex_lock(&s->mu);
		}
	}
	pthread_mutex_unlock(&s->mu);
	rd_kafka_queue_yield(s->wake);
	return NULL;
}

/* ---- the lane's side ------------------------------------------------------------------------ */

pw_status pw_sessions_create(const pw_config *cfg, pw_topic_kind lane, size_t n, size_t batch_max,
                             const pw_cursor_key *cursor_key, pw_metrics *metrics,
                             rd_kafka_queue_t *wake, pw_sessions **out, char *errstr,
                             size_t errstr_size)
{
	pw_sessions *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;
	pw_status st = PW_E_NOMEM;

	*out = NULL;
	if (s == NULL)
		return st;
	s->cfg = cfg;
	s->lane = lane;
	s->cursor_key = cursor_key;
	s->metrics = metrics;
	s->wake = wake;
	s->n = n ? n : 1;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return st;
	}
	if (pthread_condattr_init(&ca) != 0) {
		pthread_mutex_destroy(&s->mu);
		free(s);
		return st;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&s->quiet, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return st;
	}
	s->s = calloc(s->n, sizeof(*s->s));
	if (s->s == NULL)
		goto out;
	for (size_t i = 0; i < s->n; i++) {
		session *x = &s->s[i];
		x->owner = s;
		x->index = i;
		if (pthread_cond_init(&x->cv, &ca) != 0) {
			x->owner = NULL; /* no cv to destroy */
			goto out;
		}
		if ((st = pw_batch_create(batch_max, cfg->batch_wait_ms, &x->batch)) != PW_OK ||
		    (st = pw_command_db(cfg, &x->db, errstr, errstr_size)) != PW_OK)
			goto out;
		char name[64];
		if (lane == PW_TOPIC_QUERY)
			snprintf(name, sizeof(name), "patient-worker query %zu", i + 1);
		else
			snprintf(name, sizeof(name), "patient-worker create %zu", i + 1);
		pw_db_set_name(x->db, name);
	}
	*out = s;
	s = NULL;
	st = PW_OK;
out:
	pthread_condattr_destroy(&ca);
	pw_sessions_destroy(s);
	return st;
}

pw_status pw_sessions_start(pw_sessions *s, char *errstr, size_t errstr_size)
{
	for (size_t i = 0; i < s->n; i++) {
		pw_status st = pw_db_connect(s->s[i].db, errstr, errstr_size);
		if (st == PW_E_CONFIG)
			return st;
		if (st != PW_OK)
			database_down(&s->s[i], errstr);
	}
	for (size_t i = 0; i < s->n; i++) {
		int rc = pthread_create(&s->s[i].thread, NULL, session_main, &s->s[i]);
		if (rc != 0) {
			snprintf(errstr, errstr_size, "cannot start a database session thread: %s",
			         strerror(rc));
			pw_sessions_stop(s);
			return PW_E_INTERNAL;
		}
		s->s[i].started = true;
	}
	return PW_OK;
}

size_t pw_sessions_count(const pw_sessions *s)
{
	return s->n;
}

void pw_sessions_add(pw_sessions *s, pw_job *j)
{
	session *x = &s->s[(size_t)(j->partition < 0 ? 0 : j->partition) % s->n];

	pthread_mutex_lock(&s->mu);
	pw_batch_add(x->batch, j, pw_util_now_us());
	pthread_cond_signal(&x->cv);
	pthread_mutex_unlock(&s->mu);
}

void pw_sessions_set_idle(pw_sessions *s, bool idle)
{
	pthread_mutex_lock(&s->mu);
	if (idle && !s->idle)
		for (size_t i = 0; i < s->n; i++)
			if (pw_batch_size(s->s[i].batch) > 0)
				pthread_cond_signal(&s->s[i].cv);
	s->idle = idle;
	pthread_mutex_unlock(&s->mu);
}

int pw_sessions_wait_ms(pw_sessions *s, int64_t now_us, int cap_ms)
{
	int ms = cap_ms;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n; i++) {
		session *x = &s->s[i];
		/* A batch due whatever the lane does is its session's to take (it was
		 * signalled); the lane waking for it would only spin beside that session. */
		if (x->busy || pw_batch_db_down(x->batch) || pw_batch_size(x->batch) == 0 ||
		    pw_batch_due(x->batch, now_us, false))
			continue;
		int m = pw_batch_wait_ms(x->batch, now_us, cap_ms);
		if (m < ms)
			ms = m;
	}
	pthread_mutex_unlock(&s->mu);
	return ms;
}

pw_job_list pw_sessions_answered(pw_sessions *s)
{
	pw_job_list l;

	pthread_mutex_lock(&s->mu);
	l = s->answered;
	s->answered = (pw_job_list){0};
	pthread_mutex_unlock(&s->mu);
	return l;
}

bool pw_sessions_db_down(pw_sessions *s)
{
	bool down = false;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n && !down; i++)
		down = pw_batch_db_down(s->s[i].batch);
	pthread_mutex_unlock(&s->mu);
	return down;
}

bool pw_sessions_fatal(pw_sessions *s)
{
	bool f;

	pthread_mutex_lock(&s->mu);
	f = s->fatal;
	pthread_mutex_unlock(&s->mu);
	return f;
}

static bool any_busy(const pw_sessions *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->s[i].busy)
			return true;
	return false;
}

size_t pw_sessions_revoke(pw_sessions *s, const rd_kafka_topic_partition_list_t *parts,
                          pw_offsets *o, int timeout_ms)
{
	int64_t until = pw_util_now_us() + (int64_t)timeout_ms * 1000;
	size_t dropped = 0;

	pthread_mutex_lock(&s->mu);
	/* A batch in flight is let finish, so its jobs are answered and committed by us
	 * rather than answered again by the partitions' next owner. */
	while (any_busy(s)) {
		int64_t left = until - pw_util_now_us();
		if (left <= 0)
			break;
		struct timespec ts = after_us(left);
		if (pthread_cond_timedwait(&s->quiet, &s->mu, &ts) == ETIMEDOUT)
			break;
	}
	for (size_t i = 0; i < s->n; i++)
		dropped += pw_batch_drop(s->s[i].batch, parts, o);
	pthread_mutex_unlock(&s->mu);
	return dropped;
}

void pw_sessions_stop(pw_sessions *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	for (size_t i = 0; i < s->n; i++)
		if (s->s[i].started)
			pthread_cond_signal(&s->s[i].cv);
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < s->n; i++) {
		if (s->s[i].started)
			pthread_join(s->s[i].thread, NULL);
		s->s[i].started = false;
	}
}

size_t pw_sessions_drop_all(pw_sessions *s, pw_offsets *o)
{
	size_t dropped = 0;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n; i++)
		dropped += pw_batch_drop(s->s[i].batch, NULL, o);
	pthread_mutex_unlock(&s->mu);
	return dropped;
}

void pw_sessions_stats(pw_sessions *s, unsigned long *calls, unsigned long *items, int64_t *db_us,
                       unsigned long *outages)
{
	pthread_mutex_lock(&s->mu);
	*calls = s->calls;
	*items = s->items;
	*db_us = s->db_us;
	*outages = s->outages;
	s->calls = s->items = s->outages = 0;
	s->db_us = 0;
	pthread_mutex_unlock(&s->mu);
}

void pw_sessions_destroy(pw_sessions *s)
{
	pw_job *j;

	if (s == NULL)
		return;
	if (s->s != NULL) {
		pw_sessions_stop(s);
		for (size_t i = 0; i < s->n; i++) {
			pw_batch_destroy(s->s[i].batch);
			pw_db_destroy(s->s[i].db);
			if (s->s[i].owner != NULL)
				pthread_cond_destroy(&s->s[i].cv);
		}
		free(s->s);
	}
	while ((j = pw_job_list_pop(&s->answered)) != NULL)
		pw_job_free(j);
	pthread_cond_destroy(&s->quiet);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
