-- What a create writes, cut to what the worker reads (issue 14). Each secondary index
-- costs a create about 100 bytes of WAL and its own page writes (tests/bench/write_cost.sh);
-- these two serve no statement of the worker's:
--
-- patients_source (source_topic, source_partition, source_offset): only `replay --verify`
--   read it, in one query per run that fetches every row of the topic replayed ("rows no
--   command made"): with one command topic, the whole table; a sequential scan, once per
--   verify, costs it about the same.
-- patient_audit_tenant_answered (owner_id, answered_at): no statement reads it; an
--   auditor's "this owner's accesses" is a range of the primary key, which leads with
--   owner_id.
--
-- The columns stay: the patient row still records its command's request id and source.
DROP INDEX patients_source;
DROP INDEX patient_audit_tenant_answered;
