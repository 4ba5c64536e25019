/* patientctl load; see ctl_load.h. The rows in flight are a ctl_inflight set of o->inflight
 * slots, matched to replies by the line number in the reply's key. */
#include "ctl_load.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl_client.h"
#include "ctl_inflight.h"
#include "ctl_input.h"
#include "ctl_journal.h"
#include "ctl_op.h"
#include "ctl_progress.h"
#include "ctl_reqid.h"
#include "pw_util.h"

#define JOURNAL_FLUSH_MS 1000
#define SCAN_EVERY_MS    100
#define REPLIES_PER_TURN 1000
/* key_head (at most 108 characters with the longest prefix) and a line number; the
 * slack only quiets the compiler, which cannot see that bound. */
#define RID_SIZE (CTL_REQID_MAX + 1 + 24)

typedef struct load {
	const ctl_opts *o;
	const pw_config *cfg;
	ctl_token_identity *id;
	const char *reply_topic;
	FILE *err;
	char key_head[CTL_REQID_MAX + 1]; /**< "load:PREFIX:" */
	size_t key_head_len;
	ctl_inflight *inflight;
	ctl_input *in;
	ctl_journal *journal;
	char *journal_path, *errors_path;
	FILE *errors;
	bool errors_broken, journal_broken;
	ctl_client *client;
	ctl_progress_counts counts;
	ctl_progress progress;
	int64_t last_reply_ms; /**< last reply of ours, or the first send */
	bool stopped;          /**< no more rows are read */
	char stop_why[160];
	unsigned long last_line; /**< of the last row read */
	bool read_error;
} load;

static volatile sig_atomic_t interrupts;

static void on_signal(int sig)
{
	(void)sig;
	if (interrupts < 2)
		interrupts++;
}

/* No more rows are read; why (copied) is said in the summary. The first reason stays. */
static void stop(load *l, const char *why)
{
	if (l->stopped)
		return;
	l->stopped = true;
	snprintf(l->stop_why, sizeof(l->stop_why), "%s", why);
}

/* The journal could not be written (errno says why): said once, and the run stops. */
static void journal_broke(load *l)
{
	fprintf(l->err, "%s: cannot write: %s\n", l->journal_path, strerror(errno));
	l->journal_broken = true;
}

/* ---- the errors file ---- */

/* The row's raw text as a JSON string; bytes that are not UTF-8 become U+FFFD, so the
 * line stays valid JSON and still shows where the row went wrong. */
static json_t *text_json(const char *s, size_t n)
{
	json_t *v = json_stringn(s, n);
	char *buf;
	size_t o = 0;

	if (v != NULL)
		return v;
	buf = malloc(n * 3 + 1);
	if (buf == NULL)
		return json_null();
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80         ? 1
		             : (c >> 5) == 6  ? 2
		             : (c >> 4) == 14 ? 3
		             : (c >> 3) == 30 ? 4
		                              : 0;
		json_t *probe = len && i + len <= n ? json_stringn(s + i, len) : NULL;
		if (probe != NULL) {
			memcpy(buf + o, s + i, len);
			o += len;
			i += len;
			json_decref(probe);
		} else {
			memcpy(buf + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	v = json_stringn(buf, o);
	free(buf);
	return v ? v : json_null();
}

/* One line of the errors file. status is a JSON integer (a reply's status) or a string
 * ("timeout", "unparsable", ...); error, row and text may be NULL; all are stolen. */
static void write_error(load *l, unsigned long line, json_t *status, json_t *error, json_t *row,
                        json_t *text)
{
	char rid[RID_SIZE];
	json_t *e = NULL;
	char *s = NULL;

	snprintf(rid, sizeof(rid), "%s%lu", l->key_head, line);
	if (l->errors == NULL && !l->errors_broken) {
		l->errors = fopen(l->errors_path, "w");
		if (l->errors == NULL) {
			fprintf(l->err, "%s: %s\n", l->errors_path, strerror(errno));
			l->errors_broken = true;
		}
	}
	e = json_pack("{s:I, s:s, s:o, s:o, s:o}", "line", (json_int_t)line, "request_id", rid,
	              "status", status ? status : json_null(), "error", error ? error : json_null(),
	              "row", row ? row : json_null());
	/* json_pack's "o" and json_object_set_new take their references even when they fail,
	 * so nothing is left to free here but text when there is no object for it. */
	if (e == NULL)
		json_decref(text);
	else if (text != NULL && json_object_set_new(e, "text", text) != 0)
		fprintf(l->err, "%s: line %lu written without its text (out of memory)\n",
		        l->errors_path, line);
	s = e ? json_dumps(e, JSON_COMPACT) : NULL;
	if (l->errors != NULL &&
	    (s == NULL || fputs(s, l->errors) == EOF || fputc('\n', l->errors) == EOF)) {
		fprintf(l->err, "%s: cannot write: %s\n", l->errors_path,
		        s ? strerror(errno) : "out of memory");
		fclose(l->errors);
		l->errors = NULL;
		l->errors_broken = true;
	}
	free(s);
	json_decref(e);
}

static json_t *local_error(const char *code, const char *message)
{
	return json_pack("{s:s, s:s}", "code", code, "message", message);
}

static json_t *payload_json(const char *text)
{
	return text ? json_loads(text, 0, NULL) : NULL;
}

/* A row that failed here rather than at the worker: counted in *count, and written to the
 * errors file with status and error code code. row and text are stolen (NULL is fine). */
static void fail_row(load *l, unsigned long *count, unsigned long line, const char *code,
                     const char *why, json_t *row, json_t *text)
{
	(*count)++;
	write_error(l, line, json_string(code), local_error(code, why), row, text);
}

/* ---- rows out ---- */

/* Sends one parsed row (payload stolen) or accounts for why it is not sent. The caller
 * makes sure there is room in flight. */
static void send_row(load *l, unsigned long line, uint64_t hash, json_t *payload)
{
	char rid[RID_SIZE], why[96];
	char *ptext = NULL, *cmd = NULL;
	json_t *env = NULL;
	const char *token = ctl_token_current(l->id, time(NULL)), *type = NULL;
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
	ctl_inflight_row *r = NULL;

	snprintf(rid, sizeof(rid), "%s%lu", l->key_head, line);
	if (ctl_op_take(payload, &type, why, sizeof(why)) == PW_E_INVALID) {
		fail_row(l, &l->counts.unparsable, line, "unparsable", why, json_incref(payload),
		         NULL);
		goto out;
	}
	ptext = type ? json_dumps(payload, JSON_COMPACT) : NULL;
	if (ptext != NULL && token != NULL)
		env = json_pack("{s:s, s:s, s:s, s:s, s:O}", "request_id", rid, "type", type,
		                "token", token, "reply_to", l->reply_topic, "payload", payload);
	cmd = env ? json_dumps(env, JSON_COMPACT) : NULL;
	if (cmd == NULL) {
		fail_row(l, &l->counts.unsent, line, "unsent",
		         token ? "out of memory" : "could not mint a token", json_incref(payload),
		         NULL);
		goto out;
	}
	/* The worker dead-letters an oversized command without a reply: fail it here. */
	if (strlen(cmd) > (size_t)l->cfg->max_message_bytes) {
		char why[128];
		snprintf(why, sizeof(why), "the command is %zu bytes, over MAX_MESSAGE_BYTES (%d)",
		         strlen(cmd), l->cfg->max_message_bytes);
		fail_row(l, &l->counts.too_large, line, "too_large", why, json_incref(payload),
		         NULL);
		goto out;
	}
	r = ctl_inflight_add(l->inflight, line, hash, pw_util_now_ms(), ptext);
	if (r == NULL) { /* fill sends only when there is room: not reached */
		fail_row(l, &l->counts.unsent, line, "unsent", "no room in flight",
		         json_incref(payload), NULL);
		goto out;
	}
	ptext = NULL; /* the set's now */
	json_t *id = json_object_get(payload, "id");
	char key[48];
	const char *k =
	    ctl_op_key(type, json_is_integer(id) ? (long long)json_integer_value(id) : 0, rid, key,
	               sizeof(key));
	if (ctl_client_send(l->client, k, cmd, strlen(cmd), (void *)(uintptr_t)line,
	                    pw_util_now_ms() + (int64_t)l->o->timeout_s * 1000, &e) != PW_OK) {
		fail_row(l, &l->counts.unsent, line, "unsent", rd_kafka_err2str(e),
		         payload_json(r->payload), NULL);
		ctl_inflight_remove(l->inflight, r);
		goto out;
	}
	if (l->counts.sent++ == 0)
		l->last_reply_ms = pw_util_now_ms();
out:
	free(cmd);
	free(ptext);
	json_decref(env);
	json_decref(payload);
}

/* Reads rows until the window is full or the file ends. */
static void fill(load *l)
{
	while (!l->stopped && !ctl_inflight_full(l->inflight)) {
		ctl_input_row row;
		bool end;
		if (ctl_input_next(l->in, &row, &end, l->err) != PW_OK) {
			l->read_error = true;
			stop(l, "the file could not be read");
			return;
		}
		if (end) {
			l->stopped = true;
			return;
		}
		l->counts.rows++;
		l->last_line = row.line;
		if (ctl_journal_has(l->journal, row.line, row.hash)) {
			l->counts.skipped++;
			json_decref(row.payload);
			continue;
		}
		if (row.payload == NULL) {
			fail_row(l, &l->counts.unparsable, row.line, "unparsable", row.why, NULL,
			         text_json(row.text, row.text_len));
			continue;
		}
		send_row(l, row.line, row.hash, row.payload);
	}
}

/* ---- replies in ---- */

static void on_delivery(void *ctx, void *opaque, rd_kafka_resp_err_t err)
{
	load *l = ctx;
	unsigned long line = (unsigned long)(uintptr_t)opaque;
	ctl_inflight_row *r;

	if (err == RD_KAFKA_RESP_ERR_NO_ERROR || (r = ctl_inflight_find(l->inflight, line)) == NULL)
		return;
	fail_row(l, &l->counts.unsent, line, "unsent", rd_kafka_err2str(err),
	         payload_json(r->payload), NULL);
	ctl_inflight_remove(l->inflight, r);
}

/* The line in a reply's key "load:PREFIX:LINE", or 0 when the key is not one of ours. */
static unsigned long key_line(const load *l, const rd_kafka_message_t *m)
{
	const char *k = m->key;
	unsigned long line = 0;

	if (k == NULL || m->key_len <= l->key_head_len || m->key_len > CTL_REQID_MAX ||
	    memcmp(k, l->key_head, l->key_head_len) != 0)
		return 0;
	for (size_t i = l->key_head_len; i < m->key_len; i++) {
		if (k[i] < '0' || k[i] > '9' || line > (ULONG_MAX - 9) / 10)
			return 0;
		line = line * 10 + (unsigned long)(k[i] - '0');
	}
	return line;
}

/* Could this 2xx reply be the answer to row r? Keys are not unique across owners: another
 * owner loading a file of the same name through the same reply topic uses the same keys,
 * and taking their 201 for ours would put a row in our journal that was never created. A
 * created or updated patient names its owner and dni, a deleted one its id: check what the
 * row names. */
static bool reply_is_ours(const load *l, const ctl_inflight_row *r, json_t *reply)
{
	json_t *data = json_object_get(reply, "data");
	json_t *owner = json_object_get(data, "owner_id");
	json_t *dni = json_object_get(data, "dni");
	json_t *row = payload_json(r->payload);
	json_t *want = json_object_get(row, "dni");
	json_t *id = json_object_get(data, "id"), *want_id = json_object_get(row, "id");
	bool ours = true;

	if (json_is_integer(want_id) && json_is_integer(id) &&
	    json_integer_value(want_id) != json_integer_value(id))
		ours = false;

	if (l->id->owner[0] != '\0' && json_is_string(owner) &&
	    strcmp(json_string_value(owner), l->id->owner) != 0)
		ours = false;
	if (json_is_string(want) && json_is_string(dni) &&
	    strcmp(json_string_value(want), json_string_value(dni)) != 0)
		ours = false;
	json_decref(row);
	return ours;
}

/* Counts a 2xx reply under its op: a delete's data says deleted, an update's row named a
 * version (a create that does is refused by the worker, so never gets here). */
static void count_done(load *l, const ctl_inflight_row *r, json_t *reply)
{
	json_t *row = NULL;

	if (json_is_true(json_object_get(json_object_get(reply, "data"), "deleted"))) {
		l->counts.deleted++;
		return;
	}
	row = payload_json(r->payload);
	if (json_object_get(row, "version") != NULL)
		l->counts.updated++;
	else
		l->counts.created++;
	json_decref(row);
}

static void on_reply(load *l, const rd_kafka_message_t *m)
{
	unsigned long line = key_line(l, m);
	ctl_inflight_row *row = line ? ctl_inflight_find(l->inflight, line) : NULL;

	/* Not ours, or answered already (replies are at-least-once), or timed out. */
	if (row == NULL)
		return;
	json_t *r = json_loadb(m->payload, m->len, 0, NULL);
	json_t *st = json_object_get(r, "status");
	json_int_t status = json_is_integer(st) ? json_integer_value(st) : 0;
	if (status >= 200 && status < 300 && !reply_is_ours(l, row, r)) {
		json_decref(r);
		return;
	}
	l->last_reply_ms = pw_util_now_ms();
	if (status >= 200 && status < 300) {
		count_done(l, row, r);
		if (!l->journal_broken && ctl_journal_add(l->journal, line, row->hash) != PW_OK)
			journal_broke(l);
	} else {
		l->counts.rejected++;
		write_error(l, line, status ? json_integer(status) : json_null(),
		            json_incref(json_object_get(r, "error")), payload_json(row->payload),
		            NULL);
	}
	json_decref(r);
	ctl_inflight_remove(l->inflight, row);
}

/* Takes the replies that are there, waiting up to wait_ms for the first. */
static void take_replies(load *l, int wait_ms)
{
	for (int i = 0; i < REPLIES_PER_TURN; i++) {
		rd_kafka_message_t *m = ctl_client_reply(l->client, i == 0 ? wait_ms : 0);
		if (m == NULL)
			return;
		on_reply(l, m);
		rd_kafka_message_destroy(m);
	}
}

/* Rows sent longer than --timeout ago fail; when nothing at all has been answered for
 * that long, no more rows are read: the worker is not there, and piling commands on its
 * topic helps nobody (a later run sends the rest). */
static void scan_timeouts(load *l, int64_t now)
{
	int64_t limit = (int64_t)l->o->timeout_s * 1000;
	bool any = false;
	char why[160];

	snprintf(why, sizeof(why), "no reply within %d s of sending", l->o->timeout_s);
	for (ctl_inflight_row *r = ctl_inflight_next(l->inflight, NULL); r != NULL;
	     r = ctl_inflight_next(l->inflight, r)) {
		if (now - r->sent_ms < limit)
			continue;
		fail_row(l, &l->counts.timeout, r->line, "timeout", why, payload_json(r->payload),
		         NULL);
		ctl_inflight_remove(l->inflight, r);
		any = true;
	}
	if (any && now - l->last_reply_ms >= limit) {
		snprintf(why, sizeof(why), "no reply for %d s (is a worker serving %s?)",
		         l->o->timeout_s, l->cfg->topic_create);
		stop(l, why);
	}
}

/* ---- the run ---- */

static char *path_with(const char *file, const char *given, const char *suffix)
{
	size_t n = strlen(file) + strlen(suffix) + 1;
	char *p = given ? strdup(given) : malloc(n);

	if (p != NULL && given == NULL)
		snprintf(p, n, "%s%s", file, suffix);
	return p;
}

static void summary(load *l, FILE *out, double elapsed_s)
{
	const ctl_progress_counts *c = &l->counts;
	unsigned long failed = ctl_progress_failed(c);

	char changed[96] = "";

	/* A file of creates reads as it always did; updates and deletes are said when any. */
	if (c->updated > 0 || c->deleted > 0)
		snprintf(changed, sizeof(changed), ", %lu updated, %lu deleted", c->updated,
		         c->deleted);
	fprintf(out,
	        "patientctl load %s: %lu rows: %lu created%s, %lu skipped (done before), %lu "
	        "failed (%lu rejected, %lu unparsable, %lu too large, %lu timed out, %lu unsent); "
	        "%.1f s, %.0f rows/s\n",
	        l->o->file, c->rows, c->created, changed, c->skipped, failed, c->rejected,
	        c->unparsable, c->too_large, c->timeout, c->unsent, elapsed_s,
	        elapsed_s > 0 ? (double)(ctl_progress_done(c) + c->rejected) / elapsed_s : 0.0);
	if (l->stop_why[0] != '\0')
		fprintf(out,
		        "stopped: %s; rows after line %lu were not read (run again to "
		        "continue)\n",
		        l->stop_why, l->last_line);
	if (failed > 0)
		fprintf(out, "failed rows: %s\n", l->errors_path);
}

static ctl_exit setup(load *l, FILE *err)
{
	char prefix[CTL_REQID_PREFIX_MAX + 1];

	if (l->o->id_prefix)
		snprintf(prefix, sizeof(prefix), "%s", l->o->id_prefix);
	else
		ctl_reqid_prefix_from_path(l->o->file, prefix, sizeof(prefix));
	snprintf(l->key_head, sizeof(l->key_head), "load:%s:", prefix);
	l->key_head_len = strlen(l->key_head);
	/* Standard input's journal and errors file are named after its --id-prefix, in the
	 * current folder. */
	const char *base = strcmp(l->o->file, "-") == 0 ? l->o->id_prefix : l->o->file;
	l->journal_path = path_with(base, l->o->journal, ".done");
	l->errors_path = path_with(base, l->o->errors, ".errors.jsonl");
	if (ctl_inflight_create(&l->inflight, l->o->inflight) != PW_OK || l->journal_path == NULL ||
	    l->errors_path == NULL) {
		fprintf(err, "patientctl: out of memory\n");
		return CTL_EXIT_USAGE;
	}
	ctl_exit rc = ctl_input_open(&l->in, l->o->file, l->o->format,
	                             (size_t)l->cfg->max_message_bytes, l->id->owner, err);
	if (rc != CTL_EXIT_OK)
		return rc;
	rc = ctl_journal_open(&l->journal, l->journal_path, err);
	if (rc != CTL_EXIT_OK)
		return rc;
	/* The errors file is this run's: an old one would list rows that are fine now. */
	if (unlink(l->errors_path) != 0 && errno != ENOENT) {
		fprintf(err, "%s: %s\n", l->errors_path, strerror(errno));
		return CTL_EXIT_USAGE;
	}
	return CTL_EXIT_OK;
}

static int install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGINT, &sa, NULL) == 0 && sigaction(SIGTERM, &sa, NULL) == 0 ? 0 : -1;
}

static ctl_exit open_client(load *l, int64_t deadline_ms)
{
	ctl_client_conf cc = {
	    .cfg = l->cfg,
	    .command_topic = l->cfg->topic_create,
	    .command_setting = "TOPIC_CREATE",
	    .reply_topic = l->reply_topic,
	    .reply_setting = l->o->reply_topic ? "--reply-topic" : "TOPIC_REPLIES",
	    .bulk = true,
	    .on_delivery = on_delivery,
	    .ctx = l,
	};

	return ctl_client_open(&l->client, &cc, deadline_ms, l->err);
}

/* Turns until every row is read and answered (or failed), or a second signal: each turn
 * reads rows while there is room, serves delivery reports, takes the replies, then does
 * the chores that are due. */
static void run(load *l, int64_t start)
{
	int64_t next_scan = start, next_flush = start + JOURNAL_FLUSH_MS;

	for (;;) {
		if (interrupts > 0)
			stop(l, "interrupted");
		if (interrupts > 1)
			break; /* a second signal: do not wait for the rows in flight */
		fill(l);
		if (l->stopped && ctl_inflight_count(l->inflight) == 0)
			break;
		ctl_client_serve(l->client, 0);
		/* Block only when there is nothing to send: then a reply is what we wait for. */
		bool idle = l->stopped || ctl_inflight_full(l->inflight);
		take_replies(l, idle ? 50 : 0);
		int64_t now = pw_util_now_ms();
		if (now >= next_scan) {
			scan_timeouts(l, now);
			next_scan = now + SCAN_EVERY_MS;
		}
		if (now >= next_flush) {
			if (!l->journal_broken && ctl_journal_flush(l->journal, false) != PW_OK)
				journal_broke(l);
			next_flush = now + JOURNAL_FLUSH_MS;
		}
		if (l->journal_broken)
			stop(l, "the journal cannot be written");
		ctl_progress_tick(&l->progress, &l->counts, ctl_input_fraction(l->in), now, false);
	}
}

/* The exit status of a finished run, the most serious cause first. */
static ctl_exit outcome(const load *l)
{
	return interrupts > 0                    ? CTL_EXIT_INTERRUPT
	       : l->read_error                   ? CTL_EXIT_USAGE
	       : l->counts.timeout > 0           ? CTL_EXIT_TIMEOUT
	       : ctl_progress_failed(&l->counts) ? CTL_EXIT_FAILED
	       : l->journal_broken               ? CTL_EXIT_FAILED
	                                         : CTL_EXIT_OK;
}

/* Closes what setup and the run opened. A journal or errors file whose last writes failed
 * turns a success into CTL_EXIT_FAILED. */
static ctl_exit teardown(load *l, ctl_exit rc)
{
	/* First: the delivery reports it waits for may still fail rows, into the errors file. */
	ctl_client_close(l->client, 1000);
	if (l->journal != NULL && ctl_journal_close(l->journal) != PW_OK) {
		fprintf(l->err, "%s: cannot write: %s\n", l->journal_path, strerror(errno));
		if (rc == CTL_EXIT_OK)
			rc = CTL_EXIT_FAILED;
	}
	if (l->errors != NULL && fclose(l->errors) != 0) {
		fprintf(l->err, "%s: cannot write: %s\n", l->errors_path, strerror(errno));
		if (rc == CTL_EXIT_OK)
			rc = CTL_EXIT_FAILED;
	}
	ctl_input_close(l->in);
	ctl_inflight_destroy(l->inflight);
	free(l->journal_path);
	free(l->errors_path);
	return rc;
}

ctl_exit ctl_load_run(const ctl_opts *o, const pw_config *cfg, ctl_token_identity *id,
                      const char *reply_topic, FILE *out, FILE *err)
{
	load l;
	int64_t start = pw_util_now_ms();
	ctl_exit rc;

	memset(&l, 0, sizeof(l));
	l.o = o;
	l.cfg = cfg;
	l.id = id;
	l.reply_topic = reply_topic;
	l.err = err;
	rc = setup(&l, err);
	if (rc != CTL_EXIT_OK)
		goto out;
	if (install_signals() != 0) {
		fprintf(err, "patientctl: cannot handle signals: %s\n", strerror(errno));
		rc = CTL_EXIT_FAILED;
		goto out;
	}
	rc = open_client(&l, start + (int64_t)o->timeout_s * 1000);
	if (rc != CTL_EXIT_OK)
		goto out;
	ctl_progress_init(&l.progress, err, start);
	run(&l, start);
	ctl_progress_tick(&l.progress, &l.counts, ctl_input_fraction(l.in), pw_util_now_ms(), true);
	ctl_progress_end(&l.progress);
	summary(&l, out, (double)(pw_util_now_ms() - start) / 1000.0);
	rc = outcome(&l);
out:
	return teardown(&l, rc);
}
