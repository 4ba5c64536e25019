-- The same schema on Citus, sharded by owner (issue 16; README, "Scaling"). Only where
-- the citus extension is installed; on plain PostgreSQL this migration changes nothing.
--
-- The tenant tables become distributed by owner_id, co-located, so one owner's rows of all
-- three sit in one shard, and their rows move to the shards. What stays on the
-- coordinator, local:
--   patient_audit_refused  refused-token rows have no owner to place them by, are rare,
--                          and are written in a transaction of their own;
--   jwt_keys               public keys every owner shares, read and written by the key
--                          archive's session only.
-- The policies compare with the setting itself: Citus refuses subqueries in the policies
-- of a distributed table. Plain PostgreSQL keeps the sub-select, an init-plan that reads
-- the owner once per statement, so that a statement cannot change the owner it is scoped
-- to half-way through a scan (set_config() in a WHERE clause: integration.isolation); on
-- Citus that defence is gone (README, "Scaling").
-- patients_app gets LOGIN: the coordinator opens its connections to the workers as the
-- current role, which is patients_app after the worker's SET ROLE. Operators give it a
-- password or a certificate for those connections (README, "Scaling").
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    RETURN;
  END IF;
  -- One connection per node for the whole migration: Citus needs it to propagate the
  -- function below in the transaction that made the shards.
  SET LOCAL citus.multi_shard_modify_mode TO 'sequential';
  ALTER POLICY patients_owner ON patients
    USING (owner_id = nullif(current_setting('app.owner_id', true), ''))
    WITH CHECK (owner_id = nullif(current_setting('app.owner_id', true), ''));
  ALTER POLICY patient_requests_owner ON patient_requests
    USING (owner_id = nullif(current_setting('app.owner_id', true), ''))
    WITH CHECK (owner_id = nullif(current_setting('app.owner_id', true), ''));
  ALTER POLICY patient_audit_tenant_read ON patient_audit_tenant
    USING (owner_id = nullif(current_setting('app.owner_id', true), ''));
  ALTER POLICY patient_audit_tenant_write ON patient_audit_tenant
    WITH CHECK (owner_id = nullif(current_setting('app.owner_id', true), ''));
  ALTER ROLE patients_app LOGIN;
  PERFORM create_distributed_table('patients', 'owner_id');
  PERFORM create_distributed_table('patient_requests', 'owner_id', colocate_with => 'patients');
  PERFORM create_distributed_table('patient_audit_tenant', 'owner_id',
                                   colocate_with => 'patients');
  PERFORM truncate_local_data_after_distributing_table('patients');
  PERFORM truncate_local_data_after_distributing_table('patient_requests');
  PERFORM truncate_local_data_after_distributing_table('patient_audit_tenant');
  -- Replies' patient object (migration 005), called in statements that run on the workers.
  PERFORM create_distributed_function('patient_data(patients)');
END
$$;
