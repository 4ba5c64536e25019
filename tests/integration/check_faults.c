/* Faults under load (issue 5): PostgreSQL away while 50,000 creates arrive (bounded
 * memory), SIGTERM in the middle of a load, a worker joining and leaving the group
 * mid-load, the Kafka broker restarted mid-load, one of two workers SIGKILLed mid-load,
 * PostgreSQL away for 10 s under two workers, a slow database (bounded memory). After
 * each: every request answered with the status one-at-a-time processing gives, every
 * reply to the same request the same bytes, the rows exactly as one-at-a-time processing
 * leaves them, one audit row per command.
 *
 * The five faults of issue 11 (SIGTERM, rebalance, broker restart, SIGKILL, database
 * outage) run a mixed load: 70% creates, 20% updates, 10% deletes. Its updates and
 * deletes change patients made before the fault (the seed): seed patient b gets, at
 * positions 10b+7, 10b+8 and 10b+9 of the load, an update naming version 1, one naming
 * version 2 and a delete naming version 3, keyed by patient, so in one partition in that
 * order: all 200 whatever the fault, and a redelivered one is answered from its outcome. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "pw_check_main.h"
#include "pw_httpc.h"
#include "pw_testidp.h"
#include "pw_testkit.h"

#define MAX_PARTS  16
#define MAX_PIDS   64
#define MIB        (1024L * 1024L)
#define HWM_MAX_KB (64L * 1024L)

/* Pids of every worker started, shared with the runner's process: a failing case exits
 * without stopping its workers, and the runner then ends them (fault_down). */
static pid_t *started;

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void track(const tk_world *w)
{
	for (int i = 0; started != NULL && i < MAX_PIDS; i++)
		if (started[i] == 0) {
			started[i] = w->worker;
			return;
		}
}

/* 1 when pid is a live (not zombie) patient-worker process. */
static int is_our_worker(pid_t pid)
{
	char path[64], buf[512] = "";
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')');
	if (rp == NULL || rp[1] != ' ' || rp[2] == 'Z')
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, "patient-worker") != NULL;
}

static void run_stack(const char *action)
{
	const char *src = getenv("PW_SOURCE_DIR");
	char cmd[1024];
	if (src == NULL)
		return;
	snprintf(cmd, sizeof(cmd), "%s/scripts/stack.sh %s >&2", src, action);
	if (system(cmd) != 0)
		fprintf(stderr, "faults: stack.sh %s failed in the clean-up\n", action);
}

/* In the runner's process, after each case, whatever happened to it: no worker of the
 * case left running. */
static void kill_workers(void)
{
	for (int i = 0; started != NULL && i < MAX_PIDS; i++) {
		if (started[i] > 0 && is_our_worker(started[i])) {
			fprintf(stderr, "faults: killing worker %ld left by a failed case\n",
			        (long)started[i]);
			kill(started[i], SIGKILL);
		}
		started[i] = 0;
	}
}

/* The same, and PostgreSQL and Kafka up again (no-ops when the service runs). */
static void fault_down(void)
{
	kill_workers();
	run_stack("pg-start");
	const char *kind = getenv("PW_BROKER_KIND");
	if (kind == NULL || strcmp(kind, "mock") != 0)
		run_stack("kafka-start");
}

/* The first line of w's current log holding needle, copied to out; 1 when found. */
static int log_line(const tk_world *w, const char *needle, char *out, size_t size)
{
	FILE *f = fopen(w->log_path, "r");
	char line[4096];
	int found = 0;
	if (f == NULL)
		return 0;
	if (fseek(f, (long)w->log_from, SEEK_SET) == 0)
		while (!found && fgets(line, sizeof(line), f) != NULL)
			if (strstr(line, needle) != NULL) {
				found = 1;
				if (out != NULL)
					snprintf(out, size, "%s", line);
			}
	fclose(f);
	return found;
}

/* Prints the lines of w's current log holding needle. */
static void print_lines(const tk_world *w, const char *needle)
{
	FILE *f = fopen(w->log_path, "r");
	char line[4096];
	if (f == NULL)
		return;
	if (fseek(f, (long)w->log_from, SEEK_SET) == 0)
		while (fgets(line, sizeof(line), f) != NULL)
			if (strstr(line, needle) != NULL)
				fprintf(stderr, "faults: %s: %s", w->log_path, line);
	fclose(f);
}

/* 1 when w's current log says the lane was given at least one partition. */
static int lane_has_partitions(const tk_world *w, const char *lane)
{
	FILE *f = fopen(w->log_path, "r");
	char line[4096], needle[64];
	int found = 0;
	if (f == NULL)
		return 0;
	snprintf(needle, sizeof(needle), "%s lane: partitions assigned: ", lane);
	if (fseek(f, (long)w->log_from, SEEK_SET) == 0)
		while (!found && fgets(line, sizeof(line), f) != NULL) {
			const char *p = strstr(line, needle);
			found = p != NULL && atoi(p + strlen(needle)) > 0;
		}
	fclose(f);
	return found;
}

/* 1 (and w->worker reset) once the worker has exited; *status gets its exit status. */
static int exited(tk_world *w, int *status)
{
	int st;
	if (w->worker <= 0 || waitpid(w->worker, &st, WNOHANG) != w->worker)
		return 0;
	w->worker = 0;
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 1;
}

/* Waits (30 s at most) until the broker's metadata shows the world's four topics with
 * their partitions: a topic just created may not be known to every reader yet. */
static void await_topics(const tk_world *w, int partitions)
{
	const char *names[4] = {w->create, w->query, w->replies, w->dlq};
	const int want[4] = {partitions, partitions, partitions, 1};
	rd_kafka_t *rk = tk_producer();
	int ok = 0;

	for (time_t end = time(NULL) + 30; !ok && time(NULL) < end;) {
		ok = 1;
		for (int i = 0; i < 4 && ok; i++) {
			const struct rd_kafka_metadata *md = NULL;
			rd_kafka_topic_t *t = rd_kafka_topic_new(rk, names[i], NULL);
			rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 5000);
			ok = e == 0 && md->topic_cnt == 1 && md->topics[0].err == 0 &&
			     md->topics[0].partition_cnt == want[i];
			if (md != NULL)
				rd_kafka_metadata_destroy(md);
			rd_kafka_topic_destroy(t);
		}
		if (!ok)
			sleep_ms(200);
	}
	rd_kafka_destroy(rk);
	ck_assert_msg(ok, "the topics of %s are not all in the broker's metadata after 30 s",
	              w->id);
}

/* A new world whose topics every client can see. */
static void world_init(tk_world *w, int partitions)
{
	tk_world_init(w, partitions);
	await_topics(w, partitions);
}

/* tk_worker_start, with the pid tracked before any wait (a failing wait leaves no
 * worker behind). */
static void start(tk_world *w, const char *const *env)
{
	int status;
	tk_worker_spawn(w, env);
	track(w);
	for (time_t end = time(NULL) + 60; time(NULL) < end; sleep_ms(100)) {
		if (log_line(w, "create lane: partitions assigned", NULL, 0) &&
		    log_line(w, "query lane: partitions assigned", NULL, 0))
			return;
		if (exited(w, &status)) {
			tk_dump_log(w);
			ck_abort_msg("worker exited during start-up (status %d)", status);
		}
	}
	tk_dump_log(w);
	ck_abort_msg("worker did not get partitions within 60 s");
}

/* What the replies of one load (request ids "<prefix>-<i>", i < n) look like so far. */
typedef struct tally {
	char prefix[64];
	int n;
	char **first;            /**< the first reply per request */
	unsigned *count;         /**< replies per request */
	int answered;            /**< requests with at least one reply */
	size_t replies;          /**< replies to this load */
	size_t differing;        /**< replies unlike the request's first one */
	size_t unexpected;       /**< replies of another status than the request's want */
	size_t status_500;       /**< replies with status 500 */
	char example[1024];      /**< the first oddity seen */
	int64_t next[MAX_PARTS]; /**< per reply partition: the offset after the last read */
	const long long *seed;   /**< a mixed load: the seed patients' ids (NULL: creates) */
	int nseed;
	const char *dni_prefix; /**< create i has dni dni_prefix + i ("" unless set) */
	int64_t last_new_ms;    /**< when a request was last answered for the first time */
	int64_t max_gap_ms;     /**< the longest time without a first answer since reset */
	const char *dup_topic;  /**< set when the producer may write a command twice (to
	                             this topic, 4 partitions): each record, not each request,
	                             then has its audit row */
} tally;

/* The command at position i of a load: a create, or for a mixed load (see the top of the
 * file) an update or delete of seed patient i / 10. */
typedef enum kind { K_CREATE, K_UPDATE1, K_UPDATE2, K_DELETE } kind;

static kind kind_of(const tally *t, int i)
{
	if (t->seed == NULL || i % 10 < 7)
		return K_CREATE;
	return i % 10 == 7 ? K_UPDATE1 : i % 10 == 8 ? K_UPDATE2 : K_DELETE;
}

/* The status one-at-a-time processing gives request i. */
static int want_status(const tally *t, int i)
{
	return kind_of(t, i) == K_CREATE ? 201 : 200;
}

static void tally_init(tally *t, const char *prefix, int n)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->prefix, sizeof(t->prefix), "%s", prefix);
	t->n = n;
	t->dni_prefix = "";
	t->first = calloc((size_t)n, sizeof(*t->first));
	t->count = calloc((size_t)n, sizeof(*t->count));
	ck_assert(t->first != NULL && t->count != NULL);
}

static void tally_free(tally *t)
{
	for (int i = 0; i < t->n; i++)
		free(t->first[i]);
	free(t->first);
	free(t->count);
}

/* One case's load: creates of one owner (its token), the producer that sends them, a
 * reader of the world's reply topic and the tally of what comes back. */
typedef struct load {
	char *o, *tok; /**< NULL when the case brings its own owners */
	rd_kafka_t *p, *c;
	tally t;
	long long *seed; /**< a mixed load's seed patients (load_seed) */
} load;

/* Before the world's worker starts, so the producer is connected by the time the case
 * sends (the timing the cases are tuned for). owner_tag NULL: no owner or token (the case
 * signs for several owners itself). */
static void load_begin(load *l, const char *owner_tag)
{
	memset(l, 0, sizeof(*l));
	if (owner_tag != NULL) {
		l->o = tk_owner(owner_tag);
		l->tok = tk_token(l->o, 3600, NULL);
	}
	l->p = tk_producer();
}

/* Once the world's topics exist: the tally of n creates and a reader of the replies. */
static void load_watch(load *l, const char *prefix_tag, const tk_world *w, int n)
{
	char prefix[64];

	tk_unique(prefix, sizeof(prefix), prefix_tag);
	tally_init(&l->t, prefix, n);
	l->c = tk_reader(w->replies);
}

static void load_end(load *l)
{
	free(l->seed);
	rd_kafka_destroy(l->c);
	rd_kafka_destroy(l->p);
	tally_free(&l->t);
	free(l->tok);
	free(l->o);
}

static void oddity(tally *t, const char *what, const rd_kafka_message_t *m)
{
	if (t->example[0] == '\0')
		snprintf(t->example, sizeof(t->example), "%s: %.*s", what, (int)m->len,
		         (const char *)m->payload);
}

static void tally_add(tally *t, const rd_kafka_message_t *m)
{
	size_t plen = strlen(t->prefix);
	const char *k = m->key;
	char num[16];
	rd_kafka_headers_t *h = NULL;
	const void *sv = NULL;
	size_t sn = 0;

	if (m->partition >= 0 && m->partition < MAX_PARTS && m->offset + 1 > t->next[m->partition])
		t->next[m->partition] = m->offset + 1;
	if (k == NULL || m->key_len <= plen + 1 || m->key_len - plen - 1 >= sizeof(num) ||
	    memcmp(k, t->prefix, plen) != 0 || k[plen] != '-')
		return;
	memcpy(num, k + plen + 1, m->key_len - plen - 1);
	num[m->key_len - plen - 1] = '\0';
	if (!isdigit((unsigned char)num[0]))
		return;
	long i = strtol(num, NULL, 10);
	if (i < 0 || i >= t->n)
		return;
	t->replies++;
	char want[4];
	snprintf(want, sizeof(want), "%d", want_status(t, (int)i));
	if (rd_kafka_message_headers(m, &h) != 0 ||
	    rd_kafka_header_get_last(h, "status", &sv, &sn) != 0 || sn != 3 ||
	    memcmp(sv, want, 3) != 0) {
		t->unexpected++;
		oddity(t, "another status than one-at-a-time processing gives", m);
		if (sv != NULL && sn == 3 && memcmp(sv, "500", 3) == 0)
			t->status_500++;
	}
	if (t->count[i]++ == 0) {
		int64_t now = now_ms();
		if (t->last_new_ms > 0 && now - t->last_new_ms > t->max_gap_ms)
			t->max_gap_ms = now - t->last_new_ms;
		t->last_new_ms = now;
		t->answered++;
		t->first[i] = strndup(m->payload ? m->payload : "", m->len);
		ck_assert_ptr_nonnull(t->first[i]);
	} else if (strlen(t->first[i]) != m->len || memcmp(t->first[i], m->payload, m->len) != 0) {
		t->differing++;
		oddity(t, "a second, different reply", m);
	}
}

/* Reads replies until want requests are answered or timeout_s passed. */
static void pump(rd_kafka_t *c, tally *t, int want, int timeout_s)
{
	for (time_t end = time(NULL) + timeout_s; t->answered < want && time(NULL) < end;) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
		if (m == NULL)
			continue;
		if (m->err == 0)
			tally_add(t, m);
		rd_kafka_message_destroy(m);
	}
}

/* Reads topic up to its current end (every partition's high watermark), so the tally
 * holds every reply produced so far; 1 when it got there within 60 s. */
static int drain(rd_kafka_t *c, tally *t, const char *topic, int partitions)
{
	int64_t hi[MAX_PARTS];
	for (int p = 0; p < partitions; p++) {
		int64_t lo;
		rd_kafka_resp_err_t e =
		    rd_kafka_query_watermark_offsets(c, topic, p, &lo, &hi[p], 10000);
		if (e != 0) {
			fprintf(stderr, "watermarks of %s/%d: %s\n", topic, p, rd_kafka_err2str(e));
			return 0;
		}
		if (hi[p] <= lo)
			hi[p] = 0;
	}
	for (time_t end = time(NULL) + 60; time(NULL) < end;) {
		int done = 1;
		for (int p = 0; p < partitions; p++)
			done &= t->next[p] >= hi[p];
		if (done)
			return 1;
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
		if (m == NULL)
			continue;
		if (m->err == 0)
			tally_add(t, m);
		rd_kafka_message_destroy(m);
	}
	return 0;
}

/* The update or delete at position i of a mixed load, signed with tok; *key is set to
 * its patient's key. Caller frees. */
static char *change_cmd(const tally *t, int i, const char *rid, const char *tok, char *key,
                        size_t key_size)
{
	int b = i / 10;
	char text[32];
	json_t *payload = NULL;

	ck_assert_msg(b < t->nseed, "position %d needs seed patient %d of %d", i, b, t->nseed);
	snprintf(key, key_size, "patient:%lld", t->seed[b]);
	switch (kind_of(t, i)) {
	case K_UPDATE1:
		snprintf(text, sizeof(text), "U1-%d", b);
		payload = json_pack("{s:I, s:i, s:s}", "id", (json_int_t)t->seed[b], "version", 1,
		                    "nombre", text);
		break;
	case K_UPDATE2:
		snprintf(text, sizeof(text), "M2-%d", b);
		payload = json_pack("{s:I, s:i, s:s}", "id", (json_int_t)t->seed[b], "version", 2,
		                    "apellido_materno", text);
		break;
	default:
		payload = json_pack("{s:I, s:i}", "id", (json_int_t)t->seed[b], "version", 3);
		break;
	}
	json_t *cmd = json_pack("{s:s, s:s, s:s, s:o}", "request_id", rid, "type",
	                        kind_of(t, i) == K_DELETE ? "patient.delete" : "patient.update",
	                        "token", tok, "payload", payload);
	char *s = cmd ? json_dumps(cmd, JSON_COMPACT) : NULL;
	json_decref(cmd);
	ck_assert_ptr_nonnull(s);
	return s;
}

/* Queues the commands i in [from, to) of a load, without waiting for them; command i is
 * signed with toks[i % ntok] (a mixed load has one owner: ntok 1). */
static void produce_owners(rd_kafka_t *p, const tk_world *w, const tally *t, char *const *toks,
                           int ntok, int from, int to)
{
	char rid[96], dni[16], key[48];
	for (int i = from; i < to; i++) {
		snprintf(rid, sizeof(rid), "%s-%d", t->prefix, i);
		snprintf(dni, sizeof(dni), "%s%d", t->dni_prefix, i);
		bool create = kind_of(t, i) == K_CREATE;
		char *cmd = create ? tk_create_cmd(rid, toks[i % ntok], dni, NULL)
		                   : change_cmd(t, i, rid, toks[i % ntok], key, sizeof(key));
		rd_kafka_resp_err_t err;
		while ((err = rd_kafka_producev(
		            p, RD_KAFKA_V_TOPIC(w->create),
		            RD_KAFKA_V_KEY(create ? NULL : key, create ? 0 : strlen(key)),
		            RD_KAFKA_V_VALUE(cmd, strlen(cmd)),
		            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
		       RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(p, 100);
		free(cmd);
		ck_assert_msg(err == 0, "produce to %s: %s", w->create, rd_kafka_err2str(err));
		rd_kafka_poll(p, 0);
	}
}

/* Queues the creates i in [from, to) of a load, all signed with tok. */
static void produce_range(rd_kafka_t *p, const tk_world *w, const tally *t, const char *tok,
                          int from, int to)
{
	char *toks[1] = {(char *)tok};
	produce_owners(p, w, t, toks, 1, from, to);
}

/* Makes the load mixed (see the top of the file): creates nseed patients of the load's
 * owner (dni S0, S1, ...) through the world's worker, waits for their 201s and keeps
 * their ids. After load_watch, with the worker running. */
static void load_seed(load *l, const tk_world *w, int nseed)
{
	tally st;
	char prefix[64];
	rd_kafka_t *c = tk_reader(w->replies);

	ck_assert_int_ge(l->t.n, nseed * 10);
	tk_unique(prefix, sizeof(prefix), "seed");
	tally_init(&st, prefix, nseed);
	st.dni_prefix = "S";
	produce_range(l->p, w, &st, l->tok, 0, nseed);
	ck_assert_int_eq(rd_kafka_flush(l->p, 30000), 0);
	pump(c, &st, nseed, 90);
	if (st.answered < nseed)
		tk_dump_log(w);
	ck_assert_msg(st.answered == nseed, "%d of %d seed creates answered within 90 s",
	              st.answered, nseed);
	ck_assert_msg(st.unexpected == 0, "seed: %s", st.example);
	l->seed = calloc((size_t)nseed, sizeof(*l->seed));
	ck_assert_ptr_nonnull(l->seed);
	for (int k = 0; k < nseed; k++) {
		char *id = tk_json_get(st.first[k], "data.id");
		ck_assert_msg(id != NULL, "seed reply without data.id: %s", st.first[k]);
		l->seed[k] = atoll(id);
		free(id);
	}
	l->t.seed = l->seed;
	l->t.nseed = nseed;
	tally_free(&st);
	rd_kafka_destroy(c);
}

/* owner is a LIKE pattern: an owner's email (no wildcard in it), or "<base>-%" for the
 * owners of a multi-owner load. */
static long owner_count(const char *what, const char *owner)
{
	char sql[512];
	snprintf(sql, sizeof(sql), "SELECT count(%s) FROM patients WHERE owner_id LIKE '%s'", what,
	         owner);
	char *s = tk_sql(sql);
	long n = s ? atol(s) : -1;
	free(s);
	return n;
}

static long sql_long(const char *sql)
{
	char *s = tk_sql(sql);
	long n = s ? atol(s) : -1;
	free(s);
	return n;
}

/* A mixed load's rows and audit (owner: one email): each create made one live patient at
 * version 1; each seed patient went through its two updates and its delete exactly once
 * (version 4, the updates' values, deleted); one audit row per command. */
static void assert_mixed_rows(const tally *t, const char *owner)
{
	char sql[768];
	int creates = 0;

	for (int i = 0; i < t->n; i++)
		creates += kind_of(t, i) == K_CREATE;
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM patients WHERE owner_id = '%s' AND request_id LIKE '%s-%%'"
	         " AND version = 1 AND deleted_at IS NULL AND updated_at IS NULL",
	         owner, t->prefix);
	long made = sql_long(sql);
	ck_assert_msg(made == creates, "%ld live version-1 patients for %d creates", made, creates);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM patients WHERE owner_id = '%s' AND dni LIKE 'S%%'"
	         " AND version = 4 AND deleted_at IS NOT NULL AND nombre = 'U1-' || substr(dni, 2)"
	         " AND apellido_materno = 'M2-' || substr(dni, 2)",
	         owner);
	long changed = sql_long(sql);
	ck_assert_msg(changed == t->nseed,
	              "%ld of %d seed patients updated twice and deleted, as one at a time",
	              changed, t->nseed);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) || '|' || count(DISTINCT request_id) FROM patient_audit"
	         " WHERE owner_id = '%s' AND request_id LIKE '%s-%%'",
	         owner, t->prefix);
	char *s = tk_sql(sql);
	long rows = -1, distinct = -1;
	ck_assert_msg(s != NULL && sscanf(s, "%ld|%ld", &rows, &distinct) == 2, "audit: %s", s);
	free(s);
	if (t->dup_topic != NULL) {
		/* A record written twice is a new access of its request id: one audit row per
		 * record on the topic (the seed's included), every request id there. */
		rd_kafka_t *rk = tk_producer();
		int64_t lo, hi, records = 0;
		for (int p = 0; p < 4; p++) {
			ck_assert_int_eq(
			    rd_kafka_query_watermark_offsets(rk, t->dup_topic, p, &lo, &hi, 10000),
			    0);
			records += hi - lo;
		}
		rd_kafka_destroy(rk);
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM patient_audit WHERE source_topic = '%s'",
		         t->dup_topic);
		long on_topic = sql_long(sql);
		ck_assert_msg(
		    on_topic == records && distinct == t->n && rows >= t->n,
		    "%ld audit rows for %lld records on %s; %ld rows (%ld request ids) for "
		    "%d commands",
		    on_topic, (long long)records, t->dup_topic, rows, distinct, t->n);
	} else {
		ck_assert_msg(rows == t->n && distinct == t->n,
		              "%ld audit rows (%ld request ids) for %d commands", rows, distinct,
		              t->n);
	}
	fprintf(stderr,
	        "faults: mixed load: %d creates, %d seed patients updated twice and "
	        "deleted, %ld audit rows\n",
	        creates, t->nseed, rows);
}

/* The guarantees after a fault: every request of the load answered (at least once) with
 * the status one-at-a-time processing gives, every reply to a request the same bytes, one
 * row per create, no dni twice (a mixed load: assert_mixed_rows). */
static void assert_load_whole(const tk_world *w, rd_kafka_t *c, tally *t, const char *owner,
                              int partitions, int timeout_s)
{
	pump(c, t, t->n, timeout_s);
	if (t->answered < t->n) {
		int missing = -1;
		for (int i = 0; i < t->n && missing < 0; i++)
			if (t->count[i] == 0)
				missing = i;
		tk_dump_log(w);
		ck_abort_msg("%d of %d requests answered within %d s (e.g. %s-%d unanswered)",
		             t->answered, t->n, timeout_s, t->prefix, missing);
	}
	/* Everything produced so far, repeats included. */
	ck_assert_msg(drain(c, t, w->replies, partitions), "could not read %s to its end",
	              w->replies);
	ck_assert_msg(t->unexpected == 0, "%zu replies of an unexpected status; %s", t->unexpected,
	              t->example);
	ck_assert_msg(t->differing == 0, "%zu repeated replies differ from the first; %s",
	              t->differing, t->example);
	if (t->seed != NULL)
		assert_mixed_rows(t, owner);
	long want = t->n;
	for (int i = 0; i < t->n && t->seed != NULL; i++)
		want -= kind_of(t, i) != K_CREATE;
	want += t->nseed;
	long rows = owner_count("*", owner), dnis = owner_count("DISTINCT dni", owner);
	ck_assert_msg(rows == want, "%ld rows for %ld creates", rows, want);
	ck_assert_msg(dnis == want, "%ld distinct dni for %ld creates", dnis, want);
	fprintf(stderr, "faults: %d requests, %zu replies (%zu repeats), %ld rows\n", t->n,
	        t->replies, t->replies - (size_t)t->n, rows);
}

/* KiB from a "Name:   123 kB" line of /proc/<pid>/status, or -1. */
static long proc_status_kb(pid_t pid, const char *name)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == ':')
			kb = atol(line + strlen(name) + 1);
	fclose(f);
	return kb;
}

/* PostgreSQL is stopped before 50,000 creates arrive: the worker pauses and its memory
 * stays bounded (peak RSS under 64 MiB); when PostgreSQL returns every create is answered
 * 201 and has its one row. */
START_TEST(database_down_memory_bounded)
{
	enum { N = 50000, P = 4 };
	tk_world w;
	load l;
	const char *san = getenv("PW_SANITIZED");
	int sanitized = san != NULL && strcmp(san, "1") == 0;

	load_begin(&l, "mem");
	world_init(&w, P);
	start(&w, NULL);
	pid_t pid = w.worker;
	load_watch(&l, "m", &w, N);

	/* From here to pg-start nothing may fail the case: a failure would leave
	 * PostgreSQL down (the runner restarts it anyway, see fault_down). */
	tk_stack("pg-stop");
	produce_range(l.p, &w, &l.t, l.tok, 0, N);
	rd_kafka_resp_err_t flushed = rd_kafka_flush(l.p, 60000);
	int paused = tk_log_wait(&w, "database unreachable, pausing", 60);
	/* A few seconds more for it to take what it will while paused. */
	sleep(5);
	long hwm_kb = proc_status_kb(pid, "VmHWM");
	long rss_kb = proc_status_kb(pid, "VmRSS");
	int drained = drain(l.c, &l.t, w.replies, P);
	int answered_during = l.t.answered;
	tk_stack("pg-start");

	fprintf(stderr, "faults: worker %ld during the outage: VmHWM %ld KiB, VmRSS %ld KiB%s\n",
	        (long)pid, hwm_kb, rss_kb,
	        sanitized ? " (PW_SANITIZED=1: not checked, shadow memory)" : "");
	ck_assert_msg(flushed == 0, "the 50,000 creates were not acknowledged within 60 s");
	if (!paused)
		tk_dump_log(&w);
	ck_assert_msg(paused, "the worker never logged \"database unreachable, pausing\"");
	ck_assert_msg(hwm_kb > 0, "no VmHWM for worker %ld", (long)pid);
	if (!sanitized)
		ck_assert_msg(hwm_kb < HWM_MAX_KB, "worker peak RSS %ld KiB (%.1f MiB) >= 64 MiB",
		              hwm_kb, (double)hwm_kb * 1024.0 / (double)MIB);
	ck_assert_msg(drained, "could not read %s during the outage", w.replies);
	ck_assert_msg(answered_during == 0, "%d requests answered while PostgreSQL was down",
	              answered_during);
	assert_load_whole(&w, l.c, &l.t, l.o, P, 150);
	ck_assert_msg(tk_log_wait(&w, "database reachable again, resuming", 10),
	              "the worker did not log that it resumed");
	fprintf(stderr, "faults: worker %ld after answering all: VmHWM %ld KiB\n", (long)pid,
	        proc_status_kb(pid, "VmHWM"));
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 10), 0);
	load_end(&l);
}
END_TEST

/* SIGTERM while 5,000 creates are being answered: exit 0 within 10 s; the next worker of
 * the group answers the rest, and nothing is created twice. */
START_TEST(sigterm_mid_load)
{
	enum { N = 5000, P = 4 };
	tk_world w;
	load l;
	/* Smaller transactions than the default 500: the load lasts long enough for the
	 * signal to land inside it. */
	const char *env[] = {"BATCH_MAX=100", NULL};

	load_begin(&l, "term");
	world_init(&w, P);
	start(&w, env);
	load_watch(&l, "s", &w, N);
	load_seed(&l, &w, N / 10);
	produce_range(l.p, &w, &l.t, l.tok, 0, N);
	ck_assert_int_eq(rd_kafka_flush(l.p, 30000), 0);
	pump(l.c, &l.t, 1, 60);
	if (l.t.answered < 1)
		tk_dump_log(&w);
	ck_assert_msg(l.t.answered >= 1, "no reply within 60 s: no load to interrupt");
	int rc = tk_worker_stop(&w, SIGTERM, 10);
	if (rc != 0)
		tk_dump_log(&w);
	ck_assert_msg(rc == 0, "SIGTERM mid-load: exit status %d (-1: not within 10 s)", rc);
	ck_assert_msg(drain(l.c, &l.t, w.replies, P), "could not read %s to its end", w.replies);
	fprintf(stderr, "faults: %d of %d answered before the SIGTERM'd worker exited\n",
	        l.t.answered, N);
	ck_assert_msg(l.t.answered < N,
	              "all %d answered before the worker stopped: the signal did not land "
	              "mid-load, the case shows nothing",
	              N);

	start(&w, env);
	assert_load_whole(&w, l.c, &l.t, l.o, P, 120);
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 10), 0);
	load_end(&l);
}
END_TEST

/* Produces the load's creates [*next, to) at about 500 a second for up to ms, stopping
 * early when stop(arg) holds; *next advances. */
static void stream(rd_kafka_t *p, const tk_world *w, const tally *t, const char *tok, int *next,
                   int to, long ms, int (*stop)(tk_world *), tk_world *arg)
{
	for (int64_t end = now_ms() + ms; now_ms() < end; sleep_ms(20)) {
		if (stop != NULL && stop(arg))
			return;
		int upto = *next + 10 < to ? *next + 10 : to;
		produce_range(p, w, t, tok, *next, upto);
		*next = upto;
		rd_kafka_poll(p, 0);
	}
}

static int create_lane_assigned(tk_world *w)
{
	return lane_has_partitions(w, "create");
}

static int third_status = -1;

static int third_exited(tk_world *w)
{
	return exited(w, &third_status);
}

/* Two workers share the load on 4 partitions; a third joins mid-load, gets partitions,
 * and leaves on SIGTERM while the creates keep coming. */
START_TEST(rebalance_mid_load)
{
	enum { N = 5000, P = 4 };
	tk_world w1, w2, w3;
	load l;
	int next = 0;

	load_begin(&l, "rebal");
	world_init(&w1, P);
	start(&w1, NULL);
	w2 = w1;
	w2.worker = 0;
	snprintf(w2.log_path, sizeof(w2.log_path), "%.*s-b.log", (int)strlen(w1.log_path) - 4,
	         w1.log_path);
	start(&w2, NULL);
	w3 = w2;
	snprintf(w3.log_path, sizeof(w3.log_path), "%.*s-c.log", (int)strlen(w1.log_path) - 4,
	         w1.log_path);
	load_watch(&l, "b", &w1, N);
	load_seed(&l, &w1, N / 10);

	/* 1. The two workers are answering. */
	produce_range(l.p, &w1, &l.t, l.tok, 0, 500);
	next = 500;
	pump(l.c, &l.t, 1, 60);
	ck_assert_msg(l.t.answered >= 1, "no reply within 60 s");
	/* 2. A third joins while creates keep coming (at most 1,500 of them meanwhile). */
	tk_worker_spawn(&w3, NULL);
	track(&w3);
	stream(l.p, &w1, &l.t, l.tok, &next, 2000, 60000, create_lane_assigned, &w3);
	for (time_t end = time(NULL) + 60; !create_lane_assigned(&w3) && time(NULL) < end;)
		sleep_ms(100);
	if (!create_lane_assigned(&w3))
		tk_dump_log(&w3);
	ck_assert_msg(create_lane_assigned(&w3), "the third worker got no create partition");
	/* 3. It answers some of what comes next, then leaves on SIGTERM, still fed. */
	stream(l.p, &w1, &l.t, l.tok, &next, 3000, 1000, NULL, NULL);
	kill(w3.worker, SIGTERM);
	stream(l.p, &w1, &l.t, l.tok, &next, 3500, 15000, third_exited, &w3);
	for (time_t end = time(NULL) + 10; w3.worker > 0 && time(NULL) < end;) {
		if (!third_exited(&w3))
			sleep_ms(100);
	}
	if (third_status != 0)
		tk_dump_log(&w3);
	ck_assert_msg(third_status == 0, "third worker: exit status %d (-1: not within 10 s)",
	              third_status);
	print_lines(&w3, "\"stopped: ");
	/* 4. The rest, after it left. */
	produce_range(l.p, &w1, &l.t, l.tok, next, N);
	ck_assert_int_eq(rd_kafka_flush(l.p, 30000), 0);

	assert_load_whole(&w1, l.c, &l.t, l.o, P, 120);
	int rc1 = tk_worker_stop(&w1, SIGTERM, 10), rc2 = tk_worker_stop(&w2, SIGTERM, 10);
	ck_assert_int_eq(rc1, 0);
	ck_assert_int_eq(rc2, 0);
	load_end(&l);
}
END_TEST

/* The broker stops for 5 s in the middle of a load and comes back (same port, same
 * data): the worker carries on; half the creates are sent before, half after. */
START_TEST(broker_restart_mid_load)
{
	enum { N = 5000, P = 4 };
	tk_world w;
	load l;
	const char *kind = getenv("PW_BROKER_KIND");

	if (kind != NULL && strcmp(kind, "mock") == 0) {
		fprintf(stderr, "faults: broker_restart_mid_load SKIPPED: PW_BROKER_KIND=mock "
		                "(the mock cluster cannot be restarted like a broker)\n");
		return;
	}

	load_begin(&l, "kafka");
	world_init(&w, P);
	start(&w, NULL);
	load_watch(&l, "k", &w, N);
	load_seed(&l, &w, N / 10);
	produce_range(l.p, &w, &l.t, l.tok, 0, N / 2);
	ck_assert_int_eq(rd_kafka_flush(l.p, 30000), 0);
	pump(l.c, &l.t, 1, 60);
	ck_assert_msg(l.t.answered >= 1, "no reply within 60 s");

	tk_stack("kafka-stop");
	sleep(5);
	tk_stack("kafka-start");
	/* The second half exists only after the restart: the worker must resume. */
	produce_range(l.p, &w, &l.t, l.tok, N / 2, N);
	ck_assert_msg(rd_kafka_flush(l.p, 60000) == 0,
	              "creates not acknowledged within 60 s of the restart");

	assert_load_whole(&w, l.c, &l.t, l.o, P, 120);
	int rc = tk_worker_stop(&w, SIGTERM, 10);
	if (rc != 0)
		tk_dump_log(&w);
	ck_assert_int_eq(rc, 0);
	load_end(&l);
}
END_TEST

/* A second worker of w1's group, logging next to w1's log with suffix in the name. */
static void second_world(const tk_world *w1, tk_world *w2, const char *suffix)
{
	*w2 = *w1;
	w2->worker = 0;
	snprintf(w2->log_path, sizeof(w2->log_path), "%.*s-%s.log", (int)strlen(w1->log_path) - 4,
	         w1->log_path, suffix);
}

/* Waits (30 s at most) until w's create lane holds partitions; fails the case if not. */
static void await_create_partitions(const tk_world *w)
{
	for (time_t end = time(NULL) + 30; !lane_has_partitions(w, "create") && time(NULL) < end;)
		sleep_ms(100);
	if (!lane_has_partitions(w, "create"))
		tk_dump_log(w);
	ck_assert_msg(lane_has_partitions(w, "create"), "worker %ld got no create partition",
	              (long)w->worker);
}

/* Two workers share 5,000 creates on 4 partitions; one is SIGKILLed once replies come
 * while creates are still being sent, and is started again later. */
START_TEST(sigkill_mid_load)
{
	enum { N = 5000, P = 4 };
	tk_world w1, w2;
	load l;
	int next = 0, status = -1;

	load_begin(&l, "kill");
	world_init(&w1, P);
	start(&w1, NULL);
	second_world(&w1, &w2, "b");
	start(&w2, NULL);
	await_create_partitions(&w2);
	load_watch(&l, "x", &w1, N);
	load_seed(&l, &w1, N / 10);

	/* 1. Both answering. */
	produce_range(l.p, &w1, &l.t, l.tok, 0, 500);
	next = 500;
	pump(l.c, &l.t, 1, 60);
	if (l.t.answered < 1)
		tk_dump_log(&w1);
	ck_assert_msg(l.t.answered >= 1, "no reply within 60 s: no load to interrupt");
	stream(l.p, &w1, &l.t, l.tok, &next, 1500, 2000, NULL, NULL);
	/* 2. SIGKILL while the creates keep coming; it still held create partitions. */
	ck_assert_msg(lane_has_partitions(&w2, "create"), "the worker to kill had no partition");
	pid_t killed = w2.worker;
	kill(w2.worker, SIGKILL);
	for (time_t end = time(NULL) + 10; w2.worker > 0 && time(NULL) < end;)
		if (!exited(&w2, &status))
			sleep_ms(50);
	ck_assert_msg(status == 128 + SIGKILL, "killed worker %ld: status %d (-1: still running)",
	              (long)killed, status);
	int sent_at_kill = next;
	stream(l.p, &w1, &l.t, l.tok, &next, 3500, 3000, NULL, NULL);
	ck_assert_msg(sent_at_kill < next, "no create sent after the kill");
	fprintf(stderr, "faults: worker %ld SIGKILLed after %d commands sent, %d answered\n",
	        (long)killed, sent_at_kill, l.t.answered);
	/* 3. Started again; the rest of the load. */
	start(&w2, NULL);
	produce_range(l.p, &w1, &l.t, l.tok, next, N);
	ck_assert_int_eq(rd_kafka_flush(l.p, 30000), 0);

	assert_load_whole(&w1, l.c, &l.t, l.o, P, 120);
	int rc1 = tk_worker_stop(&w1, SIGTERM, 10), rc2 = tk_worker_stop(&w2, SIGTERM, 10);
	ck_assert_int_eq(rc1, 0);
	ck_assert_int_eq(rc2, 0);
	load_end(&l);
}
END_TEST

/* Two workers; PostgreSQL stops for 10 s in the middle of 5,000 creates (half sent
 * before, half during the outage). Both pause and resume; no reply is a 500. */
START_TEST(database_outage_two_workers)
{
	enum { N = 5000, P = 4, OUTAGE_MS = 10000 };
	tk_world w1, w2;
	load l;

	load_begin(&l, "pgout");
	world_init(&w1, P);
	start(&w1, NULL);
	second_world(&w1, &w2, "b");
	start(&w2, NULL);
	await_create_partitions(&w2);
	load_watch(&l, "o", &w1, N);
	load_seed(&l, &w1, N / 10);

	produce_range(l.p, &w1, &l.t, l.tok, 0, N / 2);
	ck_assert_int_eq(rd_kafka_flush(l.p, 30000), 0);
	pump(l.c, &l.t, 1, 60);
	ck_assert_msg(l.t.answered >= 1, "no reply within 60 s");

	/* From here to pg-start nothing may fail the case (fault_down restarts it anyway). */
	int64_t t0 = now_ms();
	tk_stack("pg-stop");
	produce_range(l.p, &w1, &l.t, l.tok, N / 2, N);
	rd_kafka_resp_err_t flushed = rd_kafka_flush(l.p, 60000);
	int64_t left = OUTAGE_MS - (now_ms() - t0);
	if (left > 0)
		sleep_ms((long)left);
	long outage = (long)(now_ms() - t0);
	tk_stack("pg-start");
	fprintf(stderr, "faults: PostgreSQL down for %ld ms, %d answered before it\n", outage,
	        l.t.answered);

	ck_assert_msg(flushed == 0, "creates not acknowledged within 60 s");
	assert_load_whole(&w1, l.c, &l.t, l.o, P, 120);
	ck_assert_msg(l.t.status_500 == 0, "%zu replies with status 500", l.t.status_500);
	const tk_world *ws[2] = {&w1, &w2};
	for (int i = 0; i < 2; i++) {
		int paused = tk_log_wait(ws[i], "database unreachable, pausing", 10);
		int resumed = tk_log_wait(ws[i], "database reachable again, resuming", 10);
		if (!paused || !resumed)
			tk_dump_log(ws[i]);
		ck_assert_msg(paused, "worker %d never logged \"database unreachable, pausing\"",
		              i + 1);
		ck_assert_msg(resumed,
		              "worker %d never logged \"database reachable again, resuming\"",
		              i + 1);
	}
	int rc1 = tk_worker_stop(&w1, SIGTERM, 10), rc2 = tk_worker_stop(&w2, SIGTERM, 10);
	ck_assert_int_eq(rc1, 0);
	ck_assert_int_eq(rc2, 0);
	load_end(&l);
}
END_TEST

/* A test-only statement trigger on patients that sleeps 0.5 s per INSERT statement of an
 * owner whose email starts with "slow-"; every other owner's inserts are untouched. */
#define SLOW_TRIGGER_UP                                                                            \
	"DROP TRIGGER IF EXISTS pw_test_slow ON patients;"                                         \
	" CREATE OR REPLACE FUNCTION pw_test_slow() RETURNS trigger LANGUAGE plpgsql AS $$"        \
	" BEGIN IF current_setting('app.owner_id', true) LIKE 'slow-%' THEN"                       \
	" PERFORM pg_sleep(0.5); END IF; RETURN NULL; END $$;"                                     \
	" CREATE TRIGGER pw_test_slow BEFORE INSERT ON patients FOR EACH STATEMENT"                \
	" EXECUTE FUNCTION pw_test_slow()"
#define SLOW_TRIGGER_DOWN                                                                          \
	"DROP TRIGGER IF EXISTS pw_test_slow ON patients;"                                         \
	" DROP FUNCTION IF EXISTS pw_test_slow()"

/* In the runner's process after the slow-database case: fault_down, then the trigger
 * dropped whatever happened to the case (no assertion here: it is not a test). */
static void slow_down(void)
{
	fault_down();
	const char *url = getenv("DATABASE_URL");
	if (url == NULL)
		return;
	PGconn *conn = PQconnectdb(url);
	if (PQstatus(conn) == CONNECTION_OK) {
		PGresult *r = PQexec(conn, SLOW_TRIGGER_DOWN);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			fprintf(stderr, "faults: dropping the slow trigger: %s",
			        PQerrorMessage(conn));
		PQclear(r);
	} else {
		fprintf(stderr, "faults: dropping the slow trigger: %s", PQerrorMessage(conn));
	}
	PQfinish(conn);
}

/* A slow database (0.5 s per insert statement) under 3,000 creates of 5 owners: the
 * worker falls behind, its peak RSS stays under 64 MiB, and everything is answered. */
START_TEST(slow_database_memory_bounded)
{
	enum { N = 3000, P = 4, K = 5 };
	tk_world w;
	load l;
	char base[80], pattern[96];
	char *owners[K], *toks[K];
	const char *san = getenv("PW_SANITIZED");
	int sanitized = san != NULL && strcmp(san, "1") == 0;

	tk_unique(base, sizeof(base), "slow-");
	snprintf(pattern, sizeof(pattern), "%s-%%", base);
	for (int i = 0; i < K; i++) {
		owners[i] = malloc(128);
		ck_assert_ptr_nonnull(owners[i]);
		snprintf(owners[i], 128, "%s-%d@example.com", base, i);
		toks[i] = tk_token(owners[i], 3600, NULL);
	}
	free(tk_sql(SLOW_TRIGGER_UP));
	load_begin(&l, NULL);
	world_init(&w, P);
	start(&w, NULL);
	pid_t pid = w.worker;
	load_watch(&l, "w", &w, N);

	int64_t t0 = now_ms();
	produce_owners(l.p, &w, &l.t, toks, K, 0, N);
	ck_assert_int_eq(rd_kafka_flush(l.p, 30000), 0);
	ck_assert_msg(drain(l.c, &l.t, w.replies, P), "could not read %s", w.replies);
	int answered_when_sent = l.t.answered;
	long hwm_kb = -1;
	for (int64_t end = now_ms() + 150000; l.t.answered < N && now_ms() < end;) {
		pump(l.c, &l.t, N, 1);
		long kb = proc_status_kb(pid, "VmHWM");
		if (kb > hwm_kb)
			hwm_kb = kb;
	}
	long kb = proc_status_kb(pid, "VmHWM");
	if (kb > hwm_kb)
		hwm_kb = kb;
	fprintf(stderr,
	        "faults: slow database: %d of %d answered when all were sent, %d after %ld ms; "
	        "worker %ld VmHWM %ld KiB%s\n",
	        answered_when_sent, N, l.t.answered, (long)(now_ms() - t0), (long)pid, hwm_kb,
	        sanitized ? " (PW_SANITIZED=1: not checked, shadow memory)" : "");
	ck_assert_msg(answered_when_sent < N,
	              "all %d answered as soon as they were sent: the database was not slow", N);
	ck_assert_msg(hwm_kb > 0, "no VmHWM for worker %ld", (long)pid);
	if (!sanitized)
		ck_assert_msg(hwm_kb < HWM_MAX_KB, "worker peak RSS %ld KiB (%.1f MiB) >= 64 MiB",
		              hwm_kb, (double)hwm_kb * 1024.0 / (double)MIB);
	assert_load_whole(&w, l.c, &l.t, pattern, P, 30);
	free(tk_sql(SLOW_TRIGGER_DOWN));
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 10), 0);
	load_end(&l);
	for (int i = 0; i < K; i++) {
		free(toks[i]);
		free(owners[i]);
	}
}
END_TEST

/* ---- A Kafka cluster that loses a broker (issue 13) ---------------------------------------
 * The case runs against a cluster of three KRaft nodes of its own (scripts/stack.sh with
 * PW_KAFKA_NODES=3: replication factor 3, min.insync.replicas 2), started in the runner's
 * process before it and removed after it; PostgreSQL is the stack's. */

static char cluster_dir[512];
static char *saved_env[3];
static const char *const cluster_env[3] = {"KAFKA_BROKERS", "PW_STACK_DIR", "PW_KAFKA_NODES"};

static void cluster_run(const char *action)
{
	char cmd[1536];
	snprintf(cmd, sizeof(cmd), "PW_STACK_DIR='%s' '%s/scripts/stack.sh' %s >&2", cluster_dir,
	         tk_env("PW_SOURCE_DIR"), action);
	if (system(cmd) != 0)
		fprintf(stderr, "faults: stack.sh %s (the cluster) failed\n", action);
}

/* In the runner's process: the cluster up, and the environment the case inherits pointed
 * at it (KAFKA_BROKERS, PW_STACK_DIR for tk_stack, PW_KAFKA_NODES for tk_create_topic). */
static void cluster_up(void)
{
	const char *logs = getenv("PW_TEST_LOG_DIR");
	char cmd[1536], line[1024], brokers[512] = "";

	snprintf(cluster_dir, sizeof(cluster_dir), "%s/cluster-stack-%ld", logs ? logs : "/tmp",
	         (long)getpid());
	for (int i = 0; i < 3; i++) {
		const char *v = getenv(cluster_env[i]);
		saved_env[i] = v != NULL ? strdup(v) : NULL;
	}
	/* Unset, KAFKA_BROKERS would make stack.sh use the stack's one broker. */
	snprintf(cmd, sizeof(cmd),
	         "env -u KAFKA_BROKERS PW_KAFKA_NODES=3 PW_STACK_DIR='%s' '%s/scripts/stack.sh' up",
	         cluster_dir, tk_env("PW_SOURCE_DIR"));
	FILE *f = popen(cmd, "r");
	ck_assert_msg(f != NULL, "cannot run %s", cmd);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "export KAFKA_BROKERS='%511[^']'", brokers) == 1)
			fprintf(stderr, "faults: cluster of three at %s\n", brokers);
	int rc = pclose(f);
	ck_assert_msg(rc == 0 && brokers[0] != '\0',
	              "scripts/stack.sh could not start a cluster of three (status %d)", rc);
	setenv("KAFKA_BROKERS", brokers, 1);
	setenv("PW_STACK_DIR", cluster_dir, 1);
	setenv("PW_KAFKA_NODES", "3", 1);
}

static void cluster_down(void)
{
	kill_workers();
	cluster_run("down");
	for (int i = 0; i < 3; i++) {
		if (saved_env[i] != NULL)
			setenv(cluster_env[i], saved_env[i], 1);
		else
			unsetenv(cluster_env[i]);
		free(saved_env[i]);
		saved_env[i] = NULL;
	}
}

#define MAX_NODES 3

/* The node that leads most partitions of the topics (its node.id, 1..3), from a fresh
 * client's metadata; *led gets how many of the *total partitions it leads. */
static int leader_of_most(const char *const *topics, int ntopics, int *led, int *total)
{
	int count[MAX_NODES + 1] = {0}, best = 1;
	rd_kafka_t *rk = tk_producer();

	*total = 0;
	for (int i = 0; i < ntopics; i++) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topics[i], NULL);
		rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 10000);
		ck_assert_msg(e == 0 && md->topic_cnt == 1 && md->topics[0].err == 0,
		              "metadata of %s: %s", topics[i], rd_kafka_err2str(e));
		for (int p = 0; p < md->topics[0].partition_cnt; p++) {
			int32_t l = md->topics[0].partitions[p].leader;
			ck_assert_msg(l >= 1 && l <= MAX_NODES, "%s/%d has leader %d", topics[i], p,
			              (int)l);
			count[l]++;
			(*total)++;
		}
		rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(t);
	}
	rd_kafka_destroy(rk);
	for (int n = 2; n <= MAX_NODES; n++)
		if (count[n] > count[best])
			best = n;
	*led = count[best];
	return best;
}

/* Waits (timeout_s at most) until every partition of every topic, the group offsets'
 * included, has a leader and all its replicas in sync: a node started again has caught
 * up, and killing another loses nothing. */
static void await_full_isr(int timeout_s)
{
	rd_kafka_t *rk = tk_producer();
	char lag[256] = "no metadata";
	int ok = 0;

	for (time_t end = time(NULL) + timeout_s; !ok && time(NULL) < end;) {
		const struct rd_kafka_metadata *md = NULL;
		ok = rd_kafka_metadata(rk, 1, NULL, &md, 5000) == 0;
		for (int i = 0; ok && i < md->topic_cnt; i++)
			for (int p = 0; ok && p < md->topics[i].partition_cnt; p++) {
				const struct rd_kafka_metadata_partition *mp =
				    &md->topics[i].partitions[p];
				ok = mp->leader >= 0 && mp->isr_cnt == mp->replica_cnt &&
				     mp->isr_cnt == 3;
				if (!ok)
					snprintf(lag, sizeof(lag),
					         "%s/%d: leader %d, %d of %d replicas in sync",
					         md->topics[i].topic, p, (int)mp->leader,
					         mp->isr_cnt, mp->replica_cnt);
			}
		if (md != NULL)
			rd_kafka_metadata_destroy(md);
		if (!ok)
			sleep_ms(250);
	}
	rd_kafka_destroy(rk);
	ck_assert_msg(ok, "replicas not all in sync within %d s (%s)", timeout_s, lag);
}

/* Reads replies until answered reaches want, or fails naming what. */
static void await_answered(const tk_world *w, load *l, int want, int timeout_s, const char *what)
{
	pump(l->c, &l->t, want, timeout_s);
	if (l->t.answered < want)
		tk_dump_log(w);
	ck_assert_msg(l->t.answered >= want, "%s: %d of %d requests answered within %d s", what,
	              l->t.answered, want, timeout_s);
}

/* scripts/stack.sh kafka-VERB NODE (kill, start). */
static void node_action(const char *verb, int node)
{
	char action[64];
	snprintf(action, sizeof(action), "kafka-%s %d", verb, node);
	tk_stack(action);
}

/* SIGKILL to the node leading most partitions of topics (what names them), with sent
 * commands sent so far; the tally's longest pause is measured from then on. The node. */
static int kill_leader(load *l, const char *const *topics, int ntopics, const char *what, int sent)
{
	int led, total, node = leader_of_most(topics, ntopics, &led, &total);
	node_action("kill", node);
	l->t.max_gap_ms = 0;
	l->t.last_new_ms = now_ms();
	fprintf(stderr,
	        "faults: cluster: node %d (leader of %d of %d %s partitions) killed with %d of "
	        "%d sent commands answered\n",
	        node, led, total, what, l->t.answered, sent);
	return node;
}

/* What the workers' /readyz said while the brokers failed: probed every 250 ms from a
 * thread of the case's process, as a load balancer or an orchestrator would. */
typedef struct readyz_watch {
	char addr[2][64];
	atomic_int stop;
	unsigned probes, not_ready, unanswered;
	char first[256]; /**< the first answer that was not 200 */
	pthread_t thread;
} readyz_watch;

static void *readyz_probe(void *arg)
{
	readyz_watch *z = arg;
	while (!atomic_load(&z->stop)) {
		for (int i = 0; i < 2; i++) {
			char err[128], *body = NULL;
			int status = 0;
			z->probes++;
			if (pw_httpc_get(z->addr[i], "/readyz", 2000, 4096, &status, &body, err,
			                 sizeof(err)) != PW_OK)
				z->unanswered++;
			else if (status != 200 && z->not_ready++ == 0)
				snprintf(z->first, sizeof(z->first), "%d %.*s", status,
				         body ? (int)strcspn(body, "\n") : 0, body ? body : "");
			free(body);
		}
		sleep_ms(250);
	}
	return NULL;
}

/* Two workers, a mixed load of 20,000 commands (14,000 creates; 2,000 patients made
 * before it, each updated twice and deleted within it) on a cluster of three. Mid-load the
 * node that leads most command partitions is SIGKILLed; the load goes on without it; it is
 * started again and catches up; then the node that leads most reply partitions is
 * SIGKILLed too. Every command answered with the status one-at-a-time processing gives,
 * repeats byte-identical, the rows and audit as one at a time, no 500, and neither worker
 * restarted: their clients ride through the leader changes. */
START_TEST(cluster_loses_a_broker)
{
	enum { N = 20000, P = 4 };
	tk_world w1, w2;
	load l;
	int status = -1;

	readyz_watch z;
	char http[2][96];

	memset(&z, 0, sizeof(z));
	load_begin(&l, "cluster");
	rd_kafka_destroy(l.p);
	l.p = tk_producer_failover();
	world_init(&w1, P);
	for (int i = 0; i < 2; i++) {
		snprintf(z.addr[i], sizeof(z.addr[i]), "127.0.0.1:%d", tk_free_port());
		snprintf(http[i], sizeof(http[i]), "HTTP_ADDR=%s", z.addr[i]);
	}
	const char *env1[] = {http[0], NULL}, *env2[] = {http[1], NULL};
	start(&w1, env1);
	second_world(&w1, &w2, "b");
	start(&w2, env2);
	await_create_partitions(&w2);
	pid_t pid1 = w1.worker, pid2 = w2.worker;
	load_watch(&l, "c", &w1, N);
	l.t.dup_topic = w1.create; /* tk_producer_failover may write a record twice */
	load_seed(&l, &w1, N / 10);
	await_full_isr(60);

	/* 1. The first 6,000 queued; both workers answering. */
	ck_assert_int_eq(pthread_create(&z.thread, NULL, readyz_probe, &z), 0);
	produce_range(l.p, &w1, &l.t, l.tok, 0, 6000);
	await_answered(&w1, &l, 1000, 60, "before any fault");
	/* 2. The node leading most command partitions dies, with commands in flight. */
	const char *commands[2] = {w1.create, w1.query};
	int first = kill_leader(&l, commands, 2, "command", 6000);
	/* 3. The load goes on with two nodes: the next 7,000, sent while it is down. */
	produce_range(l.p, &w1, &l.t, l.tok, 6000, 13000);
	await_answered(&w1, &l, 12000, 180, "with one node down");
	ck_assert_msg(rd_kafka_flush(l.p, 60000) == 0,
	              "commands not acknowledged with a node down");
	fprintf(stderr,
	        "faults: cluster: 12,000 answered with node %d down; the longest wait for an "
	        "answer after the kill: %lld ms\n",
	        first, (long long)l.t.max_gap_ms);
	/* 4. Started again, it catches up (every replica in sync) while the load goes on. */
	node_action("start", first);
	produce_range(l.p, &w1, &l.t, l.tok, 13000, 16000);
	await_full_isr(120);
	/* 5. Then the node leading most reply partitions dies as well, mid-load. */
	await_answered(&w1, &l, 13000, 120, "after the restart");
	const char *replies[1] = {w1.replies};
	int second = kill_leader(&l, replies, 1, "reply", 16000);
	produce_range(l.p, &w1, &l.t, l.tok, 16000, N);
	ck_assert_msg(rd_kafka_flush(l.p, 60000) == 0,
	              "commands not acknowledged with a node down");

	assert_load_whole(&w1, l.c, &l.t, l.o, P, 240);
	atomic_store(&z.stop, 1);
	pthread_join(z.thread, NULL);
	fprintf(
	    stderr,
	    "faults: cluster: the longest wait for an answer after the second kill: %lld ms\n"
	    "faults: cluster: /readyz probed %u times: %u not ready (first: %s), %u unanswered\n",
	    (long long)l.t.max_gap_ms, z.probes, z.not_ready, z.first[0] ? z.first : "none",
	    z.unanswered);
	ck_assert_msg(z.unanswered == 0, "/readyz did not answer %u of %u probes", z.unanswered,
	              z.probes);
	ck_assert_msg(!exited(&w1, &status) && !exited(&w2, &status) && w1.worker == pid1 &&
	                  w2.worker == pid2,
	              "a worker exited during the failovers (status %d)", status);
	node_action("start", second);
	int rc1 = tk_worker_stop(&w1, SIGTERM, 15), rc2 = tk_worker_stop(&w2, SIGTERM, 15);
	ck_assert_int_eq(rc1, 0);
	ck_assert_int_eq(rc2, 0);
	load_end(&l);
}
END_TEST

/* One case per TCase: fault_down runs in the runner after each of them. */
static TCase *fault_case_down(Suite *s, const char *name, void (*down)(void))
{
	TCase *tc = tcase_create(name);
	tcase_add_unchecked_fixture(tc, NULL, down);
	tcase_set_timeout(tc, 200);
	suite_add_tcase(s, tc);
	return tc;
}

static TCase *fault_case(Suite *s, const char *name)
{
	return fault_case_down(s, name, fault_down);
}

static Suite *suite(void)
{
	Suite *s = suite_create("faults");
	tcase_add_test(fault_case(s, "database_down"), database_down_memory_bounded);
	tcase_add_test(fault_case(s, "sigterm"), sigterm_mid_load);
	tcase_add_test(fault_case(s, "rebalance"), rebalance_mid_load);
	tcase_add_test(fault_case(s, "broker_restart"), broker_restart_mid_load);
	tcase_add_test(fault_case(s, "sigkill"), sigkill_mid_load);
	tcase_add_test(fault_case(s, "database_outage"), database_outage_two_workers);
	tcase_add_test(fault_case_down(s, "slow_database", slow_down),
	               slow_database_memory_bounded);
	/* Its own CTest test: integration.cluster runs the "cluster" tag, integration.faults
	 * the rest. */
	TCase *tc = fault_case_down(s, "cluster", cluster_down);
	tcase_add_unchecked_fixture(tc, cluster_up, NULL);
	tcase_set_tags(tc, "cluster");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, cluster_loses_a_broker);
	return s;
}

int main(void)
{
	started = mmap(NULL, MAX_PIDS * sizeof(*started), PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (started == MAP_FAILED)
		started = NULL;
	return pw_check_run(suite());
}
