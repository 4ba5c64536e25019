-- patient.list: the owner's live patients, keyset pagination by id, optional exact dni
-- and name-prefix filters.
-- Sent unprepared, so the planner sees the values: an absent filter (NULL) folds away,
-- and the q prefix becomes a range on the prefix indexes of migration 003 (a generic
-- plan could not know the prefix). :pattern is the LIKE pattern of q, its %, _ and \
-- escaped. :limit is one more than asked, which tells whether there is a next page.
SELECT id, nombre, apellido_paterno, apellido_materno, dni,
       fecha_nacimiento::text AS fecha_nacimiento, sexo, owner_id, version,
       to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at,
       to_char(coalesce(updated_at, created_at) AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS updated_at
FROM patients
WHERE owner_id = :owner AND id > :after_id AND deleted_at IS NULL
  AND (:dni::text IS NULL OR dni = :dni)
  AND (:pattern::text IS NULL
       OR lower(nombre) LIKE lower(:pattern)
       OR lower(apellido_paterno) LIKE lower(:pattern)
       OR lower(apellido_materno) LIKE lower(:pattern))
ORDER BY id
LIMIT :limit
