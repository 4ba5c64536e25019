#!/bin/sh
# The official image's kafka-topics.sh, for the stand-in (tests/docker/kafka/Containerfile).
exec java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j.configuration=file:/opt/kafka/config/tools-log4j.properties \
	-cp "/opt/kafka/libs/*" org.apache.kafka.tools.TopicCommand "$@"
