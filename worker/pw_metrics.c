/* Counters and tables behind /metrics. Names follow Prometheus conventions: a
 * patient_worker_ prefix, _total for counters, base units (seconds). */
#include "pw_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LANES  2
#define TYPES  6 /* the contract's five, and unknown */
#define STATUS 600
#define DLQS   (PW_DLQ_REPLY_UNDELIVERABLE + 1)

static const char *const type_names[TYPES] = {"patient.create", "patient.update", "patient.delete",
                                              "patient.get",    "patient.list",   "unknown"};
static const char *const lane_names[LANES] = {"create", "query"};
/* Shown even at zero, so a rate() over them works from the first scrape. */
static const int known_statuses[] = {200, 201, 400, 401, 403, 404, 409, 500};
/* Upper bounds in seconds: a query takes milliseconds, a create in a batch tens of
 * them, anything held through a database outage seconds. */
static const double bucket_s[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                  0.25,  0.5,    1,     2.5,  5,     10};
#define BUCKETS (sizeof(bucket_s) / sizeof(bucket_s[0]))
static const char *const step_names[PW_STEPS] = {"kafka",    "verify",  "wait",
                                                 "database", "handoff", "delivery"};

typedef _Atomic uint64_t counter;

typedef struct lane_state {
	bool joined, db_down;
	int partitions;
	int waiting_for_keys; /**< partitions paused for the key set's refresh */
	size_t inflight;
	unsigned long cache_hits, cache_misses;
	size_t cache_entries;
	size_t nlag;
	struct {
		char topic[256];
		int32_t partition;
		int64_t lag;
	} lag[PW_METRICS_LAG_MAX + 1]; /* + the "other" row */
} lane_state;

struct pw_metrics {
	counter commands[TYPES][STATUS];
	counter latency[LANES][BUCKETS + 1]; /* + the +Inf bucket */
	counter latency_us[LANES];
	counter step[LANES][PW_STEPS][BUCKETS + 1];
	counter step_us[LANES][PW_STEPS];
	counter dead[DLQS];
	counter db_calls[LANES], db_commands[LANES], db_us[LANES];
	counter db_outages[LANES], db_reconnects[LANES], producer_renewals[LANES];
	pthread_mutex_t mu; /* guards lanes */
	lane_state lanes[LANES];
	_Atomic(pw_keyring *) ring; /* NULL: no key set */
};

static void add(counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(const counter *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

pw_status pw_metrics_create(pw_metrics **out)
{
	pw_metrics *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (m == NULL)
		return PW_E_NOMEM;
	if (pthread_mutex_init(&m->mu, NULL) != 0) {
		free(m);
		return PW_E_NOMEM;
	}
	*out = m;
	return PW_OK;
}

void pw_metrics_destroy(pw_metrics *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static int lane_index(pw_topic_kind lane)
{
	return lane == PW_TOPIC_QUERY ? 1 : 0;
}

/* The lane's state with the mutex held, for a setter; NULL, nothing held, when there are
 * no metrics. Release with pthread_mutex_unlock(&m->mu). */
static lane_state *lane_lock(pw_metrics *m, pw_topic_kind lane)
{
	if (m == NULL)
		return NULL;
	pthread_mutex_lock(&m->mu);
	return &m->lanes[lane_index(lane)];
}

/* The histogram bucket us falls in (BUCKETS: +Inf). */
static size_t bucket_of(int64_t us)
{
	size_t b = 0;

	while (b < BUCKETS && (double)us > bucket_s[b] * 1e6)
		b++;
	return b;
}

void pw_metrics_answered(pw_metrics *m, pw_topic_kind lane, const char *type, int status,
                         int64_t us)
{
	int t = TYPES - 1, l = lane_index(lane);

	if (m == NULL)
		return;
	for (int i = 0; i < TYPES - 1; i++)
		if (type != NULL && strcmp(type, type_names[i]) == 0)
			t = i;
	if (status >= 0 && status < STATUS)
		add(&m->commands[t][status], 1);
	if (us < 0)
		us = 0;
	add(&m->latency[l][bucket_of(us)], 1);
	add(&m->latency_us[l], (uint64_t)us);
}

void pw_metrics_steps(pw_metrics *m, pw_topic_kind lane, const int64_t us[PW_STEPS])
{
	int l = lane_index(lane);

	if (m == NULL)
		return;
	for (int k = 0; k < PW_STEPS; k++) {
		if (us[k] < 0)
			continue;
		add(&m->step[l][k][bucket_of(us[k])], 1);
		add(&m->step_us[l][k], (uint64_t)us[k]);
	}
}

void pw_metrics_dead_letter(pw_metrics *m, pw_dlq_reason why)
{
	if (m != NULL && (int)why >= 0 && (int)why < DLQS)
		add(&m->dead[why], 1);
}

void pw_metrics_db_call(pw_metrics *m, pw_topic_kind lane, size_t commands, int64_t us)
{
	int l = lane_index(lane);

	if (m == NULL)
		return;
	add(&m->db_calls[l], 1);
	add(&m->db_commands[l], commands);
	add(&m->db_us[l], us > 0 ? (uint64_t)us : 0);
}

void pw_metrics_db_outage(pw_metrics *m, pw_topic_kind lane)
{
	if (m != NULL)
		add(&m->db_outages[lane_index(lane)], 1);
}

void pw_metrics_producer_renewed(pw_metrics *m, pw_topic_kind lane)
{
	if (m != NULL)
		add(&m->producer_renewals[lane_index(lane)], 1);
}

void pw_metrics_db_reconnect(pw_metrics *m, pw_topic_kind lane)
{
	if (m != NULL)
		add(&m->db_reconnects[lane_index(lane)], 1);
}

void pw_metrics_lane(pw_metrics *m, pw_topic_kind lane, bool joined, int partitions, bool db_down,
                     size_t inflight)
{
	lane_state *s = lane_lock(m, lane);

	if (s == NULL)
		return;
	s->joined = joined;
	s->partitions = partitions;
	s->db_down = db_down;
	s->inflight = inflight;
	pthread_mutex_unlock(&m->mu);
}

void pw_metrics_waiting_for_keys(pw_metrics *m, pw_topic_kind lane, int partitions)
{
	lane_state *s = lane_lock(m, lane);

	if (s == NULL)
		return;
	s->waiting_for_keys = partitions;
	pthread_mutex_unlock(&m->mu);
}

void pw_metrics_token_cache(pw_metrics *m, pw_topic_kind lane, unsigned long hits,
                            unsigned long misses, size_t entries)
{
	lane_state *s = lane_lock(m, lane);

	if (s == NULL)
		return;
	s->cache_hits = hits;
	s->cache_misses = misses;
	s->cache_entries = entries;
	pthread_mutex_unlock(&m->mu);
}

void pw_metrics_lag(pw_metrics *m, pw_topic_kind lane, const pw_metrics_lag_row *rows, size_t n)
{
	lane_state *s = lane_lock(m, lane);

	if (s == NULL)
		return;
	s->nlag = 0;
	for (size_t i = 0; i < n; i++) {
		if (i < PW_METRICS_LAG_MAX) {
			snprintf(s->lag[i].topic, sizeof(s->lag[i].topic), "%s", rows[i].topic);
			s->lag[i].partition = rows[i].partition;
			s->lag[i].lag = rows[i].lag;
			s->nlag = i + 1;
			continue;
		}
		if (i == PW_METRICS_LAG_MAX) {
			snprintf(s->lag[i].topic, sizeof(s->lag[i].topic), "%s", rows[i].topic);
			s->lag[i].partition = -1; /* "other": the partitions past the limit */
			s->lag[i].lag = 0;
			s->nlag = i + 1;
		}
		s->lag[PW_METRICS_LAG_MAX].lag += rows[i].lag;
	}
	pthread_mutex_unlock(&m->mu);
}

bool pw_metrics_lanes_ready(pw_metrics *m, char *why, size_t why_size)
{
	bool ok = true;

	pthread_mutex_lock(&m->mu);
	for (int l = 0; l < LANES && ok; l++) {
		if (!m->lanes[l].joined) {
			snprintf(why, why_size, "%s lane holds no Kafka assignment", lane_names[l]);
			ok = false;
		} else if (m->lanes[l].db_down) {
			snprintf(why, why_size, "%s lane is waiting for the database",
			         lane_names[l]);
			ok = false;
		}
	}
	pthread_mutex_unlock(&m->mu);
	return ok;
}

/* ---- the exposition, one metric family (or a group of alike ones) per function ---------- */

static void header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void per_lane(FILE *f, const char *name, const char *help, const counter c[LANES],
                     double scale)
{
	header(f, name, "counter", help);
	for (int l = 0; l < LANES; l++) {
		if (scale == 1.0)
			fprintf(f, "%s{lane=\"%s\"} %llu\n", name, lane_names[l],
			        (unsigned long long)get(&c[l]));
		else
			fprintf(f, "%s{lane=\"%s\"} %.6f\n", name, lane_names[l],
			        (double)get(&c[l]) * scale);
	}
}

static void render_ready(FILE *f, bool ready)
{
	header(f, "patient_worker_ready", "gauge",
	       "1 when both lanes hold a Kafka assignment and the database answers");
	fprintf(f, "patient_worker_ready %d\n", ready ? 1 : 0);
}

static bool known_status(int s)
{
	for (size_t k = 0; k < sizeof(known_statuses) / sizeof(known_statuses[0]); k++)
		if (known_statuses[k] == s)
			return true;
	return false;
}

/* Every type with the usual statuses, at zero too, and any other status once seen. */
static void render_commands(FILE *f, const pw_metrics *m)
{
	header(f, "patient_worker_commands_total", "counter",
	       "commands answered, by type and reply status");
	for (int t = 0; t < TYPES; t++)
		for (int s = 0; s < STATUS; s++) {
			uint64_t v = get(&m->commands[t][s]);
			if (known_status(s) || v > 0)
				fprintf(f,
				        "patient_worker_commands_total{type=\"%s\",status=\"%d\"} "
				        "%llu\n",
				        type_names[t], s, (unsigned long long)v);
		}
}

/* A histogram per lane: cumulative buckets, then the sum and the count. */
static void render_latency(FILE *f, const pw_metrics *m)
{
	header(f, "patient_worker_command_duration_seconds", "histogram",
	       "from taking a command off Kafka to the broker acknowledging its reply");
	for (int l = 0; l < LANES; l++) {
		uint64_t cum = 0;
		for (size_t b = 0; b < BUCKETS; b++) {
			cum += get(&m->latency[l][b]);
			fprintf(f,
			        "patient_worker_command_duration_seconds_bucket{lane=\"%s\","
			        "le=\"%g\"} %llu\n",
			        lane_names[l], bucket_s[b], (unsigned long long)cum);
		}
		cum += get(&m->latency[l][BUCKETS]);
		fprintf(f,
		        "patient_worker_command_duration_seconds_bucket{lane=\"%s\",le=\"+Inf\"} "
		        "%llu\n",
		        lane_names[l], (unsigned long long)cum);
		fprintf(f, "patient_worker_command_duration_seconds_sum{lane=\"%s\"} %.6f\n",
		        lane_names[l], (double)get(&m->latency_us[l]) / 1e6);
		fprintf(f, "patient_worker_command_duration_seconds_count{lane=\"%s\"} %llu\n",
		        lane_names[l], (unsigned long long)cum);
	}
}

/* The same histogram per lane and step. */
static void render_steps(FILE *f, const pw_metrics *m)
{
	header(f, "patient_worker_step_duration_seconds", "histogram",
	       "a command's steps: kafka (its record's timestamp to the worker taking it), "
	       "verify (token and checks), wait (for a database session), database (its "
	       "transaction), handoff (to the lane's producer), delivery (the broker's "
	       "acknowledgement)");
	for (int l = 0; l < LANES; l++)
		for (int k = 0; k < PW_STEPS; k++) {
			uint64_t cum = 0;
			for (size_t b = 0; b <= BUCKETS; b++) {
				char le[32];
				cum += get(&m->step[l][k][b]);
				if (b < BUCKETS)
					snprintf(le, sizeof(le), "%g", bucket_s[b]);
				else
					snprintf(le, sizeof(le), "+Inf");
				fprintf(f,
				        "patient_worker_step_duration_seconds_bucket{lane=\"%s\","
				        "step=\"%s\",le=\"%s\"} %llu\n",
				        lane_names[l], step_names[k], le, (unsigned long long)cum);
			}
			fprintf(f,
			        "patient_worker_step_duration_seconds_sum{lane=\"%s\",step=\"%s\"} "
			        "%.6f\n",
			        lane_names[l], step_names[k], (double)get(&m->step_us[l][k]) / 1e6);
			fprintf(
			    f,
			    "patient_worker_step_duration_seconds_count{lane=\"%s\",step=\"%s\"} "
			    "%llu\n",
			    lane_names[l], step_names[k], (unsigned long long)cum);
		}
}

static void render_dead_letters(FILE *f, const pw_metrics *m)
{
	header(f, "patient_worker_dead_letters_total", "counter",
	       "records written to the dead-letter topic, by reason");
	for (int d = 1; d < DLQS; d++)
		fprintf(f, "patient_worker_dead_letters_total{reason=\"%s\"} %llu\n",
		        pw_envelope_dlq_code((pw_dlq_reason)d),
		        (unsigned long long)get(&m->dead[d]));
}

static void render_db(FILE *f, const pw_metrics *m)
{
	per_lane(f, "patient_worker_db_calls_total",
	         "database transactions (a batch of commands each)", m->db_calls, 1.0);
	per_lane(f, "patient_worker_db_commands_total", "commands carried by those calls",
	         m->db_commands, 1.0);
	per_lane(f, "patient_worker_db_seconds_total", "time spent in those calls", m->db_us, 1e-6);
	per_lane(f, "patient_worker_db_outages_total",
	         "times the database became unreachable and the lane paused", m->db_outages, 1.0);
	per_lane(f, "patient_worker_producer_renewals_total",
	         "times the lane's producer failed for good and was replaced by a new one",
	         m->producer_renewals, 1.0);
	per_lane(f, "patient_worker_db_reconnects_total",
	         "database sessions opened again after an outage", m->db_reconnects, 1.0);
}

/* The lanes' snapshot values, one family each. */
static void render_lane_states(FILE *f, const lane_state *snap)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
	    {"patient_worker_token_cache_hits_total", "counter",
	     "token verifications answered from the cache"},
	    {"patient_worker_token_cache_misses_total", "counter",
	     "token verifications that checked the signature"},
	    {"patient_worker_token_cache_entries", "gauge", "verified tokens held"},
	    {"patient_worker_assigned_partitions", "gauge", "partitions the lane's consumer holds"},
	    {"patient_worker_inflight_records", "gauge",
	     "records taken and not yet acknowledged (bounded by MAX_INFLIGHT)"},
	    {"patient_worker_paused_for_database", "gauge",
	     "1 while the lane waits for the database"},
	    {"patient_worker_partitions_waiting_for_keys", "gauge",
	     "partitions paused until the key set's refresh for an unknown kid is done"},
	};
	for (size_t k = 0; k < sizeof(fam) / sizeof(fam[0]); k++) {
		header(f, fam[k].name, fam[k].type, fam[k].help);
		for (int l = 0; l < LANES; l++) {
			const unsigned long long v[] = {
			    snap[l].cache_hits,
			    snap[l].cache_misses,
			    snap[l].cache_entries,
			    (unsigned long long)snap[l].partitions,
			    snap[l].inflight,
			    (unsigned long long)snap[l].db_down,
			    (unsigned long long)snap[l].waiting_for_keys};
			fprintf(f, "%s{lane=\"%s\"} %llu\n", fam[k].name, lane_names[l], v[k]);
		}
	}
}

void pw_metrics_keyring(pw_metrics *m, pw_keyring *ring)
{
	if (m != NULL)
		atomic_store(&m->ring, ring);
}

/* Only with a key set: a static key never refreshes. */
static void render_keys(FILE *f, pw_metrics *m)
{
	pw_keyring *ring = atomic_load(&m->ring);
	pw_keyring_stats s;

	if (ring == NULL)
		return;
	pw_keyring_get_stats(ring, &s);
	header(f, "patient_worker_key_set_refreshes_total", "counter",
	       "loads of the key set (start included), by result; a failed one keeps the last "
	       "good set");
	fprintf(f, "patient_worker_key_set_refreshes_total{result=\"ok\"} %lu\n", s.refresh_ok);
	fprintf(f, "patient_worker_key_set_refreshes_total{result=\"failed\"} %lu\n",
	        s.refresh_failed);
	header(f, "patient_worker_key_set_changes_total", "counter",
	       "refreshes that changed the keys");
	fprintf(f, "patient_worker_key_set_changes_total %lu\n", s.refresh_changed);
	header(f, "patient_worker_key_set_unknown_kid_refreshes_total", "counter",
	       "refreshes caused by a token naming an unknown kid (at most one per 30 s)");
	fprintf(f, "patient_worker_key_set_unknown_kid_refreshes_total %lu\n", s.unknown_kid);
	header(f, "patient_worker_key_set_keys", "gauge", "usable keys in the current set");
	fprintf(f, "patient_worker_key_set_keys %zu\n", s.keys);
	header(f, "patient_worker_key_set_age_seconds", "gauge",
	       "seconds since the last good load of the key set");
	fprintf(f, "patient_worker_key_set_age_seconds %lld\n",
	        (long long)(time(NULL) - s.last_good_s));
}

static void render_lag(FILE *f, const lane_state *snap)
{
	header(f, "patient_worker_consumer_lag", "gauge",
	       "records from the committed offset to the end of the partition (partition -1: "
	       "the partitions past the reporting limit, summed)");
	for (int l = 0; l < LANES; l++)
		for (size_t i = 0; i < snap[l].nlag; i++)
			fprintf(f,
			        "patient_worker_consumer_lag{topic=\"%s\",partition=\"%d\"} "
			        "%lld\n",
			        snap[l].lag[i].topic, (int)snap[l].lag[i].partition,
			        (long long)snap[l].lag[i].lag);
}

pw_status pw_metrics_render(pw_metrics *m, bool ready, char **text, size_t *len)
{
	/* On the heap: the lag tables are too big for an HTTP thread's stack. */
	lane_state *snap = malloc(sizeof(m->lanes));
	char *buf = NULL;
	size_t n = 0;
	FILE *f = NULL;
	pw_status st = PW_E_NOMEM;

	*text = NULL;
	*len = 0;
	if (snap == NULL || (f = open_memstream(&buf, &n)) == NULL)
		goto out;
	/* The lanes are copied out so the lock is not held while the page is written. */
	pthread_mutex_lock(&m->mu);
	memcpy(snap, m->lanes, sizeof(m->lanes));
	pthread_mutex_unlock(&m->mu);

	render_ready(f, ready);
	render_commands(f, m);
	render_latency(f, m);
	render_steps(f, m);
	render_dead_letters(f, m);
	render_db(f, m);
	render_lane_states(f, snap);
	render_keys(f, m);
	render_lag(f, snap);

	/* A write that ran out of memory leaves the error flag: the page would be cut short. */
	bool written = ferror(f) == 0;
	if (fclose(f) != 0 || !written || buf == NULL)
		goto out;
	*text = buf;
	*len = n;
	buf = NULL; /* the caller's now */
	st = PW_OK;
out:
	free(buf);
	free(snap);
	return st;
}
