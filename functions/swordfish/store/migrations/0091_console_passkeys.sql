-- Passkeys (WebAuthn) for the console (issue 27): a discoverable credential with user verification
-- signs a user in without a password or a TOTP code (possession of the device plus its PIN or
-- biometric: two factors, and bound to the console's origin, so a phishing page cannot use it).
-- Only the public key is stored; an admin reset deletes them with the other second factors.
CREATE TABLE console_passkeys (
    credential_id  bytea PRIMARY KEY CHECK (length(credential_id) BETWEEN 16 AND 1023),
    user_id        bigint NOT NULL REFERENCES console_users (user_id) ON DELETE CASCADE,
    public_key     bytea NOT NULL,                -- COSE key
    sign_count     bigint NOT NULL DEFAULT 0,
    name           text NOT NULL DEFAULT '' CHECK (length(name) <= 100),
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_used_at   timestamptz
);
CREATE INDEX console_passkeys_user ON console_passkeys (user_id);
REVOKE ALL ON console_passkeys FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON console_passkeys TO swordfish_app;
GRANT UPDATE (sign_count, last_used_at) ON console_passkeys TO swordfish_app;
