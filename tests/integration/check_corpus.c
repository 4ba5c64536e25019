/* The hostile-input corpus (tests/corpus): one worker takes every bad record there and
 * must give each exactly the outcome tests/corpus/EXPECTED names for it (a dead letter
 * with that error and the value unchanged, or a reply with that status and code, never
 * both), then still answer a valid create, and still be running. */
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>
#include <jwt.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pw_check_main.h"
#include "pw_testkit.h"

#define OTHER_SECRET "not-the-integration-secret-fedcba9876543210"
/* Every wait is bounded: outcomes, then the group's commits, then reading to the end. */
#define OUTCOME_WAIT_S 40
#define COMMIT_WAIT_S  30
#define DRAIN_WAIT_S   20

typedef struct corpus_rec {
	char file[160];
	int dlq;        /**< 1: a dead letter is expected, 0: a reply */
	char error[64]; /**< dlq: the error header expected */
	int status;     /**< reply: the status expected */
	char code[64];  /**< reply: error.code expected, "-" for none */
	int query;      /**< sent to the query topic (else the create topic) */
	char *value;    /**< the record as sent (placeholders replaced) */
	size_t len;
	char rid[160]; /**< the request id the file's @RID@ became, "" when it has none */
} corpus_rec;

typedef struct corpus {
	corpus_rec *v;
	size_t n;
} corpus;

static tk_world world;
static int world_started;    /**< world_up ran (the worker case was not filtered out) */
static int worker_exit = -2; /**< the worker's exit status, set by world_down */

static void world_up(void)
{
	world_started = 1;
	tk_world_init(&world, 4);
	tk_worker_start(&world, NULL);
}

static void world_down(void)
{
	worker_exit = tk_worker_stop(&world, SIGTERM, 15);
}

static char *corpus_path(const char *name)
{
	size_t size = strlen(tk_env("PW_SOURCE_DIR")) + strlen(name) + 32;
	char *p = malloc(size);
	ck_assert_ptr_nonnull(p);
	snprintf(p, size, "%s/tests/corpus/%s", tk_env("PW_SOURCE_DIR"), name);
	return p;
}

static char *read_file(const char *name, size_t *len)
{
	char *path = corpus_path(name);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	long size = ftell(f);
	ck_assert_int_ge(size, 0);
	rewind(f);
	char *buf = malloc((size_t)size + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
	buf[size] = '\0';
	fclose(f);
	free(path);
	*len = (size_t)size;
	return buf;
}

/* EXPECTED: "file kind expectation topic", the expectation one word for dlq and two
 * (status, code) for reply; '#' starts a comment line. */
static void load_expected(corpus *c)
{
	size_t len;
	char *text = read_file("EXPECTED", &len);
	char *save = NULL;
	size_t cap = 0;

	memset(c, 0, sizeof(*c));
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tok[8];
		int n = 0;
		char *s2 = NULL;
		if (line[0] == '#')
			continue;
		for (char *t = strtok_r(line, " \t", &s2); t && n < 8;
		     t = strtok_r(NULL, " \t", &s2))
			tok[n++] = t;
		if (n == 0)
			continue;
		if (c->n == cap) {
			cap = cap ? cap * 2 : 256;
			c->v = realloc(c->v, cap * sizeof(*c->v));
			ck_assert_ptr_nonnull(c->v);
		}
		corpus_rec *r = &c->v[c->n++];
		memset(r, 0, sizeof(*r));
		ck_assert_msg(n == 4 || n == 5, "EXPECTED: bad line for %s", tok[0]);
		snprintf(r->file, sizeof(r->file), "%s", tok[0]);
		ck_assert_msg(strcmp(tok[n - 1], "create") == 0 || strcmp(tok[n - 1], "query") == 0,
		              "EXPECTED: %s: topic %s", r->file, tok[n - 1]);
		r->query = strcmp(tok[n - 1], "query") == 0;
		if (strcmp(tok[1], "dlq") == 0) {
			ck_assert_msg(n == 4, "EXPECTED: %s: dlq takes one error code", r->file);
			r->dlq = 1;
			snprintf(r->error, sizeof(r->error), "%s", tok[2]);
		} else {
			ck_assert_msg(strcmp(tok[1], "reply") == 0 && n == 5,
			              "EXPECTED: %s: kind must be dlq or reply", r->file);
			r->status = atoi(tok[2]);
			ck_assert_msg(r->status >= 200 && r->status <= 599, "EXPECTED: %s: status",
			              r->file);
			snprintf(r->code, sizeof(r->code), "%s", tok[3]);
		}
	}
	free(text);
}

static void corpus_free(corpus *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].value);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* ---- tokens ---------------------------------------------------------------------------- */

static char *b64url(const void *in, size_t n)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = in;
	char *out = malloc(n / 3 * 4 + 5);
	size_t o = 0, i = 0;

	ck_assert_ptr_nonnull(out);
	for (; i + 2 < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
		out[o++] = abc[v & 63];
	}
	if (n - i == 1) {
		unsigned v = (unsigned)p[i] << 16;
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
	} else if (n - i == 2) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
	}
	out[o] = '\0';
	return out;
}

/* A compact JWS of header and claims (any JSON text), signed with HMAC-SHA256 under
 * secret; with secret NULL the signature segment is empty (an alg "none" token). */
static char *hs256_token(const char *header, const char *claims, const char *secret)
{
	char *h = b64url(header, strlen(header));
	char *c = b64url(claims, strlen(claims));
	size_t size = strlen(h) + strlen(c) + 64;
	char *out = malloc(size);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	ck_assert_ptr_nonnull(out);
	snprintf(out, size, "%s.%s", h, c);
	if (secret != NULL) {
		ck_assert_ptr_nonnull(HMAC(EVP_sha256(), secret, (int)strlen(secret),
		                           (const unsigned char *)out, strlen(out), md, &mdlen));
		char *s = b64url(md, mdlen);
		strcat(out, ".");
		strcat(out, s);
		free(s);
	} else {
		strcat(out, ".");
	}
	free(h);
	free(c);
	return out;
}

static char *libjwt_token(jwt_alg_t alg, const char *secret, const char *sub, long exp_offset_s)
{
	jwt_t *jwt = NULL;
	ck_assert_int_eq(jwt_new(&jwt), 0);
	ck_assert_int_eq(jwt_add_grant(jwt, "sub", sub), 0);
	ck_assert_int_eq(jwt_add_grant_int(jwt, "exp", (long)time(NULL) + exp_offset_s), 0);
	ck_assert_int_eq(jwt_set_alg(jwt, alg, (const unsigned char *)secret, (int)strlen(secret)),
	                 0);
	char *s = jwt_encode_str(jwt);
	ck_assert_ptr_nonnull(s);
	jwt_free(jwt);
	return s;
}

enum { MAX_SUBS = 40 };

typedef struct subs {
	char *name[MAX_SUBS];
	char *value[MAX_SUBS];
	size_t n;
} subs;

static void sub_add(subs *s, const char *name, char *value)
{
	ck_assert_uint_lt(s->n, MAX_SUBS);
	s->name[s->n] = strdup(name);
	s->value[s->n] = value;
	s->n++;
}

static const char *sub_get(const subs *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->name[i], name) == 0)
			return s->value[i];
	ck_abort_msg("no placeholder %s", name);
	return NULL;
}

static void subs_free(subs *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->name[i]);
		free(s->value[i]);
	}
	memset(s, 0, sizeof(*s));
}

static char *claims_text(const char *extra, const char *sub, long exp)
{
	char *out = malloc(1024);
	ck_assert_ptr_nonnull(out);
	snprintf(out, 1024, "{\"sub\":\"%s\",\"exp\":%ld%s}", sub, exp, extra);
	return out;
}

/* Every token placeholder of the corpus, for owner. */
static void make_tokens(subs *s, const char *owner, const char *replies)
{
	const char *hs = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	long now = (long)time(NULL), exp = now + 3600;
	char buf[1024], sub321[322];
	char *claims = claims_text("", owner, exp);

	sub_add(s, "@REPLY_TO@", strdup(replies));
	sub_add(s, "@TOKEN@", tk_token(owner, 3600, NULL));
	sub_add(s, "@TOKEN_HANDMADE@", hs256_token(hs, claims, TK_SECRET));
	sub_add(s, "@TOKEN_EXPIRED@", tk_token(owner, -3600, NULL));
	sub_add(s, "@TOKEN_OTHER_SECRET@", libjwt_token(JWT_ALG_HS256, OTHER_SECRET, owner, 3600));
	sub_add(s, "@TOKEN_HS512@", libjwt_token(JWT_ALG_HS512, TK_SECRET, owner, 3600));
	{
		/* One character of the signature changed: its first, so that no padding bits
		 * are all that changes. */
		char *t = tk_token(owner, 3600, NULL);
		char *sig = strrchr(t, '.') + 1;
		sig[0] = sig[0] == 'A' ? 'B' : 'A';
		sub_add(s, "@TOKEN_BAD_SIGNATURE@", t);
	}
	snprintf(buf, sizeof(buf), "{\"nbf\": %ld}", now + 3600);
	sub_add(s, "@TOKEN_NBF_FUTURE@", tk_token(owner, 7200, buf));
	snprintf(buf, sizeof(buf), "{\"iat\": %ld}", now + 3600);
	sub_add(s, "@TOKEN_IAT_FUTURE@", tk_token(owner, 7200, buf));
	snprintf(buf, sizeof(buf), "{\"sub\":\"%s\"}", owner);
	sub_add(s, "@TOKEN_NO_EXP@", hs256_token(hs, buf, TK_SECRET));
	snprintf(buf, sizeof(buf), "{\"sub\":\"%s\",\"exp\":\"%ld\"}", owner, exp);
	sub_add(s, "@TOKEN_EXP_STRING@", hs256_token(hs, buf, TK_SECRET));
	sub_add(s, "@TOKEN_NO_SUB@", tk_token(NULL, 3600, NULL));
	snprintf(buf, sizeof(buf), "{\"sub\":\"\",\"exp\":%ld}", exp);
	sub_add(s, "@TOKEN_EMPTY_SUB@", hs256_token(hs, buf, TK_SECRET));
	memset(sub321, 'a', sizeof(sub321) - 1);
	sub321[sizeof(sub321) - 1] = '\0';
	memcpy(sub321 + sizeof(sub321) - 1 - strlen("@example.com"), "@example.com",
	       strlen("@example.com"));
	snprintf(buf, sizeof(buf), "{\"sub\":\"%s\",\"exp\":%ld}", sub321, exp);
	sub_add(s, "@TOKEN_LONG_SUB@", hs256_token(hs, buf, TK_SECRET));
	snprintf(buf, sizeof(buf), "{\"sub\":12345,\"exp\":%ld}", exp);
	sub_add(s, "@TOKEN_SUB_NUMBER@", hs256_token(hs, buf, TK_SECRET));
	snprintf(buf, sizeof(buf), "[{\"sub\":\"%s\",\"exp\":%ld}]", owner, exp);
	sub_add(s, "@TOKEN_CLAIMS_ARRAY@", hs256_token(hs, buf, TK_SECRET));
	sub_add(s, "@TOKEN_HEADER_ARRAY@", hs256_token("[\"HS256\"]", claims, TK_SECRET));
	sub_add(s, "@TOKEN_HEADER_STRING@", hs256_token("\"HS256\"", claims, TK_SECRET));
	sub_add(s, "@TOKEN_CRIT@",
	        hs256_token("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":[\"exp\"]}", claims,
	                    TK_SECRET));
	sub_add(s, "@TOKEN_ALG_RS256@",
	        hs256_token("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", claims, TK_SECRET));
	sub_add(s, "@TOKEN_ALG_LOWERCASE@",
	        hs256_token("{\"alg\":\"hs256\",\"typ\":\"JWT\"}", claims, TK_SECRET));
	sub_add(s, "@TOKEN_ALG_NONE@",
	        hs256_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, NULL));
	free(claims);
}

/* in with every placeholder of s replaced, and @RID@/@RID128@ by rid/rid128. */
static char *substitute(const char *in, size_t len, const subs *s, const char *rid,
                        const char *rid128, size_t *out_len)
{
	size_t cap = len + 1024, o = 0;
	char *out = malloc(cap);
	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < len;) {
		const char *with = NULL;
		size_t skip = 0;
		if (in[i] == '@') {
			if (len - i >= 5 && memcmp(in + i, "@RID@", 5) == 0) {
				with = rid;
				skip = 5;
			} else if (len - i >= 8 && memcmp(in + i, "@RID128@", 8) == 0) {
				with = rid128;
				skip = 8;
			}
			for (size_t k = 0; with == NULL && k < s->n; k++) {
				size_t n = strlen(s->name[k]);
				if (len - i >= n && memcmp(in + i, s->name[k], n) == 0) {
					with = s->value[k];
					skip = n;
				}
			}
		}
		size_t add = with ? strlen(with) : 1;
		if (o + add + 1 > cap) {
			cap = (o + add + 1) * 2;
			out = realloc(out, cap);
			ck_assert_ptr_nonnull(out);
		}
		if (with) {
			memcpy(out + o, with, add);
			i += skip;
		} else {
			out[o] = in[i++];
		}
		o += add;
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

static int has_bytes(const char *hay, size_t n, const char *needle)
{
	size_t m = strlen(needle);
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return 1;
	return 0;
}

/* ---- mismatches: all are collected, then reported together ------------------------------ */

static char *problems;
static size_t problems_len, problem_count;

__attribute__((format(printf, 1, 2))) static void problem(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	size_t n = strlen(line);
	problems = realloc(problems, problems_len + n + 2);
	ck_assert_ptr_nonnull(problems);
	memcpy(problems + problems_len, line, n);
	problems_len += n;
	problems[problems_len++] = '\n';
	problems[problems_len] = '\0';
	problem_count++;
}

/* ---- reading the outcome topics -------------------------------------------------------- */

static int all_present(const tk_records *recs, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (tk_find(recs, keys[i], NULL) == NULL)
			return 0;
	return 1;
}

/* The sum of the high watermarks of topic's partitions (every one starts at 0: the topics
 * are the test's own, never compacted or truncated), or -1 on error. */
static int64_t topic_end(rd_kafka_t *rk, const char *topic, rd_kafka_topic_partition_list_t *l)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
	int64_t total = 0;

	if (rd_kafka_metadata(rk, 0, t, &md, 10000) != 0 || md->topic_cnt != 1) {
		rd_kafka_topic_destroy(t);
		return -1;
	}
	for (int p = 0; p < md->topics[0].partition_cnt && total >= 0; p++) {
		int64_t lo, hi;
		if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000) != 0)
			total = -1;
		else
			total += hi;
		if (l != NULL)
			rd_kafka_topic_partition_list_add(l, topic, p)->offset = hi;
	}
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	return total;
}

/* Waits until the worker's group has committed every command record: each one's outcome
 * was acknowledged before its offset was committed, so after this no outcome is still on
 * its way. */
static int wait_committed(void)
{
	char err[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", tk_env("KAFKA_BROKERS"), err, sizeof(err));
	rd_kafka_conf_set(conf, "group.id", world.group, err, sizeof(err));
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	ck_assert_msg(rk != NULL, "consumer: %s", err);
	rd_kafka_topic_partition_list_t *ends = rd_kafka_topic_partition_list_new(8);
	ck_assert_int_ge(topic_end(rk, world.create, ends), 0);
	ck_assert_int_ge(topic_end(rk, world.query, ends), 0);
	int done = 0;
	for (time_t end = time(NULL) + COMMIT_WAIT_S; !done && time(NULL) < end;) {
		rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_copy(ends);
		done = rd_kafka_committed(rk, l, 5000) == 0;
		for (int i = 0; done && i < l->cnt; i++) /* an empty partition has nothing */
			done = ends->elems[i].offset == 0 ||
			       l->elems[i].offset >= ends->elems[i].offset;
		rd_kafka_topic_partition_list_destroy(l);
		if (!done)
			nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
	}
	rd_kafka_topic_partition_list_destroy(ends);
	rd_kafka_destroy(rk);
	return done;
}

/* Reads on from c until recs holds every record topic has now. */
static void drain(rd_kafka_t *c, const char *topic, tk_records *recs)
{
	int64_t total = topic_end(c, topic, NULL);
	ck_assert_msg(total >= 0, "watermarks of %s", topic);
	tk_read(c, recs, (size_t)total, DRAIN_WAIT_S);
	ck_assert_msg(recs->n >= (size_t)total, "%s: read %zu of %lld records in %d s", topic,
	              recs->n, (long long)total, DRAIN_WAIT_S);
}

/* ---- checks of one record's outcome ---------------------------------------------------- */

static int json_int_at(json_t *root, const char *key, long long *out)
{
	json_t *v = json_object_get(root, key);
	if (!json_is_integer(v))
		return 0;
	*out = json_integer_value(v);
	return 1;
}

/* A 201's data holds the payload's fields as sent (stored literally) and the token's
 * owner, whatever owner_id the payload named. */
static void check_created(const corpus_rec *r, json_t *data, const char *owner)
{
	json_t *sent = json_loadb(r->value, r->len, 0, NULL);
	json_t *payload = json_object_get(sent, "payload");
	static const char *const fields[] = {"nombre", "apellido_paterno", "apellido_materno",
	                                     "dni", "fecha_nacimiento"};

	if (!json_is_string(json_object_get(data, "owner_id")) ||
	    strcmp(json_string_value(json_object_get(data, "owner_id")), owner) != 0)
		problem("%s: data.owner_id is not the token's owner", r->file);
	if (!json_is_integer(json_object_get(data, "id")))
		problem("%s: data.id missing", r->file);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		json_t *want = json_object_get(payload, fields[i]);
		json_t *got = json_object_get(data, fields[i]);
		if (want != NULL && !json_equal(want, got))
			problem("%s: data.%s is not the value sent", r->file, fields[i]);
	}
	json_decref(sent);
}

static void check_reply(const corpus_rec *r, const tk_record *rep, const char *owner)
{
	json_error_t jerr;
	json_t *root = json_loadb(rep->value, rep->value_len, 0, &jerr);
	long long status = -1;
	char want_status[16];

	snprintf(want_status, sizeof(want_status), "%d", r->status);
	if (!json_is_object(root)) {
		problem("%s: reply is not a JSON object: %s", r->file, jerr.text);
		json_decref(root);
		return;
	}
	json_int_at(root, "status", &status);
	json_t *err = json_object_get(root, "error");
	const char *code = json_string_value(json_object_get(err, "code"));
	int ok = status == r->status &&
	         (strcmp(r->code, "-") == 0 ? err == NULL : code && strcmp(code, r->code) == 0);
	if (!ok)
		problem("%s: want reply %d %s, got %lld %s", r->file, r->status, r->code, status,
		        code ? code : "-");
	if (rep->hdr_status == NULL || strcmp(rep->hdr_status, want_status) != 0)
		problem("%s: status header %s, want %s", r->file,
		        rep->hdr_status ? rep->hdr_status : "(none)", want_status);
	if (rep->hdr_request_id == NULL || strcmp(rep->hdr_request_id, r->rid) != 0)
		problem("%s: request_id header %s", r->file,
		        rep->hdr_request_id ? rep->hdr_request_id : "(none)");
	const char *rid = json_string_value(json_object_get(root, "request_id"));
	if (rid == NULL || strcmp(rid, r->rid) != 0)
		problem("%s: reply request_id %s", r->file, rid ? rid : "(none)");
	/* Messages never echo a token (every JWT header starts "eyJ"). */
	if (has_bytes(rep->value, rep->value_len, "eyJ"))
		problem("%s: the reply echoes a token", r->file);
	if (ok && r->status == 201)
		check_created(r, json_object_get(root, "data"), owner);
	if (ok && r->status < 300 && json_object_get(root, "data") == NULL)
		problem("%s: %d without data", r->file, r->status);
	json_decref(root);
}

static void check_dead_letter(const corpus_rec *r, const tk_record *d, const char *topic)
{
	if (d->hdr_error == NULL || strcmp(d->hdr_error, r->error) != 0)
		problem("%s: want dlq %s, got dlq %s", r->file, r->error,
		        d->hdr_error ? d->hdr_error : "(no error header)");
	if (d->value_len != r->len || memcmp(d->value, r->value, r->len) != 0)
		problem("%s: dead letter value changed (%zu bytes, sent %zu)", r->file,
		        d->value_len, r->len);
	if (d->hdr_source == NULL || strncmp(d->hdr_source, topic, strlen(topic)) != 0 ||
	    d->hdr_source[strlen(topic)] != '/')
		problem("%s: source header %s", r->file, d->hdr_source ? d->hdr_source : "(none)");
}

/* ---- the tests ------------------------------------------------------------------------- */

/* The corpus itself: every .rec file is listed once, every listed file exists, and there
 * are at least 100. */
START_TEST(corpus_is_complete)
{
	corpus c;
	load_expected(&c);
	ck_assert_uint_ge(c.n, 100);
	for (size_t i = 0; i < c.n; i++)
		for (size_t j = i + 1; j < c.n; j++) {
			ck_assert_msg(strcmp(c.v[i].file, c.v[j].file) != 0, "%s listed twice",
			              c.v[i].file);
			ck_assert_msg(strncmp(c.v[i].file, c.v[j].file, 4) != 0,
			              "%s and %s share a number", c.v[i].file, c.v[j].file);
		}
	char *dir = corpus_path("");
	DIR *d = opendir(dir);
	ck_assert_msg(d != NULL, "cannot open %s", dir);
	size_t files = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		size_t n = strlen(e->d_name);
		if (n < 4 || strcmp(e->d_name + n - 4, ".rec") != 0)
			continue;
		files++;
		size_t i = 0;
		while (i < c.n && strcmp(c.v[i].file, e->d_name) != 0)
			i++;
		ck_assert_msg(i < c.n, "%s is not in EXPECTED", e->d_name);
	}
	closedir(d);
	ck_assert_uint_eq(files, c.n);
	free(dir);
	corpus_free(&c);
}
END_TEST

START_TEST(every_record_gets_its_outcome)
{
	corpus c;
	subs s = {0};
	char prefix[64], rid128[129], final_rid[96];
	char *owner = tk_owner("corpus");
	tk_records replies = {0}, dead = {0};
	rd_kafka_t *producer = tk_producer();

	load_expected(&c);
	make_tokens(&s, owner, world.replies);
	tk_unique(prefix, sizeof(prefix), "c");

	/* Every record as sent, and the request id its reply is keyed by. */
	for (size_t i = 0; i < c.n; i++) {
		corpus_rec *r = &c.v[i];
		size_t raw_len;
		char *raw = read_file(r->file, &raw_len);
		char rid[96];
		snprintf(rid, sizeof(rid), "%s-%.3s", prefix, r->file);
		snprintf(rid128, sizeof(rid128), "%s-", rid);
		memset(rid128 + strlen(rid128), 'x', sizeof(rid128) - 1 - strlen(rid128));
		rid128[sizeof(rid128) - 1] = '\0';
		if (has_bytes(raw, raw_len, "@RID128@"))
			snprintf(r->rid, sizeof(r->rid), "%s", rid128);
		else if (has_bytes(raw, raw_len, "@RID@"))
			snprintf(r->rid, sizeof(r->rid), "%s", rid);
		r->value = substitute(raw, raw_len, &s, rid, rid128, &r->len);
		free(raw);
		ck_assert_msg(!has_bytes(r->value, r->len, "@TOKEN") &&
		                  !has_bytes(r->value, r->len, "@RID") &&
		                  !has_bytes(r->value, r->len, "@REPLY_TO"),
		              "%s: a placeholder the test does not know", r->file);
		if (!r->dlq && r->rid[0] == '\0') {
			/* A fixed request id (a record whose size must not change). */
			json_t *root = json_loadb(r->value, r->len, 0, NULL);
			const char *v = json_string_value(json_object_get(root, "request_id"));
			ck_assert_msg(v != NULL,
			              "%s: a reply is expected but no request_id is read", r->file);
			snprintf(r->rid, sizeof(r->rid), "%s", v);
			json_decref(root);
		}
	}

	/* Readers first: they read from the beginning, so nothing is missed either way. */
	rd_kafka_t *rc = tk_reader(world.replies);
	rd_kafka_t *dc = tk_reader(world.dlq);
	for (size_t i = 0; i < c.n; i++) {
		corpus_rec *r = &c.v[i];
		tk_send(producer, r->query ? world.query : world.create, r->file, r->value, r->len,
		        NULL);
	}
	/* The valid command after all of them. */
	tk_unique(final_rid, sizeof(final_rid), "final-");
	char *final_cmd = tk_create_cmd(final_rid, sub_get(&s, "@TOKEN@"), "FINAL-1", NULL);
	tk_send(producer, world.create, "final", final_cmd, strlen(final_cmd), NULL);

	/* Wait for every expected outcome (bounded). */
	const char **reply_keys = calloc(c.n + 1, sizeof(char *));
	const char **dlq_keys = calloc(c.n, sizeof(char *));
	size_t nr = 0, nd = 0;
	ck_assert(reply_keys != NULL && dlq_keys != NULL);
	for (size_t i = 0; i < c.n; i++) {
		if (c.v[i].dlq)
			dlq_keys[nd++] = c.v[i].file;
		else
			reply_keys[nr++] = c.v[i].rid;
	}
	reply_keys[nr++] = final_rid;
	for (time_t end = time(NULL) + OUTCOME_WAIT_S; time(NULL) < end;) {
		int r_ok = all_present(&replies, reply_keys, nr);
		int d_ok = all_present(&dead, dlq_keys, nd);
		if (r_ok && d_ok)
			break;
		if (!r_ok)
			tk_read(rc, &replies, replies.n + 1, 1);
		if (!d_ok)
			tk_read(dc, &dead, dead.n + 1, 1);
	}
	int committed = wait_committed();
	/* Everything the worker wrote, up to the end of both topics. */
	drain(rc, world.replies, &replies);
	drain(dc, world.dlq, &dead);
	rd_kafka_destroy(rc);
	rd_kafka_destroy(dc);

	if (!committed)
		problem("the worker's group did not commit every command within %d s",
		        COMMIT_WAIT_S);
	size_t got_dlq = 0, got_reply = 0;
	for (size_t i = 0; i < c.n; i++) {
		const corpus_rec *r = &c.v[i];
		const char *topic = r->query ? world.query : world.create;
		size_t nrep = 0, ndl = 0;
		const tk_record *d = tk_find(&dead, r->file, &ndl);
		const tk_record *rep = r->rid[0] ? tk_find(&replies, r->rid, &nrep) : NULL;
		got_dlq += d != NULL;
		got_reply += rep != NULL;
		if (d != NULL && rep != NULL)
			problem("%s: both a dead letter (%s) and a reply", r->file,
			        d->hdr_error ? d->hdr_error : "?");
		if (r->dlq) {
			if (d == NULL)
				problem("%s: want dlq %s, got %s", r->file, r->error,
				        rep ? rep->hdr_status : "nothing");
			for (size_t k = 0; k < dead.n; k++)
				if (dead.v[k].key && strcmp(dead.v[k].key, r->file) == 0)
					check_dead_letter(r, &dead.v[k], topic);
		} else {
			if (rep == NULL)
				problem("%s: want reply %d %s, got %s", r->file, r->status, r->code,
				        d ? d->hdr_error : "nothing");
			for (size_t k = 0; k < replies.n; k++)
				if (replies.v[k].key && strcmp(replies.v[k].key, r->rid) == 0)
					check_reply(r, &replies.v[k], owner);
		}
	}
	/* Nothing else: every reply and dead letter belongs to one of the records. */
	for (size_t k = 0; k < replies.n; k++) {
		const char *key = replies.v[k].key ? replies.v[k].key : "";
		size_t i = 0;
		while (i < nr && strcmp(reply_keys[i], key) != 0)
			i++;
		if (i == nr)
			problem("a reply keyed %s that no record asked for", key);
	}
	for (size_t k = 0; k < dead.n; k++) {
		const char *key = dead.v[k].key ? dead.v[k].key : "";
		size_t i = 0;
		while (i < c.n && strcmp(c.v[i].file, key) != 0)
			i++;
		if (i == c.n)
			problem("a dead letter keyed %s (%s)", key,
			        dead.v[k].hdr_error ? dead.v[k].hdr_error : "?");
	}

	/* The valid create after the corpus. */
	const tk_record *fin = tk_find(&replies, final_rid, NULL);
	char *fin_status = fin ? tk_json_get(fin->value, "status") : NULL;
	if (fin_status == NULL || strcmp(fin_status, "201") != 0)
		problem("the valid create after the corpus: status %s",
		        fin_status ? fin_status : "(no reply)");
	free(fin_status);

	/* Still running (not a zombie): its parent is the runner, so look, not wait. */
	char path[64], line[256] = "";
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)world.worker);
	FILE *f = fopen(path, "r");
	if (f != NULL) {
		if (fgets(line, sizeof(line), f) == NULL)
			line[0] = '\0';
		fclose(f);
	}
	const char *paren = strrchr(line, ')');
	if (world.worker <= 0 || paren == NULL || paren[1] != ' ' || paren[2] == 'Z')
		problem("the worker is no longer running");

	fprintf(stderr,
	        "corpus: %zu records (%zu dlq, %zu reply expected); got %zu dead letters, "
	        "%zu replies; %zu problems\n",
	        c.n, nd, nr - 1, got_dlq, got_reply, problem_count);
	if (problem_count > 0) {
		fprintf(stderr, "%s", problems);
		tk_dump_log(&world);
	}
	ck_assert_msg(problem_count == 0, "%zu mismatches (listed above)", problem_count);
	free(reply_keys);
	free(dlq_keys);
	free(final_cmd);
	free(owner);
	free(problems);
	subs_free(&s);
	corpus_free(&c);
	tk_records_free(&replies);
	tk_records_free(&dead);
	rd_kafka_destroy(producer);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("corpus");
	TCase *files = tcase_create("files");
	tcase_add_test(files, corpus_is_complete);
	suite_add_tcase(s, files);

	TCase *tc = tcase_create("worker");
	tcase_add_unchecked_fixture(tc, world_up, world_down);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, every_record_gets_its_outcome);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int failed = pw_check_failures(suite());
	/* SIGTERM after the corpus: it finishes what it holds and exits 0. */
	if (world_started && worker_exit != 0) {
		fprintf(stderr, "the worker's exit status after SIGTERM: %d (want 0)\n",
		        worker_exit);
		failed++;
	}
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
