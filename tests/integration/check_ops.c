/* What operators and Spring clients rely on: /metrics parses as Prometheus text and its
 * counters move with the commands answered; /healthz and /readyz (503 while PostgreSQL
 * is down, 200 after); ReplyingKafkaTemplate's headers honoured byte for byte. */
#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <librdkafka/rdkafka.h>

#include "pw_check_main.h"
#include "pw_httpc.h"
#include "pw_testidp.h"
#include "pw_testkit.h"

/* GET path; returns the status, the body in *body (caller frees). Fails the test when
 * nothing answers. */
static int get(const char *addr, const char *path, char **body)
{
	char err[256];
	int status;
	pw_status st = pw_httpc_get(addr, path, 5000, 1 << 20, &status, body, err, sizeof(err));
	ck_assert_msg(st == PW_OK, "GET %s%s: %s", addr, path, err);
	return status;
}

/* Waits up to timeout_s for path to answer want; 1 when it did. */
static int await_status(const char *addr, const char *path, int want, int timeout_s)
{
	for (int i = 0; i < timeout_s * 10; i++) {
		char *body = NULL, err[256];
		int status = 0;
		if (pw_httpc_get(addr, path, 2000, 1 << 20, &status, &body, err, sizeof(err)) ==
		        PW_OK &&
		    status == want) {
			free(body);
			return 1;
		}
		free(body);
		nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	}
	return 0;
}

static int valid_name(const char *s, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
			return 0;
	return 1;
}

/* Checks the text exposition format line by line (names, label syntax, values, a TYPE
 * for every family) and returns the value of the sample whose name and labels are
 * exactly `series` (NAN when absent). */
static double parse_metrics(const char *text, const char *series)
{
	double found = NAN;
	char typed[64][96];
	int ntyped = 0, lineno = 0;
	const char *p = text;

	while (*p) {
		const char *end = strchr(p, '\n');
		ck_assert_msg(end != NULL, "metrics: last line not terminated");
		size_t n = (size_t)(end - p);
		char line[1024];
		ck_assert_msg(n < sizeof(line), "metrics: line %d too long", lineno);
		memcpy(line, p, n);
		line[n] = '\0';
		p = end + 1;
		lineno++;
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char name[96], type[32];
			ck_assert_msg(sscanf(line + 7, "%95s %31s", name, type) == 2,
			              "metrics line %d: bad TYPE", lineno);
			ck_assert_msg(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
			                  strcmp(type, "histogram") == 0,
			              "metrics line %d: type %s", lineno, type);
			ck_assert_int_lt(ntyped, 64);
			snprintf(typed[ntyped++], sizeof(typed[0]), "%s", name);
			continue;
		}
		if (line[0] == '#')
			continue;
		ck_assert_msg(n > 0, "metrics line %d: empty", lineno);
		size_t name_len = strcspn(line, "{ ");
		ck_assert_msg(valid_name(line, name_len), "metrics line %d: bad name: %s", lineno,
		              line);
		const char *q = line + name_len;
		if (*q == '{') {
			/* label="value"{,label="value"} */
			q++;
			while (*q != '}') {
				size_t ln = strcspn(q, "=");
				ck_assert_msg(valid_name(q, ln) && q[ln] == '=' && q[ln + 1] == '"',
				              "metrics line %d: bad label: %s", lineno, line);
				q += ln + 2;
				while (*q && *q != '"')
					q += *q == '\\' ? 2 : 1;
				ck_assert_msg(*q == '"', "metrics line %d: open label value",
				              lineno);
				q++;
				if (*q == ',')
					q++;
				else
					ck_assert_msg(*q == '}', "metrics line %d: bad labels",
					              lineno);
			}
			q++;
		}
		ck_assert_msg(*q == ' ', "metrics line %d: no value: %s", lineno, line);
		char *num_end;
		double v = strtod(q + 1, &num_end);
		ck_assert_msg(num_end != q + 1 && *num_end == '\0',
		              "metrics line %d: bad value: %s", lineno, line);
		/* Every sample belongs to a declared family (histograms add suffixes). */
		int declared = 0;
		for (int i = 0; i < ntyped; i++) {
			size_t tl = strlen(typed[i]);
			if (strncmp(line, typed[i], tl) == 0 &&
			    (tl == name_len || strncmp(line + tl, "_bucket", 7) == 0 ||
			     strncmp(line + tl, "_sum", 4) == 0 ||
			     strncmp(line + tl, "_count", 6) == 0))
				declared = 1;
		}
		ck_assert_msg(declared, "metrics line %d: no TYPE before %s", lineno, line);
		size_t sl = strlen(series);
		if (strncmp(line, series, sl) == 0 && line[sl] == ' ')
			found = v;
	}
	return found;
}

static double scrape(const char *addr, const char *series)
{
	char *body = NULL;
	ck_assert_int_eq(get(addr, "/metrics", &body), 200);
	double v = parse_metrics(body, series);
	free(body);
	return v;
}

/* Waits up to 10 s for series to reach at least want (counters move when the reply is
 * acknowledged, which can be just after the client sees it). */
static double scrape_until(const char *addr, const char *series, double want)
{
	double v = NAN;
	for (int i = 0; i < 100; i++) {
		v = scrape(addr, series);
		if (v >= want)
			break;
		nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	}
	return v;
}

/* Produces value to one partition of topic and waits for the acknowledgement. */
static void send_to(rd_kafka_t *p, const char *topic, int32_t partition, const char *value)
{
	ck_assert_int_eq(
	    rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
	                      RD_KAFKA_V_VALUE((void *)value, strlen(value)),
	                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
	    0);
	ck_assert_msg(rd_kafka_flush(p, 10000) == 0, "produce to %s/%d not acknowledged", topic,
	              (int)partition);
}

/* The summed consumer lag of topic's two partitions, once both are reported and the sum
 * is want (librdkafka's statistics come every 5 s), or what it was after 20 s. */
static double await_lag(const char *addr, const char *topic, double want)
{
	double sum = NAN;
	for (int i = 0; i < 200; i++) {
		char s0[256], s1[256];
		snprintf(s0, sizeof(s0),
		         "patient_worker_consumer_lag{topic=\"%s\",partition=\"0\"}", topic);
		snprintf(s1, sizeof(s1),
		         "patient_worker_consumer_lag{topic=\"%s\",partition=\"1\"}", topic);
		sum = scrape(addr, s0) + scrape(addr, s1); /* NAN while one is missing */
		if (sum == want)
			break;
		nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	}
	return sum;
}

START_TEST(metrics_health_and_readiness)
{
	tk_world w;
	char addr[64], setting[96];
	char *o = tk_owner("ops");
	char *tok = tk_token(o, 3600, NULL);
	rd_kafka_t *p = tk_producer();
	tk_records recs = {0};
	char ids[6][64];
	char *body = NULL;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", tk_free_port());
	snprintf(setting, sizeof(setting), "HTTP_ADDR=%s", addr);
	const char *env[] = {setting, NULL};
	tk_world_init(&w, 2);
	tk_worker_start(&w, env);

	ck_assert_int_eq(get(addr, "/healthz", &body), 200);
	free(body);
	ck_assert_msg(await_status(addr, "/readyz", 200, 30), "/readyz not 200 within 30 s");
	ck_assert_int_eq(get(addr, "/nothing-here", &body), 404);
	free(body);

	const char *created =
	    "patient_worker_commands_total{type=\"patient.create\",status=\"201\"}";
	const char *invalid =
	    "patient_worker_commands_total{type=\"patient.create\",status=\"400\"}";
	const char *dead = "patient_worker_dead_letters_total{reason=\"malformed_json\"}";
	const char *count = "patient_worker_command_duration_seconds_count{lane=\"create\"}";
	ck_assert_double_eq(scrape(addr, created), 0);
	ck_assert_double_eq(scrape(addr, dead), 0);

	/* 4 creates, 1 invalid, 1 dead letter. The creates go to both partitions in turn:
	 * a partition's lag is known once something there is committed. */
	for (int i = 0; i < 6; i++)
		tk_unique(ids[i], sizeof(ids[i]), "ops-");
	for (int i = 0; i < 4; i++) {
		char dni[16];
		snprintf(dni, sizeof(dni), "OPS%d", i);
		char *cmd = tk_create_cmd(ids[i], tok, dni, NULL);
		send_to(p, w.create, i % 2, cmd);
		free(cmd);
	}
	char *bad = tk_create_cmd(ids[4], tok, "OPS9", "{\"sexo\": \"Q\"}");
	tk_send(p, w.create, NULL, bad, strlen(bad), NULL);
	free(bad);
	tk_send(p, w.create, NULL, "{not json", 9, NULL);
	const char *keys[] = {ids[0], ids[1], ids[2], ids[3], ids[4]};
	tk_await(&w, w.replies, keys, 5, &recs);

	/* No kafka_correlationId in, none out. */
	ck_assert_ptr_null(tk_find(&recs, ids[0], NULL)->hdr_correlation);
	ck_assert_double_eq(scrape_until(addr, created, 4), 4);
	ck_assert_double_eq(scrape_until(addr, invalid, 1), 1);
	ck_assert_double_eq(scrape_until(addr, dead, 1), 1);
	ck_assert_double_ge(scrape_until(addr, count, 5), 5);
	ck_assert_double_ge(scrape(addr, "patient_worker_db_calls_total{lane=\"create\"}"), 1);
	/* Every answered create passed each step once; the dead letter is not among them. */
	ck_assert_double_eq(scrape(addr, "patient_worker_step_duration_seconds_count{lane="
	                                 "\"create\",step=\"database\"}"),
	                    5);
	ck_assert_double_eq(scrape(addr, "patient_worker_step_duration_seconds_count{lane="
	                                 "\"create\",step=\"delivery\"}"),
	                    5);
	ck_assert_double_eq(scrape(addr, "patient_worker_ready"), 1);
	ck_assert_double_eq(scrape(addr, "patient_worker_assigned_partitions{lane=\"create\"}"), 2);

	/* Every record so far is committed: no lag on either partition. */
	ck_assert_double_eq(await_lag(addr, w.create, 0), 0);

	/* PostgreSQL down: not ready (the process still healthy), and commands sent now
	 * wait uncommitted, which the lag shows; back: ready, and the lag drains. */
	tk_stack("pg-stop");
	int down = await_status(addr, "/readyz", 503, 20);
	ck_assert_int_eq(get(addr, "/healthz", &body), 200);
	free(body);
	char late[3][64];
	for (int i = 0; i < 3; i++) {
		char dni[16];
		tk_unique(late[i], sizeof(late[i]), "ops-late-");
		snprintf(dni, sizeof(dni), "LATE%d", i);
		char *cmd = tk_create_cmd(late[i], tok, dni, NULL);
		send_to(p, w.create, i % 2, cmd);
		free(cmd);
	}
	double lag_down = await_lag(addr, w.create, 3);
	tk_stack("pg-start");
	ck_assert_msg(down, "/readyz not 503 within 20 s of stopping PostgreSQL");
	ck_assert_double_eq(lag_down, 3);
	ck_assert_msg(await_status(addr, "/readyz", 200, 60),
	              "/readyz not 200 within 60 s of starting PostgreSQL");
	ck_assert_double_eq(await_lag(addr, w.create, 0), 0);
	ck_assert_double_ge(scrape(addr, "patient_worker_db_outages_total{lane=\"create\"}"), 1);
	ck_assert_double_ge(scrape(addr, "patient_worker_db_reconnects_total{lane=\"create\"}"), 1);
	ck_assert_double_eq(scrape_until(addr, created, 7), 7);

	/* The container probe: exit 0 when ready, 1 when nothing answers. */
	const char *probe[] = {"healthcheck", "--http-addr", addr, NULL};
	ck_assert_int_eq(tk_run(&w, probe, "/dev/null", 10), 0);
	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 10), 0);
	ck_assert_int_eq(tk_run(&w, probe, "/dev/null", 10), 1);
	rd_kafka_destroy(p);
	tk_records_free(&recs);
	free(tok);
	free(o);
}
END_TEST

/* Produces value to topic keyed by key, with (name, bytes, length) headers. */
static void send_with(rd_kafka_t *p, const char *topic, const char *key, const char *value,
                      const char *const *names, const void *const *vals, const size_t *lens,
                      size_t nh)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(4);
	for (size_t i = 0; i < nh; i++)
		ck_assert_int_eq(rd_kafka_header_add(h, names[i], -1, vals[i], (ssize_t)lens[i]),
		                 0);
	ck_assert_int_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic),
	                                   RD_KAFKA_V_KEY(key, strlen(key)),
	                                   RD_KAFKA_V_VALUE((void *)value, strlen(value)),
	                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                                   RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
	                 0);
	ck_assert_msg(rd_kafka_flush(p, 10000) == 0, "produce to %s not acknowledged", topic);
}

static char *query_cmd(const char *rid, const char *tok, const char *reply_to)
{
	char *s = NULL;
	json_t *cmd = json_pack("{s:s, s:s, s:s, s:{s:i}}", "request_id", rid, "type",
	                        "patient.get", "token", tok, "payload", "id", 1);
	if (reply_to != NULL)
		json_object_set_new(cmd, "reply_to", json_string(reply_to));
	s = json_dumps(cmd, JSON_COMPACT);
	json_decref(cmd);
	ck_assert_ptr_nonnull(s);
	return s;
}

/* Spring Kafka's ReplyingKafkaTemplate sends kafka_replyTopic, kafka_replyPartition (a
 * 4-byte big-endian int) and kafka_correlationId, and matches the reply by the latter. */
START_TEST(spring_reply_headers)
{
	tk_world w;
	char spring[128], ids[7][64];
	char *o = tk_owner("spring");
	char *tok = tk_token(o, 3600, NULL);
	rd_kafka_t *p = tk_producer();
	/* Zero and high bytes: copied as bytes, never as a C string. */
	const unsigned char corr[16] = {0x00, 0xff, 0x10, 0x80, 0x00, 0x7f, 1,    2,
	                                3,    4,    5,    6,    7,    8,    0x00, 0xfe};
	const unsigned char part2[4] = {0, 0, 0, 2}, part7[4] = {0, 0, 0, 7}, short3[3] = {0, 0, 2};
	tk_records on_spring = {0}, on_replies = {0}, dead = {0};

	tk_world_init(&w, 2);
	snprintf(spring, sizeof(spring), "%s.spring", w.replies);
	tk_create_topic(spring, 3, 0);
	tk_worker_start(&w, NULL);
	for (int i = 0; i < 7; i++)
		tk_unique(ids[i], sizeof(ids[i]), "spr-");

	const char *all[] = {"kafka_replyTopic", "kafka_replyPartition", "kafka_correlationId"};
	/* 0: a create with no reply_to in the body: the headers decide. */
	char *c0 = tk_create_cmd(ids[0], tok, "SPR0", NULL);
	send_with(p, w.create, ids[0], c0, all, (const void *const[]){spring, part2, corr},
	          (const size_t[]){strlen(spring), 4, sizeof(corr)}, 3);
	/* 1: a query with only a correlation id: the default reply topic, id copied. */
	char *c1 = query_cmd(ids[1], tok, NULL);
	send_with(p, w.query, ids[1], c1, all + 2, (const void *const[]){corr},
	          (const size_t[]){sizeof(corr)}, 1);
	/* 2: the body's reply_to wins over the header. */
	char *c2 = query_cmd(ids[2], tok, w.replies);
	send_with(p, w.query, ids[2], c2, all, (const void *const[]){spring, part2, corr},
	          (const size_t[]){strlen(spring), 4, sizeof(corr)}, 3);
	/* 3: a header topic outside the prefix: dead letter, like a bad reply_to. */
	char *c3 = query_cmd(ids[3], tok, NULL);
	send_with(p, w.query, ids[3], c3, all, (const void *const[]){"elsewhere", part2, corr},
	          (const size_t[]){9, 4, sizeof(corr)}, 3);
	/* 4: a partition that is not 4 bytes: dead letter. */
	char *c4 = query_cmd(ids[4], tok, NULL);
	send_with(p, w.query, ids[4], c4, all, (const void *const[]){spring, short3, corr},
	          (const size_t[]){strlen(spring), 3, sizeof(corr)}, 3);
	/* 5: a partition the topic does not have: reply_undeliverable. */
	char *c5 = query_cmd(ids[5], tok, NULL);
	send_with(p, w.query, ids[5], c5, all, (const void *const[]){spring, part7, corr},
	          (const size_t[]){strlen(spring), 4, sizeof(corr)}, 3);

	const char *on_default[] = {ids[1], ids[2]};
	tk_await(&w, w.replies, on_default, 2, &on_replies);
	const char *on_spring_keys[] = {ids[0]};
	tk_await(&w, spring, on_spring_keys, 1, &on_spring);
	const char *dead_keys[] = {ids[3], ids[4], ids[5]};
	tk_await(&w, w.dlq, dead_keys, 3, &dead);

	const tk_record *r0 = tk_find(&on_spring, ids[0], NULL);
	ck_assert_int_eq(r0->partition, 2);
	tk_assert_json(r0->value, "status", "201");
	ck_assert_uint_eq(r0->hdr_correlation_len, sizeof(corr));
	ck_assert_int_eq(memcmp(r0->hdr_correlation, corr, sizeof(corr)), 0);

	const tk_record *r1 = tk_find(&on_replies, ids[1], NULL);
	tk_assert_json(r1->value, "status", "404");
	ck_assert_uint_eq(r1->hdr_correlation_len, sizeof(corr));
	ck_assert_int_eq(memcmp(r1->hdr_correlation, corr, sizeof(corr)), 0);
	const tk_record *r2 = tk_find(&on_replies, ids[2], NULL);
	ck_assert_ptr_nonnull(r2->hdr_correlation);
	ck_assert_uint_eq(on_spring.n, 1); /* and nothing else went to the header's topic */

	/* 6: an update of the patient case 0 made, through the same headers: answered on the
	 * topic and partition they name, its correlation id copied, like the create. */
	char *pid = tk_json_get(r0->value, "data.id"), upd[512];
	ck_assert_ptr_nonnull(pid);
	snprintf(upd, sizeof(upd),
	         "{\"request_id\":\"%s\",\"type\":\"patient.update\",\"token\":\"%s\","
	         "\"payload\":{\"id\":%s,\"version\":1,\"nombre\":\"Spring\"}}",
	         ids[6], tok, pid);
	free(pid);
	send_with(p, w.create, ids[6], upd, all, (const void *const[]){spring, part2, corr},
	          (const size_t[]){strlen(spring), 4, sizeof(corr)}, 3);
	tk_records after = {0};
	const char *upd_keys[] = {ids[6]};
	tk_await(&w, spring, upd_keys, 1, &after);
	const tk_record *r6 = tk_find(&after, ids[6], NULL);
	ck_assert_int_eq(r6->partition, 2);
	tk_assert_json(r6->value, "status", "200");
	tk_assert_json(r6->value, "data.nombre", "Spring");
	tk_assert_json(r6->value, "data.version", "2");
	ck_assert_uint_eq(r6->hdr_correlation_len, sizeof(corr));
	ck_assert_int_eq(memcmp(r6->hdr_correlation, corr, sizeof(corr)), 0);
	tk_records_free(&after);

	ck_assert_str_eq(tk_find(&dead, ids[3], NULL)->hdr_error, "reply_to_refused");
	ck_assert_str_eq(tk_find(&dead, ids[4], NULL)->hdr_error, "reply_to_refused");
	ck_assert_str_eq(tk_find(&dead, ids[5], NULL)->hdr_error, "reply_undeliverable");

	ck_assert_int_eq(tk_worker_stop(&w, SIGTERM, 10), 0);
	char *plain[] = {c0, c1, c2, c3, c4, c5};
	for (int i = 0; i < 6; i++)
		free(plain[i]);
	tk_records_free(&on_spring);
	tk_records_free(&on_replies);
	tk_records_free(&dead);
	rd_kafka_destroy(p);
	free(tok);
	free(o);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ops");
	TCase *tc = tcase_create("http");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, metrics_health_and_readiness);
	suite_add_tcase(s, tc);
	TCase *sp = tcase_create("spring");
	tcase_set_timeout(sp, 120);
	tcase_add_test(sp, spring_reply_headers);
	suite_add_tcase(s, sp);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
