/* pw_bulk: bulk-ingestion figures (issue 4), printed one per line ("name value"). Not a
 * test: it asserts nothing, it measures. tests/bench/bench.sh drives it.
 *
 *   pw_bulk raw --rows N --run ID [--tenants 100] [--batch 500]
 *       the patients table alone: one multi-row INSERT of --batch rows per transaction,
 *       as DATABASE_ROLE with row-level security, one owner per statement.
 *   pw_bulk equivalent --items N --run ID [--tenants 100] [--batch 500]
 *       the worker's database path (pw_command_run) for creates, --batch items per call;
 *       with the WAL the server wrote meanwhile per create (issue 14: what a create
 *       writes; the server's WAL, so nothing else should write then).
 *   pw_bulk e2e --creates N --run ID --label L [--tenants 100] [--distinct] [--mix]
 *               [--alg HS256|RS256|ES256|EdDSA] [--key PRIVATE.pem] [--members M]
 *               [--gets G --query-reply-to TOPIC]
 *       N creates from one producer to TOPIC_CREATE, rate from the first send to the
 *       last reply read on TOPIC_REPLIES; with --gets, G idle patient.get round trips
 *       first, then sequential gets for as long as the load runs. With --mix, N writes:
 *       70% creates, 20% updates, 10% deletes. Before the clock starts, N/10 patients
 *       are created (the seed, spread over the tenants); in each block of ten commands
 *       b, seven are creates, then seed patient b is updated from version 1, updated
 *       from version 2 and deleted from version 3, keyed by patient (so in order, and
 *       each is answered 200).
 *   pw_bulk gets --run ID --label L --query-reply-to TOPIC --gets G --ready-file F
 *                [--every-ms 20] [--sample-db]
 *       the query side of the flood mode (issue 15): one patient.get every --every-ms,
 *       open loop, from its own producer, reply topic and consumer; G of them idle, then
 *       F is written, and the gets go on until the load (e2e --notify PID, which sends
 *       SIGUSR1 at its first send and SIGUSR2 at its last reply) is over; F.flood is
 *       written when the first signal comes. Prints
 *       p50/p90/p99/max, the share over 100 ms and the count over 250 ms idle and
 *       during the flood; with --sample-db, what the query lane's and the create
 *       sessions' backends were doing (pg_stat_activity every 50 ms).
 *   pw_bulk proc PID
 *       cpu_s (utime + stime) and vmhwm_kib of a process.
 *   pw_bulk topic NAME PARTITIONS [logappend]
 *       creates a topic with the admin API (for brokers without the Kafka CLI).
 *
 * Settings from the environment as the worker's: KAFKA_BROKERS, DATABASE_URL,
 * DATABASE_ROLE, JWT_SECRET, TOPIC_CREATE, TOPIC_QUERY, TOPIC_REPLIES, KAFKA_GROUP_ID. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <jwt.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <openssl/pem.h>

#include "ctl_token.h"
#include "pw_command.h"
#include "pw_config.h"
#include "pw_patient.h"

#define STALL_MS    60000 /* no new reply for this long: give up waiting */
#define MAX_SAMPLES 200000

typedef struct opts {
	const char *run, *label, *alg, *key_file, *query_reply_to, *ready_file;
	long n;
	int tenants, batch, distinct, members, gets, mix;
	int every_ms;  /**< gets: one get every so many ms */
	int sample_db; /**< gets: sample pg_stat_activity during the flood */
	pid_t notify;  /**< e2e: SIGUSR1 to it at the first send, SIGUSR2 at the last reply */
} opts;

static const char *env(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL || *v == '\0') {
		fprintf(stderr, "%s: required\n", name);
		exit(2);
	}
	return v;
}

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);
	return v == NULL || *v == '\0' ? def : v;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (p == NULL) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	return p;
}

/* The tenants of a run: owner k of run/label. */
static void owner_name(char *buf, size_t size, const opts *o, int k)
{
	snprintf(buf, size, "%s-%s-t%d@example.com", o->run, o->label, k);
}

/* Patient i of a run: varied names, a dni unique within the run. */
typedef struct person {
	const char *nombre, *paterno, *materno, *fecha, *sexo;
	char dni[24];
} person;

static void person_of(long i, person *p)
{
	static const char *const nombres[] = {"Ana",  "Luis",  "María", "José",
	                                      "Rosa", "Jorge", "Elena", "Carlos"};
	static const char *const apellidos[] = {"Quispe", "Mamani", "Huamán", "Flores",
	                                        "García", "Rojas",  "Torres", "Chávez"};
	static const char *const fechas[] = {"1950-03-14", "1962-07-01", "1975-11-23",
	                                     "1984-02-29", "1991-09-09", "2003-05-30",
	                                     "2012-12-12", "2020-01-31"};
	static const char *const sexos[] = {"F", "M", "X"};
	p->nombre = nombres[i % 8];
	p->paterno = apellidos[(i / 8) % 8];
	p->materno = apellidos[(i / 64) % 8];
	p->fecha = fechas[(i / 3) % 8];
	p->sexo = sexos[i % 3];
	snprintf(p->dni, sizeof(p->dni), "D%ld", i);
}

/* --- raw: the patients table alone ------------------------------------------------ */

typedef struct buf {
	char *s;
	size_t len, cap;
} buf;

static void buf_add(buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (b->s == NULL) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* Appends one element to a Postgres array literal being built ("{" ... "}"). */
static void arr_add(buf *b, const char *v)
{
	buf_add(b, b->len == 0 ? "{\"" : ",\"", 2);
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_add(b, "\\", 1);
		buf_add(b, p, 1);
	}
	buf_add(b, "\"", 1);
}

static void arr_end(buf *b)
{
	if (b->len == 0)
		buf_add(b, "{", 1);
	buf_add(b, "}", 1);
}

static int exec_ok(PGconn *c, PGresult *r, const char *what)
{
	ExecStatusType s = PQresultStatus(r);
	int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "%s: %s", what, PQerrorMessage(c));
	PQclear(r);
	return ok;
}

enum { A_NOMBRE, A_PATERNO, A_MATERNO, A_DNI, A_FECHA, A_SEXO, A_RID, A_HASH, A_PART, A_OFF, A_N };

static int cmd_raw(const opts *o)
{
	PGconn *c = PQconnectdb(env("DATABASE_URL"));
	char sql[2048], topic[128];
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "raw: cannot connect: %s", PQerrorMessage(c));
		return 1;
	}
	char *role = PQescapeIdentifier(c, env_or("DATABASE_ROLE", "patients_app"),
	                                strlen(env_or("DATABASE_ROLE", "patients_app")));
	snprintf(sql, sizeof(sql), "SET ROLE %s", role);
	PQfreemem(role);
	if (!exec_ok(c, PQexec(c, sql), "raw: SET ROLE"))
		return 1;
	PGresult *r = PQexec(c, "SELECT 1 FROM information_schema.columns WHERE table_schema ="
	                        " 'public' AND table_name = 'patients' AND column_name ="
	                        " 'payload_hash'");
	int has_hash = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	PQclear(r);
	snprintf(
	    sql, sizeof(sql),
	    "INSERT INTO patients (owner_id, nombre, apellido_paterno, apellido_materno, dni,"
	    " fecha_nacimiento, sexo, request_id,%s source_topic, source_partition,"
	    " source_offset) SELECT $1, n, p, m, d, f, s, r,%s $2, sp, so FROM unnest($3::text[],"
	    " $4::text[], $5::text[], $6::text[], $7::date[], $8::text[], $9::text[],"
	    " $10::text[], $11::int[], $12::bigint[]) AS u(n, p, m, d, f, s, r, h, sp, so)",
	    has_hash ? " payload_hash," : "", has_hash ? " h," : "");
	if (!exec_ok(c, PQprepare(c, "raw_insert", sql, 12, NULL), "raw: prepare"))
		return 1;
	snprintf(topic, sizeof(topic), "%s.raw", o->run);

	long batches = (o->n + o->batch - 1) / o->batch, rows = 0;
	buf a[A_N];
	memset(a, 0, sizeof(a));
	double t0 = now_ms();
	for (long b = 0; b < batches; b++) {
		char owner[160], rid[96], num[80];
		owner_name(owner, sizeof(owner), o, (int)(b % o->tenants));
		for (int k = 0; k < A_N; k++)
			a[k].len = 0;
		for (int j = 0; j < o->batch; j++) {
			long i = b * o->batch + j;
			person p;
			person_of(i, &p);
			arr_add(&a[A_NOMBRE], p.nombre);
			arr_add(&a[A_PATERNO], p.paterno);
			arr_add(&a[A_MATERNO], p.materno);
			arr_add(&a[A_DNI], p.dni);
			arr_add(&a[A_FECHA], p.fecha);
			arr_add(&a[A_SEXO], p.sexo);
			snprintf(rid, sizeof(rid), "%s-raw-%ld", o->run, i);
			arr_add(&a[A_RID], rid);
			snprintf(num, sizeof(num), "%064lx", (unsigned long)i * 2654435761UL);
			arr_add(&a[A_HASH], num);
			snprintf(num, sizeof(num), "%ld", i % 4);
			arr_add(&a[A_PART], num);
			snprintf(num, sizeof(num), "%ld", i / 4);
			arr_add(&a[A_OFF], num);
		}
		for (int k = 0; k < A_N; k++)
			arr_end(&a[k]);
		const char *params[12] = {owner, topic};
		for (int k = 0; k < A_N; k++)
			params[2 + k] = a[k].s;
		/* Scoped as the worker scopes it (pw_db_set_owner). */
		char *lit = PQescapeLiteral(c, owner, strlen(owner));
		char set[512];
		if (lit == NULL)
			return 1;
		snprintf(set, sizeof(set), "BEGIN; SET LOCAL app.owner_id = %s", lit);
		PQfreemem(lit);
		if (!exec_ok(c, PQexec(c, set), "raw: BEGIN; SET LOCAL app.owner_id") ||
		    !exec_ok(c, PQexecPrepared(c, "raw_insert", 12, params, NULL, NULL, 0),
		             "raw: INSERT") ||
		    !exec_ok(c, PQexec(c, "COMMIT"), "raw: COMMIT"))
			return 1;
		rows += o->batch;
	}
	double s = (now_ms() - t0) / 1e3;
	printf("raw_pg_rows %ld\n", rows);
	printf("raw_pg_rows_per_statement %d\n", o->batch);
	printf("raw_pg_payload_hash_column %s\n", has_hash ? "yes" : "no");
	printf("raw_pg_s %.2f\n", s);
	printf("raw_pg_rows_per_s %.0f\n", rows / s);
	for (int k = 0; k < A_N; k++)
		free(a[k].s);
	PQfinish(c);
	return 0;
}

/* --- equivalent: the worker's database path --------------------------------------- */

/* The server's current WAL position in bytes, on a connection of its own; -1 when it
 * cannot be read. */
static double wal_position(const char *url)
{
	PGconn *c = PQconnectdb(url);
	double pos = -1;
	if (PQstatus(c) == CONNECTION_OK) {
		PGresult *r = PQexec(c, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')");
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			pos = atof(PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	PQfinish(c);
	return pos;
}

static int cmd_equivalent(const opts *o)
{
	char *argv0[] = {"pw_bulk", NULL};
	char err[512], topic[128];
	pw_config cfg;
	pw_db *db = NULL;
	pw_status st;

	if (pw_config_load(&cfg, 1, argv0, PW_CFG_NEED_DB, stderr) != PW_OK)
		return 2;
	if (pw_command_db(&cfg, &db, err, sizeof(err)) != PW_OK ||
	    pw_db_connect(db, err, sizeof(err)) != PW_OK) {
		fprintf(stderr, "equivalent: cannot connect: %s\n", err);
		return 1;
	}
	snprintf(topic, sizeof(topic), "%s.equivalent", o->run);
	long n = o->n;
	int64_t now = (int64_t)time(NULL);
	pw_patient_input *in = xcalloc((size_t)n, sizeof(*in));
	char(*rid)[96] = xcalloc((size_t)n, sizeof(*rid));
	char(*owners)[160] = xcalloc((size_t)o->tenants, sizeof(*owners));
	for (int k = 0; k < o->tenants; k++)
		owner_name(owners[k], sizeof(owners[k]), o, k);
	/* Validated before timing: the payload hash is the worker's, its cost is not
	 * the database's. */
	for (long i = 0; i < n; i++) {
		person p;
		json_t *fields = NULL;
		person_of(i, &p);
		json_t *payload =
		    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "nombre", p.nombre,
		              "apellido_paterno", p.paterno, "apellido_materno", p.materno, "dni",
		              p.dni, "fecha_nacimiento", p.fecha, "sexo", p.sexo);
		if (payload == NULL ||
		    pw_patient_validate(payload, now, &in[i], &fields) != PW_OK) {
			fprintf(stderr, "equivalent: payload %ld refused\n", i);
			return 1;
		}
		json_decref(payload);
		snprintf(rid[i], sizeof(rid[i]), "%s-eq-%ld", o->run, i);
	}

	pw_command *items = xcalloc((size_t)o->batch, sizeof(*items));
	long created = 0, other = 0, reconnects = 0;
	double spent = 0, wal0 = wal_position(cfg.database_url);
	for (long b = 0; b < n; b += o->batch) {
		size_t k = (size_t)(n - b < o->batch ? n - b : o->batch);
		for (size_t j = 0; j < k; j++) {
			long i = b + (long)j;
			items[j] = (pw_command){
			    .kind = PW_COMMAND_CREATE,
			    .owner = owners[i % o->tenants],
			    .request_id = rid[i],
			    .command_type = "patient.create",
			    .src_topic = topic,
			    .src_partition = (int32_t)(i % 4),
			    .src_offset = i / 4,
			    .command_time = now,
			    .in = &in[i],
			};
		}
		double t0 = now_ms();
		/* The database went away: reconnect (for up to 60 s) and run the same items
		 * again, as the worker does; the figure is then flagged by the count. */
		double give_up = 0;
		while ((st = pw_command_run(db, NULL, items, k, err, sizeof(err))) == PW_E_RETRY) {
			if (give_up == 0) {
				give_up = now_ms() + 60000;
				reconnects++;
				fprintf(stderr,
				        "equivalent: database unreachable (%s), reconnecting\n",
				        err);
			}
			pw_status cs;
			while ((cs = pw_db_connect(db, err, sizeof(err))) == PW_E_RETRY &&
			       now_ms() < give_up)
				sleep(1);
			if (cs != PW_OK)
				break;
		}
		spent += now_ms() - t0;
		if (st != PW_OK) {
			fprintf(stderr, "equivalent: pw_command_run: %s\n", err);
			return 1;
		}
		for (size_t j = 0; j < k; j++) {
			if (items[j].status == 201)
				created++;
			else
				other++;
		}
		pw_command_clear(items, k);
	}
	printf("raw_equivalent_items %ld\n", n);
	printf("raw_equivalent_items_per_call %d\n", o->batch);
	printf("raw_equivalent_201 %ld\n", created);
	printf("raw_equivalent_other_status %ld\n", other);
	printf("raw_equivalent_reconnects %ld\n", reconnects);
	printf("raw_equivalent_s %.2f\n", spent / 1e3);
	printf("raw_equivalent_per_s %.0f\n", n / (spent / 1e3));
	double wal1 = wal_position(cfg.database_url);
	if (wal0 >= 0 && wal1 >= wal0 && created > 0)
		printf("raw_equivalent_wal_bytes_per_create %.0f\n",
		       (wal1 - wal0) / (double)created);
	for (long i = 0; i < n; i++)
		pw_patient_input_clear(&in[i]);
	free(in);
	free(rid);
	free(owners);
	free(items);
	pw_db_destroy(db);
	pw_config_free(&cfg);
	return 0;
}

/* --- Kafka helpers --------------------------------------------------------------- */

/* linger_ms: a producer's batching delay ("5" for the bulk load; "0" for the gets, as a
 * latency-minded requester would set it). fetch_wait_ms: a consumer's fetch.wait.max.ms
 * (NULL: librdkafka's default, 500; the broker answers a fetch as soon as a record comes
 * either way, a shorter wait only makes the consumer ask more often). */
static rd_kafka_t *client_with(rd_kafka_type_t type, const char *group, const char *linger_ms,
                               const char *fetch_wait_ms)
{
	char err[256];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	if (rd_kafka_conf_set(c, "bootstrap.servers", env("KAFKA_BROKERS"), err, sizeof(err)) ||
	    (type == RD_KAFKA_PRODUCER &&
	     rd_kafka_conf_set(c, "linger.ms", linger_ms, err, sizeof(err))) ||
	    (group &&
	     (rd_kafka_conf_set(c, "group.id", group, err, sizeof(err)) ||
	      rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err)) ||
	      (fetch_wait_ms != NULL &&
	       rd_kafka_conf_set(c, "fetch.wait.max.ms", fetch_wait_ms, err, sizeof(err)))))) {
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

static rd_kafka_t *client_linger(rd_kafka_type_t type, const char *group, const char *linger_ms)
{
	return client_with(type, group, linger_ms, "5");
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *group)
{
	return client_linger(type, group, "5");
}

/* A consumer of topic from its current end, all partitions, with fetch_wait_ms as
 * client_with's. */
static rd_kafka_t *reader_with(const char *topic, const char *tag, const char *fetch_wait_ms)
{
	char group[96];
	snprintf(group, sizeof(group), "pw-bulk-%ld-%s", (long)getpid(), tag);
	rd_kafka_t *c = client_with(RD_KAFKA_CONSUMER, group, "5", fetch_wait_ms);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(c, topic, NULL);
	if (rd_kafka_metadata(c, 0, t, &md, 10000) != 0 || md->topics[0].err) {
		fprintf(stderr, "topic %s not found\n", topic);
		exit(1);
	}
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
	for (int i = 0; i < md->topics[0].partition_cnt; i++) {
		int64_t lo, hi;
		if (rd_kafka_query_watermark_offsets(c, topic, i, &lo, &hi, 10000)) {
			fprintf(stderr, "topic %s: no watermarks for partition %d\n", topic, i);
			exit(1);
		}
		rd_kafka_topic_partition_list_add(l, topic, i)->offset = hi;
	}
	rd_kafka_assign(c, l);
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	return c;
}

/* The same, asking the broker every 5 ms (the figures of bench.sh were taken so). */
static rd_kafka_t *reader(const char *topic, const char *tag)
{
	return reader_with(topic, tag, "5");
}

static int partitions_of(rd_kafka_t *rk, const char *topic)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
	int n = 1;
	if (rd_kafka_metadata(rk, 0, t, &md, 10000) == 0 && !md->topics[0].err)
		n = md->topics[0].partition_cnt;
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	return n;
}

static void send_cmd(rd_kafka_t *p, const char *topic, int32_t partition, const char *key,
                     const char *value)
{
	while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
	                         RD_KAFKA_V_KEY((void *)key, strlen(key)),
	                         RD_KAFKA_V_VALUE((void *)value, strlen(value)),
	                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                         RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		rd_kafka_poll(p, 10);
	rd_kafka_poll(p, 0);
}

/* The reply's status: its header, else the body. */
static int reply_status(const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *h = NULL;
	const void *v;
	size_t n;
	char s[16];
	if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    rd_kafka_header_get_last(h, "status", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    v != NULL && n < sizeof(s)) {
		memcpy(s, v, n);
		s[n] = '\0';
		return atoi(s);
	}
	const char *b = m->payload;
	for (size_t i = 0; b != NULL && i + 12 <= m->len; i++)
		if (memcmp(b + i, "\"status\":", 9) == 0)
			return atoi(b + i + 9);
	return 0;
}

/* Waits up to ms for the reply keyed rid; returns its status, 0 on timeout. */
static int await_reply(rd_kafka_t *c, const char *rid, double ms)
{
	double end = now_ms() + ms;
	while (now_ms() < end) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
		if (m == NULL)
			continue;
		int status = 0;
		if (!m->err && m->key_len == strlen(rid) && memcmp(m->key, rid, m->key_len) == 0)
			status = reply_status(m);
		rd_kafka_message_destroy(m);
		if (status)
			return status;
	}
	return 0;
}

/* --- tokens ----------------------------------------------------------------------- */

typedef struct signer {
	const opts *o;
	const unsigned char *key;
	int key_len;
	jwt_alg_t alg;
	EVP_PKEY *pkey; /**< ES256 and EdDSA (libjwt 1.10 has no EdDSA): patientctl's signer */
	char **out;
	long from, to; /**< token i for owner i % tenants (distinct) or owner i */
	int fail;
} signer;

static char *sign(const signer *s, const char *owner, const char *jti)
{
	jwt_t *j = NULL;
	char *tok = NULL;
	if (s->pkey != NULL) {
		json_t *c =
		    json_pack("{s:s, s:I}", "sub", owner, "exp", (json_int_t)time(NULL) + 86400);
		char *claims;
		if (c == NULL || (jti != NULL && json_object_set_new(c, "jti", json_string(jti))))
			return NULL;
		claims = json_dumps(c, JSON_COMPACT);
		json_decref(c);
		if (claims != NULL) {
			char err[256];
			ctl_jwk_alg alg;
			if (ctl_jwk_alg_parse(s->o->alg, &alg) == PW_OK)
				tok = ctl_token_jws(s->pkey, alg, NULL, claims, err, sizeof(err));
		}
		free(claims);
		return tok;
	}
	if (jwt_new(&j) != 0)
		return NULL;
	if (jwt_add_grant(j, "sub", owner) == 0 &&
	    jwt_add_grant_int(j, "exp", (long)time(NULL) + 86400) == 0 &&
	    (jti == NULL || jwt_add_grant(j, "jti", jti) == 0) &&
	    jwt_set_alg(j, s->alg, s->key, s->key_len) == 0)
		tok = jwt_encode_str(j);
	jwt_free(j);
	return tok;
}

static void *sign_range(void *arg)
{
	signer *s = arg;
	char owner[160], jti[96];
	for (long i = s->from; i < s->to && !s->fail; i++) {
		owner_name(owner, sizeof(owner), s->o, (int)(i % s->o->tenants));
		snprintf(jti, sizeof(jti), "%s-%s-%ld", s->o->run, s->o->label, i);
		s->out[i] = sign(s, owner, s->o->distinct ? jti : NULL);
		if (s->out[i] == NULL)
			s->fail = 1;
	}
	return NULL;
}

static unsigned char *read_file(const char *path, int *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b = xcalloc(1, 65536);
	size_t n = f ? fread(b, 1, 65535, f) : 0;
	if (f == NULL || n == 0) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(1);
	}
	fclose(f);
	*len = (int)n;
	return b;
}

/* --- e2e -------------------------------------------------------------------------- */

typedef struct counter {
	rd_kafka_t *c;
	const char *prefix; /**< request ids of the load: prefix + index */
	long n;
	int mix; /**< --mix: command i % 10 >= 7 is an update or delete, answered 200 */
	unsigned char *seen;
	long ok, other;
	double start_ms, last_ms;
	int stalled;
	atomic_int *done;
} counter;

static void *count_replies(void *arg)
{
	counter *k = arg;
	size_t pl = strlen(k->prefix);
	double progress = now_ms();
	while (k->ok + k->other < k->n) {
		if (now_ms() - progress > STALL_MS) {
			k->stalled = 1;
			break;
		}
		rd_kafka_message_t *m = rd_kafka_consumer_poll(k->c, 100);
		if (m == NULL)
			continue;
		if (!m->err && m->key_len > pl && m->key_len < 64 &&
		    memcmp(m->key, k->prefix, pl) == 0) {
			char digits[64];
			memcpy(digits, (const char *)m->key + pl, m->key_len - pl);
			digits[m->key_len - pl] = '\0';
			char *end;
			long i = strtol(digits, &end, 10);
			if (*end == '\0' && i >= 0 && i < k->n && !k->seen[i]) {
				int status = reply_status(m);
				k->seen[i] = 1;
				if (status == (k->mix && i % 10 >= 7 ? 200 : 201))
					k->ok++;
				else
					k->other++;
				k->last_ms = progress = now_ms();
			}
		}
		rd_kafka_message_destroy(m);
	}
	atomic_store(k->done, 1);
	return NULL;
}

typedef struct getter {
	rd_kafka_t *p, *c;
	const char *qtopic, *reply_to, *tok, *prefix;
	long id;
	double *ms;
	int n, max, ok;
	atomic_int *stop; /**< NULL: exactly max gets */
} getter;

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	if (n == 0)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return v[(int)(p * (n - 1) + 0.5)];
}

/* Sequential patient.get round trips until max are done or *stop is set. */
static void *run_gets(void *arg)
{
	getter *g = arg;
	char body[2048], rid[128];
	for (g->n = 0; g->n < g->max && !(g->stop && atomic_load(g->stop)); g->n++) {
		snprintf(rid, sizeof(rid), "%s%d", g->prefix, g->n);
		snprintf(body, sizeof(body),
		         "{\"request_id\":\"%s\",\"type\":\"patient.get\",\"token\":\"%s\","
		         "\"reply_to\":\"%s\",\"payload\":{\"id\":%ld}}",
		         rid, g->tok, g->reply_to, g->id);
		double t0 = now_ms();
		send_cmd(g->p, g->qtopic, RD_KAFKA_PARTITION_UA, rid, body);
		rd_kafka_flush(g->p, 10000);
		int status = await_reply(g->c, rid, 30000);
		g->ms[g->n] = now_ms() - t0;
		if (status == 200)
			g->ok++;
	}
	return NULL;
}

/* Waits until the worker group is stable with the expected members (bounded). */
static void await_group(rd_kafka_t *rk, const char *group, int members)
{
	double end = now_ms() + 90000;
	int have = -1;
	const char *state = "?";
	while (now_ms() < end) {
		const struct rd_kafka_group_list *gl = NULL;
		if (rd_kafka_list_groups(rk, group, &gl, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
			int ok = gl->group_cnt == 1 && strcmp(gl->groups[0].state, "Stable") == 0 &&
			         gl->groups[0].member_cnt == members;
			have = gl->group_cnt == 1 ? gl->groups[0].member_cnt : 0;
			state = gl->group_cnt == 1 && strcmp(gl->groups[0].state, "Stable") == 0
			            ? "Stable"
			            : "not stable";
			rd_kafka_group_list_destroy(gl);
			if (ok)
				return;
		}
		nanosleep(&(struct timespec){0, 200000000}, NULL);
	}
	fprintf(stderr, "e2e: group %s has %d members (%s), expected %d; going on after 90 s\n",
	        group, have, state, members);
}

/* The body of command i % 10 == r (7, 8 or 9) of a mixed load, on seed patient id. */
static void change_body(char *body, size_t size, const char *rid, const char *tok, long id, int r)
{
	if (r == 9)
		snprintf(body, size,
		         "{\"request_id\":\"%s\",\"type\":\"patient.delete\",\"token\":\"%s\","
		         "\"payload\":{\"id\":%ld,\"version\":3}}",
		         rid, tok, id);
	else if (r == 8)
		snprintf(body, size,
		         "{\"request_id\":\"%s\",\"type\":\"patient.update\",\"token\":\"%s\","
		         "\"payload\":{\"id\":%ld,\"version\":2,\"apellido_materno\":\"Condori\"}}",
		         rid, tok, id);
	else
		snprintf(body, size,
		         "{\"request_id\":\"%s\",\"type\":\"patient.update\",\"token\":\"%s\","
		         "\"payload\":{\"id\":%ld,\"version\":1,\"nombre\":\"Ana Mar\u00eda\","
		         "\"sexo\":\"X\"}}",
		         rid, tok, id);
}

/* Creates n seed patients (patient b of tenant b % tenants, dni S<b>) and returns their
 * ids (caller frees), or NULL when not all were answered 201 within STALL_MS of the
 * last progress. */
static long *seed_patients(const opts *o, rd_kafka_t *p, rd_kafka_t *replies, const char *ctopic,
                           char **tok, long n)
{
	char prefix[160], key[200], body[4096];
	long *id = xcalloc((size_t)n, sizeof(*id)), got = 0;
	double t0 = now_ms(), progress = t0;

	snprintf(prefix, sizeof(prefix), "%s-%s-s", o->run, o->label);
	for (long b = 0; b < n; b++) {
		snprintf(key, sizeof(key), "%s%ld", prefix, b);
		snprintf(body, sizeof(body),
		         "{\"request_id\":\"%s\",\"type\":\"patient.create\",\"token\":\"%s\","
		         "\"payload\":{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\","
		         "\"dni\":\"S%ld\",\"fecha_nacimiento\":\"1990-04-12\"}}",
		         key, tok[b % o->tenants], b);
		send_cmd(p, ctopic, RD_KAFKA_PARTITION_UA, key, body);
	}
	rd_kafka_flush(p, 60000);
	size_t pl = strlen(prefix);
	while (got < n && now_ms() - progress < STALL_MS) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(replies, 100);
		if (m == NULL)
			continue;
		if (!m->err && m->key_len > pl && m->key_len < 64 &&
		    memcmp(m->key, prefix, pl) == 0) {
			char digits[64], *end;
			memcpy(digits, (const char *)m->key + pl, m->key_len - pl);
			digits[m->key_len - pl] = '\0';
			long b = strtol(digits, &end, 10);
			json_t *j = json_loadb(m->payload, m->len, 0, NULL);
			json_t *v = json_object_get(json_object_get(j, "data"), "id");
			if (*end == '\0' && b >= 0 && b < n && id[b] == 0 && json_is_integer(v)) {
				id[b] = (long)json_integer_value(v);
				got++;
				progress = now_ms();
			}
			json_decref(j);
		}
		rd_kafka_message_destroy(m);
	}
	printf("e2e_seed_s_%s %.1f\n", o->label, (now_ms() - t0) / 1e3);
	if (got < n) {
		fprintf(stderr, "e2e %s: %ld of %ld seed patients created\n", o->label, got, n);
		free(id);
		return NULL;
	}
	return id;
}

/* Creates the patient the gets read (its reply on --query-reply-to, read with qc): its
 * id, or 0 with a message. */
static long query_patient(const opts *o, rd_kafka_t *p, rd_kafka_t *qc, const char *ctopic,
                          const char *qtok)
{
	char rid[200], body[4096];
	snprintf(rid, sizeof(rid), "%s-%s-seed", o->run, o->label);
	snprintf(body, sizeof(body),
	         "{\"request_id\":\"%s\",\"type\":\"patient.create\",\"token\":\"%s\","
	         "\"reply_to\":\"%s\",\"payload\":{\"nombre\":\"Ana\",\"apellido_paterno\":"
	         "\"Quispe\",\"dni\":\"SEED\",\"fecha_nacimiento\":\"1990-04-12\"}}",
	         rid, qtok, o->query_reply_to);
	send_cmd(p, ctopic, RD_KAFKA_PARTITION_UA, rid, body);
	rd_kafka_flush(p, 10000);
	/* The body holds the id: wait for it here rather than by status. */
	long id = 0;
	double end = now_ms() + 60000;
	while (id == 0 && now_ms() < end) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(qc, 100);
		if (m == NULL)
			continue;
		if (!m->err && m->key_len == strlen(rid) && memcmp(m->key, rid, m->key_len) == 0) {
			json_t *j = json_loadb(m->payload, m->len, 0, NULL);
			json_t *v = json_object_get(json_object_get(j, "data"), "id");
			id = json_is_integer(v) ? (long)json_integer_value(v) : -1;
			json_decref(j);
		}
		rd_kafka_message_destroy(m);
	}
	if (id <= 0) {
		fprintf(stderr, "%s: the create of the patient the gets read failed\n", o->label);
		return 0;
	}
	return id;
}

static int cmd_e2e(const opts *o)
{
	const char *ctopic = env("TOPIC_CREATE"), *rtopic = env("TOPIC_REPLIES");
	char prefix[160], key[200], body[4096], owner[160];
	signer s = {.o = o, .alg = JWT_ALG_HS256};

	if (strcmp(o->alg, "RS256") == 0) {
		if (o->key_file == NULL) {
			fprintf(stderr, "e2e: --alg RS256 needs --key PRIVATE.pem\n");
			return 2;
		}
		s.alg = JWT_ALG_RS256;
		s.key = read_file(o->key_file, &s.key_len);
	} else if (strcmp(o->alg, "ES256") == 0 || strcmp(o->alg, "EdDSA") == 0) {
		FILE *f = o->key_file ? fopen(o->key_file, "r") : NULL;
		if (f != NULL) {
			s.pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
			fclose(f);
		}
		if (s.pkey == NULL) {
			fprintf(stderr, "e2e: --alg %s needs --key PRIVATE.pem\n", o->alg);
			return 2;
		}
	} else {
		const char *secret = env("JWT_SECRET");
		s.key = (const unsigned char *)secret;
		s.key_len = (int)strlen(secret);
	}

	/* Tokens first: signing is the client's cost, not the worker's. */
	long ntok = o->distinct ? o->n : o->tenants;
	char **tok = xcalloc((size_t)ntok, sizeof(*tok));
	int nth = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nth < 1)
		nth = 1;
	if (nth > 16)
		nth = 16;
	signer sg[16];
	pthread_t th[16];
	double t0 = now_ms();
	for (int t = 0; t < nth; t++) {
		sg[t] = s;
		sg[t].out = tok;
		sg[t].from = ntok * t / nth;
		sg[t].to = ntok * (t + 1) / nth;
		/* A key of its own per thread, as OpenSSL advises for concurrent use. */
		if (s.pkey != NULL && (sg[t].pkey = EVP_PKEY_dup(s.pkey)) == NULL) {
			fprintf(stderr, "e2e: out of memory\n");
			return 1;
		}
		pthread_create(&th[t], NULL, sign_range, &sg[t]);
	}
	int fail = 0;
	for (int t = 0; t < nth; t++) {
		pthread_join(th[t], NULL);
		fail |= sg[t].fail;
		EVP_PKEY_free(sg[t].pkey);
	}
	EVP_PKEY_free(s.pkey);
	if (fail) {
		fprintf(stderr, "e2e: cannot sign tokens (%s)\n", o->alg);
		return 1;
	}
	printf("e2e_tokens_%s %ld\n", o->label, ntok);
	printf("e2e_token_sign_s_%s %.1f\n", o->label, (now_ms() - t0) / 1e3);

	rd_kafka_t *p = client(RD_KAFKA_PRODUCER, NULL);
	if (o->members > 0)
		await_group(p, env_or("KAFKA_GROUP_ID", "patient-worker"), o->members);
	rd_kafka_t *replies = reader(rtopic, "replies");
	int nparts = partitions_of(p, ctopic);

	/* Warm-up: one create per partition, answered, before the clock starts. */
	owner_name(owner, sizeof(owner), o, 0);
	signer ws = s;
	ws.o = o;
	char *wtok = sign(&ws, owner, "warm-up");
	for (int i = 0; i < nparts; i++) {
		snprintf(key, sizeof(key), "%s-%s-w%d", o->run, o->label, i);
		snprintf(
		    body, sizeof(body),
		    "{\"request_id\":\"%s\",\"type\":\"patient.create\",\"token\":\"%s\","
		    "\"payload\":{\"nombre\":\"Warm\",\"apellido_paterno\":\"Up\",\"dni\":\"W%d\","
		    "\"fecha_nacimiento\":\"1990-01-01\"}}",
		    key, wtok, i);
		send_cmd(p, ctopic, i, key, body);
		rd_kafka_flush(p, 10000);
		int st = await_reply(replies, key, 90000);
		if (st != 201)
			fprintf(stderr, "e2e: warm-up create on partition %d: %s\n", i,
			        st ? "not a 201" : "no reply in 90 s");
	}
	free(wtok);

	/* --mix: the seed patients, created and their ids known before the clock starts. */
	long nseed = o->mix ? o->n / 10 : 0;
	long *seed = o->mix ? seed_patients(o, p, replies, ctopic, tok, nseed) : NULL;
	if (o->mix && seed == NULL)
		return 1;

	/* Queries: a patient to read back, then idle gets. */
	getter idle = {0}, busy = {0};
	atomic_int done = 0;
	char *qtok = NULL;
	if (o->gets > 0) {
		char qowner[160];
		snprintf(qowner, sizeof(qowner), "%s-%s-q@example.com", o->run, o->label);
		qtok = sign(&ws, qowner, NULL);
		rd_kafka_t *qc = reader(o->query_reply_to, "query");
		long id = query_patient(o, p, qc, ctopic, qtok);
		if (id <= 0)
			return 1;
		getter base = {.p = client_linger(RD_KAFKA_PRODUCER, NULL, "0"),
		               .c = qc,
		               .qtopic = env("TOPIC_QUERY"),
		               .reply_to = o->query_reply_to,
		               .tok = qtok,
		               .id = id};
		/* The query lane may still be joining: warm it until a get is answered. */
		char pre[200];
		snprintf(pre, sizeof(pre), "%s-%s-qw", o->run, o->label);
		getter warm = base;
		double wm[4];
		warm.prefix = pre;
		warm.ms = wm;
		warm.max = 4;
		run_gets(&warm);
		if (warm.ok == 0)
			fprintf(stderr, "e2e: no warm-up get answered 200\n");
		idle = base;
		snprintf(pre, sizeof(pre), "%s-%s-qi", o->run, o->label);
		idle.prefix = strdup(pre);
		idle.ms = xcalloc((size_t)o->gets, sizeof(double));
		idle.max = o->gets;
		run_gets(&idle);
		busy = base;
		snprintf(pre, sizeof(pre), "%s-%s-ql", o->run, o->label);
		busy.prefix = strdup(pre);
		busy.ms = xcalloc(MAX_SAMPLES, sizeof(double));
		busy.max = MAX_SAMPLES;
		busy.stop = &done;
	}

	/* The load. */
	snprintf(prefix, sizeof(prefix), "%s-%s-c", o->run, o->label);
	counter k = {.c = replies, .prefix = prefix, .n = o->n, .mix = o->mix, .done = &done};
	k.seen = xcalloc((size_t)o->n, 1);
	pthread_t kth, gth;
	pthread_create(&kth, NULL, count_replies, &k);
	double first = now_ms();
	if (o->notify > 0)
		kill(o->notify, SIGUSR1);
	if (o->gets > 0)
		pthread_create(&gth, NULL, run_gets, &busy);
	for (long i = 0; i < o->n; i++) {
		person pp;
		person_of(i, &pp);
		snprintf(key, sizeof(key), "%s%ld", prefix, i);
		if (o->mix && i % 10 >= 7) {
			long b = i / 10;
			char pkey[48];
			change_body(body, sizeof(body), key, tok[b % o->tenants], seed[b],
			            (int)(i % 10));
			snprintf(pkey, sizeof(pkey), "patient:%ld", seed[b]);
			send_cmd(p, ctopic, RD_KAFKA_PARTITION_UA, pkey, body);
			continue;
		}
		snprintf(body, sizeof(body),
		         "{\"request_id\":\"%s\",\"type\":\"patient.create\",\"token\":\"%s\","
		         "\"payload\":{\"nombre\":\"%s\",\"apellido_paterno\":\"%s\","
		         "\"apellido_materno\":\"%s\",\"dni\":\"%s\",\"fecha_nacimiento\":\"%s\","
		         "\"sexo\":\"%s\"}}",
		         key, tok[o->distinct ? i : i % o->tenants], pp.nombre, pp.paterno,
		         pp.materno, pp.dni, pp.fecha, pp.sexo);
		send_cmd(p, ctopic, RD_KAFKA_PARTITION_UA, key, body);
	}
	for (int i = 0; i < 12 && rd_kafka_flush(p, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR; i++)
		;
	double sent = now_ms();
	pthread_join(kth, NULL);
	if (o->notify > 0)
		kill(o->notify, SIGUSR2);
	if (o->gets > 0)
		pthread_join(gth, NULL);

	double elapsed = (k.last_ms > first ? k.last_ms - first : now_ms() - first) / 1e3;
	if (k.stalled)
		fprintf(stderr,
		        "e2e %s: replies stopped coming: no new reply for %d s; %ld of %ld "
		        "answered (%ld with 201)\n",
		        o->label, STALL_MS / 1000, k.ok + k.other, o->n, k.ok);
	if (o->mix) {
		printf("e2e_commands_%s %ld\n", o->label, o->n);
		printf("e2e_seed_patients_%s %ld\n", o->label, nseed);
		printf("e2e_replies_as_expected_%s %ld\n", o->label, k.ok);
	} else {
		printf("e2e_creates_%s %ld\n", o->label, o->n);
		printf("e2e_replies_201_%s %ld\n", o->label, k.ok);
	}
	printf("e2e_replies_other_%s %ld\n", o->label, k.other);
	printf("e2e_stalled_%s %s\n", o->label, k.stalled ? "yes" : "no");
	printf("e2e_producer_s_%s %.1f\n", o->label, (sent - first) / 1e3);
	printf("e2e_elapsed_s_%s %.1f\n", o->label, elapsed);
	printf("e2e_%s_per_s_%s %.0f\n", o->mix ? "commands" : "creates", o->label, k.ok / elapsed);
	if (o->gets > 0) {
		printf("query_idle_gets_%s %d\n", o->label, idle.n);
		printf("query_idle_ok_%s %d\n", o->label, idle.ok);
		printf("query_idle_p50_ms_%s %.2f\n", o->label, pct(idle.ms, idle.n, 0.50));
		printf("query_idle_p99_ms_%s %.2f\n", o->label, pct(idle.ms, idle.n, 0.99));
		printf("query_load_gets_%s %d\n", o->label, busy.n);
		printf("query_load_ok_%s %d\n", o->label, busy.ok);
		printf("query_load_p50_ms_%s %.2f\n", o->label, pct(busy.ms, busy.n, 0.50));
		printf("query_load_p99_ms_%s %.2f\n", o->label, pct(busy.ms, busy.n, 0.99));
		rd_kafka_destroy(idle.c);
		rd_kafka_destroy(idle.p);
		free(idle.ms);
		free(busy.ms);
		free((char *)idle.prefix);
		free((char *)busy.prefix);
	}
	fflush(stdout);
	for (long i = 0; i < ntok; i++)
		free(tok[i]);
	free(tok);
	free(qtok);
	free(k.seen);
	free(seed);
	rd_kafka_destroy(replies);
	rd_kafka_destroy(p);
	return 0;
}

/* --- gets: the query side of the flood mode ----------------------------------------- */

/* Set by the load's process (e2e --notify): the flood began, the flood is over. */
static volatile sig_atomic_t flood_began, flood_over;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		flood_began = 1;
	else
		flood_over = 1;
}

/* The query lane's and the create sessions' backends, sampled in pg_stat_activity every
 * SAMPLE_MS while the flood lasts (each sample is a query the server runs beside the
 * flood, so not more often): what each was doing (running, which wait, or idle in its
 * transaction, waiting for the worker). */
#define SAMPLE_MS    50
#define SAMPLE_KINDS 32

typedef struct tally {
	char what[SAMPLE_KINDS][80];
	long n[SAMPLE_KINDS];
	long samples;
} tally;

typedef struct sampler {
	const char *url;
	tally query, create;
	int failed;
} sampler;

static void tally_add(tally *t, const char *what)
{
	int i = 0;
	while (i < SAMPLE_KINDS && t->what[i][0] && strcmp(t->what[i], what) != 0)
		i++;
	if (i == SAMPLE_KINDS)
		i = SAMPLE_KINDS - 1; /* the rest share the last row */
	if (!t->what[i][0])
		snprintf(t->what[i], sizeof(t->what[i]), "%s", what);
	t->n[i]++;
}

static void *sample_db(void *arg)
{
	sampler *sm = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* the signals are the main thread's */
	PGconn *c = PQconnectdb(sm->url);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "gets: cannot sample pg_stat_activity: %s", PQerrorMessage(c));
		sm->failed = 1;
		PQfinish(c);
		return NULL;
	}
	const char *sql =
	    "SELECT application_name LIKE 'patient-worker query%', "
	    "replace(replace(CASE WHEN state = 'active' THEN 'active ' || "
	    "coalesce(wait_event_type || ':' || wait_event, 'running') ELSE state END, ' ', '_'), "
	    "':', '_') FROM pg_stat_activity WHERE application_name LIKE 'patient-worker %'";
	while (!flood_over) {
		double t = now_ms();
		if (flood_began) {
			PGresult *r = PQexec(c, sql);
			if (PQresultStatus(r) == PGRES_TUPLES_OK) {
				sm->query.samples++;
				sm->create.samples++;
				for (int i = 0; i < PQntuples(r); i++)
					tally_add(PQgetvalue(r, i, 0)[0] == 't' ? &sm->query
					                                        : &sm->create,
					          PQgetvalue(r, i, 1));
			}
			PQclear(r);
		}
		double left = SAMPLE_MS - (now_ms() - t);
		if (left > 0)
			nanosleep(&(struct timespec){.tv_nsec = (long)(left * 1e6)}, NULL);
	}
	PQfinish(c);
	return NULL;
}

/* Shares of the samples, most frequent first; backends is how many were seen at once on
 * average (the create lane has several sessions). */
static void print_tally(const char *who, tally *t)
{
	long total = 0;
	for (int i = 0; i < SAMPLE_KINDS && t->what[i][0]; i++)
		total += t->n[i];
	printf("db_samples_%s %ld\n", who, t->samples);
	printf("db_backends_%s %.1f\n", who, t->samples ? (double)total / t->samples : 0.0);
	for (int k = 0; k < SAMPLE_KINDS; k++) {
		int best = -1;
		for (int i = 0; i < SAMPLE_KINDS && t->what[i][0]; i++)
			if (t->n[i] > 0 && (best < 0 || t->n[i] > t->n[best]))
				best = i;
		if (best < 0)
			break;
		printf("db_%s_%s %.3f\n", who, t->what[best],
		       total ? (double)t->n[best] / total : 0);
		t->n[best] = 0;
	}
}

typedef struct paced {
	double *sent, *ms; /**< per get: when sent, its round trip (-1: no reply yet) */
	int *status;
	int n, max;
} paced;

static void paced_report(const char *phase, paced *g, int from, int to)
{
	int n = 0, ok = 0, lost = 0, over100 = 0, over250 = 0;
	double *v = xcalloc((size_t)(to - from) + 1, sizeof(double));
	for (int i = from; i < to; i++) {
		if (g->ms[i] < 0) {
			lost++;
			continue;
		}
		v[n++] = g->ms[i];
		ok += g->status[i] == 200;
		over100 += g->ms[i] > 100;
		over250 += g->ms[i] > 250;
	}
	printf("query_%s_gets %d\n", phase, to - from);
	printf("query_%s_ok %d\n", phase, ok);
	printf("query_%s_unanswered %d\n", phase, lost);
	printf("query_%s_p50_ms %.2f\n", phase, pct(v, n, 0.50));
	printf("query_%s_p90_ms %.2f\n", phase, pct(v, n, 0.90));
	printf("query_%s_p99_ms %.2f\n", phase, pct(v, n, 0.99));
	printf("query_%s_max_ms %.2f\n", phase, n ? v[n - 1] : 0.0);
	printf("query_%s_over_100ms_share %.4f\n", phase,
	       to > from ? (double)(over100 + lost) / (to - from) : 0.0);
	printf("query_%s_over_250ms %d\n", phase, over250 + lost);
	free(v);
}

/* Reads the replies that came, without waiting longer than wait_ms. */
static void paced_read(rd_kafka_t *c, const char *prefix, paced *g, int wait_ms)
{
	size_t pl = strlen(prefix);
	rd_kafka_message_t *m = rd_kafka_consumer_poll(c, wait_ms);
	while (m != NULL) {
		if (!m->err && m->key_len > pl && m->key_len < pl + 16 &&
		    memcmp(m->key, prefix, pl) == 0) {
			char digits[16];
			memcpy(digits, (const char *)m->key + pl, m->key_len - pl);
			digits[m->key_len - pl] = '\0';
			int i = atoi(digits);
			if (i >= 0 && i < g->n && g->ms[i] < 0) {
				g->ms[i] = now_ms() - g->sent[i];
				g->status[i] = reply_status(m);
			}
		}
		rd_kafka_message_destroy(m);
		m = rd_kafka_consumer_poll(c, 0);
	}
}

/* The query side of the flood: one patient.get every --every-ms from its own producer
 * (linger 0), reply topic and consumer, open loop (a slow reply does not delay the next
 * get, so a stall shows in every get it holds up). --gets of them idle, then --ready-file
 * is written and the gets go on until the load's process (e2e --notify) says the flood
 * is over; the gets sent between its two signals are the flood's. */
static int cmd_gets(const opts *o)
{
	const char *ctopic = env("TOPIC_CREATE"), *qtopic = env("TOPIC_QUERY");
	const char *secret = env("JWT_SECRET");
	signer s = {.o = o,
	            .alg = JWT_ALG_HS256,
	            .key = (const unsigned char *)secret,
	            .key_len = (int)strlen(secret)};
	char qowner[160], prefix[160], rid[200], body[2048];
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	snprintf(qowner, sizeof(qowner), "%s-%s-q@example.com", o->run, o->label);
	char *tok = sign(&s, qowner, NULL);
	rd_kafka_t *p = client_linger(RD_KAFKA_PRODUCER, NULL, "0");
	/* librdkafka's default fetch wait, as a client of the service would leave it. */
	rd_kafka_t *qc = reader_with(o->query_reply_to, "gets", NULL);
	long id = tok ? query_patient(o, p, qc, ctopic, tok) : 0;
	if (id <= 0)
		return 1;
	getter warm = {.p = p,
	               .c = qc,
	               .qtopic = qtopic,
	               .reply_to = o->query_reply_to,
	               .tok = tok,
	               .id = id,
	               .max = 4};
	double wm[4];
	snprintf(prefix, sizeof(prefix), "%s-%s-gw", o->run, o->label);
	warm.prefix = prefix;
	warm.ms = wm;
	run_gets(&warm);
	if (warm.ok == 0) {
		fprintf(stderr, "gets: no warm-up get answered 200\n");
		return 1;
	}

	paced g = {.max = MAX_SAMPLES};
	g.sent = xcalloc(MAX_SAMPLES, sizeof(double));
	g.ms = xcalloc(MAX_SAMPLES, sizeof(double));
	g.status = xcalloc(MAX_SAMPLES, sizeof(int));
	sampler sm = {.url = env("DATABASE_URL")};
	pthread_t sth;
	if (o->sample_db)
		pthread_create(&sth, NULL, sample_db, &sm);
	snprintf(prefix, sizeof(prefix), "%s-%s-g", o->run, o->label);
	int flood_from = -1, flood_to = -1, ready = 0;
	double next = now_ms();
	/* Bounded: a load that never says it is over ends the gets after an hour. */
	double give_up = now_ms() + 3600e3;
	while (flood_to < 0 && g.n < g.max && now_ms() < give_up) {
		if (g.n == o->gets && !ready) {
			FILE *f = fopen(o->ready_file, "w");
			if (f != NULL)
				fclose(f);
			ready = 1;
		}
		if (flood_began && flood_from < 0) {
			flood_from = g.n;
			char began[1024];
			snprintf(began, sizeof(began), "%s.flood", o->ready_file);
			FILE *f = fopen(began, "w");
			if (f != NULL)
				fclose(f);
		}
		if (flood_over)
			flood_to = g.n;
		double now = now_ms();
		if (now >= next && flood_to < 0) {
			snprintf(rid, sizeof(rid), "%s%d", prefix, g.n);
			snprintf(body, sizeof(body),
			         "{\"request_id\":\"%s\",\"type\":\"patient.get\",\"token\":\"%s\","
			         "\"reply_to\":\"%s\",\"payload\":{\"id\":%ld}}",
			         rid, tok, o->query_reply_to, id);
			g.ms[g.n] = -1;
			g.sent[g.n] = now;
			g.n++;
			send_cmd(p, qtopic, RD_KAFKA_PARTITION_UA, rid, body);
			next += o->every_ms;
			if (next < now)
				next = now; /* this process was held up: no burst to catch up */
		}
		rd_kafka_poll(p, 0);
		int wait = (int)(next - now_ms());
		paced_read(qc, prefix, &g, wait < 0 ? 0 : wait > 5 ? 5 : wait);
	}
	flood_over = 1;
	if (o->sample_db)
		pthread_join(sth, NULL);
	/* The last gets' replies, for at most 30 s. */
	double end = now_ms() + 30000;
	for (int left = 1; left && now_ms() < end;) {
		paced_read(qc, prefix, &g, 100);
		left = 0;
		for (int i = 0; i < g.n && !left; i++)
			left = g.ms[i] < 0;
	}
	if (flood_from < 0 || flood_to < 0) {
		fprintf(stderr, "gets: the load never %s\n", flood_from < 0 ? "began" : "ended");
		flood_from = flood_to = g.n;
	}
	printf("query_every_ms %d\n", o->every_ms);
	paced_report("idle", &g, 0, o->gets < g.n ? o->gets : g.n);
	paced_report("flood", &g, flood_from, flood_to);
	if (o->sample_db && !sm.failed) {
		print_tally("query", &sm.query);
		print_tally("create", &sm.create);
	}
	free(g.sent);
	free(g.ms);
	free(g.status);
	free(tok);
	rd_kafka_flush(p, 10000);
	rd_kafka_destroy(qc);
	rd_kafka_destroy(p);
	return 0;
}

/* --- proc, topic ------------------------------------------------------------------ */

static int cmd_proc(const char *pid)
{
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL || fgets(line, sizeof(line), f) == NULL) {
		fprintf(stderr, "proc: cannot read %s\n", path);
		return 1;
	}
	fclose(f);
	/* After the command name (which may hold spaces) come fields 3, 4, ...: utime is
	 * field 14, stime field 15. */
	char *p = strrchr(line, ')');
	unsigned long long utime = 0, stime = 0;
	int field = 3;
	for (char *t = p ? strtok(p + 1, " ") : NULL; t && field <= 15;
	     t = strtok(NULL, " "), field++) {
		if (field == 14)
			utime = strtoull(t, NULL, 10);
		else if (field == 15)
			stime = strtoull(t, NULL, 10);
	}
	long tck = sysconf(_SC_CLK_TCK);
	printf("cpu_s %.2f\n", (double)(utime + stime) / (double)tck);
	snprintf(path, sizeof(path), "/proc/%s/status", pid);
	f = fopen(path, "r");
	long hwm = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			hwm = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	printf("vmhwm_kib %ld\n", hwm);
	return 0;
}

static int cmd_topic(const char *name, int partitions, int logappend)
{
	char err[256];
	rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, NULL);
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, 1, err, sizeof(err));
	if (nt == NULL) {
		fprintf(stderr, "topic %s: %s\n", name, err);
		return 1;
	}
	if (logappend)
		rd_kafka_NewTopic_set_config(nt, "message.timestamp.type", "LogAppendTime");
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	int rc = 1;
	const rd_kafka_CreateTopics_result_t *res =
	    ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
	if (res) {
		size_t n;
		const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
		rc = n == 1 && rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0
		                                                                                : 1;
		if (rc)
			fprintf(stderr, "topic %s: %s\n", name,
			        n == 1 ? rd_kafka_topic_result_error_string(tr[0]) : "no result");
	} else {
		fprintf(stderr, "topic %s: no answer in 30 s\n", name);
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_destroy(rk);
	return rc;
}

static int usage(void)
{
	fprintf(
	    stderr,
	    "usage: pw_bulk raw --rows N --run ID [--tenants T] [--batch B]\n"
	    "       pw_bulk equivalent --items N --run ID [--tenants T] [--batch B]\n"
	    "       pw_bulk e2e --creates N --run ID --label L [--tenants T] [--distinct] [--mix]\n"
	    "                   [--alg HS256|RS256|ES256|EdDSA] [--key PEM] [--members M]\n"
	    "                   [--gets G --query-reply-to TOPIC] [--notify PID]\n"
	    "       pw_bulk gets --run ID --label L --query-reply-to TOPIC --gets G\n"
	    "                    --ready-file F [--every-ms 20] [--sample-db]\n"
	    "       pw_bulk proc PID\n"
	    "       pw_bulk topic NAME PARTITIONS [logappend]\n");
	return 2;
}

int main(int argc, char **argv)
{
	opts o = {.label = "run", .alg = "HS256", .tenants = 100, .batch = 500, .every_ms = 20};
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "proc") == 0 && argc == 3)
		return cmd_proc(argv[2]);
	if (strcmp(argv[1], "topic") == 0 && (argc == 4 || argc == 5))
		return cmd_topic(argv[2], atoi(argv[3]),
		                 argc == 5 && strcmp(argv[4], "logappend") == 0);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--distinct") == 0) {
			o.distinct = 1;
			continue;
		}
		if (strcmp(a, "--mix") == 0) {
			o.mix = 1;
			continue;
		}
		if (strcmp(a, "--sample-db") == 0) {
			o.sample_db = 1;
			continue;
		}
		if (v == NULL)
			return usage();
		i++;
		if (strcmp(a, "--rows") == 0 || strcmp(a, "--items") == 0 ||
		    strcmp(a, "--creates") == 0)
			o.n = atol(v);
		else if (strcmp(a, "--run") == 0)
			o.run = v;
		else if (strcmp(a, "--label") == 0)
			o.label = v;
		else if (strcmp(a, "--tenants") == 0)
			o.tenants = atoi(v);
		else if (strcmp(a, "--batch") == 0)
			o.batch = atoi(v);
		else if (strcmp(a, "--alg") == 0)
			o.alg = v;
		else if (strcmp(a, "--key") == 0)
			o.key_file = v;
		else if (strcmp(a, "--members") == 0)
			o.members = atoi(v);
		else if (strcmp(a, "--gets") == 0)
			o.gets = atoi(v);
		else if (strcmp(a, "--query-reply-to") == 0)
			o.query_reply_to = v;
		else if (strcmp(a, "--notify") == 0)
			o.notify = (pid_t)atol(v);
		else if (strcmp(a, "--ready-file") == 0)
			o.ready_file = v;
		else if (strcmp(a, "--every-ms") == 0)
			o.every_ms = atoi(v);
		else
			return usage();
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[1], "gets") == 0)
		return o.run && o.query_reply_to && o.ready_file && o.gets > 0 && o.every_ms > 0
		           ? cmd_gets(&o)
		           : usage();
	if (o.run == NULL || o.n <= 0 || o.tenants <= 0 || o.batch <= 0 ||
	    (o.gets > 0 && o.query_reply_to == NULL) || (o.mix && (o.distinct || o.n < 10)))
		return usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[1], "raw") == 0)
		return cmd_raw(&o);
	if (strcmp(argv[1], "equivalent") == 0)
		return cmd_equivalent(&o);
	if (strcmp(argv[1], "e2e") == 0)
		return cmd_e2e(&o);
	return usage();
}
