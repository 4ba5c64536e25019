-- patient.get: one live patient of the owner (row-level security scopes it as well).
SELECT id, nombre, apellido_paterno, apellido_materno, dni,
       fecha_nacimiento::text AS fecha_nacimiento, sexo, owner_id, version,
       to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at,
       to_char(coalesce(updated_at, created_at) AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS updated_at
FROM patients
WHERE owner_id = :owner AND id = :id AND deleted_at IS NULL
