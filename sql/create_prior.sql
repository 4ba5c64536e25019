-- Creates on Citus, step 1 (common/pw_creates_routed.c): what the owner already has for
-- each command of the run, read in one statement Citus sends whole to the owner's shard.
-- Per command (:ords numbers them): an outcome recorded under its request id
-- (patient_requests, r_*), a patient its request id made (p_*; p_same_record when this
-- very Kafka record made it: the row is its audit record), and whether a live patient of
-- the owner already has its dni.
SELECT i.ord, r.payload_hash AS r_hash, r.status AS r_status, r.reply AS r_reply,
       r.detail::text AS r_detail, p.id AS p_id, p.payload_hash AS p_hash,
       coalesce(p.command_time IS NOT NULL AND p.source_topic = :source_topic
                AND p.source_partition = i.src_partition
                AND p.source_offset = i.src_offset, false) AS p_same_record,
       EXISTS (SELECT 1 FROM patients d
               WHERE d.owner_id = :owner AND d.dni = i.dni AND d.deleted_at IS NULL)
         AS dni_taken
FROM unnest(:ords::int[], :request_ids::text[], :dnis::text[], :partitions::int[],
            :offsets::bigint[]) AS i(ord, request_id, dni, src_partition, src_offset)
LEFT JOIN patient_requests r ON r.owner_id = :owner AND r.request_id = i.request_id
LEFT JOIN patients p ON p.owner_id = :owner AND p.request_id = i.request_id
ORDER BY i.ord
