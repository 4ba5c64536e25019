-- Patients, one tenant per owner_id (the token's sub). Every key leads with owner_id,
-- so a tenant's rows sit together and the table can be sharded by owner later.
CREATE TABLE patients (
  owner_id          text        NOT NULL CHECK (owner_id <> ''),
  id                bigint      GENERATED ALWAYS AS IDENTITY,
  nombre            text        NOT NULL,
  apellido_paterno  text        NOT NULL,
  apellido_materno  text,
  -- Unique per owner, not globally: a global key would tell one tenant that another
  -- tenant has registered this DNI.
  dni               text        NOT NULL,
  fecha_nacimiento  date        NOT NULL,
  sexo              text        NOT NULL DEFAULT 'M' CHECK (sexo IN ('M', 'F', 'X')),
  created_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (owner_id, id),
  UNIQUE (owner_id, dni)
);

-- Forced, so the table owner is bound too. The sub-select makes the setting an
-- init-plan evaluated once per statement, not once per row; nullif makes an unset or
-- empty setting match nothing (fail closed).
ALTER TABLE patients ENABLE ROW LEVEL SECURITY;
ALTER TABLE patients FORCE ROW LEVEL SECURITY;
CREATE POLICY patients_owner ON patients
  USING (owner_id = (SELECT nullif(current_setting('app.owner_id', true), '')))
  WITH CHECK (owner_id = (SELECT nullif(current_setting('app.owner_id', true), '')));

-- One row per answered create, keyed like the command: (owner, request_id). A repeat
-- with the same payload hash gets the stored reply byte for byte; another payload
-- gets 409 idempotency_conflict. reply is NULL only inside the creating transaction.
CREATE TABLE patient_create_requests (
  owner_id      text        NOT NULL CHECK (owner_id <> ''),
  request_id    text        NOT NULL,
  payload_hash  text        NOT NULL,
  status        integer,
  reply         text,
  patient_id    bigint,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (owner_id, request_id)
);

ALTER TABLE patient_create_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE patient_create_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY patient_create_requests_owner ON patient_create_requests
  USING (owner_id = (SELECT nullif(current_setting('app.owner_id', true), '')))
  WITH CHECK (owner_id = (SELECT nullif(current_setting('app.owner_id', true), '')));

-- Only what the worker does: no DELETE, no TRUNCATE, and UPDATE only of the reply
-- columns it fills in the creating transaction.
GRANT SELECT, INSERT ON patients TO patients_app;
GRANT SELECT, INSERT ON patient_create_requests TO patients_app;
GRANT UPDATE (status, reply, patient_id) ON patient_create_requests TO patients_app;
