-- One patient.update or patient.delete (:command_type) of one owner, in the write batch's
-- transaction after SET LOCAL app.owner_id = :owner, after the owner's earlier
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
-- This part reads and decides; it is the start of two statements (CMakeLists.txt puts
-- them together): change.sql, this and parts/change_write.sql, the whole change in one
-- statement on plain PostgreSQL; change_decide.sql, this and parts/change_decide.sql, on
-- Citus, where change.sql's data-modifying CTEs would run as ten subplans: it reads and
-- decides in one statement Citus routes whole, and pw_changes.c writes what it decided.
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
  -- ROW(p.*)::patients: on a Citus shard p has the shard's row type, which
  -- patient_data() does not take.
  SELECT ROW(p.*)::patients AS pat, p.id, p.version FROM patients p
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
)
