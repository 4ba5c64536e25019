/* One command, one reply; see ctl_request.h. */
#include "ctl_request.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl_client.h"
#include "ctl_op.h"
#include "ctl_reqid.h"
#include "pw_util.h"

typedef struct delivery {
	bool done;
	rd_kafka_resp_err_t err;
} delivery;

static void on_delivery(void *ctx, void *opaque, rd_kafka_resp_err_t err)
{
	delivery *d = ctx;

	(void)opaque;
	d->done = true;
	d->err = err;
}

/* The payload o describes: for create the --payload object with the field flags over it,
 * for get {"id"}, for list only the filters given. NULL when out of memory. */
static json_t *build_payload(const ctl_opts *o)
{
	json_t *p = NULL;
	int bad = 0;

	switch (o->cmd) {
	case CTL_CMD_CREATE:
	case CTL_CMD_UPDATE:
		p = o->payload ? json_loads(o->payload, JSON_REJECT_DUPLICATES, NULL)
		               : json_object();
		for (int i = 0; p != NULL && i < CTL_NFIELDS; i++)
			if (o->fields[i] != NULL)
				bad |= json_object_set_new(p, ctl_opts_field_names[i],
				                           json_string(o->fields[i]));
		if (p != NULL && o->cmd == CTL_CMD_UPDATE)
			bad |=
			    json_object_set_new(p, "id", json_integer((json_int_t)o->id)) |
			    json_object_set_new(p, "version", json_integer((json_int_t)o->version));
		break;
	case CTL_CMD_DELETE:
		p = json_pack("{s:I, s:I}", "id", (json_int_t)o->id, "version",
		              (json_int_t)o->version);
		break;
	case CTL_CMD_GET:
		p = json_pack("{s:I}", "id", (json_int_t)o->id);
		break;
	case CTL_CMD_LIST:
		p = json_object();
		if (p == NULL)
			break;
		if (o->has_limit)
			bad |= json_object_set_new(p, "limit", json_integer((json_int_t)o->limit));
		if (o->cursor)
			bad |= json_object_set_new(p, "cursor", json_string(o->cursor));
		if (o->fields[CTL_F_DNI])
			bad |= json_object_set_new(p, "dni", json_string(o->fields[CTL_F_DNI]));
		if (o->q)
			bad |= json_object_set_new(p, "q", json_string(o->q));
		break;
	default:
		break;
	}
	if (bad) {
		json_decref(p);
		return NULL;
	}
	return p;
}

static const char *type_of(ctl_opts_cmd cmd)
{
	switch (cmd) {
	case CTL_CMD_CREATE:
		return "patient.create";
	case CTL_CMD_UPDATE:
		return "patient.update";
	case CTL_CMD_DELETE:
		return "patient.delete";
	case CTL_CMD_GET:
		return "patient.get";
	default:
		return "patient.list";
	}
}

/* Exit status for a reply's text: 0 for a 2xx status, else 1. */
static ctl_exit status_exit(const char *value, size_t len)
{
	json_t *r = json_loadb(value, len, 0, NULL);
	json_t *st = json_object_get(r, "status");
	ctl_exit rc = json_is_integer(st) && json_integer_value(st) / 100 == 2 ? CTL_EXIT_OK
	                                                                       : CTL_EXIT_FAILED;

	json_decref(r);
	return rc;
}

/* The command's text: o's payload in an envelope with request id rid. CTL_EXIT_OK with
 * *cmd the caller's (free), CTL_EXIT_USAGE when it is too large to send, CTL_EXIT_FAILED
 * otherwise; each failure after a line on err. */
static ctl_exit build_command(const ctl_opts *o, const pw_config *cfg, ctl_token_identity *id,
                              const char *reply_topic, const char *rid, char **cmd, FILE *err)
{
	const char *token = ctl_token_current(id, time(NULL));
	json_t *payload = build_payload(o), *env = NULL;
	char *text = NULL;
	ctl_exit rc = CTL_EXIT_FAILED;

	if (token == NULL || payload == NULL) {
		fprintf(err, "patientctl: cannot build the command (out of memory)\n");
		goto out;
	}
	env = json_pack("{s:s, s:s, s:s, s:s, s:O}", "request_id", rid, "type", type_of(o->cmd),
	                "token", token, "reply_to", reply_topic, "payload", payload);
	text = env ? json_dumps(env, JSON_COMPACT) : NULL;
	if (text == NULL) {
		fprintf(err, "patientctl: cannot build the command (out of memory)\n");
		goto out;
	}
	/* The worker would dead-letter it unanswered; say so now instead of timing out. */
	if (strlen(text) > (size_t)cfg->max_message_bytes) {
		fprintf(err, "%s: the command is %zu bytes, over MAX_MESSAGE_BYTES (%d)\n",
		        o->payload ? "--payload" : "patientctl", strlen(text),
		        cfg->max_message_bytes);
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	*cmd = text;
	text = NULL; /* the caller's now */
	rc = CTL_EXIT_OK;
out:
	free(text);
	json_decref(env);
	json_decref(payload);
	return rc;
}

/* Reads replies until the one keyed rid, printed on out, or deadline_ms; a failed delivery
 * report ends the wait early. Returns the reply's exit status (status_exit), else
 * CTL_EXIT_TIMEOUT or CTL_EXIT_FAILED after a line on err. */
static ctl_exit await_reply(ctl_client *c, const delivery *d, const char *rid, int64_t deadline_ms,
                            int timeout_s, FILE *out, FILE *err)
{
	while (pw_util_now_ms() < deadline_ms) {
		ctl_client_serve(c, 0);
		if (d->done && d->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(err, "patientctl: the command was not sent: %s\n",
			        rd_kafka_err2str(d->err));
			return d->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT ? CTL_EXIT_TIMEOUT
			                                                  : CTL_EXIT_FAILED;
		}
		int64_t left = deadline_ms - pw_util_now_ms();
		rd_kafka_message_t *m = ctl_client_reply(c, left < 100 ? (int)left : 100);
		if (m == NULL)
			continue;
		/* Other clients' replies share the topic; ours carries our request id as key. */
		bool ours = m->key_len == strlen(rid) && memcmp(m->key, rid, m->key_len) == 0;
		ctl_exit rc = CTL_EXIT_TIMEOUT;
		if (ours) {
			fprintf(out, "%.*s\n", (int)m->len,
			        m->payload ? (const char *)m->payload : "");
			rc = status_exit(m->payload, m->len);
		}
		rd_kafka_message_destroy(m);
		if (ours)
			return rc;
	}
	fprintf(err, "patientctl: no reply to %s within %d s\n", rid, timeout_s);
	return CTL_EXIT_TIMEOUT;
}

ctl_exit ctl_request_run(const ctl_opts *o, const pw_config *cfg, ctl_token_identity *id,
                         const char *reply_topic, FILE *out, FILE *err)
{
	int64_t deadline = pw_util_now_ms() + (int64_t)o->timeout_s * 1000;
	char rid[CTL_REQID_MAX + 1];
	char *cmd = NULL;
	ctl_client *c = NULL;
	delivery d = {false, RD_KAFKA_RESP_ERR_NO_ERROR};
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
	ctl_exit rc = CTL_EXIT_FAILED;

	if (o->request_id != NULL) {
		snprintf(rid, sizeof(rid), "%s", o->request_id);
	} else if (ctl_reqid_random(rid) != PW_OK) {
		fprintf(err, "patientctl: no random bytes for a request id\n");
		goto out;
	}
	rc = build_command(o, cfg, id, reply_topic, rid, &cmd, err);
	if (rc != CTL_EXIT_OK)
		goto out;
	/* Writes go on the write topic, queries on the query topic. */
	bool creates =
	    o->cmd == CTL_CMD_CREATE || o->cmd == CTL_CMD_UPDATE || o->cmd == CTL_CMD_DELETE;
	ctl_client_conf cc = {
	    .cfg = cfg,
	    .command_topic = creates ? cfg->topic_create : cfg->topic_query,
	    .command_setting = creates ? "TOPIC_CREATE" : "TOPIC_QUERY",
	    .reply_topic = reply_topic,
	    .reply_setting = o->reply_topic ? "--reply-topic" : "TOPIC_REPLIES",
	    .bulk = false,
	    .on_delivery = on_delivery,
	    .ctx = &d,
	};
	rc = ctl_client_open(&c, &cc, deadline, err);
	if (rc != CTL_EXIT_OK)
		goto out;
	char key[48];
	const char *k = ctl_op_key(type_of(o->cmd), o->id, rid, key, sizeof(key));
	if (ctl_client_send(c, k, cmd, strlen(cmd), NULL, deadline, &e) != PW_OK) {
		fprintf(err, "patientctl: the command was not sent: %s\n", rd_kafka_err2str(e));
		rc = CTL_EXIT_FAILED;
		goto out;
	}
	rc = await_reply(c, &d, rid, deadline, o->timeout_s, out, err);
out:
	/* A reply can come before its delivery report: wait for the report, not the reply. */
	ctl_client_close(c, rc == CTL_EXIT_TIMEOUT ? 0 : 1000);
	free(cmd);
	if (fflush(out) != 0 && rc == CTL_EXIT_OK)
		rc = CTL_EXIT_FAILED;
	return rc;
}
