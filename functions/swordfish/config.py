"""The one settings model: every environment variable the code reads, validated once by pydantic.

Every variable is prefixed ``SWORDFISH_`` (for example ``SWORDFISH_DATABASE_URL``), except the few
set by others (``SENTRY_DSN``, ``SENTRY_ENVIRONMENT``, Lambda's ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``),
which are aliased here. Code reads ``get_settings()``, never ``os.environ``; tests call
``get_settings.cache_clear()`` after changing the environment.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from swordfish import constants


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=constants.ENV_PREFIX, extra="ignore", populate_by_name=True)

    environment: str = Field("local", description="local | dev | prod")
    aws_region: str = "eu-west-1"

    # PostgreSQL: a DSN for the application role. On AWS the DSN is built from the secret
    # named by db_app_secret_name when database_url is not set.
    database_url: str | None = None
    db_app_secret_name: str = constants.DB_APP_SECRET_NAME
    db_host: str | None = None  # on AWS the RDS Proxy endpoint; the secret's host is the instance itself
    db_port: int | None = None  # the proxy's port when it differs from the secret's (the local PgBouncer)
    db_connect_timeout_seconds: int = 5
    db_statement_timeout_ms: int = 10_000
    db_pool_max_size: int = 4
    db_sslmode: str | None = "require"  # the embedded stack's Unix socket sets "disable"
    # Operator commands (`swordfish db`, `swordfish tenants`) connect as the owner role with this.
    admin_database_url: str | None = None
    # Who runs the operator commands, for the audit trail (security.operator): an e-mail or a name.
    # Unset: the login name behind sudo, else the login name; never a bare `root`.
    operator: str | None = None
    sudo_user: str | None = Field(None, validation_alias=AliasChoices("SUDO_USER"))  # set by sudo itself
    pg_bin_dir: Path | None = None  # PostgreSQL's programs for backups; default: pgserver's own

    redis_url: str | None = None
    redis_timeout_seconds: float = 0.5

    # AWS endpoints: unset on AWS; the embedded stack points SQS at fauxqs and the rest at moto.
    aws_endpoint_url: str | None = None
    sqs_endpoint_url: str | None = None
    emails_queue_url: str | None = None
    emails_dlq_url: str | None = None
    remediation_retry_queue_url: str | None = None
    large_mail_bucket: str | None = None

    nango_base_url: str | None = None
    nango_secret_key: str | None = None
    nango_secret_name: str | None = None  # on AWS: a secret with base_url and secret_key
    nango_timeout_seconds: float = 3.0

    urlhaus_feed_url: str | None = None
    openphish_feed_url: str | None = None
    phishtank_feed_url: str | None = None
    feed_timeout_seconds: float = 10.0
    feed_load_timeout_seconds: float = 10.0  # Redis timeout while loading a feed (megabytes, not a lookup)
    feed_max_bytes: int = 64 * 1024 * 1024
    feed_min_keep_ratio: float = 0.5  # a new snapshot under half the live one is suspect: keep the old

    appconfig_agent_url: str = f"http://localhost:{constants.APPCONFIG_AGENT_PORT}"

    max_message_bytes: int = constants.MAX_MESSAGE_BYTES
    # CPU time one message may take in analysis; past it the verdict covers what was analysed so far. A last
    # resort: the analysis's work limits decide what is skipped, the same way on any machine.
    analysis_budget_ms: float = 2_000.0
    # NEW_LINK_DOMAIN: a link's registered domain first seen by this deployment less than this long ago,
    # once the deployment has been observing for the warm-up (before it, every domain is "new").
    new_link_domain_hours: float = 48.0
    new_link_domain_warmup_hours: float = 168.0
    link_domain_memory_days: int = 90  # how long a sighting is remembered (renewed on every sighting)
    # Past this age of the oldest message in a batch, the processor sheds optional work.
    degraded_backlog_seconds: float = 60.0

    breaker_failure_threshold: int = 5
    breaker_recovery_timeout_seconds: float = 30.0
    breaker_success_threshold: int = 3
    breaker_table_name: str = constants.BREAKER_TABLE_NAME
    breaker_cache_seconds: int = 5  # how long a worker trusts its cached breaker state

    health_deadline_seconds: float = 6.0  # the whole deep check
    health_check_timeout_seconds: float = 2.0  # one component without a timeout of its own (queue, pipeline, ...)
    health_cache_seconds: float = 5.0  # a burst of health calls hits the dependencies once
    # Long-lived processor workers the deep check expects heartbeats from (the devstack's pollers);
    # unset on AWS, where Lambda containers come and go and only the freshest beat counts.
    expected_workers: int | None = None
    worker_stale_seconds: float = 15.0  # a worker that has not beaten for this long is dead
    pipeline_stall_seconds: float = 30.0  # backlog this old and nothing processed for a minute: stalled
    backlog_fail_seconds: float = 300.0  # oldest message this old: the pipeline is failing its purpose
    # How long the pool keeps retrying a lost connection before it gives up and starts afresh on the
    # next request: bounds the wait after PostgreSQL returns (psycopg_pool's default is 5 minutes of
    # doubling delays, so a 70 s outage meant ~50 s more before workers reconnected).
    db_reconnect_timeout_seconds: float = 6.0

    # Feature flags client
    flags_cache_seconds: float = 5.0  # reuse a fetch (or a failed fetch) this long before asking again
    flags_timeout_seconds: float = 1.0  # per request to the agent
    flags_counter_flush_seconds: float = 10.0
    flag_overrides: str | None = None  # JSON object {"flag": value}
    flag_overrides_file: Path | None = None  # JSON object, re-read when the file changes

    # Error tracking
    sentry_dsn: str | None = Field(None, validation_alias=AliasChoices("SENTRY_DSN", "SWORDFISH_SENTRY_DSN"))
    sentry_environment: str | None = Field(None, validation_alias=AliasChoices("SENTRY_ENVIRONMENT"))
    error_log_file: Path | None = None
    error_rate_limit: int = 10
    error_rate_window_seconds: float = 60.0
    error_scrub_key: str | None = None
    deadline_warning_ms: int = 3000

    # Set by Lambda itself: the function's memory, for the health report's memory check.
    lambda_memory_mb: int | None = Field(None, validation_alias=AliasChoices("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"))

    # API keys are stored as HMACs under this pepper (locally; on AWS it comes from Secrets Manager).
    api_key_pepper: str | None = None
    # Per-key and per-tenant request limits of the API, per minute (Redis counters).
    api_rate_limit_per_key: int = 600
    api_rate_limit_per_tenant: int = 1200
    api_rate_limit_failed_auth_per_source: int = 20
    api_rate_limit_window_seconds: int = 60
    operator_token: str | None = None  # /health/deep; on AWS the secret constants.OPERATOR_TOKEN_SECRET_NAME
    # On AWS: the API Gateway usage plan every tenant's usage key joins (set on the stack's functions
    # and for operators from the stack output); unset locally, where the Redis limits above apply.
    usage_plan_id: str | None = None
    # On AWS (the authorizer's environment): the id of the one API Gateway key that every caller
    # without a valid key shares (the UnverifiedCallers usage plan); unset: such callers are denied.
    unverified_usage_key_id: str | None = None

    # The MSP console.
    console_secret_key: str | None = None  # signs CSRF tokens; on AWS from the console secret
    console_idle_minutes: int = 30
    console_absolute_hours: int = 12
    console_totp_for_all: bool = False  # TOTP is always required for MSP admins
    # The keys TOTP secrets are encrypted under (security/totp_keys.py): a secret in Secrets Manager.
    console_totp_keys_secret_name: str = constants.CONSOLE_TOTP_KEYS_SECRET_NAME

    release: str = "unknown"  # git commit baked into the build

    # Bulk response jobs (issue 28, docs/response.md): the job queue, and the throttle of mailbox
    # calls per tenant and provider (a token bucket: this many a second, this many at once).
    response_jobs_queue_url: str | None = None
    response_rate_per_second: float = 4.0
    response_burst: float = 20.0

    # Alerts to the MSP (swordfish.alerts, docs/alerts.md): the alerts queue and its own DLQ.
    alerts_queue_url: str | None = None
    alerts_dlq_url: str | None = None
    alert_max_attempts: int = 8  # then the delivery goes to the alerts DLQ
    alert_backoff_seconds: float = 30.0  # doubled after every failure...
    alert_max_backoff_seconds: float = 3600.0  # ...up to this
    alert_webhook_timeout_seconds: float = 5.0
    # Plain-http webhook URLs and private addresses (the embedded stack's local receivers); None: in local only.
    alert_webhooks_allow_http: bool | None = None
    alert_email_from: str = "alerts@swordfish.invalid"
    alert_smtp_url: str | None = None  # smtp://host:port: through this relay; unset: through SES
    # The phishing-rate check (alerts.rate_monitor).
    phishing_rate_window_minutes: float = 60.0
    phishing_rate_baseline_days: float = 7.0
    phishing_rate_min_messages: int = 20
    phishing_rate_min_rate: float = 0.2
    phishing_rate_factor: float = 3.0
    phishing_rate_cooldown_hours: float = 6.0

    # The SIEM export (alerts.export): OCSF JSON lines to S3 and/or a signed webhook.
    siem_export_bucket: str | None = None
    siem_export_webhook_url: str | None = None
    siem_export_webhook_secret: str | None = None  # locally; on AWS the secret below
    siem_export_webhook_secret_name: str | None = None
    siem_export_lag_seconds: float = 120.0  # rows younger than this wait for the next run (open transactions)
    siem_export_max_rows: int = 5000  # per stream and run

    # Sign-in with the MSP's identity provider (OIDC, console/views/oidc.py). Unset issuer: password only.
    oidc_issuer: str | None = None  # e.g. https://login.microsoftonline.com/<tenant>/v2.0
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None  # locally; on AWS the secret below
    oidc_client_secret_name: str | None = None
    oidc_provider_name: str = "your identity provider"
    oidc_groups_claim: str = "groups"  # Entra ID: "groups" or "roles"; Google: a custom claim
    # JSON: {"<group>": {"role": "msp_admin|analyst|auditor", "tenants": ["t1", ...]}}; a user's
    # groups give the highest role among them and the union of tenants. Empty: only existing users.
    oidc_group_map: dict[str, dict] = Field(default_factory=dict)
    # The provider enforces MFA on every sign-in: its sign-in counts as the second factor (else only
    # an ID token whose amr names one; without, admins and analysts go on to the console's TOTP).
    oidc_trust_provider_mfa: bool = False

    # Disaster recovery (swordfish.backup): raw submissions archived before analysis, for replay.
    raw_mail_archive_bucket: str | None = None
    # The embedded stack's archive: a folder on disk (moto's S3 is memory, gone with a restart).
    raw_mail_archive_dir: str | None = None
    # The embedded stack's large mail (S3 pointers): a folder on disk, for the same reason.
    large_mail_dir: str | None = None
    # Set by the embedded stack: the token it marked moto, fauxqs and its folders with (keptState).
    state_marker: str | None = None
    backup_superuser_url: str | None = None  # PostgreSQL superuser DSN for base backups (`make serve` sets it)
    backup_dir: str = ".devstack/backups"  # the encrypted backup repository (base backups + WAL)
    backup_kms_key_id: str = "alias/swordfish/backup"
    backup_retention_days: int = 30
    backup_schedule_seconds: float = 86_400.0  # base backups under `make serve` (daily)
    backup_heartbeat_seconds: float = 2.0
    # Deep health's backup component (the embedded stack's repository; `make serve` turns it on).
    backup_health: bool = False
    backup_rpo_seconds: float = 60.0  # the WAL archive further behind than this fails the component
    backup_verify_max_age_seconds: float = 8 * 86_400.0
    backup_restore_dir: str = ".devstack/restores"

    # Secrets (security/secrets.py): every secret is read from Secrets Manager through one reader.
    secrets_ttl_seconds: float = 300.0  # how long a fetched version is trusted before asking again
    secrets_timeout_seconds: float = 2.0  # connect and read timeout of one Secrets Manager call
    secrets_endpoint_url: str | None = None  # moto locally; unset on AWS
    # The database credentials come from the secret (so a rotation is picked up) unless this is off
    # and database_url is set (tests and tools that connect with a fixed DSN).
    db_credentials_from_secret: bool = False
    api_key_pepper_secret_name: str = constants.API_KEY_PEPPER_SECRET_NAME
    # When Secrets Manager cannot be reached, a secret may come from secrets_fallback (a JSON object
    # SWORDFISH_SECRETS_FALLBACK={"<secret name>": "<secret string>"}) only if allowed: by default in
    # local and dev, never in prod unless the break-glass switch is on.
    secrets_env_fallback: bool | None = None
    secrets_break_glass: bool = False
    secrets_fallback: dict[str, str] = Field(default_factory=dict)
    # Who this process is in the audit log and the version registry (a Lambda sets its function name).
    process_name: str | None = None
    sentry_dsn_secret_name: str | None = None  # on AWS the DSN comes from this secret (sentry_dsn: locally)
    secrets_audit_file: str | None = None  # locally: append-only JSON lines of every secret fetch

    @property
    def alert_http_allowed(self) -> bool:
        if self.alert_webhooks_allow_http is None:
            return self.environment == "local"
        return self.alert_webhooks_allow_http

    @property
    def env_fallback_allowed(self) -> bool:
        if self.environment == "prod":
            return self.secrets_break_glass
        return True if self.secrets_env_fallback is None else self.secrets_env_fallback


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
