-- The role the worker's session switches to. NOLOGIN: operators log in as their own
-- user and are granted this role; the worker then runs SET ROLE (DATABASE_ROLE).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'patients_app') THEN
    CREATE ROLE patients_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
  -- The migrating user must be able to SET ROLE to it when it runs the worker too.
  IF NOT pg_has_role(current_user, 'patients_app', 'MEMBER') THEN
    EXECUTE format('GRANT patients_app TO %I', current_user);
  END IF;
END
$$;
