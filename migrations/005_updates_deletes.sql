-- Versioned updates and soft deletes (issue 11).

-- A patient's version starts at 1 and grows by one with every update or delete; updated_at
-- is NULL until the first one (replies show created_at then); a deleted patient keeps its
-- row (the audit trail and replay need it) with deleted_at set. Adding the columns with
-- constant defaults rewrites no existing row.
ALTER TABLE patients
  ADD COLUMN version    integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
  ADD COLUMN updated_at timestamptz,
  ADD COLUMN deleted_at timestamptz;

-- dni is unique per owner among live patients only: a deleted patient's dni is free for a
-- new patient of the same owner. The new index is built before the old key goes, so the
-- rule holds throughout.
CREATE UNIQUE INDEX patients_live_dni ON patients (owner_id, dni) WHERE deleted_at IS NULL;
ALTER TABLE patients DROP CONSTRAINT patients_owner_id_dni_key;

-- Updates and soft deletes: the worker may change the fields a command changes, never the
-- owner, the id, the provenance or created_at, and still may not DELETE.
GRANT UPDATE (nombre, apellido_paterno, apellido_materno, dni, fecha_nacimiento, sexo,
              version, updated_at, deleted_at) ON patients TO patients_app;

-- Every write's outcome that its patient row cannot tell, per (owner, request_id), so a
-- retried command gets its first reply back even after later writes changed the row:
-- creates answered 409 (as before), updates and deletes whatever they were answered, and
-- the state a create showed (version 1) once its patient has changed. detail holds what
-- the reply showed, {"outcome": ..., ...}: "created" and "updated" with the "patient",
-- "deleted" with the patient's "id", "version" and "deleted_at", "version_conflict" with
-- the "current_version", "not_found" and "conflict" alone. Rows of the earlier designs
-- keep their stored reply text.
ALTER TABLE patient_create_requests RENAME TO patient_requests;
ALTER TABLE patient_requests
  ADD COLUMN command_type text NOT NULL DEFAULT 'patient.create',
  ADD COLUMN detail       jsonb;
ALTER INDEX patient_create_requests_pkey RENAME TO patient_requests_pkey;
ALTER POLICY patient_create_requests_owner ON patient_requests RENAME TO patient_requests_owner;

-- The patient object replies show, as jsonb (the worker restores the key order): what
-- patient_requests keeps of a reply when a later write would change what its row says.
-- Called with a row of patients (`patient_data(p)`), so no statement spells it out.
CREATE FUNCTION patient_data(p patients) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', p.id, 'nombre', p.nombre, 'apellido_paterno', p.apellido_paterno,
    'apellido_materno', p.apellido_materno, 'dni', p.dni,
    'fecha_nacimiento', p.fecha_nacimiento::text, 'sexo', p.sexo, 'owner_id', p.owner_id,
    'version', p.version,
    'created_at', to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'updated_at', to_char(coalesce(p.updated_at, p.created_at) AT TIME ZONE 'UTC',
                          'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;

-- The audit row of an update names the fields it changed (never their values); a command
-- whose type is missing or unknown is recorded with command_type NULL, as the contract's
-- Audit section says (rows written before keep 'unknown').
ALTER TABLE patient_audit
  ADD COLUMN changed_fields text[],
  ALTER COLUMN command_type DROP NOT NULL;
