/* patientctl: a small client for patient-worker. `token` mints a development token,
 * `create` sends one patient.create and prints its reply. (More commands: issue 6.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>
#include <librdkafka/rdkafka.h>

#include "pw_config.h"
#include "pw_kafka.h"

static void usage(FILE *out)
{
	fprintf(out, "usage:\n"
	             "  patientctl token --sub EMAIL [--ttl SECONDS]\n"
	             "      print a development token signed with JWT_SECRET (HS256 only)\n"
	             "  patientctl create (--sub EMAIL | --token JWT) --payload JSON\n"
	             "                    [--request-id ID] [--timeout SECONDS]\n"
	             "      send one patient.create to TOPIC_CREATE and print the reply JSON;\n"
	             "      exit 0 for 2xx, 1 for 4xx/5xx, 3 on timeout (default 10 s)\n"
	             "Environment: KAFKA_BROKERS, JWT_SECRET, TOPIC_CREATE, TOPIC_REPLIES (as the "
	             "worker).\n");
}

static const char *arg(int argc, char **argv, const char *name)
{
	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

static char *mint(const char *secret, const char *sub, long ttl)
{
	jwt_t *jwt = NULL;
	char *tok = NULL;
	time_t now = time(NULL);

	if (jwt_new(&jwt) != 0)
		return NULL;
	if (jwt_add_grant(jwt, "sub", sub) == 0 && jwt_add_grant_int(jwt, "iat", (long)now) == 0 &&
	    jwt_add_grant_int(jwt, "exp", (long)now + ttl) == 0 &&
	    jwt_add_grant(jwt, "scope", "patients:read patients:write") == 0 &&
	    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)) ==
	        0)
		tok = jwt_encode_str(jwt);
	jwt_free(jwt);
	return tok;
}

/* Assigns every partition of topic at its current end, so the reply to a command sent
 * afterwards cannot be missed. */
static int read_from_end(rd_kafka_t *c, const char *topic)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(c, topic, NULL);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
	int rc = -1;

	if (rd_kafka_metadata(c, 0, t, &md, 10000) != 0 || md->topic_cnt != 1 ||
	    md->topics[0].err != 0) {
		fprintf(stderr, "patientctl: reply topic %s not found\n", topic);
		goto out;
	}
	for (int i = 0; i < md->topics[0].partition_cnt; i++) {
		int64_t lo, hi;
		if (rd_kafka_query_watermark_offsets(c, topic, i, &lo, &hi, 10000) != 0)
			goto out;
		rd_kafka_topic_partition_list_add(l, topic, i)->offset = hi;
	}
	rc = rd_kafka_assign(c, l) == 0 ? 0 : -1;
out:
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	rd_kafka_topic_partition_list_destroy(l);
	return rc;
}

static int cmd_create(const pw_config *cfg, int argc, char **argv)
{
	const char *payload_text = arg(argc, argv, "--payload");
	const char *token = arg(argc, argv, "--token");
	const char *sub = arg(argc, argv, "--sub");
	const char *rid_arg = arg(argc, argv, "--request-id");
	const char *timeout_arg = arg(argc, argv, "--timeout");
	int timeout_s = timeout_arg ? atoi(timeout_arg) : 10;
	char rid[64], err[256], group[64];
	char *minted = NULL, *cmd = NULL;
	rd_kafka_t *p = NULL, *c = NULL;
	json_t *payload = NULL, *env = NULL;
	int rc = 1;

	if (payload_text == NULL || (token == NULL && sub == NULL)) {
		usage(stderr);
		return 2;
	}
	payload = json_loads(payload_text, 0, NULL);
	if (!json_is_object(payload)) {
		fprintf(stderr, "patientctl: --payload is not a JSON object\n");
		rc = 2;
		goto out;
	}
	if (token == NULL) {
		if (cfg->jwt_secret == NULL) {
			fprintf(stderr, "JWT_SECRET: required to mint a token for --sub\n");
			rc = 2;
			goto out;
		}
		token = minted = mint(cfg->jwt_secret, sub, 3600);
	}
	snprintf(rid, sizeof(rid), "%s", rid_arg ? rid_arg : "");
	if (rid_arg == NULL)
		snprintf(rid, sizeof(rid), "ctl-%ld-%ld", (long)time(NULL), (long)clock());
	env = json_pack("{s:s, s:s, s:s, s:s, s:O}", "request_id", rid, "type", "patient.create",
	                "token", token, "reply_to", cfg->topic_replies, "payload", payload);
	cmd = env ? json_dumps(env, JSON_COMPACT) : NULL;
	if (cmd == NULL)
		goto out;

	rd_kafka_conf_t *pc = pw_kafka_conf_new(cfg, PW_KAFKA_CLIENT, err, sizeof(err));
	rd_kafka_conf_t *cc = pw_kafka_conf_new(cfg, PW_KAFKA_CLIENT, err, sizeof(err));
	snprintf(group, sizeof(group), "patientctl-%ld", (long)time(NULL));
	if (pc == NULL || cc == NULL ||
	    pw_kafka_conf_set(cc, "group.id", group, err, sizeof(err)) != 0 ||
	    pw_kafka_conf_set(cc, "enable.auto.commit", "false", err, sizeof(err)) != 0 ||
	    (p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err))) == NULL ||
	    (c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err))) == NULL) {
		fprintf(stderr, "patientctl: %s\n", err);
		goto out;
	}
	if (read_from_end(c, cfg->topic_replies) != 0)
		goto out;
	if (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(cfg->topic_create),
	                      RD_KAFKA_V_KEY(rid, strlen(rid)), RD_KAFKA_V_VALUE(cmd, strlen(cmd)),
	                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) != 0 ||
	    rd_kafka_flush(p, 10000) != 0) {
		fprintf(stderr, "patientctl: could not send the command\n");
		goto out;
	}
	rc = 3;
	time_t end = time(NULL) + timeout_s;
	while (time(NULL) < end) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
		if (m == NULL)
			continue;
		if (m->err == 0 && m->key_len == strlen(rid) &&
		    memcmp(m->key, rid, m->key_len) == 0) {
			json_t *r = json_loadb(m->payload, m->len, 0, NULL);
			json_t *st = json_object_get(r, "status");
			printf("%.*s\n", (int)m->len, (const char *)m->payload);
			rc = json_is_integer(st) && json_integer_value(st) / 100 == 2 ? 0 : 1;
			json_decref(r);
			rd_kafka_message_destroy(m);
			break;
		}
		rd_kafka_message_destroy(m);
	}
	if (rc == 3)
		fprintf(stderr, "patientctl: no reply for %s within %d s\n", rid, timeout_s);
out:
	if (c) {
		rd_kafka_consumer_close(c);
		rd_kafka_destroy(c);
	}
	if (p)
		rd_kafka_destroy(p);
	free(cmd);
	json_decref(env);
	json_decref(payload);
	free(minted);
	return rc;
}

int main(int argc, char **argv)
{
	pw_config cfg;
	int rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	/* Only the settings a client needs; its own flags are not the worker's. */
	char *none[] = {argv[0]};
	unsigned need = strcmp(argv[1], "create") == 0  ? PW_CFG_NEED_KAFKA
	                : strcmp(argv[1], "token") == 0 ? PW_CFG_NEED_JWT
	                                                : 0;
	if (pw_config_load(&cfg, 1, none, need, stderr) != PW_OK) {
		pw_config_free(&cfg);
		return 2;
	}
	if (strcmp(argv[1], "token") == 0) {
		const char *sub = arg(argc, argv, "--sub");
		const char *ttl = arg(argc, argv, "--ttl");
		char *tok;
		if (sub == NULL || cfg.jwt_secret == NULL) {
			fprintf(stderr, sub ? "JWT_SECRET: required\n" : "--sub is required\n");
			rc = 2;
		} else if ((tok = mint(cfg.jwt_secret, sub, ttl ? atol(ttl) : 3600)) == NULL) {
			rc = 1;
		} else {
			printf("%s\n", tok);
			free(tok);
			rc = 0;
		}
	} else if (strcmp(argv[1], "create") == 0) {
		rc = cmd_create(&cfg, argc, argv);
	} else {
		usage(stderr);
		rc = 2;
	}
	pw_config_free(&cfg);
	return rc;
}
