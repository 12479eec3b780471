-- Tenant administration without silent changes (issue 27).
--
-- 1. A tenant can be disabled (the MSP stopped serving the client) instead of deleted: its API keys
--    stop authenticating and its new mail is dead-lettered with the reason, while its verdicts,
--    feedback and audit stay readable. NULL: active.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS disabled_at timestamptz;

-- 2. A key's expiry policy survives rotation: valid_for is the lifetime it was created with (NULL:
--    never expires), and the replacement gets the same lifetime from its own creation. last_used_at
--    is written by authentication at most every few minutes (not a write per request).
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS valid_for interval CHECK (valid_for > interval '0');
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS last_used_at timestamptz;
-- Keys made before this migration: their lifetime as created (a rotation's shortened overlap aside).
UPDATE api_keys SET valid_for = date_trunc('day', expires_at - created_at + interval '12 hours')
 WHERE expires_at IS NOT NULL AND valid_for IS NULL AND replaces_key_id IS NULL
   AND expires_at - created_at >= interval '1 day';
GRANT UPDATE (last_used_at) ON api_keys TO swordfish_app;
-- The console adds and edits tenants as the application role (still under each tenant's RLS).
GRANT INSERT ON tenants, tenant_policies TO swordfish_app;
GRANT UPDATE (disabled_at, name) ON tenants TO swordfish_app;

-- 3. Removing a sender that feedback put on a list: feedback stays append-only (it is the training
--    data and its own audit), so a removal is a row of its own, and an entry counts only while no
--    removal is newer than the latest feedback on that sender.
CREATE TABLE list_entry_removals (
    removal_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    list_entry   text NOT NULL,
    feedback_id  bigint NOT NULL,           -- the latest feedback on the sender when it was removed
    removed_by   text NOT NULL CHECK (removed_by <> '' AND length(removed_by) <= 254),
    reason       text NOT NULL DEFAULT '' CHECK (length(reason) <= 2000),
    removed_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX list_entry_removals_entry ON list_entry_removals (tenant_id, list_entry, feedback_id DESC);
ALTER TABLE list_entry_removals ENABLE ROW LEVEL SECURITY;
ALTER TABLE list_entry_removals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON list_entry_removals
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
REVOKE ALL ON list_entry_removals FROM PUBLIC;
GRANT SELECT, INSERT ON list_entry_removals TO swordfish_app;

-- 4. List entries with a comment and an expiry, MSP-wide (tenant_id NULL: every tenant) or for one
--    tenant, merged into the policy when it loads like feedback's entries. Removing marks the row
--    (who, when): the history stays. An MSP-wide row is visible inside every tenant's transaction.
CREATE TABLE list_entries (
    entry_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text REFERENCES tenants (tenant_id) ON DELETE CASCADE,   -- NULL: every tenant
    list        text NOT NULL CHECK (list IN ('allow', 'block')),
    entry       text NOT NULL CHECK (length(entry) BETWEEN 3 AND 254),
    comment     text NOT NULL DEFAULT '' CHECK (length(comment) <= 2000),
    expires_at  timestamptz,
    created_by  text NOT NULL CHECK (created_by <> '' AND length(created_by) <= 254),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    removed_at  timestamptz,
    removed_by  text
);
CREATE INDEX list_entries_active ON list_entries (tenant_id, list) WHERE removed_at IS NULL;
ALTER TABLE list_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE list_entries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_or_msp ON list_entries
    USING (tenant_id IS NULL OR tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id IS NULL OR tenant_id = current_setting('app.tenant_id', true));
REVOKE ALL ON list_entries FROM PUBLIC;
GRANT SELECT, INSERT ON list_entries TO swordfish_app;
GRANT UPDATE (removed_at, removed_by) ON list_entries TO swordfish_app;
