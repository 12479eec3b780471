-- Each tenant's API Gateway usage-plan key (AWS only; NULL locally, where the Redis limits apply).
-- The value is not a credential: the REST API's key source is AUTHORIZER, so API Gateway takes a
-- usage key only from our authorizer's answer (after it verified the tenant's own bearer key), never
-- from a client's header. The authorizer reads it under the tenant's row-level security.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS usage_key_id text,
                    ADD COLUMN IF NOT EXISTS usage_key_value text;
