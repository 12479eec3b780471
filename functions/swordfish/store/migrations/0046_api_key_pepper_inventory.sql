-- Pepper rotations must never lock out a live API key (issue 25). Two things need the database:
-- 1. a key verified under an older pepper is re-hashed under the current one on that successful
--    use (the application role may now write the digest and its pepper version, under RLS);
-- 2. a rotation asks which live keys still hold which pepper versions, across tenants, without
--    seeing any digest: a definer function, the only reader the inventory policy admits.
GRANT UPDATE (key_hmac, pepper_version) ON api_keys TO swordfish_app;

CREATE POLICY pepper_inventory ON api_keys FOR SELECT TO swordfish_admin
    USING (current_setting('swordfish.pepper_inventory', true) = 'on');

CREATE FUNCTION api_key_pepper_holders()
RETURNS TABLE (pepper_version text, tenant_id text, key_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  PERFORM set_config('swordfish.pepper_inventory', 'on', true);
  RETURN QUERY SELECT k.pepper_version, k.tenant_id, k.key_id FROM api_keys k
               WHERE k.key_hmac IS NOT NULL AND k.revoked_at IS NULL
                 AND (k.expires_at IS NULL OR k.expires_at > now())
               ORDER BY k.pepper_version, k.tenant_id, k.key_id;
  PERFORM set_config('swordfish.pepper_inventory', 'off', true);
END $$;
REVOKE ALL ON FUNCTION api_key_pepper_holders() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api_key_pepper_holders() TO swordfish_app;
