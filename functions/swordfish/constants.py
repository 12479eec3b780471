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
# No batching window: waiting to fill a batch would spend the 500 ms end-to-end budget on nothing.
PROCESSOR_BATCHING_WINDOW_SECONDS = 0
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
# The application login alternates between these two roles at each rotation of its secret (the
# clone is a member of swordfish_app: the same grants, never BYPASSRLS), so the previous password
# stays valid until every worker has moved to the new one.
APP_DB_CLONE_ROLE = f"{APP_DB_ROLE}_clone"
# Set on each login role (ALTER ROLE ... SET, in bootstrap and when rotation creates the clone):
# RDS Proxy refuses libpq startup options, and a session-level SET would pin proxy sessions.
DB_STATEMENT_TIMEOUT = "10s"
DB_IDLE_IN_TRANSACTION_TIMEOUT = "30s"
# How long RDS Proxy lets a transaction wait for a free database connection (AWS's default is 120 s,
# past every function's timeout): a saturated database fails fast, as DatabaseUnavailable, and is retried.
DB_PROXY_BORROW_TIMEOUT_SECONDS = 5  # as the pool's connect timeout

# --- secrets ----------------------------------------------------------------
DB_ADMIN_SECRET_NAME = "swordfish/db/admin"
DB_APP_SECRET_NAME = "swordfish/db/app"
NANGO_SECRET_NAME = "swordfish/nango"
API_KEY_PEPPER_SECRET_NAME = "swordfish/api-key-pepper"
SENTRY_DSN_SECRET_NAME = "swordfish/sentry-dsn"
CONSOLE_SECRET_NAME = "swordfish/console"  # signs the console's sessions and CSRF tokens
CONSOLE_TOTP_KEYS_SECRET_NAME = "swordfish/console-totp-keys"  # encrypts TOTP secrets at rest
OPERATOR_TOKEN_SECRET_NAME = "swordfish/operator-token"  # reads /health/deep
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
TENANT_ID_REGEX = r"^[a-z0-9][a-z0-9-]{1,62}$"  # tenant ids: in queue bodies, URLs, keys and RLS settings

# --- AWS deployment (CDK stacks; added by the infrastructure issue) ----------
# Physical names below are used verbatim on AWS: deploy each environment to its own account.
PROCESSOR_FUNCTION_NAME = "swordfish-processor"
API_FUNCTION_NAME = "swordfish-api"
FEED_REFRESHER_FUNCTION_NAME = "swordfish-feed-refresher"
FLAGS_AUDIT_FUNCTION_NAME = "swordfish-flags-audit"
REMEDIATION_FUNCTION_NAME = "swordfish-remediation"
REMEDIATION_HANDLER = "handlers.remediation.handler"
REMEDIATION_TIMEOUT_SECONDS = 30
PROCESSOR_HANDLER = "handlers.processor.handler"
API_HANDLER = "handlers.api.handler"
# API Gateway's Lambda authorizer for tenant routes: verifies the bearer key (the API's own code) and
# names the tenant's usage-plan key, so usage plans throttle and cap each tenant on AWS.
AUTHORIZER_FUNCTION_NAME = "swordfish-authorizer"
AUTHORIZER_HANDLER = "handlers.authorizer.handler"
# How long API Gateway caches one key's Allow/Deny. The API re-verifies the key on every request (a
# revoked key gets 401 at once whatever the cache says); the cache only decides whose usage plan a
# request counts against, so a revoked key can at most be metered for this long.
AUTHORIZER_CACHE_SECONDS = 60
USAGE_KEY_NAME_PREFIX = "swordfish-tenant-"  # API Gateway API key per tenant: <prefix><tenant id>
CONSOLE_FUNCTION_NAME = "swordfish-console"
CONSOLE_HANDLER = "handlers.console.handler"
CONSOLE_PATH = "console"  # the console's path on the API's domain
FEED_REFRESHER_HANDLER = "handlers.feed_refresher.handler"
FLAGS_AUDIT_HANDLER = "handlers.flags_audit.handler"
ROTATE_SECRET_FUNCTION_NAME = "swordfish-rotate-secret"
ROTATE_SECRET_HANDLER = "handlers.rotate_secret.handler"
ROTATE_SECRET_TIMEOUT_SECONDS = 60
API_TIMEOUT_SECONDS = 29  # API Gateway's integration timeout
FEED_REFRESHER_TIMEOUT_SECONDS = 300
FLAGS_AUDIT_TIMEOUT_SECONDS = 30
DB_MASTER_SECRET_NAME = "swordfish/db/master"  # RDS master user: only rotations use it
DB_MASTER_USER = "swordfish_master"
BREAKER_TABLE_PARTITION_KEY = "id"  # Powertools circuit-breaker persistence default
BREAKER_TABLE_TTL_ATTRIBUTE = "expiration"  # epoch seconds, Powertools default
FLAGS_FILE = "swordfish/features/flags.json"  # relative to functions/
APPCONFIG_DEPLOYMENT_STRATEGY = "swordfish-linear-bake"

# --- metrics (namespace METRICS_NAMESPACE, dimension "service" = SERVICE_NAME) ---
METRIC_SERVICE_DIMENSION = "service"  # Powertools Metrics adds it to every metric
METRIC_EMAILS_PROCESSED = "EmailsProcessed"
METRIC_END_TO_END_LATENCY = "EndToEndLatency"  # milliseconds, verdict commit - SQS SentTimestamp
METRIC_DEAD_LETTERED = "DeadLettered"
METRIC_VERDICT_PREFIX = "Verdict"  # VerdictClean, VerdictSpam, ... one metric per verdict
VERDICTS = ("clean", "spam", "suspicious", "phishing", "malware")
# Circuit breakers: one gauge per breaker, dimension CIRCUIT_DIMENSION = breaker name.
METRIC_CIRCUIT_STATE = "CircuitState"
CIRCUIT_DIMENSION = "circuit"
CIRCUIT_STATE_CLOSED = 0
CIRCUIT_STATE_HALF_OPEN = 1
CIRCUIT_STATE_OPEN = 2
METRIC_HEALTH_SCORE = "HealthScore"  # 0 (down) .. 100 (healthy)
HEALTH_SCORE_ALARM_THRESHOLD = 50
# Error events: Powertools JSON log lines with error_event=true, fingerprint, exception_type;
# a metric filter turns them into this metric (no dimensions).
METRIC_ERROR_EVENTS = "ErrorEvents"
ERROR_EVENTS_ALARM_THRESHOLD = 10  # events per 5 minutes
END_TO_END_LATENCY_P95_THRESHOLD_MS = 500

# --- disaster recovery (issue 13) ----------------------------------------------
RESTORE_VALIDATOR_FUNCTION_NAME = "swordfish-restore-validator"
RESTORE_VALIDATOR_HANDLER = "handlers.restore_validator.handler"
RESTORE_VALIDATOR_TIMEOUT_SECONDS = 600
METRIC_RESTORE_VALIDATION_FAILED = "RestoreValidationFailed"
RDS_REPLICA_KEY_ALIAS = "alias/swordfish/rds-backup-replica"  # in the copy region: replicated automated backups
RAW_MAIL_ARCHIVE_PREFIX = "raw-submissions/"
LARGE_MAIL_EXPIRY_DAYS = 30  # the large-mail bucket's lifecycle; the embedded stack's folder prunes the same
# The embedded stack marks what it created in each in-memory emulator and folder (a token in the
# environment, SWORDFISH_STATE_MARKER); deep health's keptState says which came back empty.
STATE_MARKER_KEY = ".swordfish/stack-marker"  # an object in the large-mail bucket (moto)
STATE_MARKER_QUEUE = "swordfish-stack-marker"  # a queue (fauxqs)
STATE_MARKER_FILE = ".swordfish-marker"  # a file in the raw archive's and the large mail's folders
# The backup bucket (raw archive included) expires objects after this many days; a verdict's trace
# (recipients, links, attachments: issue 28) is kept exactly as long as the message it was read from.
BACKUP_OBJECT_EXPIRY_DAYS = 365

# --- health canary and deploy-time alarms (issue 12) -------------------------
# A scheduled function runs the deep health check every minute and emits what the alarms watch:
# HealthScore, one ComponentStatus per component, CircuitState for every breaker (so CircuitOpen
# stays up while a breaker is open, not only at its transition) and each feed's snapshot age.
HEALTH_CANARY_FUNCTION_NAME = "swordfish-health-canary"
HEALTH_CANARY_HANDLER = "handlers.health_canary.handler"
HEALTH_CANARY_TIMEOUT_SECONDS = 30
HEALTH_CANARY_RATE_MINUTES = 1
METRIC_COMPONENT_STATUS = "ComponentStatus"  # 0 pass, 1 warn, 2 fail
COMPONENT_DIMENSION = "component"
METRIC_FEED_SNAPSHOT_AGE = "FeedSnapshotAge"  # seconds since the feed's last good refresh
FEED_DIMENSION = "feed"
FEED_SNAPSHOT_AGE_ALARM_SECONDS = 2 * FEED_REFRESH_MINUTES * 60  # two missed refreshes
# EventBridge detail-types of the AppConfig deployment events the flags audit records.
APPCONFIG_AUDITED_DETAIL_TYPES = ("On Deployment Complete", "On Deployment Rollback")

# Alerts to the MSP and the SIEM export (issue 28; swordfish.alerts, stacks/constructs/alerts.py).
# Bulk response jobs (issue 28; pipeline/response.py, stacks/constructs/response_jobs.py): each message
# on the queue is {"job_id": n}; the worker runs a chunk and sends the job back while items wait.
RESPONSE_JOBS_QUEUE_NAME = "swordfish-response-jobs"
RESPONSE_JOBS_DLQ_NAME = "swordfish-response-jobs-dlq"
RESPONSE_JOBS_FUNCTION_NAME = "swordfish-response-jobs"
RESPONSE_JOBS_HANDLER = "handlers.response_jobs.handler"
RESPONSE_JOBS_TIMEOUT_SECONDS = 60  # the worker stops taking items after 20 s of it
ALERTS_QUEUE_NAME = "swordfish-alerts"
ALERTS_DLQ_NAME = "swordfish-alerts-dlq"
ALERTS_FUNCTION_NAME = "swordfish-alerts"
ALERTS_HANDLER = "handlers.alerts.handler"
ALERTS_TIMEOUT_SECONDS = 60
ALERTS_RATE_CHECK_FUNCTION_NAME = "swordfish-phishing-rate-check"
ALERTS_RATE_CHECK_HANDLER = "handlers.alerts.rate_check_handler"
ALERTS_RATE_CHECK_MINUTES = 5
SIEM_EXPORT_FUNCTION_NAME = "swordfish-siem-export"
SIEM_EXPORT_HANDLER = "handlers.siem_export.handler"
SIEM_EXPORT_MINUTES = 5
# Traces (recipients, links, attachments) kept as long as the raw archive keeps the message: purged
# once a day on AWS (issue 28), as `swordfish trace purge` does by hand.
TRACE_PURGE_FUNCTION_NAME = "swordfish-trace-purge"
TRACE_PURGE_HANDLER = "handlers.trace_purge.handler"
TRACE_PURGE_SCHEDULE_HOURS = 24
TRACE_PURGE_TIMEOUT_SECONDS = 300
SIEM_EXPORT_BUCKET_PREFIX = "swordfish-siem-export"
SIEM_EXPORT_WEBHOOK_SECRET_NAME = "swordfish/siem-export-webhook"
