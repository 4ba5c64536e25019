-- Queries and the audit trail.

-- Where each patient came from: the command that created it. Replay --verify matches
-- rows to commands through these; rows made before this migration have them NULL.
ALTER TABLE patients
  ADD COLUMN request_id       text,
  ADD COLUMN source_topic     text,
  ADD COLUMN source_partition integer,
  ADD COLUMN source_offset    bigint;
CREATE INDEX patients_source ON patients (source_topic, source_partition, source_offset);

-- patient.list's q: a case-insensitive prefix of any of the three names. One index per
-- name, each led by owner_id, so the planner ORs three range scans of this owner's
-- matching rows instead of reading all of the owner's rows. text_pattern_ops makes
-- LIKE 'prefix%' an index range whatever the database's collation.
CREATE INDEX patients_nombre_prefix
  ON patients (owner_id, lower(nombre) text_pattern_ops);
CREATE INDEX patients_apellido_paterno_prefix
  ON patients (owner_id, lower(apellido_paterno) text_pattern_ops);
CREATE INDEX patients_apellido_materno_prefix
  ON patients (owner_id, lower(apellido_materno) text_pattern_ops);

-- One row per answered command, written in the same transaction as its work. Keyed by
-- the Kafka record it answers, so a redelivery or a replay of the same record adds
-- nothing, while a new record that repeats a request id is recorded as the new access
-- it is. owner_id is NULL when the caller could not be authenticated (401): the row
-- still says that someone tried, and no tenant can read it.
CREATE TABLE patient_audit (
  source_topic      text        NOT NULL,
  source_partition  integer     NOT NULL,
  source_offset     bigint      NOT NULL,
  owner_id          text        CHECK (owner_id <> ''),
  request_id        text        NOT NULL,
  command_type      text        NOT NULL,
  status            integer     NOT NULL,
  patient_ids       bigint[]    NOT NULL DEFAULT '{}',
  command_time      timestamptz NOT NULL,  -- the broker's append time, else when taken
  answered_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source_topic, source_partition, source_offset)
);
CREATE INDEX patient_audit_owner ON patient_audit (owner_id, answered_at);

ALTER TABLE patient_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE patient_audit FORCE ROW LEVEL SECURITY;
CREATE POLICY patient_audit_read ON patient_audit FOR SELECT
  USING (owner_id = (SELECT nullif(current_setting('app.owner_id', true), '')));
-- Anonymous rows (owner NULL) may only be written with no owner set.
CREATE POLICY patient_audit_write ON patient_audit FOR INSERT
  WITH CHECK (owner_id IS NOT DISTINCT FROM
              (SELECT nullif(current_setting('app.owner_id', true), '')));

-- Append-only for the worker: no UPDATE, no DELETE.
GRANT SELECT, INSERT ON patient_audit TO patients_app;
