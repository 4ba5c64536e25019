-- The audit row of one command answered outside the create batch (queries, refused
-- commands), in the command's own transaction. Keyed by the Kafka record: a redelivery or
-- a replay of the same record adds nothing. An owner of '' (token refused) is stored NULL.
INSERT INTO patient_audit (owner_id, request_id, command_type, status, patient_ids,
                           source_topic, source_partition, source_offset, command_time)
VALUES (nullif(:owner, ''), :request_id, :command_type, :status, :patient_ids,
        :source_topic, :source_partition, :source_offset, to_timestamp(:command_time))
ON CONFLICT DO NOTHING
