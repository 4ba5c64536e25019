-- The writing half of change.sql (parts/change_read.sql says how the two go together).
,
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
