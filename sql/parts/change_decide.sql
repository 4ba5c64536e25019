-- The end of change_decide.sql (parts/change_read.sql says how the parts go together):
-- the decision and what the writes need, for pw_changes.c on Citus.
SELECT v.outcome,
       (SELECT status FROM prior) AS prior_status,
       (SELECT detail::text FROM prior) AS prior_detail,
       (SELECT version FROM cur) AS cur_version,
       (SELECT fields FROM changed) AS fields,
       w.nombre, w.apellido_paterno, w.apellido_materno, w.dni,
       w.fecha_nacimiento::text AS fecha_nacimiento, w.sexo,
       -- The state the create's reply showed, kept when its patient first changes.
       s.request_id AS snapshot_request_id, s.payload_hash AS snapshot_hash,
       s.detail AS snapshot
FROM verdict v
LEFT JOIN want w ON true
LEFT JOIN (SELECT (c.pat).request_id, (c.pat).payload_hash,
                  jsonb_build_object('outcome', 'created',
                                     'patient', patient_data(c.pat))::text AS detail
           FROM cur c
           WHERE c.version = 1 AND (c.pat).request_id IS NOT NULL) s ON true
