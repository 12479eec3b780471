-- Trace, search and campaigns (issue 28).
--
-- 1. What a trace needs, one row per verdict, written in the verdict's own transaction (and by
--    `swordfish trace backfill` for older verdicts that have a raw archive entry). The verdict,
--    score, reason names, subject and sender are copied here so a search reads one table. Kept as
--    long as the raw archive keeps the message (expires_at; `swordfish trace purge` deletes).
--
-- Row-level security: a transaction sees its tenant's rows (app.tenant_id, as everywhere) or, for a
-- search, the tenants app.tenant_scope matches: a regular expression, '^' for MSP staff (every
-- tenant) or '^(a|b)$' for a tenant role's tenants (tenant ids hold only [a-z0-9-]). Writes still
-- need app.tenant_id. Why an operator of our own (=~~, the built-in regex match with the
-- selectivity estimate of <>): the planner cannot know a setting's value, and estimated the usual
-- "= setting" policy as matching half a percent of the rows; every search then looked so selective
-- that it sorted a whole scan instead of reading the newest rows of an index in order (7-12 s for a
-- reason search at 10 million verdicts, against 2 ms without row-level security). With the
-- estimate of <> the policy costs nothing in the plan, and the real filters are estimated from the
-- statistics. The setting is read in a scalar subquery: once per statement, not per row. An unset
-- or reset setting reads '' (an empty pattern would match every id): nullif makes it match none.
--
-- Why a separate terms table instead of GIN on the arrays: under row-level security PostgreSQL only
-- uses a user's condition as an index condition when its operator is leakproof, and the array
-- operators (@>, &&) are not; texteq and int8eq are. So each multi-valued field (recipients, link
-- domains, attachment names and digests) is also stored as one row per value, keyed by a 64-bit
-- hash of "kind:value" (a btree on an int8 equality, smaller than the text), and a hit is checked
-- against the trace row's arrays (a collision costs a filtered row, never a wrong result).
CREATE TABLE verdict_traces (
    trace_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- No foreign key to verdicts: a trace is removed with its tenant or its retention, and operator
    -- tools that empty verdicts (a restore drill, the tests) need not know this table exists.
    tenant_id            text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    message_id           text NOT NULL,
    committed_at         timestamptz NOT NULL,
    expires_at           timestamptz NOT NULL,
    verdict              text NOT NULL,
    score                double precision NOT NULL,
    reasons              text[] NOT NULL DEFAULT '{}',
    subject              text,
    sender               text,
    sender_domain        text CHECK (length(sender_domain) <= 255),
    reply_to_domain      text CHECK (length(reply_to_domain) <= 255),
    header_message_id    text CHECK (length(header_message_id) <= 300),
    sending_ip           inet,
    helo                 text CHECK (length(helo) <= 255),
    envelope_recipients  text[] NOT NULL DEFAULT '{}',
    header_recipients    text[] NOT NULL DEFAULT '{}',
    link_domains         text[] NOT NULL DEFAULT '{}',
    urls                 text[] NOT NULL DEFAULT '{}',
    attachment_names     text[] NOT NULL DEFAULT '{}',
    attachment_sha256    text[] NOT NULL DEFAULT '{}',
    content_digest       text CHECK (length(content_digest) <= 64),
    UNIQUE (tenant_id, message_id)
);
-- Newest first across tenants (MSP staff) and within one tenant; both end on trace_id, the keyset.
CREATE INDEX verdict_traces_recent ON verdict_traces (committed_at DESC, trace_id DESC);
CREATE INDEX verdict_traces_tenant_recent ON verdict_traces (tenant_id, committed_at DESC, trace_id DESC);
CREATE INDEX verdict_traces_sender_domain ON verdict_traces (sender_domain, committed_at DESC);
CREATE INDEX verdict_traces_reply_to_domain ON verdict_traces (reply_to_domain) WHERE reply_to_domain IS NOT NULL;
CREATE INDEX verdict_traces_header_message_id ON verdict_traces (header_message_id) WHERE header_message_id IS NOT NULL;
CREATE INDEX verdict_traces_sending_ip ON verdict_traces (sending_ip) WHERE sending_ip IS NOT NULL;
CREATE INDEX verdict_traces_helo ON verdict_traces (helo) WHERE helo IS NOT NULL;
CREATE INDEX verdict_traces_content_digest ON verdict_traces (content_digest, committed_at DESC)
    WHERE content_digest IS NOT NULL;
CREATE INDEX verdict_traces_expires ON verdict_traces (expires_at);

CREATE TABLE verdict_trace_terms (
    term          bigint NOT NULL,      -- swordfish.analysis.trace.term_key(kind, value)
    committed_at  timestamptz NOT NULL,
    trace_id      bigint NOT NULL REFERENCES verdict_traces (trace_id) ON DELETE CASCADE,
    tenant_id     text NOT NULL
);
CREATE INDEX verdict_trace_terms_term ON verdict_trace_terms (term, committed_at DESC, trace_id DESC);
CREATE INDEX verdict_trace_terms_trace ON verdict_trace_terms (trace_id);

CREATE OPERATOR =~~ (LEFTARG = text, RIGHTARG = text, FUNCTION = textregexeq, RESTRICT = neqsel);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['verdict_traces', 'verdict_trace_terms'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY tenant_scope ON %I
                      USING (tenant_id OPERATOR(public.=~~) (SELECT nullif(current_setting('app.tenant_scope', true), ''))
                             OR tenant_id = (SELECT current_setting('app.tenant_id', true)))
                      WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)))$p$, t);
    EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', t);
  END LOOP;
END $$;
GRANT SELECT, INSERT, DELETE ON verdict_traces, verdict_trace_terms TO swordfish_app;

-- 2. Campaigns: one row per shared indicator that reached three tenants with at least one flagged
--    copy. Who and what is in it is read from the traces when shown (always current); the row says
--    when it was grouped. MSP-level data: readable only in an MSP-wide (or listed-tenant) scope, and
--    a tenant-scoped reader sees a campaign only through its own traces.
CREATE TABLE campaigns (
    campaign_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('link_domain', 'attachment_sha256', 'sender_domain', 'content')),
    indicator       text NOT NULL CHECK (length(indicator) BETWEEN 1 AND 300),
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    tenant_count    integer NOT NULL,
    grouped_at      timestamptz NOT NULL,      -- the grouper's clock when it reached the threshold
    updated_at      timestamptz NOT NULL,
    UNIQUE (kind, indicator)
);
CREATE INDEX campaigns_last_seen ON campaigns (last_seen DESC);
ALTER TABLE campaigns ENABLE ROW LEVEL SECURITY;
ALTER TABLE campaigns FORCE ROW LEVEL SECURITY;
CREATE POLICY msp_scope ON campaigns
    USING ((SELECT current_setting('app.tenant_scope', true)) = '^')
    WITH CHECK ((SELECT current_setting('app.tenant_scope', true)) = '^');
REVOKE ALL ON campaigns FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON campaigns TO swordfish_app;
