-- One patient.update or patient.delete (:command_type) of one owner, in the write batch's
-- transaction after set_config('app.owner_id', :owner, true), after the owner's earlier
-- writes of the batch (so the outcome is the one-at-a-time one). A delete is an update
-- that sets no field but deleted_at: the row stays (the audit trail and replay need it)
-- and its dni is free again. The outcome:
--   repeat                the same request (type and payload hash) answered before: that
--                         answer again, whatever has changed since;
--   idempotency_conflict  the request id came before with another type or payload (a
--                         create's request id included);
--   not_found             the owner has no live patient with :id;
--   version_conflict      :version is not the current one: nothing changes;
--   conflict              an update's new dni belongs to another live patient of the owner;
--   updated, deleted      done, version + 1.
-- A decided outcome is recorded in patient_requests, so a retry gets it back after later
-- writes; the first change of a patient keeps what its create's reply showed. The audit
-- row of an update names the fields whose value changed.
WITH prior AS (
  SELECT r.status, r.detail,
         r.command_type = :command_type AND r.payload_hash = :payload_hash AS same
  FROM patient_requests r
  WHERE r.owner_id = :owner AND r.request_id = :request_id
),
created AS (
  SELECT 1 FROM patients p WHERE p.owner_id = :owner AND p.request_id = :request_id
),
cur AS (
  SELECT p AS pat, p.id, p.version FROM patients p
  WHERE p.owner_id = :owner AND p.id = :id::bigint AND p.deleted_at IS NULL
    AND NOT EXISTS (SELECT 1 FROM prior) AND NOT EXISTS (SELECT 1 FROM created)
  FOR UPDATE
),
want AS (
  SELECT c.id,
         CASE WHEN :set_nombre::boolean THEN :nombre::text ELSE (c.pat).nombre END
           AS nombre,
         CASE WHEN :set_apellido_paterno::boolean THEN :apellido_paterno::text
              ELSE (c.pat).apellido_paterno END AS apellido_paterno,
         CASE WHEN :set_apellido_materno::boolean THEN :apellido_materno::text
              ELSE (c.pat).apellido_materno END AS apellido_materno,
         CASE WHEN :set_dni::boolean THEN :dni::text ELSE (c.pat).dni END AS dni,
         CASE WHEN :set_fecha_nacimiento::boolean THEN :fecha_nacimiento::date
              ELSE (c.pat).fecha_nacimiento END AS fecha_nacimiento,
         CASE WHEN :set_sexo::boolean THEN :sexo::text ELSE (c.pat).sexo END AS sexo
  FROM cur c
),
changed AS (
  SELECT array_remove(ARRAY[
           CASE WHEN w.nombre IS DISTINCT FROM (c.pat).nombre THEN 'nombre' END,
           CASE WHEN w.apellido_paterno IS DISTINCT FROM (c.pat).apellido_paterno
                THEN 'apellido_paterno' END,
           CASE WHEN w.apellido_materno IS DISTINCT FROM (c.pat).apellido_materno
                THEN 'apellido_materno' END,
           CASE WHEN w.dni IS DISTINCT FROM (c.pat).dni THEN 'dni' END,
           CASE WHEN w.fecha_nacimiento IS DISTINCT FROM (c.pat).fecha_nacimiento
                THEN 'fecha_nacimiento' END,
           CASE WHEN w.sexo IS DISTINCT FROM (c.pat).sexo THEN 'sexo' END], NULL) AS fields
  FROM cur c, want w
),
verdict AS (
  SELECT CASE
           WHEN EXISTS (SELECT 1 FROM prior) THEN
             (SELECT CASE WHEN same THEN 'repeat' ELSE 'idempotency_conflict' END FROM prior)
           WHEN EXISTS (SELECT 1 FROM created) THEN 'idempotency_conflict'
           WHEN NOT EXISTS (SELECT 1 FROM cur) THEN 'not_found'
           WHEN (SELECT version FROM cur) <> :version::int THEN 'version_conflict'
           WHEN EXISTS (SELECT 1 FROM patients p, want w
                        WHERE p.owner_id = :owner AND p.dni = w.dni
                          AND p.deleted_at IS NULL AND p.id <> w.id) THEN 'conflict'
           WHEN :command_type = 'patient.delete' THEN 'deleted'
           ELSE 'updated'
         END AS outcome,
         -- The change's time, here rather than in the UPDATE: Citus takes no
         -- non-immutable function inside a CASE of an UPDATE.
         now() AS at
),
upd AS (
  UPDATE patients p
  SET nombre = w.nombre, apellido_paterno = w.apellido_paterno,
      apellido_materno = w.apellido_materno, dni = w.dni,
      fecha_nacimiento = w.fecha_nacimiento, sexo = w.sexo,
      version = p.version + 1, updated_at = v.at,
      deleted_at = CASE WHEN v.outcome = 'deleted' THEN v.at END
  FROM want w, verdict v
  WHERE v.outcome IN ('updated', 'deleted') AND p.owner_id = :owner AND p.id = w.id
  RETURNING p AS pat
),
snapshot AS (
  INSERT INTO patient_requests (owner_id, request_id, payload_hash, status, patient_id,
                                command_type, detail)
  SELECT :owner, (c.pat).request_id, (c.pat).payload_hash, 201, c.id, 'patient.create',
         jsonb_build_object('outcome', 'created', 'patient', patient_data(c.pat))
  FROM cur c, verdict v
  WHERE v.outcome IN ('updated', 'deleted') AND c.version = 1
    AND (c.pat).request_id IS NOT NULL
  ON CONFLICT DO NOTHING
),
result AS (
  SELECT v.outcome,
         CASE WHEN v.outcome = 'repeat' THEN (SELECT status FROM prior)
              WHEN v.outcome = 'not_found' THEN 404
              WHEN v.outcome IN ('updated', 'deleted') THEN 200 ELSE 409 END AS status,
         CASE v.outcome
           WHEN 'repeat' THEN (SELECT detail FROM prior)
           WHEN 'version_conflict' THEN
             jsonb_build_object('outcome', 'version_conflict',
                                'current_version', (SELECT version FROM cur))
           WHEN 'updated' THEN
             (SELECT jsonb_build_object('outcome', 'updated', 'patient', patient_data(u.pat))
              FROM upd u)
           WHEN 'deleted' THEN
             (SELECT jsonb_build_object(
                       'outcome', 'deleted', 'id', (u.pat).id, 'version', (u.pat).version,
                       'deleted_at', to_char((u.pat).deleted_at AT TIME ZONE 'UTC',
                                             'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
              FROM upd u)
           ELSE jsonb_build_object('outcome', v.outcome)
         END AS detail
  FROM verdict v
),
rec AS (
  INSERT INTO patient_requests (owner_id, request_id, payload_hash, status, patient_id,
                                command_type, detail)
  SELECT :owner, :request_id, :payload_hash, r.status, :id::bigint, :command_type, r.detail
  FROM result r
  WHERE r.outcome NOT IN ('repeat', 'idempotency_conflict')
  ON CONFLICT DO NOTHING
),
aud AS (
  INSERT INTO patient_audit_tenant (owner_id, request_id, command_type, status,
                                    patient_ids, changed_fields, source_topic,
                                    source_partition, source_offset, command_time)
  SELECT :owner, :request_id, :command_type, r.status,
         CASE WHEN r.outcome IN ('updated', 'deleted', 'version_conflict', 'conflict')
              THEN ARRAY[:id::bigint] ELSE '{}'::bigint[] END,
         CASE WHEN r.outcome = 'updated' THEN (SELECT fields FROM changed) END,
         :source_topic, :source_partition::int, :source_offset::bigint,
         to_timestamp(:command_time::float8)
  FROM result r
  ON CONFLICT DO NOTHING
)
SELECT outcome, status, detail::text AS detail FROM result
