-- Creates on Citus, step 3 (common/pw_creates_routed.c): the patients the 201 replies
-- show, by id, in the form replies take. Apart from the INSERT because Citus allows no
-- function that is not immutable (to_char) in a RETURNING clause.
SELECT id, nombre, apellido_paterno, apellido_materno, dni,
       fecha_nacimiento::text AS fecha_nacimiento, sexo, owner_id, version,
       to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at,
       to_char(coalesce(updated_at, created_at) AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS updated_at
FROM patients
WHERE owner_id = :owner AND id = ANY (:ids::bigint[])
