/* patientctl's Kafka session: a producer to one command topic and a reader of one reply
 * topic, from its end as it was before anything was sent. */
#ifndef CTL_CLIENT_H
#define CTL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "ctl_exit.h"
#include "pw_config.h"
#include "pw_status.h"

typedef struct ctl_client ctl_client;

/* Called for every record's delivery report with the opaque given to ctl_client_send;
 * err is 0 when the broker has it. */
typedef void (*ctl_client_delivery_fn)(void *ctx, void *opaque, rd_kafka_resp_err_t err);

typedef struct ctl_client_conf {
	const pw_config *cfg;
	const char *command_topic;
	const char *command_setting; /**< names the topic in messages: "TOPIC_CREATE" */
	const char *reply_topic;
	const char *reply_setting; /**< "TOPIC_REPLIES" or "--reply-topic" */
	bool bulk;                 /**< batch records (load) rather than send each at once */
	ctl_client_delivery_fn on_delivery;
	void *ctx;
} ctl_client_conf;

/* Connects, checks that both topics exist, and starts reading the reply topic at its
 * current end. Gives up at deadline_ms (pw_util_now_ms). Returns CTL_EXIT_OK; CTL_EXIT_USAGE
 * when a topic does not exist; CTL_EXIT_TIMEOUT when the broker did not answer in time;
 * CTL_EXIT_FAILED otherwise; each failure after one line on err. *out is the caller's (close
 * it with ctl_client_close); conf is copied, but the topics, settings, cfg and ctx it points
 * to are borrowed and must outlive the client. */
PW_MUST_CHECK ctl_exit ctl_client_open(ctl_client **out, const ctl_client_conf *conf,
                                       int64_t deadline_ms, FILE *err);

/* Queues one record keyed by key (key and value are copied); while the producer's queue is
 * full, serves delivery reports until there is room or deadline_ms. PW_OK; PW_E_RETRY when
 * the queue stayed full until deadline_ms, PW_E_INVALID when librdkafka refused the record
 * (too large, unknown topic); *err says which. */
PW_MUST_CHECK pw_status ctl_client_send(ctl_client *c, const char *key, const char *value,
                                        size_t len, void *opaque, int64_t deadline_ms,
                                        rd_kafka_resp_err_t *err);

/* Serves delivery reports that are due, waiting at most timeout_ms for one. */
void ctl_client_serve(ctl_client *c, int timeout_ms);

/* The next record of the reply topic, waiting at most timeout_ms; NULL when none came.
 * The caller destroys it (rd_kafka_message_destroy). */
rd_kafka_message_t *ctl_client_reply(ctl_client *c, int timeout_ms);

/* Waits up to timeout_ms for queued records, then closes. NULL is fine. */
void ctl_client_close(ctl_client *c, int timeout_ms);

#endif
