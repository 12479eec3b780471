-- One-time recovery codes for the console's second factor (issue 27): a user who lost the
-- authenticator signs in with one, once. Only an argon2id hash of each code's secret part is kept
-- (the console's password hasher); code_id is the code's first group, stored in clear so a sign-in
-- verifies one hash, not ten. Regenerating replaces the whole set; an admin reset deletes it.
CREATE TABLE console_recovery_codes (
    user_id     bigint NOT NULL REFERENCES console_users (user_id) ON DELETE CASCADE,
    code_id     text NOT NULL CHECK (code_id ~ '^[a-z0-9]{4}$'),
    code_hash   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    used_at     timestamptz,
    PRIMARY KEY (user_id, code_id)
);
REVOKE ALL ON console_recovery_codes FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON console_recovery_codes TO swordfish_app;
GRANT UPDATE (used_at) ON console_recovery_codes TO swordfish_app;
