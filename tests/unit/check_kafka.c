/* Unit tests of pw_kafka's client settings: what "no command lost" rests on at the Kafka
 * end. The producer is idempotent (librdkafka then requires acks=all, and retries without
 * duplicates or reordering); the consumer stores an offset only when the loop says so
 * (after the reply is acknowledged), and moves only the partitions that change owner. */
#include <stdio.h>
#include <string.h>

#include <check.h>
#include <librdkafka/rdkafka.h>

#include "pw_check_main.h"
#include "pw_config.h"
#include "pw_kafka.h"

/* The value librdkafka holds for name in conf. */
static const char *get(rd_kafka_conf_t *conf, const char *name)
{
	static char value[256];
	size_t size = sizeof(value);
	ck_assert_msg(rd_kafka_conf_get(conf, name, value, &size) == RD_KAFKA_CONF_OK,
	              "%s is not a setting", name);
	return value;
}

static rd_kafka_conf_t *conf_for(pw_kafka_role role)
{
	static pw_config cfg;
	static char brokers[] = "127.0.0.1:9092", group[] = "patient-worker";
	char err[256];
	memset(&cfg, 0, sizeof(cfg));
	cfg.kafka_brokers = brokers;
	cfg.group_id = group;
	rd_kafka_conf_t *conf = pw_kafka_conf_new(&cfg, role, err, sizeof(err));
	ck_assert_msg(conf != NULL, "%s", err);
	return conf;
}

START_TEST(the_producer_is_idempotent_with_acks_all)
{
	rd_kafka_conf_t *conf = conf_for(PW_KAFKA_PRODUCER);
	ck_assert_str_eq(get(conf, "enable.idempotence"), "true");
	/* acks is a topic setting: the default topic settings, librdkafka's own when we set
	 * none. -1 is "all": every in-sync replica has the reply before it counts as
	 * delivered. */
	rd_kafka_topic_conf_t *tc = rd_kafka_conf_get_default_topic_conf(conf);
	rd_kafka_topic_conf_t *fresh = tc == NULL ? rd_kafka_topic_conf_new() : NULL;
	char acks[16];
	size_t size = sizeof(acks);
	ck_assert_int_eq(rd_kafka_topic_conf_get(tc ? tc : fresh, "acks", acks, &size),
	                 RD_KAFKA_CONF_OK);
	ck_assert_str_eq(acks, "-1");
	if (fresh != NULL)
		rd_kafka_topic_conf_destroy(fresh);
	rd_kafka_conf_destroy(conf);
}
END_TEST

START_TEST(the_consumer_stores_offsets_only_when_told)
{
	rd_kafka_conf_t *conf = conf_for(PW_KAFKA_CONSUMER);
	ck_assert_str_eq(get(conf, "enable.auto.offset.store"), "false");
	ck_assert_str_eq(get(conf, "partition.assignment.strategy"), "cooperative-sticky");
	ck_assert_str_eq(get(conf, "group.id"), "patient-worker");
	ck_assert_str_eq(get(conf, "allow.auto.create.topics"), "false");
	rd_kafka_conf_destroy(conf);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("kafka");
	TCase *tc = tcase_create("kafka");
	tcase_add_test(tc, the_producer_is_idempotent_with_acks_all);
	tcase_add_test(tc, the_consumer_stores_offsets_only_when_told);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
