-- The MSP console: its people, which tenants each may see, the feedback analysts give on verdicts,
-- the append-only audit of every console action, and the API-key lifecycle (HMAC with a pepper,
-- expiry, rotation). Sessions live server-side in Redis (Flask-Session), not here.

-- People are MSP staff, not tenant data: no row-level security. The console checks every object
-- access against console_user_tenants and the role.
CREATE TABLE console_users (
    user_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email                text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    display_name         text NOT NULL DEFAULT '',
    role                 text NOT NULL CHECK (role IN ('msp_admin', 'analyst', 'auditor')),
    password_hash        text,             -- argon2id (PHC string); NULL until the invite is accepted
    password_changed_at  timestamptz,
    -- Bumped on password change, reset and disable: a session carrying an older epoch is dead.
    session_epoch        integer NOT NULL DEFAULT 0,
    totp_secret          text,             -- base32; set at enrolment
    totp_enabled         boolean NOT NULL DEFAULT false,
    invite_token_sha256  bytea,            -- one-time invite or reset link (the token is 256-bit random)
    invite_expires_at    timestamptz,
    disabled_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    last_login_at        timestamptz
);

CREATE TABLE console_user_tenants (
    user_id    bigint NOT NULL REFERENCES console_users (user_id) ON DELETE CASCADE,
    tenant_id  text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, tenant_id)
);

-- Releases from quarantine made in the console (an analyst's "phishing" / "legitimate" judgement
-- goes to verdict_feedback, 0020). Tenant data: row-level security like the verdicts.
CREATE TABLE verdict_releases (
    release_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    message_id   text NOT NULL,
    actor        text NOT NULL CHECK (actor <> ''),
    note         text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
    -- no foreign key to verdicts: a release is audit data and outlives verdict clean-ups
);
CREATE INDEX verdict_releases_message ON verdict_releases (tenant_id, message_id, release_id DESC);
ALTER TABLE verdict_releases ENABLE ROW LEVEL SECURITY;
ALTER TABLE verdict_releases FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON verdict_releases
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- Every console action (and every refused login), append-only like flag_audit. It spans tenants
-- (an MSP admin's log), so it has no RLS: the console shows auditors and admins the rows of the
-- tenants they may see, plus the deployment-wide rows to admins.
CREATE TABLE console_audit (
    audit_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor        text NOT NULL CHECK (actor <> ''),   -- the user's email, or 'anonymous'
    actor_role   text,
    action       text NOT NULL CHECK (action ~ '^[a-z_.]{2,64}$'),
    tenant_id    text,                                 -- NULL: not about one tenant
    object_type  text,
    object_id    text,
    outcome      text NOT NULL DEFAULT 'ok' CHECK (outcome IN ('ok', 'refused', 'failed')),
    before       jsonb,
    after        jsonb,
    source_ip    text,
    request_id   text
);
CREATE INDEX console_audit_at ON console_audit (at DESC);
CREATE INDEX console_audit_tenant ON console_audit (tenant_id, at DESC);

CREATE FUNCTION console_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'console_audit is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER console_audit_no_update_delete BEFORE UPDATE OR DELETE ON console_audit
  FOR EACH ROW EXECUTE FUNCTION console_audit_append_only();
CREATE TRIGGER console_audit_no_truncate BEFORE TRUNCATE ON console_audit
  FOR EACH STATEMENT EXECUTE FUNCTION console_audit_append_only();

-- API keys: HMAC-SHA256 with a server-side pepper (its version recorded, so a pepper rotation can
-- verify old keys while new ones use the new pepper), an optional expiry, and the key a rotation
-- replaced (the old one stays valid until its shortened expiry: the overlap).
ALTER TABLE api_keys ADD COLUMN key_hmac bytea;
ALTER TABLE api_keys ADD COLUMN pepper_version text;
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;
ALTER TABLE api_keys ADD COLUMN replaces_key_id text;
ALTER TABLE api_keys ALTER COLUMN key_sha256 DROP NOT NULL;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_has_digest CHECK (key_hmac IS NOT NULL OR key_sha256 IS NOT NULL);

REVOKE ALL ON console_users, console_user_tenants, verdict_releases, console_audit FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON console_users TO swordfish_app;
GRANT SELECT, INSERT, DELETE ON console_user_tenants TO swordfish_app;
GRANT SELECT, INSERT ON verdict_releases, console_audit TO swordfish_app;
-- The console manages keys and policies as the application role (still under RLS per tenant).
GRANT INSERT ON api_keys TO swordfish_app;
GRANT UPDATE (revoked_at, expires_at) ON api_keys TO swordfish_app;
GRANT UPDATE (policy, updated_at) ON tenant_policies TO swordfish_app;

-- The console lists tenants (ids and names only, never their data) for the tenants a user may
-- see: a read-only policy the transaction opts into; every other tenant table stays per tenant.
CREATE POLICY tenant_directory ON tenants FOR SELECT
    USING (current_setting('app.tenant_directory', true) = 'on');
