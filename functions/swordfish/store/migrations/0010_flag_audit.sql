-- Append-only audit of feature-flag changes: `swordfish flags` (set, target, rollout, rollback,
-- remove) and AppConfig deployment events (changes made in the console). Not tenant data: no RLS.
-- The application role may INSERT and SELECT only; a trigger rejects UPDATE, DELETE and TRUNCATE
-- for every role, the owner included. Only a superuser may TRUNCATE (test resets, disaster drills).

CREATE TABLE flag_audit (
    audit_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    changed_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    store             text NOT NULL,   -- application/environment/profile in AppConfig
    actor             text NOT NULL CHECK (actor <> ''),
    source            text NOT NULL CHECK (source IN ('cli', 'appconfig-deployment')),
    action            text NOT NULL CHECK (action IN ('create', 'set', 'target', 'rollout', 'rollback',
                                                      'remove', 'deployment')),
    flag_name         text,            -- NULL: the event concerns the whole configuration
    before            jsonb,           -- the flag's definition before (NULL: did not exist)
    after             jsonb,           -- and after (NULL: removed)
    config_version    text NOT NULL,   -- the AppConfig version that carries the change
    previous_version  text,
    reason            text,
    event_id          text UNIQUE      -- EventBridge event id: deliveries are at-least-once
);
CREATE INDEX flag_audit_flag ON flag_audit (store, flag_name, audit_id DESC);
CREATE INDEX flag_audit_version ON flag_audit (store, config_version);

CREATE FUNCTION flag_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'flag_audit is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'record a new audit row instead of changing an old one';
END $$;

CREATE TRIGGER flag_audit_no_update_delete BEFORE UPDATE OR DELETE ON flag_audit
  FOR EACH ROW EXECUTE FUNCTION flag_audit_append_only();
CREATE TRIGGER flag_audit_no_truncate BEFORE TRUNCATE ON flag_audit
  FOR EACH STATEMENT EXECUTE FUNCTION flag_audit_append_only();

REVOKE ALL ON flag_audit FROM PUBLIC;
GRANT SELECT, INSERT ON flag_audit TO swordfish_app;
