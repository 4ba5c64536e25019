-- Every create of one owner (one source topic) in one statement, run once per owner in
-- the batch's transaction after set_config('app.owner_id', :owner, true). The inputs are
-- parallel arrays, one element per command; :ords numbers them so each gets its own row
-- back. Each command's outcome (status):
--   a request answered before (a patient row carrying its request id, or an outcome
--   recorded in patient_requests: a 409, the state a create showed before its patient
--   changed, or another command's answer): that answer again, or -409
--   (idempotency_conflict) when the payload hash differs;
--   a new one: inserted (201), or meets a live patient of this owner with its dni (409,
--   recorded so that a later
--   different payload under the same request id is still an idempotency conflict);
--   NULL: not inserted and no visible reason, i.e. a concurrent transaction wrote the same
--   request or dni; the caller asks again in a new statement, which sees it committed
--   (ON CONFLICT waited for it).
-- The audit rows of the decided ones are written here too; a create's own is its patient
-- row (command_time set, migration 009), so only the others get a patient_audit_tenant row.
WITH input AS (
  SELECT * FROM unnest(:ords::int[], :request_ids::text[], :payload_hashes::text[],
                       :nombres::text[], :apellidos_paternos::text[],
                       :apellidos_maternos::text[], :dnis::text[],
                       :fechas_nacimiento::date[], :sexos::text[], :partitions::int[],
                       :offsets::bigint[], :command_times::float8[])
    AS t(ord, request_id, payload_hash, nombre, apellido_paterno, apellido_materno, dni,
         fecha_nacimiento, sexo, src_partition, src_offset, command_time)
),
prior_rec AS (
  SELECT i.ord, r.payload_hash, r.status, r.reply, r.detail
  FROM input i
  JOIN patient_requests r ON r.owner_id = :owner AND r.request_id = i.request_id
),
prior_row AS (
  SELECT i.ord, p.id, p.payload_hash,
         (p.command_time IS NOT NULL AND p.source_topic = :source_topic
          AND p.source_partition = i.src_partition
          AND p.source_offset = i.src_offset) AS same_record
  FROM input i
  JOIN patients p ON p.owner_id = :owner AND p.request_id = i.request_id
),
ins AS (
  INSERT INTO patients (owner_id, nombre, apellido_paterno, apellido_materno, dni,
                        fecha_nacimiento, sexo, request_id, payload_hash, source_topic,
                        source_partition, source_offset, command_time)
  SELECT :owner, i.nombre, i.apellido_paterno, i.apellido_materno, i.dni,
         i.fecha_nacimiento, i.sexo, i.request_id, i.payload_hash, :source_topic,
         i.src_partition, i.src_offset, to_timestamp(i.command_time)
  FROM input i
  WHERE NOT EXISTS (SELECT 1 FROM prior_rec x WHERE x.ord = i.ord)
    AND NOT EXISTS (SELECT 1 FROM prior_row x WHERE x.ord = i.ord)
  ORDER BY i.ord
  ON CONFLICT DO NOTHING
  RETURNING id, request_id, payload_hash, dni, nombre, apellido_paterno, apellido_materno,
            fecha_nacimiento, sexo, version, created_at, updated_at, source_partition,
            source_offset
),
decided AS (
  SELECT i.ord, i.request_id, i.payload_hash, i.src_partition, i.src_offset,
         i.command_time, rc.reply AS stored, rc.detail AS snapshot,
         CASE WHEN rc.ord IS NOT NULL THEN
                CASE WHEN rc.payload_hash = i.payload_hash THEN rc.status ELSE -409 END
              WHEN pr.ord IS NOT NULL THEN
                CASE WHEN pr.payload_hash = i.payload_hash THEN 201 ELSE -409 END
              WHEN n.id IS NOT NULL THEN
                CASE WHEN n.payload_hash = i.payload_hash THEN 201 ELSE -409 END
              WHEN EXISTS (SELECT 1 FROM ins d WHERE d.dni = i.dni)
                OR EXISTS (SELECT 1 FROM patients p
                           WHERE p.owner_id = :owner AND p.dni = i.dni
                             AND p.deleted_at IS NULL) THEN 409
         END AS status,
         coalesce(pr.id, n.id) AS id,
         -- The patient row is this record's audit row: made by it now, or before (a
         -- redelivery or a replay of the record that created it).
         coalesce(n.source_partition = i.src_partition AND n.source_offset = i.src_offset,
                  false) OR coalesce(pr.same_record, false) AS own_row
  FROM input i
  LEFT JOIN prior_rec rc ON rc.ord = i.ord
  LEFT JOIN prior_row pr ON pr.ord = i.ord
  LEFT JOIN ins n ON n.request_id = i.request_id
),
rec AS (
  INSERT INTO patient_requests (owner_id, request_id, payload_hash, status)
  SELECT DISTINCT ON (d.request_id) :owner, d.request_id, d.payload_hash, 409
  FROM decided d
  WHERE d.status = 409 AND NOT EXISTS (SELECT 1 FROM prior_rec x WHERE x.ord = d.ord)
  ORDER BY d.request_id, d.ord
  ON CONFLICT DO NOTHING
),
aud AS (
  INSERT INTO patient_audit_tenant (owner_id, request_id, command_type, status,
                                    patient_ids, source_topic, source_partition,
                                    source_offset, command_time)
  SELECT :owner, d.request_id, 'patient.create', abs(d.status),
         CASE WHEN d.status = 201 THEN ARRAY[d.id] ELSE '{}'::bigint[] END, :source_topic,
         d.src_partition, d.src_offset, to_timestamp(d.command_time)
  FROM decided d
  WHERE d.status IS NOT NULL AND NOT d.own_row
  ON CONFLICT DO NOTHING
)
SELECT d.ord, d.status, d.stored, d.snapshot::text AS snapshot, c.id, c.nombre,
       c.apellido_paterno, c.apellido_materno, c.dni,
       c.fecha_nacimiento::text AS fecha_nacimiento, c.sexo, :owner AS owner_id, c.version,
       to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at,
       to_char(coalesce(c.updated_at, c.created_at) AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS updated_at
FROM decided d
LEFT JOIN (SELECT id, nombre, apellido_paterno, apellido_materno, dni, fecha_nacimiento,
                  sexo, version, created_at, updated_at
           FROM ins
           UNION ALL
           SELECT p.id, p.nombre, p.apellido_paterno, p.apellido_materno, p.dni,
                  p.fecha_nacimiento, p.sexo, p.version, p.created_at, p.updated_at
           FROM patients p
           WHERE p.owner_id = :owner AND p.id IN (SELECT id FROM prior_row)) c
  ON c.id = d.id AND d.status = 201
ORDER BY d.ord
