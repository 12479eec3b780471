-- An analyst's word on a verdict: "this is phishing" / "this is legitimate". Append-only, so the
-- table is its own audit trail (who, when, what the verdict was, why): a changed mind is a new row,
-- the latest row per message counts. The sender address of the latest feedback feeds the tenant's
-- block list (phishing) or allow list (legitimate) when the policy is loaded, and the rows, with the
-- signal values of the verdict, are exported as labelled data for the next `make fit`.
-- Tenant data: row-level security like the other tenant tables.

CREATE TABLE verdict_feedback (
    feedback_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    message_id   text NOT NULL,
    label        text NOT NULL CHECK (label IN ('phishing', 'legitimate')),
    analyst      text NOT NULL CHECK (analyst <> '' AND length(analyst) <= 200),
    comment      text NOT NULL DEFAULT '' CHECK (length(comment) <= 2000),
    verdict      text NOT NULL,            -- the verdict as it was when the analyst judged it
    score        double precision NOT NULL,
    signals      jsonb NOT NULL DEFAULT '{}',  -- signal name -> value: one training example
    list_entry   text,                     -- the sender address it puts on a list (NULL: none)
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
    -- no foreign key to verdicts: the judgement is audit data and outlives verdict clean-ups;
    -- record_feedback checks that the verdict exists when the analyst judges it
);
CREATE INDEX verdict_feedback_message ON verdict_feedback (tenant_id, message_id, feedback_id DESC);
CREATE INDEX verdict_feedback_entry ON verdict_feedback (tenant_id, list_entry, feedback_id DESC)
    WHERE list_entry IS NOT NULL;

ALTER TABLE verdict_feedback ENABLE ROW LEVEL SECURITY;
ALTER TABLE verdict_feedback FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON verdict_feedback
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

CREATE FUNCTION verdict_feedback_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'verdict_feedback is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'record new feedback instead of changing old feedback';
END $$;

-- The application role has no DELETE grant; rows go only with their tenant (ON DELETE CASCADE).
CREATE TRIGGER verdict_feedback_no_update BEFORE UPDATE ON verdict_feedback
  FOR EACH ROW EXECUTE FUNCTION verdict_feedback_append_only();

REVOKE ALL ON verdict_feedback FROM PUBLIC;
GRANT SELECT, INSERT ON verdict_feedback TO swordfish_app;
