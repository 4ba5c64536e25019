-- The audit trail, distributable by owner (issue 13). A sharded PostgreSQL (Citus) places
-- every row of a tenant table by its owner_id, and can enforce a primary or unique key
-- only when the key holds that column; it refuses NULL in it. patient_audit was keyed by
-- the Kafka record alone and held refused-token rows with owner_id NULL, so it is split:
--
--   patient_audit_tenant   the rows of commands whose token was accepted: owner_id NOT
--                          NULL, keyed by (owner_id, source record): the same record
--                          always carries the same token, so the same owner, and a
--                          redelivery or replay still adds nothing;
--   patient_audit_refused  the rows of refused tokens (owner unknown), keyed by the source
--                          record; no tenant can read them;
--   patient_audit          a view of both, with the columns and the NULL owner the
--                          contract's Audit section names, for auditors.
--
-- The view is security_invoker: whoever reads it sees what the tables' row-level security
-- lets them see (a tenant: their own rows, never a refused one). Existing rows move, owner
-- by owner; nothing is lost or added. The move runs in the migration's transaction.

-- The table's owner is not subject to its policies unless forced: unforced for the move,
-- so a migration run by the owner (not a superuser) still sees every row.
ALTER TABLE patient_audit NO FORCE ROW LEVEL SECURITY;

CREATE TABLE patient_audit_refused (
  source_topic      text        NOT NULL,
  source_partition  integer     NOT NULL,
  source_offset     bigint      NOT NULL,
  request_id        text        NOT NULL,
  command_type      text,
  status            integer     NOT NULL,
  patient_ids       bigint[]    NOT NULL DEFAULT '{}',
  changed_fields    text[],
  command_time      timestamptz NOT NULL,
  answered_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source_topic, source_partition, source_offset)
);
INSERT INTO patient_audit_refused (source_topic, source_partition, source_offset, request_id,
                                   command_type, status, patient_ids, changed_fields,
                                   command_time, answered_at)
  SELECT source_topic, source_partition, source_offset, request_id, command_type, status,
         patient_ids, changed_fields, command_time, answered_at
  FROM patient_audit WHERE owner_id IS NULL;
DELETE FROM patient_audit WHERE owner_id IS NULL;

ALTER TABLE patient_audit RENAME TO patient_audit_tenant;
ALTER TABLE patient_audit_tenant
  ALTER COLUMN owner_id SET NOT NULL,
  DROP CONSTRAINT patient_audit_pkey,
  ADD CONSTRAINT patient_audit_tenant_pkey
    PRIMARY KEY (owner_id, source_topic, source_partition, source_offset);
ALTER INDEX patient_audit_owner RENAME TO patient_audit_tenant_answered;
ALTER POLICY patient_audit_read ON patient_audit_tenant RENAME TO patient_audit_tenant_read;
ALTER POLICY patient_audit_write ON patient_audit_tenant RENAME TO patient_audit_tenant_write;
-- The policies keep their sub-select (an init-plan: the owner read once per statement),
-- though Citus refuses subqueries in policies; running on Citus is issue 16's.
ALTER TABLE patient_audit_tenant FORCE ROW LEVEL SECURITY;

-- Refused rows: written only with no owner set (the worker's refusal has none), read by no
-- tenant (no SELECT policy: only a role that bypasses row-level security reads them).
ALTER TABLE patient_audit_refused ENABLE ROW LEVEL SECURITY;
ALTER TABLE patient_audit_refused FORCE ROW LEVEL SECURITY;
CREATE POLICY patient_audit_refused_write ON patient_audit_refused FOR INSERT
  WITH CHECK (nullif(current_setting('app.owner_id', true), '') IS NULL);
-- Append-only for the worker, as before: no UPDATE, no DELETE.
-- SELECT so that the view can be read by the worker's role: it sees no refused row.
GRANT SELECT, INSERT ON patient_audit_refused TO patients_app;

CREATE VIEW patient_audit WITH (security_invoker = true) AS
  SELECT source_topic, source_partition, source_offset, owner_id, request_id, command_type,
         status, patient_ids, command_time, answered_at, changed_fields
  FROM patient_audit_tenant
  UNION ALL
  SELECT source_topic, source_partition, source_offset, NULL::text, request_id, command_type,
         status, patient_ids, command_time, answered_at, changed_fields
  FROM patient_audit_refused;
GRANT SELECT ON patient_audit TO patients_app;
