-- Alerts to the MSP (issue 28): rules that send signed webhooks or e-mail when something happens,
-- per tenant or MSP-wide; the state that keeps a phishing-rate alert from repeating; and the
-- positions the SIEM export has reached.

-- A rule: which events, where to (a webhook URL or an e-mail address), and for whom (tenant_id
-- NULL: every tenant, the MSP's own rule). Disabling marks the row: the history stays.
CREATE TABLE alert_rules (
    rule_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      text REFERENCES tenants (tenant_id) ON DELETE CASCADE,   -- NULL: every tenant
    events         text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 4 AND events <@
                       ARRAY['malware', 'vip_impersonation', 'phishing_rate', 'campaign']::text[]),
    channel        text NOT NULL CHECK (channel IN ('webhook', 'email')),
    target         text NOT NULL CHECK (length(target) BETWEEN 3 AND 2000),
    -- The webhook's signing secret, sealed (security.totp_keys' MultiFernet box); NULL for e-mail.
    secret_sealed  text,
    -- campaign: alert once a campaign has reached this many tenants.
    min_tenants    integer NOT NULL DEFAULT 3 CHECK (min_tenants BETWEEN 1 AND 100000),
    label          text NOT NULL DEFAULT '' CHECK (length(label) <= 200),
    created_by     text NOT NULL CHECK (created_by <> '' AND length(created_by) <= 254),
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    disabled_at    timestamptz,
    disabled_by    text,
    CHECK (channel <> 'webhook' OR secret_sealed IS NOT NULL)
);
CREATE INDEX alert_rules_active ON alert_rules (tenant_id) WHERE disabled_at IS NULL;
ALTER TABLE alert_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_rules FORCE ROW LEVEL SECURITY;
-- Like list_entries: an MSP-wide rule is visible inside every tenant's transaction (and in one
-- that set no tenant, which sees only those).
CREATE POLICY tenant_or_msp ON alert_rules
    USING (tenant_id IS NULL OR tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id IS NULL OR tenant_id = current_setting('app.tenant_id', true));
REVOKE ALL ON alert_rules FROM PUBLIC;
GRANT SELECT, INSERT ON alert_rules TO swordfish_app;
GRANT UPDATE (disabled_at, disabled_by) ON alert_rules TO swordfish_app;

-- When an alert of a kind last fired for a tenant (the phishing-rate check's cool-down).
CREATE TABLE alert_state (
    tenant_id     text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind ~ '^[a-z_]{2,40}$'),
    last_fired_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);
ALTER TABLE alert_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_state FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON alert_state
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
REVOKE ALL ON alert_state FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON alert_state TO swordfish_app;

-- How far each SIEM export sink has read each stream: verdicts per tenant (their commit time and
-- message id), the audit trail by its id. MSP operational state, not tenant data: no RLS (it holds
-- positions, never content).
CREATE TABLE export_cursors (
    sink        text NOT NULL CHECK (sink ~ '^[a-z0-9_-]{1,40}$'),
    stream      text NOT NULL CHECK (stream IN ('verdicts', 'audit')),
    tenant_id   text NOT NULL DEFAULT '',                 -- '' for the audit stream
    position_at timestamptz,
    position_id text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (sink, stream, tenant_id)
);
REVOKE ALL ON export_cursors FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON export_cursors TO swordfish_app;
-- The export reads the audit trail (append-only) as the application role: it already may.
