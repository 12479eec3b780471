-- A message_id names one message. The SHA-256 (hex) of the raw MIME a verdict was computed from is
-- kept with it, so a caller reusing a message_id for different content is told (API 409; a
-- dead letter "message_id_reused" with both digests in the pipeline) instead of being counted as a
-- duplicate and losing the second message silently (issue 25). NULL for verdicts stored before.
ALTER TABLE verdicts ADD COLUMN IF NOT EXISTS content_sha256 text;
