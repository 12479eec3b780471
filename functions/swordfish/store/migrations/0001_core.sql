-- Tenants, their policies, their API keys and the verdicts: every tenant table is isolated by
-- row-level security on the per-transaction setting app.tenant_id. A transaction that has not set
-- it sees no rows and can write none (current_setting(..., true) is NULL or '').

CREATE TABLE tenants (
    tenant_id   text PRIMARY KEY CHECK (tenant_id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenant_policies (
    tenant_id   text PRIMARY KEY REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    policy      jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_id      text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    key_sha256  bytea NOT NULL,
    label       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE verdicts (
    tenant_id        text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    message_id       text NOT NULL,
    verdict          text NOT NULL CHECK (verdict IN ('clean', 'spam', 'suspicious', 'phishing', 'malware')),
    score            double precision NOT NULL,
    reasons          jsonb NOT NULL DEFAULT '[]',
    parse_problems   jsonb NOT NULL DEFAULT '[]',
    subject          text,
    sender           text,
    submitted_at     timestamptz NOT NULL,
    sqs_sent_at      timestamptz,
    committed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- End-to-end latency: verdict written minus the SQS SentTimestamp of the submission.
    e2e_latency_ms   double precision GENERATED ALWAYS AS
                         (extract(epoch FROM (committed_at - sqs_sent_at)) * 1000) STORED,
    degraded         boolean NOT NULL DEFAULT false,
    deferred_work    jsonb NOT NULL DEFAULT '[]',
    flags_version    text,
    correlation_id   text,
    PRIMARY KEY (tenant_id, message_id)
);
CREATE INDEX verdicts_committed ON verdicts (tenant_id, committed_at DESC);
CREATE INDEX verdicts_committed_all ON verdicts (committed_at);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['tenants', 'tenant_policies', 'api_keys', 'verdicts'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
                      USING (tenant_id = current_setting('app.tenant_id', true))
                      WITH CHECK (tenant_id = current_setting('app.tenant_id', true))$p$, t);
  END LOOP;
END $$;

GRANT SELECT ON tenants, tenant_policies, api_keys TO swordfish_app;
GRANT SELECT, INSERT, UPDATE ON verdicts TO swordfish_app;
