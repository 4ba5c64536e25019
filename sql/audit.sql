-- The audit row of one command answered outside the create batch (queries, and commands
-- refused after their token was accepted), in the command's own transaction. Keyed by the
-- owner and the Kafka record: a redelivery or a replay of the same record adds nothing.
INSERT INTO patient_audit_tenant (owner_id, request_id, command_type, status, patient_ids,
                                  source_topic, source_partition, source_offset, command_time)
VALUES (:owner, :request_id, :command_type, :status, :patient_ids,
        :source_topic, :source_partition, :source_offset, to_timestamp(:command_time))
ON CONFLICT DO NOTHING
