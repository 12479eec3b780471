-- Response in bulk (issue 28): jobs that quarantine, release or delete a campaign's or a search's
-- messages in every affected mailbox, blocks on a campaign's indicators, and the quarantine list.
--
-- Row-level security as the traces' (migration 0070): a transaction sees its tenant's rows
-- (app.tenant_id) or the tenants app.tenant_scope matches ('^' for MSP staff, '^(a|b)$' for a
-- tenant role's tenants); the job worker runs in the MSP scope.

-- 1. Where each mailbox message is: the Nango connection and the provider's id, written in the
--    verdict's own transaction for mail that came from a connected mailbox. A bulk quarantine or
--    delete needs it for messages Swordfish never quarantined (the clean copies of a campaign).
CREATE TABLE mailbox_messages (
    tenant_id            text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    message_id           text NOT NULL,
    connection_id        text NOT NULL CHECK (length(connection_id) <= 256),
    provider_config_key  text NOT NULL CHECK (length(provider_config_key) <= 256),
    provider_message_id  text NOT NULL CHECK (length(provider_message_id) <= 1024),
    PRIMARY KEY (tenant_id, message_id)
);

-- 2. Jobs and their items: one item per message (a mailbox's copy), with its outcome. tenant_id
--    NULL: a cross-tenant job (MSP staff only). source_ref freezes what the job was started from
--    (a campaign id, a search's filters, or the chosen quarantined messages).
CREATE TABLE response_jobs (
    job_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     text REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    action        text NOT NULL CHECK (action IN ('quarantine', 'release', 'delete')),
    source        text NOT NULL CHECK (source IN ('campaign', 'search', 'quarantine')),
    source_ref    jsonb NOT NULL,
    note          text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    created_by    text NOT NULL CHECK (created_by <> '' AND length(created_by) <= 254),
    created_role  text NOT NULL CHECK (length(created_role) <= 64),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    total         integer NOT NULL DEFAULT 0,
    finished_at   timestamptz
);
CREATE INDEX response_jobs_recent ON response_jobs (created_at DESC, job_id DESC);

CREATE TABLE response_job_items (
    item_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       bigint NOT NULL REFERENCES response_jobs (job_id) ON DELETE CASCADE,
    tenant_id    text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    message_id   text NOT NULL,
    mailbox      text NOT NULL DEFAULT '' CHECK (length(mailbox) <= 1000),
    provider     text NOT NULL DEFAULT '' CHECK (length(provider) <= 256),
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'gone', 'failed', 'skipped')),
    why          text NOT NULL DEFAULT '' CHECK (length(why) <= 2000),
    attempts     integer NOT NULL DEFAULT 0,
    not_before   timestamptz NOT NULL DEFAULT 'epoch',       -- throttled or the breaker open: wait until
    lease_until  timestamptz,                                -- taken by a worker until then
    finished_at  timestamptz,
    UNIQUE (job_id, tenant_id, message_id)
);
CREATE INDEX response_job_items_pending ON response_job_items (job_id, not_before) WHERE state = 'pending';
CREATE INDEX response_job_items_progress ON response_job_items (job_id, tenant_id, state);

-- 3. The throttle: a token bucket per tenant and provider (the Graph and Gmail quotas are per
--    mailbox owner's organisation), shared by every worker.
CREATE TABLE response_throttle (
    tenant_id   text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    provider    text NOT NULL CHECK (length(provider) <= 256),
    tokens      double precision NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, provider)
);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['mailbox_messages', 'response_job_items', 'response_throttle'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY tenant_scope ON %I
                      USING (tenant_id OPERATOR(public.=~~) (SELECT nullif(current_setting('app.tenant_scope', true), ''))
                             OR tenant_id = (SELECT current_setting('app.tenant_id', true)))
                      WITH CHECK (tenant_id OPERATOR(public.=~~) (SELECT nullif(current_setting('app.tenant_scope', true), ''))
                             OR tenant_id = (SELECT current_setting('app.tenant_id', true)))$p$, t);
    EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', t);
  END LOOP;
END $$;
ALTER TABLE response_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE response_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON response_jobs
    USING (CASE WHEN tenant_id IS NULL THEN (SELECT current_setting('app.tenant_scope', true)) = '^'
                ELSE tenant_id OPERATOR(public.=~~) (SELECT nullif(current_setting('app.tenant_scope', true), ''))
                     OR tenant_id = (SELECT current_setting('app.tenant_id', true)) END)
    WITH CHECK (CASE WHEN tenant_id IS NULL THEN (SELECT current_setting('app.tenant_scope', true)) = '^'
                ELSE tenant_id OPERATOR(public.=~~) (SELECT nullif(current_setting('app.tenant_scope', true), ''))
                     OR tenant_id = (SELECT current_setting('app.tenant_id', true)) END);
REVOKE ALL ON response_jobs FROM PUBLIC;
GRANT SELECT, INSERT ON mailbox_messages TO swordfish_app;
GRANT SELECT, INSERT, UPDATE ON response_jobs, response_job_items, response_throttle TO swordfish_app;

-- 4. The quarantine ledger: a bulk delete marks a quarantined message deleted; the quarantine list
--    reads across tenants in a scope (MSP staff, or a tenant role's tenants), newest first.
ALTER TABLE mailbox_quarantines DROP CONSTRAINT mailbox_quarantines_state_check;
ALTER TABLE mailbox_quarantines ADD CONSTRAINT mailbox_quarantines_state_check
    CHECK (state IN ('quarantined', 'released', 'deleted'));
CREATE POLICY scoped_read ON mailbox_quarantines FOR SELECT
    USING (tenant_id OPERATOR(public.=~~) (SELECT nullif(current_setting('app.tenant_scope', true), '')));
CREATE INDEX mailbox_quarantines_recent ON mailbox_quarantines (quarantined_at DESC, tenant_id, message_id);

-- 5. Blocks on a campaign's indicators (link domain, attachment SHA-256, sender domain), for one
--    tenant or MSP-wide (tenant_id NULL), merged into the tenant's policy when it loads like the
--    list entries; undoing marks the row (who, when), the history stays.
CREATE TABLE indicator_blocks (
    block_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    text REFERENCES tenants (tenant_id) ON DELETE CASCADE,   -- NULL: every tenant
    kind         text NOT NULL CHECK (kind IN ('link_domain', 'attachment_sha256', 'sender_domain')),
    indicator    text NOT NULL CHECK (length(indicator) BETWEEN 3 AND 300),
    campaign_id  bigint,          -- no foreign key: campaign rows are MSP-scoped data
    comment      text NOT NULL DEFAULT '' CHECK (length(comment) <= 2000),
    created_by   text NOT NULL CHECK (created_by <> '' AND length(created_by) <= 254),
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    removed_at   timestamptz,
    removed_by   text
);
CREATE UNIQUE INDEX indicator_blocks_active ON indicator_blocks (coalesce(tenant_id, ''), kind, indicator)
    WHERE removed_at IS NULL;
ALTER TABLE indicator_blocks ENABLE ROW LEVEL SECURITY;
ALTER TABLE indicator_blocks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_or_msp ON indicator_blocks
    USING (tenant_id IS NULL OR tenant_id = current_setting('app.tenant_id', true)
           OR tenant_id OPERATOR(public.=~~) (SELECT nullif(current_setting('app.tenant_scope', true), '')))
    WITH CHECK ((tenant_id IS NULL AND (SELECT current_setting('app.tenant_scope', true)) = '^')
                OR tenant_id = current_setting('app.tenant_id', true)
                OR tenant_id OPERATOR(public.=~~) (SELECT nullif(current_setting('app.tenant_scope', true), '')));
REVOKE ALL ON indicator_blocks FROM PUBLIC;
GRANT SELECT, INSERT ON indicator_blocks TO swordfish_app;
GRANT UPDATE (removed_at, removed_by) ON indicator_blocks TO swordfish_app;
