/* Helpers for integration tests against the local stack: unique names, topics, tokens,
 * a worker process, commands in and replies out. Every wait is bounded. */
#ifndef PW_TESTKIT_H
#define PW_TESTKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <check.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#define TK_SECRET "integration-test-secret-0123456789abcdef"

/* One test's private world: its topics, group and owners never clash with another's. */
typedef struct tk_world {
	char id[64];
	char create[96], query[96], replies[96], dlq[96], group[96];
	char log_path[256];
	size_t log_from; /**< size of the log when the current worker started */
	pid_t worker;
} tk_world;

/* The environment variable or an immediate test failure naming it. */
const char *tk_env(const char *name);

/* Unique suffix: pid, counter and time. */
void tk_unique(char *buf, size_t size, const char *prefix);

/* Creates the world's four topics (commands with LogAppendTime) and fills names. */
void tk_world_init(tk_world *w, int partitions);

/* Creates one topic; log_append sets message.timestamp.type=LogAppendTime. */
void tk_create_topic(const char *name, int partitions, int log_append);

/* Starts patient-worker run for the world, with extra "NAME=value" settings (NULL
 * terminated; a bare "NAME" unsets one). Its stderr goes to w->log_path. Waits until it
 * logs "ready". */
void tk_worker_start(tk_world *w, const char *const *extra_env);

/* Starts the worker without waiting for anything. */
void tk_worker_spawn(tk_world *w, const char *const *extra_env);

/* Runs the worker binary with args (e.g. "replay", "--from-beginning", NULL) and the
 * world's settings to completion (failing the test after timeout_s); stdout goes to
 * out_path. Returns the exit status. */
int tk_run(const tk_world *w, const char *const *args, const char *out_path, int timeout_s);

/* tk_run with extra settings, as tk_worker_start takes them. */
int tk_run_env(const tk_world *w, const char *const *args, const char *const *extra_env,
               const char *out_path, int timeout_s);

/* Waits up to timeout_s for the current worker's log to hold needle; 1 when it does. */
int tk_log_wait(const tk_world *w, const char *needle, int timeout_s);

/* Waits up to timeout_s for the worker to exit; its status, or -1 (still running). */
int tk_worker_wait_exit(tk_world *w, int timeout_s);

/* Starts a worker with extra_env and asserts that it refuses to start: exit 2 within
 * 30 s, with a log line containing line (a configuration error names its setting). */
void tk_assert_refused_at_start(const char *const *extra_env, const char *line);

/* Runs scripts/stack.sh with action (pg-stop, pg-start, ...); fails the test if it fails. */
void tk_stack(const char *action);

/* Sends sig and waits up to timeout_s for exit; returns the exit status, or -1 and
 * SIGKILLs it when it did not exit in time. */
int tk_worker_stop(tk_world *w, int sig, int timeout_s);

/* Prints the worker's log (for a failing test). */
void tk_dump_log(const tk_world *w);

/* An HS256 token for sub with TK_SECRET, expiring exp_offset_s from now; extra_json
 * (may be NULL) adds claims. Caller frees. */
char *tk_token(const char *sub, long exp_offset_s, const char *extra_json);

/* A producer to the stack. */
rd_kafka_t *tk_producer(void);

/* A producer that rides through a broker's failover: not idempotent, since librdkafka
 * 2.0.2's idempotent producer can fail for good on a leader change (fixed in 2.3.0), with
 * acks=all and one request in flight (no reordering; a retry may send a record twice). */
rd_kafka_t *tk_producer_failover(void);

/* Produces one record and waits for its acknowledgement (10 s). headers may be NULL:
 * otherwise pairs of name, value, NULL-terminated. */
void tk_send(rd_kafka_t *p, const char *topic, const char *key, const void *value, size_t len,
             const char *const *headers);

/* The same to one partition (RD_KAFKA_PARTITION_UA: by the key, as tk_send). */
void tk_send_to(rd_kafka_t *p, const char *topic, int32_t partition, const char *key,
                const void *value, size_t len, const char *const *headers);

/* A create command for request_id with the given dni, signed for sub. Caller frees. */
char *tk_create_cmd(const char *request_id, const char *token, const char *dni,
                    const char *extra_payload_json);

/* A consumer that reads topic from the beginning (no group). */
rd_kafka_t *tk_reader(const char *topic);

/* One record read back. */
typedef struct tk_record {
	char *key;
	char *value;
	size_t value_len;
	char *hdr_request_id, *hdr_status, *hdr_error, *hdr_source;
	void *hdr_correlation; /**< kafka_correlationId, raw bytes; NULL when absent */
	size_t hdr_correlation_len;
	int64_t offset;
	int32_t partition;
} tk_record;

typedef struct tk_records {
	tk_record *v;
	size_t n, cap;
} tk_records;

/* Reads until at least want records were read or timeout_s passed; returns the count
 * read so far (the caller asserts). */
size_t tk_read(rd_kafka_t *c, tk_records *out, size_t want, int timeout_s);

/* The replies for request_id among recs (NULL when none); *count gets how many. */
const tk_record *tk_find(const tk_records *recs, const char *key, size_t *count);

void tk_records_free(tk_records *r);

/* One worker shared by the cases of a TCase, and a producer per case. */
extern tk_world tk_shared;
extern rd_kafka_t *tk_shared_producer;

/* Adds to tc the fixtures that start tk_shared's worker once, in the runner's process
 * (it outlives every case), and make tk_shared_producer in each case's own process
 * (librdkafka's threads do not survive a fork). */
void tk_shared_fixtures(TCase *tc);

/* Fails the test unless the JSON value at path (tk_json_get) is want. */
void tk_assert_json(const char *json, const char *path, const char *want);

/* A unique owner email with tag in it. Caller frees. */
char *tk_owner(const char *tag);

/* Reads topic (from the beginning) into out until every key has a record, for up to
 * 60 s; fails the test, dumping w's worker log, when one is missing. */
void tk_await(const tk_world *w, const char *topic, const char *const *keys, size_t n,
              tk_records *out);

/* Runs SQL as the stack's admin user and returns the first column of the first row
 * of the last statement's result (caller frees), or NULL when no row. Fails the test on
 * error. Several statements are sent one by one (tk_exec). */
char *tk_sql(const char *sql);

/* Sends the statements of sql (separated by `;` outside quotes and $$ bodies) one
 * PQexec each, stopping at the first that fails; returns the last result (caller
 * PQclears). One at a time because Citus sends a SET LOCAL on to its workers as the whole
 * query string it came in, statements after it included. */
PGresult *tk_exec(PGconn *c, const char *sql);

/* True when the stack's database is a Citus cluster (PW_PG_ENGINE=citus). */
bool tk_citus(void);

/* The value at a dotted path ("data.id", "error.code") of a JSON text; a new string
 * (caller frees) of the scalar's text, or NULL. */
char *tk_json_get(const char *json, const char *path);

#endif
