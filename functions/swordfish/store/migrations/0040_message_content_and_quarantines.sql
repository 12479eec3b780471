-- What the console needs to show a message and to release it from quarantine.
--
-- 1. Where the message is: every batch's raw submissions are already archived to S3 before analysis
--    (integrations/raw_archive.py, one gzipped JSON-lines object per batch). A verdict now records
--    that object's key and its line, so the console can fetch the submission and re-parse the
--    message on demand: no extra write per message, no second copy of mail in PostgreSQL, and the
--    content lives exactly as long as the archive's retention. NULL: archived nowhere (archive off,
--    its write failed, or a replay), and the console says the content is not available.
ALTER TABLE verdicts ADD COLUMN raw_archive_key text CHECK (length(raw_archive_key) <= 1024);
ALTER TABLE verdicts ADD COLUMN raw_archive_line integer CHECK (raw_archive_line >= 0);

-- 2. What was quarantined: one row per mailbox message Swordfish moved to Junk Email through Nango,
--    written by the remediator after the move succeeded (rare: phishing and malware with
--    auto-quarantine on), so a release knows where the message is now (Graph gives a moved message
--    a new id) and a message that was never quarantined cannot be "released". A release flips
--    state under a row lock, only after Nango confirmed the move back to the inbox.
CREATE TABLE mailbox_quarantines (
    tenant_id            text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    message_id           text NOT NULL,
    connection_id        text NOT NULL,
    provider_config_key  text NOT NULL,
    provider_message_id  text NOT NULL,     -- the id in Junk Email (as the move answered)
    state                text NOT NULL DEFAULT 'quarantined' CHECK (state IN ('quarantined', 'released')),
    quarantined_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    released_at          timestamptz,
    released_by          text,
    PRIMARY KEY (tenant_id, message_id)
);
ALTER TABLE mailbox_quarantines ENABLE ROW LEVEL SECURITY;
ALTER TABLE mailbox_quarantines FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mailbox_quarantines
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

REVOKE ALL ON mailbox_quarantines FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON mailbox_quarantines TO swordfish_app;
