-- The audit row of a command whose token was refused: no owner is known, so it goes to the
-- table no tenant reads (migration 007), keyed by the Kafka record.
INSERT INTO patient_audit_refused (request_id, command_type, status, patient_ids,
                                   source_topic, source_partition, source_offset, command_time)
VALUES (:request_id, :command_type, :status, :patient_ids,
        :source_topic, :source_partition, :source_offset, to_timestamp(:command_time))
ON CONFLICT DO NOTHING
