/* Integration-test helpers; see pw_testkit.h. */
#include "pw_testkit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jwt.h>
#include <libpq-fe.h>

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

const char *tk_env(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL || *v == '\0')
		ck_abort_msg("%s is not set: run the integration tests through scripts/test.sh "
		             "(or eval \"$(scripts/stack.sh env)\")",
		             name);
	return v;
}

void tk_unique(char *buf, size_t size, const char *prefix)
{
	static unsigned counter;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, size, "%s%ld-%u-%ld", prefix, (long)getpid(), ++counter,
	         (long)(ts.tv_nsec / 1000));
}

static rd_kafka_conf_t *base_conf(void)
{
	char err[256];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	if (rd_kafka_conf_set(c, "bootstrap.servers", tk_env("KAFKA_BROKERS"), err, sizeof(err)) !=
	    RD_KAFKA_CONF_OK)
		ck_abort_msg("bootstrap.servers: %s", err);
	return c;
}

static void conf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
	char err[256];
	if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		ck_abort_msg("%s: %s", k, err);
}

void tk_create_topic(const char *name, int partitions, int log_append)
{
	char err[256];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, base_conf(), err, sizeof(err));
	ck_assert_msg(rk != NULL, "admin client: %s", err);
	/* A copy on every node of the stack's cluster (scripts/stack.sh exports the count). */
	const char *nodes = getenv("PW_KAFKA_NODES");
	int rf = nodes != NULL && atoi(nodes) > 1 ? atoi(nodes) : 1;
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, rf, err, sizeof(err));
	ck_assert_msg(nt != NULL, "NewTopic %s: %s", name, err);
	if (log_append)
		rd_kafka_NewTopic_set_config(nt, "message.timestamp.type", "LogAppendTime");
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	ck_assert_msg(ev != NULL, "CreateTopics %s: no answer in 30 s", name);
	const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
	ck_assert_msg(res != NULL, "CreateTopics %s: %s", name, rd_kafka_event_error_string(ev));
	size_t n;
	const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
	ck_assert_msg(n == 1 && (rd_kafka_topic_result_error(tr[0]) == 0 ||
	                         rd_kafka_topic_result_error(tr[0]) ==
	                             RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS),
	              "CreateTopics %s: %s", name,
	              n ? rd_kafka_topic_result_error_string(tr[0]) : "no result");
	rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_destroy(rk);
}

void tk_world_init(tk_world *w, int partitions)
{
	memset(w, 0, sizeof(*w));
	tk_unique(w->id, sizeof(w->id), "t");
	snprintf(w->create, sizeof(w->create), "pwt.%s.create", w->id);
	snprintf(w->query, sizeof(w->query), "pwt.%s.query", w->id);
	snprintf(w->replies, sizeof(w->replies), "pwt.%s.replies", w->id);
	snprintf(w->dlq, sizeof(w->dlq), "pwt.%s.dlq", w->id);
	snprintf(w->group, sizeof(w->group), "pwt.%s.group", w->id);
	snprintf(w->log_path, sizeof(w->log_path), "%s/worker-%s.log",
	         getenv("PW_TEST_LOG_DIR") ? getenv("PW_TEST_LOG_DIR") : "/tmp", w->id);
	tk_create_topic(w->create, partitions, 1);
	tk_create_topic(w->query, partitions, 1);
	tk_create_topic(w->replies, partitions, 0);
	tk_create_topic(w->dlq, 1, 0);
}

static size_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

/* 1 when needle occurs in the file after byte from. */
static int log_has(const char *path, size_t from, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int found = 0;
	if (f == NULL)
		return 0;
	if (fseek(f, (long)from, SEEK_SET) == 0)
		while (!found && fgets(line, sizeof(line), f) != NULL)
			found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

void tk_dump_log(const tk_world *w)
{
	FILE *f = fopen(w->log_path, "r");
	char line[4096];
	if (f == NULL)
		return;
	fprintf(stderr, "---- worker log %s ----\n", w->log_path);
	while (fgets(line, sizeof(line), f) != NULL)
		fputs(line, stderr);
	fprintf(stderr, "---- end of worker log ----\n");
	fclose(f);
}

/* Forks the worker binary with the world's settings and args; stderr appends to the
 * world's log, stdout goes to out_path (or the log when NULL). */
static pid_t spawn(const tk_world *w, const char *const *args, const char *const *extra_env,
                   const char *out_path)
{
	const char *bin = tk_env("PW_WORKER_BIN");
	pid_t pid = fork();

	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(w->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(127);
		int ofd = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : fd;
		if (ofd < 0 || dup2(ofd, STDOUT_FILENO) < 0)
			_exit(127);
		setenv("TOPIC_CREATE", w->create, 1);
		setenv("TOPIC_QUERY", w->query, 1);
		setenv("TOPIC_REPLIES", w->replies, 1);
		setenv("TOPIC_DLQ", w->dlq, 1);
		setenv("KAFKA_GROUP_ID", w->group, 1);
		setenv("JWT_ALG", "HS256", 1);
		setenv("JWT_SECRET", TK_SECRET, 1);
		/* Several workers run at once here; a test that scrapes one sets its own. */
		setenv("HTTP_ADDR", "", 1);
		if (getenv("LOG_LEVEL") == NULL)
			setenv("LOG_LEVEL", "info", 1);
		for (size_t i = 0; extra_env != NULL && extra_env[i] != NULL; i++) {
			char kv[1024];
			snprintf(kv, sizeof(kv), "%s", extra_env[i]);
			char *eq = strchr(kv, '=');
			/* A bare name unsets a setting (JWT_SECRET, for a worker on a key set). */
			if (eq == NULL) {
				unsetenv(kv);
				continue;
			}
			*eq = '\0';
			setenv(kv, eq + 1, 1);
		}
		char *argv[16] = {(char *)bin};
		for (int i = 0; args[i] != NULL && i < 14; i++)
			argv[i + 1] = (char *)args[i];
		execv(bin, argv);
		_exit(127);
	}
	return pid;
}

void tk_worker_spawn(tk_world *w, const char *const *extra_env)
{
	const char *args[] = {"run", NULL};
	w->log_from = file_size(w->log_path);
	w->worker = spawn(w, args, extra_env, NULL);
}

int tk_run(const tk_world *w, const char *const *args, const char *out_path, int timeout_s)
{
	return tk_run_env(w, args, NULL, out_path, timeout_s);
}

int tk_run_env(const tk_world *w, const char *const *args, const char *const *extra_env,
               const char *out_path, int timeout_s)
{
	int status;
	pid_t pid = spawn(w, args, extra_env, out_path);
	for (int i = 0; i < timeout_s * 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		sleep_ms(100);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	tk_dump_log(w);
	ck_abort_msg("%s %s did not finish within %d s", tk_env("PW_WORKER_BIN"), args[0],
	             timeout_s);
	return -1;
}

int tk_log_wait(const tk_world *w, const char *needle, int timeout_s)
{
	for (int i = 0; i < timeout_s * 10; i++) {
		if (log_has(w->log_path, w->log_from, needle))
			return 1;
		sleep_ms(100);
	}
	return 0;
}

int tk_worker_wait_exit(tk_world *w, int timeout_s)
{
	int status;
	for (int i = 0; i < timeout_s * 10; i++) {
		if (waitpid(w->worker, &status, WNOHANG) == w->worker) {
			w->worker = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		sleep_ms(100);
	}
	return -1;
}

void tk_worker_start(tk_world *w, const char *const *extra_env)
{
	tk_worker_spawn(w, extra_env);
	/* Both lanes have partitions: what we send next is consumed by this worker (or by
	 * a peer already in the group). */
	for (int i = 0; i < 600; i++) {
		if (log_has(w->log_path, w->log_from, "create lane: partitions assigned") &&
		    log_has(w->log_path, w->log_from, "query lane: partitions assigned"))
			return;
		int status;
		if (waitpid(w->worker, &status, WNOHANG) == w->worker) {
			tk_dump_log(w);
			w->worker = 0;
			ck_abort_msg("worker exited during start-up (status %d)", status);
		}
		sleep_ms(100);
	}
	tk_dump_log(w);
	ck_abort_msg("worker did not get partitions within 60 s");
}

void tk_stack(const char *action)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "%s/scripts/stack.sh %s >&2", tk_env("PW_SOURCE_DIR"), action);
	int rc = system(cmd);
	ck_assert_msg(rc == 0, "stack.sh %s failed (%d)", action, rc);
}

int tk_worker_stop(tk_world *w, int sig, int timeout_s)
{
	int status;
	if (w->worker <= 0)
		return -1;
	kill(w->worker, sig);
	int rc = tk_worker_wait_exit(w, timeout_s);
	if (rc >= 0)
		return rc;
	kill(w->worker, SIGKILL);
	waitpid(w->worker, &status, 0);
	w->worker = 0;
	return -1;
}

char *tk_token(const char *sub, long exp_offset_s, const char *extra_json)
{
	jwt_t *jwt = NULL;
	char *s;
	ck_assert_int_eq(jwt_new(&jwt), 0);
	if (sub != NULL)
		ck_assert_int_eq(jwt_add_grant(jwt, "sub", sub), 0);
	ck_assert_int_eq(jwt_add_grant_int(jwt, "exp", (long)time(NULL) + exp_offset_s), 0);
	if (extra_json != NULL)
		ck_assert_int_eq(jwt_add_grants_json(jwt, extra_json), 0);
	ck_assert_int_eq(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)TK_SECRET,
	                             (int)strlen(TK_SECRET)),
	                 0);
	s = jwt_encode_str(jwt);
	ck_assert_ptr_nonnull(s);
	jwt_free(jwt);
	return s;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->_private != NULL) /* bulk sends pass no opaque and check the flush */
		*(int *)m->_private = m->err ? -1 : 1;
}

static rd_kafka_t *producer(bool idempotent)
{
	char err[256];
	rd_kafka_conf_t *c = base_conf();
	conf_set(c, "linger.ms", "1");
	if (idempotent) {
		/* No duplicate or reordered record from the producer's own retries (a broker
		 * restart): a test's count of records is the count it sent, and one patient's
		 * writes stay in the order sent. */
		conf_set(c, "enable.idempotence", "true");
	} else {
		/* One request in flight per broker: a retry cannot reorder. It may write a
		 * record twice, which the worker answers twice, the same. */
		conf_set(c, "acks", "all");
		conf_set(c, "max.in.flight.requests.per.connection", "1");
	}
	rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
	rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
	ck_assert_msg(p != NULL, "producer: %s", err);
	return p;
}

rd_kafka_t *tk_producer(void)
{
	return producer(true);
}

rd_kafka_t *tk_producer_failover(void)
{
	return producer(false);
}

void tk_send(rd_kafka_t *p, const char *topic, const char *key, const void *value, size_t len,
             const char *const *headers)
{
	tk_send_to(p, topic, RD_KAFKA_PARTITION_UA, key, value, len, headers);
}

void tk_send_to(rd_kafka_t *p, const char *topic, int32_t partition, const char *key,
                const void *value, size_t len, const char *const *headers)
{
	int done = 0;
	rd_kafka_headers_t *h = rd_kafka_headers_new(4);
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i += 2)
		rd_kafka_header_add(h, headers[i], -1, headers[i + 1], -1);
	rd_kafka_resp_err_t err = rd_kafka_producev(
	    p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
	    RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, len),
	    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
	    RD_KAFKA_V_OPAQUE(&done), RD_KAFKA_V_END);
	ck_assert_msg(err == 0, "produce to %s: %s", topic, rd_kafka_err2str(err));
	for (int i = 0; i < 200 && done == 0; i++)
		rd_kafka_poll(p, 50);
	ck_assert_msg(done == 1, "produce to %s not acknowledged within 10 s", topic);
}

char *tk_create_cmd(const char *request_id, const char *token, const char *dni,
                    const char *extra_payload_json)
{
	json_t *payload = json_pack("{s:s, s:s, s:s, s:s}", "nombre", "Ana", "apellido_paterno",
	                            "Quispe", "dni", dni, "fecha_nacimiento", "1990-04-12");
	if (extra_payload_json != NULL) {
		json_t *extra = json_loads(extra_payload_json, 0, NULL);
		ck_assert_ptr_nonnull(extra);
		json_object_update(payload, extra);
		json_decref(extra);
	}
	json_t *cmd = json_pack("{s:s, s:s, s:o}", "request_id", request_id, "type",
	                        "patient.create", "payload", payload);
	if (token != NULL)
		json_object_set_new(cmd, "token", json_string(token));
	char *s = json_dumps(cmd, JSON_COMPACT);
	json_decref(cmd);
	return s;
}

rd_kafka_t *tk_reader(const char *topic)
{
	char err[256];
	char group[96];
	rd_kafka_conf_t *c = base_conf();
	const struct rd_kafka_metadata *md = NULL;

	tk_unique(group, sizeof(group), "tk-reader-");
	conf_set(c, "group.id", group);
	conf_set(c, "enable.auto.commit", "false");
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
	ck_assert_msg(rk != NULL, "consumer: %s", err);
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 10000);
	ck_assert_msg(e == 0 && md->topic_cnt == 1 && md->topics[0].partition_cnt > 0,
	              "metadata of %s: %s", topic, rd_kafka_err2str(e));
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	ck_assert_int_eq(rd_kafka_assign(rk, l), 0);
	rd_kafka_topic_partition_list_destroy(l);
	return rk;
}

static char *header_dup(const rd_kafka_message_t *m, const char *name)
{
	rd_kafka_headers_t *h = NULL;
	const void *v;
	size_t n;
	if (rd_kafka_message_headers(m, &h) != 0 || rd_kafka_header_get_last(h, name, &v, &n) != 0)
		return NULL;
	return strndup(v, n);
}

size_t tk_read(rd_kafka_t *c, tk_records *out, size_t want, int timeout_s)
{
	time_t end = time(NULL) + timeout_s;
	while (out->n < want && time(NULL) < end) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
		if (m == NULL)
			continue;
		if (m->err == 0) {
			if (out->n == out->cap) {
				out->cap = out->cap ? out->cap * 2 : 64;
				out->v = realloc(out->v, out->cap * sizeof(*out->v));
				ck_assert_ptr_nonnull(out->v);
			}
			tk_record *r = &out->v[out->n++];
			memset(r, 0, sizeof(*r));
			r->key = m->key ? strndup(m->key, m->key_len) : NULL;
			r->value = malloc(m->len + 1);
			memcpy(r->value, m->payload ? m->payload : "", m->len);
			r->value[m->len] = '\0';
			r->value_len = m->len;
			r->hdr_request_id = header_dup(m, "request_id");
			r->hdr_status = header_dup(m, "status");
			r->hdr_error = header_dup(m, "error");
			r->hdr_source = header_dup(m, "source");
			rd_kafka_headers_t *h = NULL;
			const void *cv;
			size_t cn;
			if (rd_kafka_message_headers(m, &h) == 0 &&
			    rd_kafka_header_get_last(h, "kafka_correlationId", &cv, &cn) == 0 &&
			    cv != NULL) {
				r->hdr_correlation = malloc(cn ? cn : 1);
				ck_assert_ptr_nonnull(r->hdr_correlation);
				memcpy(r->hdr_correlation, cv, cn);
				r->hdr_correlation_len = cn;
			}
			r->offset = m->offset;
			r->partition = m->partition;
		}
		rd_kafka_message_destroy(m);
	}
	return out->n;
}

const tk_record *tk_find(const tk_records *recs, const char *key, size_t *count)
{
	const tk_record *first = NULL;
	size_t n = 0;
	for (size_t i = 0; i < recs->n; i++)
		if (recs->v[i].key != NULL && strcmp(recs->v[i].key, key) == 0) {
			if (first == NULL)
				first = &recs->v[i];
			n++;
		}
	if (count != NULL)
		*count = n;
	return first;
}

void tk_records_free(tk_records *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].key);
		free(r->v[i].value);
		free(r->v[i].hdr_request_id);
		free(r->v[i].hdr_status);
		free(r->v[i].hdr_error);
		free(r->v[i].hdr_source);
		free(r->v[i].hdr_correlation);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* The end of the statement that starts at p: its `;` or the string's end. */
static const char *statement_end(const char *p)
{
	bool quoted = false, dollar = false;

	for (; *p; p++) {
		if (dollar) {
			if (p[0] == '$' && p[1] == '$')
				dollar = false, p++;
		} else if (*p == '\'') {
			quoted = !quoted;
		} else if (!quoted && p[0] == '$' && p[1] == '$') {
			dollar = true, p++;
		} else if (!quoted && *p == ';') {
			return p;
		}
	}
	return p;
}

PGresult *tk_exec(PGconn *c, const char *sql)
{
	PGresult *last = NULL;

	for (const char *p = sql; *p;) {
		const char *e = statement_end(p);
		size_t n = (size_t)(e - p);
		if (strspn(p, " \t\n") < n) {
			char *one = strndup(p, n);
			ck_assert_ptr_nonnull(one);
			PQclear(last);
			last = PQexec(c, one);
			free(one);
			ExecStatusType s = PQresultStatus(last);
			if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
				break;
		}
		p = *e ? e + 1 : e;
	}
	return last ? last : PQexec(c, "");
}

void tk_assert_refused_at_start(const char *const *extra_env, const char *line)
{
	tk_world w;

	tk_world_init(&w, 1);
	tk_worker_spawn(&w, extra_env);
	int rc = tk_worker_wait_exit(&w, 30);
	if (rc != 2)
		tk_dump_log(&w);
	ck_assert_int_eq(rc, 2);
	ck_assert_msg(tk_log_wait(&w, line, 1), "no line \"%s\" in the worker's log", line);
}

bool tk_citus(void)
{
	const char *e = getenv("PW_PG_ENGINE");
	return e != NULL && strcmp(e, "citus") == 0;
}

char *tk_sql(const char *sql)
{
	PGconn *c = PQconnectdb(tk_env("DATABASE_URL"));
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
	PGresult *r = tk_exec(c, sql);
	ExecStatusType s = PQresultStatus(r);
	ck_assert_msg(s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK, "SQL failed: %s: %s", sql,
	              PQerrorMessage(c));
	char *out = NULL;
	if (s == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		out = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return out;
}

char *tk_json_get(const char *json, const char *path)
{
	json_t *root = json_loads(json, 0, NULL);
	json_t *v = root;
	char buf[256];
	char *save = NULL;
	char *out = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *part = strtok_r(buf, ".", &save); part && v; part = strtok_r(NULL, ".", &save))
		v = json_object_get(v, part);
	if (json_is_string(v))
		out = strdup(json_string_value(v));
	else if (v != NULL)
		out = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	json_decref(root);
	return out;
}

char *tk_owner(const char *tag)
{
	char buf[128];
	char *s = malloc(sizeof(buf) + 16);
	ck_assert_ptr_nonnull(s);
	tk_unique(buf, sizeof(buf), tag);
	snprintf(s, sizeof(buf) + 16, "%s@example.com", buf);
	return s;
}

void tk_await(const tk_world *w, const char *topic, const char *const *keys, size_t n,
              tk_records *out)
{
	rd_kafka_t *c = tk_reader(topic);
	time_t end = time(NULL) + 60;
	while (time(NULL) < end) {
		size_t found = 0;
		for (size_t i = 0; i < n; i++)
			found += tk_find(out, keys[i], NULL) != NULL;
		if (found == n)
			break;
		tk_read(c, out, out->n + 1, 1);
	}
	rd_kafka_destroy(c);
	for (size_t i = 0; i < n; i++)
		if (tk_find(out, keys[i], NULL) == NULL) {
			tk_dump_log(w);
			ck_abort_msg("no record keyed %s on %s within 60 s", keys[i], topic);
		}
}

tk_world tk_shared;
rd_kafka_t *tk_shared_producer;

static void shared_up(void)
{
	tk_world_init(&tk_shared, 4);
	tk_worker_start(&tk_shared, NULL);
}

static void shared_down(void)
{
	tk_worker_stop(&tk_shared, SIGTERM, 15);
}

static void shared_producer_up(void)
{
	tk_shared_producer = tk_producer();
}

static void shared_producer_down(void)
{
	if (tk_shared_producer)
		rd_kafka_destroy(tk_shared_producer);
	tk_shared_producer = NULL;
}

void tk_shared_fixtures(TCase *tc)
{
	tcase_add_unchecked_fixture(tc, shared_up, shared_down);
	tcase_add_checked_fixture(tc, shared_producer_up, shared_producer_down);
}

void tk_assert_json(const char *json, const char *path, const char *want)
{
	char *got = tk_json_get(json, path);
	ck_assert_msg(got != NULL && strcmp(got, want) == 0, "%s: want %s, got %s in %s", path,
	              want, got ? got : "(absent)", json);
	free(got);
}
