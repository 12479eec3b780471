-- Disaster recovery (issue 13). The heartbeat row is updated every few seconds by the WAL archiver:
-- its time in a restored database is the measured recovery point. Not tenant data: no RLS.
CREATE TABLE backup_heartbeat (
    id       smallint PRIMARY KEY CHECK (id = 1),
    beat_at  timestamptz NOT NULL,
    source   text NOT NULL DEFAULT ''
);

-- Integrity checks after a restore (row counts and checksums of every tenant's rows) run as a role
-- that may read all data. FORCE ROW LEVEL SECURITY applies to everyone but superusers, and on RDS
-- the master user is not one: members of the predefined role pg_read_all_data may read every row.
-- Read only; the application role is not a member.
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['tenants', 'tenant_policies', 'api_keys', 'verdicts'] LOOP
    EXECUTE format('CREATE POLICY integrity_read ON %I FOR SELECT TO pg_read_all_data USING (true)', t);
  END LOOP;
END $$;
