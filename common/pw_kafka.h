/* librdkafka helpers shared by the worker and the tests: configuration and headers. */
#ifndef PW_KAFKA_H
#define PW_KAFKA_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "pw_config.h"
#include "pw_status.h"

typedef enum pw_kafka_role {
	PW_KAFKA_CONSUMER, /**< the worker's group consumer */
	PW_KAFKA_PRODUCER, /**< the worker's idempotent reply/DLQ producer */
	PW_KAFKA_CLIENT,   /**< a plain client (tests, tools): brokers and logging only */
} pw_kafka_role;

/* A new configuration for the role with the project's settings (see the .c for why each
 * is set) and librdkafka's log routed to pw_log (its errors too, for the worker's roles). NULL with
 * errstr filled on failure. The caller owns it until rd_kafka_new succeeds. */
rd_kafka_conf_t *pw_kafka_conf_new(const pw_config *cfg, pw_kafka_role role, char *errstr,
                                   size_t errstr_size);

/* Sets one property: PW_OK, or PW_E_CONFIG with errstr filled. */
PW_MUST_CHECK pw_status pw_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                                          const char *value, char *errstr, size_t errstr_size);

/* The last header called name: true and its value (borrowed from the message, not
 * NUL-terminated), or false when absent. */
bool pw_kafka_header(const rd_kafka_message_t *m, const char *name, const void **value,
                     size_t *len);

#endif
