"""Names shared by the CDK stacks, the Lambda handlers and the embedded stack.

Change a name here and all three follow: nothing else spells these strings.
"""

from __future__ import annotations

SERVICE_NAME = "swordfish"
METRICS_NAMESPACE = "Swordfish"

# --- queues -----------------------------------------------------------------
EMAILS_QUEUE_NAME = "swordfish-emails"
EMAILS_DLQ_NAME = "swordfish-emails-dlq"
REMEDIATION_RETRY_QUEUE_NAME = "swordfish-remediation-retry"
MAX_RECEIVE_COUNT = 5  # receives before SQS moves a record to the DLQ

# The processor's Lambda timeout; the queue's visibility timeout must be at least
# six times this (AWS guidance for SQS event sources), so a slow batch is not redelivered
# while it is still being processed.
PROCESSOR_TIMEOUT_SECONDS = 30
VISIBILITY_TIMEOUT_SECONDS = PROCESSOR_TIMEOUT_SECONDS * 6
PROCESSOR_BATCH_SIZE = 10
PROCESSOR_BATCHING_WINDOW_SECONDS = 1
DLQ_RETENTION_DAYS = 14

# SQS caps a message body at 256 KiB; mail larger than this travels as an S3 pointer.
SQS_MAX_BODY_BYTES = 256 * 1024
# Largest raw message we analyse at all (inline or from S3); above this the record is rejected.
MAX_MESSAGE_BYTES = 25 * 1024 * 1024

# --- storage ----------------------------------------------------------------
LARGE_MAIL_BUCKET_PREFIX = "swordfish-large-mail"
BACKUP_BUCKET_PREFIX = "swordfish-backups"
BREAKER_TABLE_NAME = "swordfish-circuit-breakers"
DATABASE_NAME = "swordfish"
APP_DB_ROLE = "swordfish_app"  # runs the functions: no table ownership, no BYPASSRLS
ADMIN_DB_ROLE = "swordfish_admin"  # owns the schema, runs migrations

# --- secrets ----------------------------------------------------------------
DB_ADMIN_SECRET_NAME = "swordfish/db/admin"
DB_APP_SECRET_NAME = "swordfish/db/app"
NANGO_SECRET_NAME = "swordfish/nango"
API_KEY_PEPPER_SECRET_NAME = "swordfish/api-key-pepper"
SECRET_ROTATION_DAYS = 30

# --- feature flags (AppConfig) ----------------------------------------------
APPCONFIG_APPLICATION = "swordfish"
APPCONFIG_ENVIRONMENT = "default"
APPCONFIG_FLAGS_PROFILE = "feature-flags"
APPCONFIG_AGENT_PORT = 2772  # the AppConfig Agent Lambda extension listens here

# --- threat feeds -----------------------------------------------------------
THREAT_FEEDS = ("urlhaus", "openphish", "phishtank")
FEED_REFRESH_MINUTES = 15
REDIS_INDICATOR_PREFIX = "swordfish:indicators"

# --- environment variable names (read once, in config.py) --------------------
ENV_PREFIX = "SWORDFISH_"
