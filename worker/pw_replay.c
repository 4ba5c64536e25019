/* Replay of a command topic from its first record, under a throwaway consumer group:
 * either processing every command again (idempotency makes that a no-op for what was
 * answered) or, with --verify, comparing the database with the topic without writing. */
#include "pw_replay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "pw_command.h"
#include "pw_handler.h"
#include "pw_jwt.h"
#include "pw_kafka.h"
#include "pw_keyring.h"
#include "pw_log.h"
#include "pw_produce.h"
#include "pw_util.h"
#include "pw_verify.h"

#define STALL_S 30 /* no record for this long before the end offsets: give up */

typedef struct part {
	int32_t id;
	int64_t lo, hi; /**< offsets at start: read [lo, hi) */
	int done;
} part;

typedef struct counts {
	unsigned long seen, dead, no_append_time, refused, queries;
	unsigned long by_status[6];
} counts;

static double now_s(void)
{
	return (double)pw_util_now_us() / 1e6;
}

static void progress(unsigned long read, unsigned long total, double t0, int final)
{
	double dt = now_s() - t0;
	double rate = dt > 0 ? (double)read / dt : 0;
	int tty = isatty(STDERR_FILENO);
	fprintf(stderr, "%sreplay: %lu/%lu records (%.0f%%), %.0f records/s%s", tty ? "\r" : "",
	        read, total, total ? 100.0 * (double)read / (double)total : 100.0, rate,
	        (tty && !final) ? "" : "\n");
	fflush(stderr);
}

/* Assigns every partition of topic at its low watermark; fills parts and the total. */
static int open_topic(const pw_config *cfg, const char *topic, rd_kafka_t **out, part **parts,
                      int *nparts, unsigned long *total)
{
	char err[512], group[96];
	rd_kafka_conf_t *conf = pw_kafka_conf_new(cfg, PW_KAFKA_CLIENT, err, sizeof(err));
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *l = NULL;
	rd_kafka_topic_t *t = NULL;
	rd_kafka_t *c = NULL;
	int rc = -1;

	snprintf(group, sizeof(group), "patient-worker-replay-%ld-%ld", (long)getpid(),
	         (long)time(NULL));
	if (conf == NULL || pw_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) != 0 ||
	    pw_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) != 0 ||
	    pw_kafka_conf_set(conf, "queued.max.messages.kbytes", "16384", err, sizeof(err)) != 0) {
		fprintf(stderr, "replay: %s\n", err);
		if (conf)
			rd_kafka_conf_destroy(conf);
		return -1;
	}
	c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "replay: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	t = rd_kafka_topic_new(c, topic, NULL);
	if (rd_kafka_metadata(c, 0, t, &md, 10000) != 0 || md->topic_cnt != 1 ||
	    md->topics[0].err != 0) {
		fprintf(stderr, "replay: topic %s not found\n", topic);
		goto out;
	}
	*nparts = md->topics[0].partition_cnt;
	*parts = calloc((size_t)*nparts, sizeof(**parts));
	l = rd_kafka_topic_partition_list_new(*nparts);
	if (*parts == NULL || l == NULL)
		goto out;
	*total = 0;
	for (int i = 0; i < *nparts; i++) {
		part *p = &(*parts)[i];
		p->id = md->topics[0].partitions[i].id;
		if (rd_kafka_query_watermark_offsets(c, topic, p->id, &p->lo, &p->hi, 10000) != 0) {
			fprintf(stderr, "replay: cannot read the offsets of %s/%d\n", topic, p->id);
			goto out;
		}
		p->done = p->hi <= p->lo;
		*total += (unsigned long)(p->hi - p->lo);
		rd_kafka_topic_partition_list_add(l, topic, p->id)->offset = p->lo;
	}
	if (rd_kafka_assign(c, l) != 0)
		goto out;
	*out = c;
	c = NULL;
	rc = 0;
out:
	if (l)
		rd_kafka_topic_partition_list_destroy(l);
	if (md)
		rd_kafka_metadata_destroy(md);
	if (t)
		rd_kafka_topic_destroy(t);
	if (c)
		rd_kafka_destroy(c);
	return rc;
}

static int all_done(const part *parts, int n)
{
	for (int i = 0; i < n; i++)
		if (!parts[i].done)
			return 0;
	return 1;
}

static void mark(part *parts, int n, const rd_kafka_message_t *m)
{
	for (int i = 0; i < n; i++)
		if (parts[i].id == m->partition && m->offset >= parts[i].hi - 1)
			parts[i].done = 1;
}

/* A read-only session that sees every tenant: --verify compares all rows. */
static PGconn *verify_session(const pw_config *cfg)
{
	PGconn *c = PQconnectdb(cfg->database_url);
	PGresult *r = NULL;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "replay: cannot connect to the database: %s", PQerrorMessage(c));
		goto fail;
	}
	r = PQexec(c, "SET default_transaction_read_only = on");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		goto fail;
	PQclear(r);
	r = PQexec(c, "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		goto fail;
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		fprintf(stderr, "DATABASE_URL: replay --verify compares every tenant's rows, so it "
		                "must log in as a role with BYPASSRLS (an auditor role) or a "
		                "superuser\n");
		PQclear(r);
		PQfinish(c);
		return NULL;
	}
	PQclear(r);
	return c;
fail:
	PQclear(r);
	PQfinish(c);
	return NULL;
}

/* Without --verify: the command as the worker would run it, retrying an outage; with a
 * producer (--reply), its reply published again. */
static int process(pw_db *db, const pw_cursor_key *key, pw_handler_outcome *o,
                   const rd_kafka_message_t *m, rd_kafka_t *producer, counts *k)
{
	char err[512];
	pw_command c;
	pw_status st;

	pw_handler_to_command(o, rd_kafka_topic_name(m->rkt), m->partition, m->offset, &c);
	for (int attempt = 0;; attempt++) {
		st = pw_command_run(db, key, &c, 1, err, sizeof(err));
		if (st != PW_E_RETRY || attempt >= 30)
			break;
		PW_LOG_WARN(NULL, "replay: database unreachable, retrying: %s", err);
		sleep(1);
		if ((st = pw_db_connect(db, err, sizeof(err))) == PW_E_CONFIG)
			break;
	}
	pw_handler_from_command(o, &c);
	if (st != PW_OK) {
		fprintf(stderr, "replay: database: %s\n", err);
		return -1;
	}
	k->by_status[o->status / 100 < 6 ? o->status / 100 : 5]++;
	if (producer != NULL) {
		rd_kafka_resp_err_t e;
		if (pw_produce_reply(producer, o, o->reply, o->status, NULL, NULL, &e) != PW_OK)
			PW_LOG_WARN(NULL, "replay: reply to %s not published: %s", o->reply_to,
			            rd_kafka_err2str(e));
		rd_kafka_poll(producer, 0);
	}
	return 0;
}

static void report(const char *topic, bool verify, unsigned long total, const counts *k,
                   const pw_verify *v)
{
	printf("replay%s of %s: %lu records\n", verify ? " --verify" : "", topic, total);
	printf("  commands seen:                 %lu\n", k->seen);
	printf("  dead letters (not commands):   %lu\n", k->dead);
	printf("  without an append time:        %lu%s\n", k->no_append_time,
	       verify && k->no_append_time ? " (reported, not judged)" : "");
	if (verify) {
		const pw_verify_counts *c = pw_verify_counts_of(v);
		printf("  patients matching the topic:   %lu\n", c->match);
		printf("  patients whose row differs:    %lu\n", c->differs);
		printf("  patients with no row:          %lu\n", c->missing);
		printf("  changes of no known version:   %lu\n", c->broken);
		printf("  writes never answered:         %lu\n", c->unanswered);
		printf("  writes answered 404/409:       %lu\n", c->refused);
		printf("  refused (token or payload):    %lu\n", k->refused);
		printf("  queries:                       %lu\n", k->queries);
		printf("  rows with no command:          %lu\n", c->orphans);
		printf("result: %s\n", pw_verify_consistent(v) ? "consistent" : "DISAGREES");
	} else {
		printf("  answered 2xx/4xx/5xx:          %lu/%lu/%lu\n", k->by_status[2],
		       k->by_status[4], k->by_status[5]);
	}
	fflush(stdout);
}

/* One replay run: what it reads, what it writes with, what it has counted. */
typedef struct replay {
	const pw_config *cfg;
	const pw_replay_opts *opts;
	const pw_cursor_key *key;
	const char *topic;
	pw_topic_kind kind;
	pw_jwt_verifier *jwt;
	pw_keyring *ring; /**< a fetched key set (JWT_JWKS_URL, JWT_OIDC_ISSUER); else NULL */
	pw_handler handler;
	rd_kafka_t *consumer;
	rd_kafka_t *producer; /**< --reply */
	part *parts;
	int nparts;
	unsigned long total, read;
	PGconn *vc;     /**< --verify: read-only, every tenant */
	pw_verify *ver; /**< --verify: what the topic implies */
	pw_db *db;      /**< otherwise: the worker's own session */
	counts k;
} replay;

/* The sessions the run needs: a read-only one to verify, else the worker's session and,
 * with --reply, a producer. PW_E_CONFIG for a setting that makes the run impossible. */
static pw_status replay_open(replay *r)
{
	char err[512];
	pw_status st;

	if (r->opts->verify) {
		if ((r->vc = verify_session(r->cfg)) == NULL)
			return PW_E_INTERNAL;
		return pw_verify_create(r->vc, &r->ver);
	}
	if ((st = pw_command_db(r->cfg, &r->db, err, sizeof(err))) != PW_OK) {
		fprintf(stderr, "replay: %s\n", err);
		return st;
	}
	if ((st = pw_db_connect(r->db, err, sizeof(err))) != PW_OK) {
		fprintf(stderr, "%s\n", err);
		return st;
	}
	if (!r->opts->reply)
		return PW_OK;
	rd_kafka_conf_t *pc = pw_kafka_conf_new(r->cfg, PW_KAFKA_PRODUCER, err, sizeof(err));
	if (pc == NULL ||
	    (r->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err))) == NULL) {
		fprintf(stderr, "replay: %s\n", err);
		if (pc)
			rd_kafka_conf_destroy(pc);
		return PW_E_INTERNAL;
	}
	return PW_OK;
}

/* One record of the topic, decided as the worker would, then processed or verified. */
static pw_status replay_record(replay *r, const rd_kafka_message_t *m)
{
	pw_handler_record rec;
	pw_handler_outcome o;
	pw_status st = PW_OK;
	int rc = 0;

	pw_handler_record_of(m, (int64_t)time(NULL), &rec);
	if (pw_handler_decide(&r->handler, &rec, r->kind, &o) != PW_OK)
		return PW_E_NOMEM;
	if (o.kind == PW_HANDLER_WAIT) {
		/* The replay's key ring has no thread: its unknown kids refresh in the call. */
		fprintf(stderr, "replay: a token waits for a key set refresh that cannot come\n");
		st = PW_E_INTERNAL;
		goto out;
	}
	if (o.kind == PW_HANDLER_DEAD_LETTER) {
		r->k.dead++;
		goto out;
	}
	r->k.seen++;
	if (!o.log_append_time)
		r->k.no_append_time++;
	if (!r->opts->verify)
		rc = process(r->db, r->key, &o, m, r->producer, &r->k);
	/* Verified only at its append time: a time guessed now would not be the one the
	 * command had, so such a record is only counted. */
	else if (o.log_append_time && o.command == PW_COMMAND_REFUSED)
		r->k.refused++;
	else if (o.log_append_time && (o.command == PW_COMMAND_GET || o.command == PW_COMMAND_LIST))
		r->k.queries++;
	else if (o.log_append_time)
		st = pw_verify_record(r->ver, &o, rd_kafka_topic_name(m->rkt), m->partition,
		                      m->offset);
out:
	pw_handler_outcome_clear(&o);
	return rc == 0 ? st : PW_E_INTERNAL;
}

/* Every record up to the end offsets found at start, with a progress line. */
static pw_status replay_read(replay *r)
{
	double t0 = now_s(), last = t0, last_record = t0;
	pw_status st = PW_OK;

	while (st == PW_OK && !all_done(r->parts, r->nparts)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(r->consumer, 200);
		double now = now_s();
		if (now - last >= 1.0) {
			progress(r->read, r->total, t0, 0);
			last = now;
		}
		if (m == NULL) {
			if (now - last_record <= STALL_S)
				continue;
			fprintf(stderr, "replay: no record for %d s before the end\n", STALL_S);
			return PW_E_RETRY;
		}
		last_record = now;
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			r->read++;
			mark(r->parts, r->nparts, m);
			st = replay_record(r, m);
		} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			PW_LOG_WARN(NULL, "replay: %s", rd_kafka_message_errstr(m));
		}
		rd_kafka_message_destroy(m);
	}
	if (st == PW_OK)
		progress(r->read, r->total, t0, 1);
	if (st == PW_E_NOMEM)
		fprintf(stderr, "replay: out of memory\n");
	return st;
}

static void replay_close(replay *r)
{
	if (r->consumer) {
		rd_kafka_consumer_close(r->consumer);
		rd_kafka_destroy(r->consumer);
	}
	if (r->producer)
		rd_kafka_destroy(r->producer);
	free(r->parts);
	pw_verify_destroy(r->ver);
	PQfinish(r->vc);
	pw_db_destroy(r->db);
	pw_jwt_verifier_destroy(r->jwt);
	pw_keyring_destroy(r->ring);
}

pw_status pw_replay_run(const pw_config *cfg, const pw_cursor_key *key, const pw_replay_opts *opts,
                        bool *consistent)
{
	replay r = {.cfg = cfg, .opts = opts, .key = key};
	pw_status st;

	*consistent = false;
	r.topic = opts->topic ? opts->topic : cfg->topic_create;
	r.kind = strcmp(r.topic, cfg->topic_query) == 0 ? PW_TOPIC_QUERY : PW_TOPIC_CREATE;
	if (strcmp(r.topic, cfg->topic_create) != 0 && strcmp(r.topic, cfg->topic_query) != 0) {
		fprintf(stderr, "--topic: %s is neither TOPIC_CREATE nor TOPIC_QUERY\n", r.topic);
		return PW_E_CONFIG;
	}
	if (pw_jwt_verifier_create(cfg, &r.jwt) != PW_OK)
		return PW_E_CONFIG;
	/* A key set is loaded once, as the worker does at start, and joined with the key
	 * archive (read only: a replay records nothing), so each command is judged by the keys
	 * of its own time, those retired since included. */
	if (cfg->jwt_source >= PW_KEYS_JWKS_FILE) {
		char err[512];
		if (pw_keyring_create(cfg, PW_KEYRING_START_S, &r.ring, err, sizeof(err)) !=
		    PW_OK) {
			fprintf(stderr, "%s\n", err);
			pw_jwt_verifier_destroy(r.jwt);
			return PW_E_CONFIG;
		}
		/* Without the archive, a command signed with a key retired since would be
		 * refused where the first run accepted it. */
		if (!pw_keyring_use_archive(r.ring, false)) {
			fprintf(stderr,
			        "replay: cannot read the key archive (logged above); a replay "
			        "without it could answer otherwise than the first run\n");
			pw_keyring_destroy(r.ring);
			pw_jwt_verifier_destroy(r.jwt);
			return PW_E_RETRY;
		}
		pw_jwt_verifier_use_keyring(r.jwt, r.ring);
	}
	r.handler = (pw_handler){cfg, r.jwt, key};
	st = replay_open(&r);
	if (st == PW_OK &&
	    open_topic(cfg, r.topic, &r.consumer, &r.parts, &r.nparts, &r.total) != 0)
		st = PW_E_INTERNAL;
	if (st == PW_OK)
		st = replay_read(&r);
	if (st == PW_OK && opts->verify && r.kind == PW_TOPIC_CREATE)
		st = pw_verify_finish(r.ver, r.topic);
	if (st == PW_OK) {
		if (r.producer != NULL && rd_kafka_flush(r.producer, 30000) != 0)
			PW_LOG_WARN(NULL, "replay: some replies were not acknowledged");
		*consistent = !opts->verify || pw_verify_consistent(r.ver);
		report(r.topic, opts->verify, r.total, &r.k, r.ver);
	}
	replay_close(&r);
	return st;
}
