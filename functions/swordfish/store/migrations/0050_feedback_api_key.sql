-- Who judged a verdict through the API is the key that authenticated, never a name the caller
-- writes (issue 26): api_key_id is that key's id, analyst reads 'api-key:<id>', and the name the
-- caller gave, if any, is kept apart as stated_analyst (shown as what it is: a claim). Console
-- feedback leaves both NULL (its analyst is the signed-in user's e-mail).
ALTER TABLE verdict_feedback ADD COLUMN api_key_id text CHECK (length(api_key_id) <= 64);
ALTER TABLE verdict_feedback ADD COLUMN stated_analyst text CHECK (length(stated_analyst) <= 200);
