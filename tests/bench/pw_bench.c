/* pw_bench: load and latency figures against a running worker, printed one per line
 * ("name value"). Not a test: it asserts nothing, it measures.
 *
 *   pw_bench queries --gets 500 --load 20000
 *       p50/p99 round trip of sequential patient.get on an idle worker, then the same
 *       while --load creates are being ingested.
 *
 * Settings from the environment as the worker's: KAFKA_BROKERS, DATABASE_URL,
 * JWT_SECRET, TOPIC_CREATE, TOPIC_QUERY, TOPIC_REPLIES. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <jwt.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

static const char *env(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL || *v == '\0') {
		fprintf(stderr, "%s: required\n", name);
		exit(2);
	}
	return v;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *group)
{
	char err[256];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	if (rd_kafka_conf_set(c, "bootstrap.servers", env("KAFKA_BROKERS"), err, sizeof(err)) ||
	    (type == RD_KAFKA_PRODUCER &&
	     rd_kafka_conf_set(c, "linger.ms", "0", err, sizeof(err))) ||
	    (group && (rd_kafka_conf_set(c, "group.id", group, err, sizeof(err)) ||
	               rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err)) ||
	               rd_kafka_conf_set(c, "fetch.wait.max.ms", "5", err, sizeof(err))))) {
		fprintf(stderr, "kafka: %s\n", err);
		exit(1);
	}
	rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "kafka: %s\n", err);
		exit(1);
	}
	return rk;
}

static void create_topic(const char *name, int partitions)
{
	char err[256];
	rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, NULL);
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, 1, err, sizeof(err));
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_destroy(rk);
}

/* Reads topic from its current end. */
static rd_kafka_t *reader(const char *topic)
{
	char group[64];
	snprintf(group, sizeof(group), "pw-bench-%ld", (long)getpid());
	rd_kafka_t *c = client(RD_KAFKA_CONSUMER, group);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(c, topic, NULL);
	if (rd_kafka_metadata(c, 0, t, &md, 10000) != 0 || md->topics[0].err) {
		fprintf(stderr, "topic %s not found\n", topic);
		exit(1);
	}
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
	for (int i = 0; i < md->topics[0].partition_cnt; i++) {
		int64_t lo, hi;
		rd_kafka_query_watermark_offsets(c, topic, i, &lo, &hi, 10000);
		rd_kafka_topic_partition_list_add(l, topic, i)->offset = hi;
	}
	rd_kafka_assign(c, l);
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	return c;
}

static char *token(const char *sub)
{
	jwt_t *j = NULL;
	const char *secret = env("JWT_SECRET");
	jwt_new(&j);
	jwt_add_grant(j, "sub", sub);
	jwt_add_grant_int(j, "exp", (long)time(NULL) + 86400);
	jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret));
	char *s = jwt_encode_str(j);
	jwt_free(j);
	return s;
}

static void send_cmd(rd_kafka_t *p, const char *topic, const char *value)
{
	while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic),
	                         RD_KAFKA_V_VALUE((void *)value, strlen(value)),
	                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                         RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		rd_kafka_poll(p, 10);
	rd_kafka_poll(p, 0);
}

/* Waits for the reply keyed rid; returns its body (caller frees) or NULL after 30 s. */
static char *await(rd_kafka_t *c, const char *rid)
{
	double end = now_ms() + 30000;
	while (now_ms() < end) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
		if (m == NULL)
			continue;
		char *body = NULL;
		if (!m->err && m->key_len == strlen(rid) && memcmp(m->key, rid, m->key_len) == 0)
			body = strndup(m->payload, m->len);
		rd_kafka_message_destroy(m);
		if (body)
			return body;
	}
	return NULL;
}

typedef struct load {
	const char *topic, *tok, *prefix;
	int n;
	double sent_ms; /**< when the last create was handed to the producer */
} load;

static void *load_thread(void *arg)
{
	load *l = arg;
	rd_kafka_t *p = client(RD_KAFKA_PRODUCER, NULL);
	char buf[2048];
	for (int i = 0; i < l->n; i++) {
		snprintf(buf, sizeof(buf),
		         "{\"request_id\":\"%s-c%d\",\"type\":\"patient.create\",\"token\":\"%s\","
		         "\"payload\":{\"nombre\":\"Carga\",\"apellido_paterno\":\"Masiva\","
		         "\"dni\":\"L%d\",\"fecha_nacimiento\":\"1980-01-01\"}}",
		         l->prefix, i, l->tok, i);
		send_cmd(p, l->topic, buf);
	}
	rd_kafka_flush(p, 60000);
	l->sent_ms = now_ms();
	rd_kafka_destroy(p);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	int i = (int)(p * (n - 1) + 0.5);
	return v[i];
}

/* n sequential gets of id; fills ms[]. Returns how many got a 200. */
static int gets(rd_kafka_t *p, rd_kafka_t *c, const char *qtopic, const char *reply_to,
                const char *tok, const char *prefix, long id, int n, double *ms)
{
	char buf[2048], rid[96];
	int ok = 0;
	for (int i = 0; i < n; i++) {
		snprintf(rid, sizeof(rid), "%s-g%d", prefix, i);
		snprintf(buf, sizeof(buf),
		         "{\"request_id\":\"%s\",\"type\":\"patient.get\",\"token\":\"%s\","
		         "\"reply_to\":\"%s\",\"payload\":{\"id\":%ld}}",
		         rid, tok, reply_to, id);
		double t0 = now_ms();
		send_cmd(p, qtopic, buf);
		rd_kafka_flush(p, 10000);
		char *r = await(c, rid);
		ms[i] = now_ms() - t0;
		if (r && strstr(r, "\"status\":200"))
			ok++;
		free(r);
	}
	return ok;
}

static int queries(int n_gets, int n_load)
{
	const char *ctopic = env("TOPIC_CREATE"), *qtopic = env("TOPIC_QUERY");
	char reply_to[256], owner[96], prefix[64], buf[2048], rid[96];
	snprintf(reply_to, sizeof(reply_to), "%s.bench-%ld", env("TOPIC_REPLIES"), (long)getpid());
	snprintf(prefix, sizeof(prefix), "b%ld-%ld", (long)getpid(), (long)time(NULL));
	snprintf(owner, sizeof(owner), "bench-%s@example.com", prefix);
	create_topic(reply_to, 1);
	char *tok = token(owner);
	rd_kafka_t *p = client(RD_KAFKA_PRODUCER, NULL);
	rd_kafka_t *c = reader(reply_to);

	/* One patient to read back. */
	snprintf(rid, sizeof(rid), "%s-seed", prefix);
	snprintf(buf, sizeof(buf),
	         "{\"request_id\":\"%s\",\"type\":\"patient.create\",\"token\":\"%s\","
	         "\"reply_to\":\"%s\",\"payload\":{\"nombre\":\"Ana\",\"apellido_paterno\":"
	         "\"Quispe\",\"dni\":\"SEED\",\"fecha_nacimiento\":\"1990-04-12\"}}",
	         rid, tok, reply_to);
	send_cmd(p, ctopic, buf);
	char *seed = await(c, rid);
	json_t *j = seed ? json_loads(seed, 0, NULL) : NULL;
	json_t *id = json_object_get(json_object_get(j, "data"), "id");
	if (!json_is_integer(id)) {
		fprintf(stderr, "seed create failed: %s\n", seed ? seed : "no reply in 30 s");
		return 1;
	}
	long pid = (long)json_integer_value(id);
	json_decref(j);
	free(seed);

	double *idle = calloc((size_t)n_gets, sizeof(double));
	double *busy = calloc((size_t)n_gets, sizeof(double));
	char pre[80];
	snprintf(pre, sizeof(pre), "%s-idle", prefix);
	int ok_idle = gets(p, c, qtopic, reply_to, tok, pre, pid, n_gets, idle);

	load l = {ctopic, tok, prefix, n_load, 0};
	pthread_t th;
	double t0 = now_ms();
	pthread_create(&th, NULL, load_thread, &l);
	snprintf(pre, sizeof(pre), "%s-busy", prefix);
	int ok_busy = gets(p, c, qtopic, reply_to, tok, pre, pid, n_gets, busy);
	double gets_end = now_ms();
	/* Proof the gets ran under load: how many creates were in by then. */
	PGconn *db = PQconnectdb(env("DATABASE_URL"));
	const char *qp[1] = {owner};
	PGresult *r = PQexecParams(db, "SELECT count(*) - 1 FROM patients WHERE owner_id = $1", 1,
	                           NULL, qp, NULL, NULL, 0);
	const char *done = PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "?";
	pthread_join(th, NULL);

	printf("query_gets %d\n", n_gets);
	printf("query_idle_ok %d\n", ok_idle);
	printf("query_idle_p50_ms %.2f\n", pct(idle, n_gets, 0.50));
	printf("query_idle_p99_ms %.2f\n", pct(idle, n_gets, 0.99));
	printf("query_load_creates %d\n", n_load);
	printf("query_load_ok %d\n", ok_busy);
	printf("query_load_p50_ms %.2f\n", pct(busy, n_gets, 0.50));
	printf("query_load_p99_ms %.2f\n", pct(busy, n_gets, 0.99));
	printf("query_load_gets_window_s %.1f\n", (gets_end - t0) / 1e3);
	printf("query_load_producer_done_s %.1f\n", (l.sent_ms - t0) / 1e3);
	printf("query_load_creates_done_when_gets_ended %s\n", done);
	printf("query_load_owner %s\n", owner);
	PQclear(r);
	PQfinish(db);
	free(idle);
	free(busy);
	free(tok);
	rd_kafka_destroy(c);
	rd_kafka_destroy(p);
	return 0;
}

int main(int argc, char **argv)
{
	int n_gets = 500, n_load = 20000;
	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--gets") == 0)
			n_gets = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--load") == 0)
			n_load = atoi(argv[i + 1]);
	}
	if (argc >= 2 && strcmp(argv[1], "queries") == 0 && n_gets > 0 && n_load >= 0)
		return queries(n_gets, n_load);
	fprintf(stderr, "usage: pw_bench queries [--gets N] [--load N]\n");
	return 2;
}
