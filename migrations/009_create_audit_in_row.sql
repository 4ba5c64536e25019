-- A create's audit record is its patient row (issue 14: what a create writes). The row
-- already carries what the audit row repeated (owner, request id, the Kafka record that
-- created it, when); with the command's time beside them it is the create's audit record,
-- and patient_audit shows it as one. That saves each create a second heap row and its
-- primary-key entry: about a fifth of the WAL a create wrote.
--
-- The audit keeps holding (CONTRACT.md, Audit): one row per command that reached the token
-- check, in the same transaction as its effect, keyed by its Kafka record, append-only:
--   - the worker's role may UPDATE only the data columns of a patient (005), never its
--     owner, provenance, created_at or command_time, and may not DELETE: that part of the
--     row is as append-only as patient_audit_tenant;
--   - a redelivered or replayed create record finds its row (same request id and record)
--     and adds nothing; another record with the same request id (a repeat, a conflict) is
--     a new access and gets its row in patient_audit_tenant, as before.
--
-- command_time is set by every create from here on, and only by creates; rows created
-- before this migration keep it NULL and their create's row in patient_audit_tenant, so
-- no create is shown twice and none is lost.
ALTER TABLE patients ADD COLUMN command_time timestamptz;

CREATE OR REPLACE VIEW patient_audit WITH (security_invoker = true) AS
  SELECT source_topic, source_partition, source_offset, owner_id, request_id, command_type,
         status, patient_ids, command_time, answered_at, changed_fields
  FROM patient_audit_tenant
  UNION ALL
  SELECT source_topic, source_partition, source_offset, NULL::text, request_id, command_type,
         status, patient_ids, command_time, answered_at, changed_fields
  FROM patient_audit_refused
  UNION ALL
  SELECT source_topic, source_partition, source_offset, owner_id, request_id,
         'patient.create'::text, 201, ARRAY[id], command_time, created_at, NULL::text[]
  FROM patients
  WHERE command_time IS NOT NULL;
