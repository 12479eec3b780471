"""The one place that builds concrete objects from settings: the composition root.

Every Lambda handler calls one getter here (``pipeline``, ``api_dependencies``,
``remediation_retry``, ``feed_refresher``, ``flag_audit``); each value is built on first use and
kept for the life of the process (a Lambda container, a devstack worker), so warm invocations reuse
pools and clients. ``reset()`` forgets them all: after a settings change, and between tests.

This module sits at the top of the package (see docs/architecture.md): it may import every layer,
and nothing under ``swordfish`` imports it; only ``handlers`` and the CLI commands do.
"""

from __future__ import annotations

import functools
import gc
import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import boto3
import psycopg
import redis
from botocore.config import Config

from swordfish import constants
from swordfish.api import health_deep
from swordfish.api.health_deep import HealthDependencies, cloudwatch_queue_age_probe
from swordfish.api.health_progress import fauxqs_queue_age_probe
from swordfish.api.ratelimit import ApiRateLimiter
from swordfish.api.routes import ApiDependencies
from swordfish.backup.replay import CollectingQueue
from swordfish.config import Settings, get_settings
from swordfish.console.app import ConsoleDependencies
from swordfish.console.app import create_app as create_console_app
from swordfish.features import flags_client, reset_flags_client
from swordfish.features.admin import FlagAdmin
from swordfish.features.repository import ConfigurationRepository, repository_from_settings
from swordfish.integrations.feed_refresher import (
    DEFAULT_LOAD_TIMEOUT_SECONDS,
    DEFAULT_MIN_KEEP_RATIO,
    FeedFetcher,
    FeedRefresher,
    feed_sources,
)
from swordfish.integrations.indicators import IndicatorStore
from swordfish.integrations.link_domains import RedisLinkDomainHistory
from swordfish.integrations.mail_source import MailSourceLoader
from swordfish.integrations.nango import NangoClient
from swordfish.lazy import ProcessSingleton
from swordfish.monitoring.observability import logger
from swordfish.monitoring.progress import ProgressRecorder
from swordfish.pipeline.processor import Pipeline, PolicyCache
from swordfish.pipeline.queues import SqsQueuePort, SqsRemediationQueue
from swordfish.pipeline.remediation import RemediationRetry
from swordfish.pipeline.submitter import Submitter
from swordfish.resilience.circuit_breaker import BreakerRegistry, get_registry, reset_registry
from swordfish.resilience.fallbacks import (
    GuardedFeedFetcher,
    GuardedIndicatorLookup,
    GuardedRemediator,
    GuardedS3,
    guarded_mailbox_fetch,
)
from swordfish.security.rotation import Rotator
from swordfish.security.secrets import (
    SecretError,
    SecretReader,
    process_secret_reader,
    reset_process_secret_reader,
    secretsmanager_client,
)
from swordfish.store.campaigns import CampaignGrouper
from swordfish.store.database import Database, SecretConninfo
from swordfish.store.pipeline_store import PostgresApiStore, PostgresVerdictStore
from swordfish.store.quarantines import PostgresQuarantineLedger
from swordfish.store.response_jobs import ResponseDesk

# Short timeouts and few retries: a hung AWS call must not eat the Lambda's whole budget.
_BOTO_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})


# --- clients ------------------------------------------------------------------------------------


def aws_client(service: str, settings: Settings | None = None):
    settings = settings or get_settings()
    endpoint = settings.sqs_endpoint_url if service == "sqs" and settings.sqs_endpoint_url else settings.aws_endpoint_url
    return boto3.client(service, region_name=settings.aws_region, endpoint_url=endpoint, config=_BOTO_CONFIG)


def nango_client(settings: Settings | None = None) -> NangoClient | None:
    """From settings locally; on AWS from the secret named by nango_secret_name (the secret reader)."""
    settings = settings or get_settings()
    base_url, secret_key = settings.nango_base_url, settings.nango_secret_key
    if not base_url and settings.nango_secret_name:
        secret = secret_reader().get(settings.nango_secret_name).fields("base_url", "secret_key")
        base_url, secret_key = secret["base_url"], secret["secret_key"]
    if not base_url:
        return None
    return NangoClient(base_url, secret_key or "", settings.nango_timeout_seconds,
                       max_message_bytes=settings.max_message_bytes)


def database_conninfo(settings: Settings | None = None) -> SecretConninfo:
    """The application login from the current version of its secret (the pool resolves it per connection)."""
    settings = settings or get_settings()
    return SecretConninfo(secret_reader(), settings.db_app_secret_name, host=settings.db_host,
                          port=settings.db_port, sslmode=settings.db_sslmode)


def _credentials_from_secret(settings: Settings) -> bool:
    return settings.db_credentials_from_secret or not settings.database_url


def database_url(settings: Settings | None = None) -> str:
    """A DSN for one-off connections (health checks, operator tools): the secret's current version
    when credentials come from the secret, else the fixed DSN."""
    settings = settings or get_settings()
    return database_conninfo(settings)() if _credentials_from_secret(settings) else settings.database_url


def build_database(settings: Settings | None = None) -> Database:
    settings = settings or get_settings()
    url = database_conninfo(settings) if _credentials_from_secret(settings) else settings.database_url
    return Database(url, max_size=settings.db_pool_max_size, connect_timeout=settings.db_connect_timeout_seconds,
                    statement_timeout_ms=settings.db_statement_timeout_ms,
                    reconnect_timeout=settings.db_reconnect_timeout_seconds)


def build_submitter(settings: Settings | None = None) -> Submitter:
    settings = settings or get_settings()
    if not settings.emails_queue_url:
        raise RuntimeError("SWORDFISH_EMAILS_QUEUE_URL must be set to submit mail")
    return Submitter(aws_client("sqs", settings), settings.emails_queue_url,
                     s3=large_mail_objects(settings), bucket=settings.large_mail_bucket)


def large_mail_objects(settings: Settings):
    """Where large mail (S3 pointers) is put and read: S3, or on the embedded stack a folder on
    disk that outlives moto (issue 25)."""
    if settings.large_mail_dir:
        from swordfish.integrations.large_mail import DirLargeMailStore

        return DirLargeMailStore(settings.large_mail_dir)
    return aws_client("s3", settings)


# --- the processor ------------------------------------------------------------------------------


def _analysis_adapters(settings: Settings) -> dict:
    """What a verdict depends on besides the message and the database: the mail loader, the threat
    indicators, the link-domain history, the flags, the budget. The processor and a replay after a
    restore take them from here, so a replayed verdict is the one the tenant got (issue 25)."""
    nango = nango_client(settings)
    # Every outbound call goes through its circuit breaker, with the fallback fallbacks.py documents.
    mail = MailSourceLoader(s3_client=GuardedS3(large_mail_objects(settings)),
                            mailbox_fetch=guarded_mailbox_fetch(nango) if nango else None,
                            max_bytes=settings.max_message_bytes)
    indicators = GuardedIndicatorLookup(IndicatorStore.from_url(settings.redis_url, settings.redis_timeout_seconds)) \
        if settings.redis_url else None
    # First sightings of link domains (NEW_LINK_DOMAIN) share the feeds' Redis; without Redis, no signal.
    link_domains = RedisLinkDomainHistory.from_url(settings.redis_url, settings.redis_timeout_seconds,
                                                   settings.link_domain_memory_days) if settings.redis_url else None
    return {
        "nango": nango,
        "mail": mail,
        "indicators": indicators,
        "flags_snapshot": flags_client().snapshot,
        "max_message_bytes": settings.max_message_bytes,
        "analysis_budget_seconds": settings.analysis_budget_ms / 1000,
        "link_domains": link_domains,
        "new_link_domain_window_seconds": settings.new_link_domain_hours * 3600,
        "new_link_domain_warmup_seconds": settings.new_link_domain_warmup_hours * 3600,
    }


def build_pipeline(settings: Settings | None = None) -> Pipeline:
    settings = settings or get_settings()
    if not (settings.emails_queue_url and settings.emails_dlq_url):
        raise RuntimeError("SWORDFISH_EMAILS_QUEUE_URL and SWORDFISH_EMAILS_DLQ_URL must be set")
    db = database()
    queue = SqsQueuePort(aws_client("sqs", settings), queue_url=settings.emails_queue_url,
                         dlq_url=settings.emails_dlq_url, remediation_queue_url=settings.remediation_retry_queue_url)
    adapters = _analysis_adapters(settings)
    nango = adapters.pop("nango")
    raw_archive = raw_mail_archive(settings)  # submissions kept before analysis, for `swordfish backup replay`
    pipeline = Pipeline(
        raw_archive=raw_archive,
        database=db,
        policies=PolicyCache(PostgresVerdictStore(db)),
        queue=queue,
        remediator=GuardedRemediator(nango, defer=queue.defer_remediation, ledger=PostgresQuarantineLedger(db))
        if nango else None,
        degraded_backlog_seconds=settings.degraded_backlog_seconds,
        campaigns=CampaignGrouper(db),
        alerts=build_alert_publisher(settings),
        **adapters,
    )
    # What init built (clients, models, pools) lives as long as the process: frozen, the cyclic
    # collector stops rescanning it, so a full collection cannot land 50-100 ms inside one message's
    # analysis budget. Collected first, so that no garbage is frozen with it.
    gc.collect()
    gc.freeze()
    return pipeline


def build_replay_pipeline(database_url: str, settings: Settings | None = None
                          ) -> tuple[Pipeline, CollectingQueue, Database]:
    """The processor's pipeline against another database (a restored server), for `backup replay`
    and the drill: the same indicators, link-domain history, flags and budget, the tenants' policies
    as they are now. What differs is only what a replay must not do: nothing is sent to a queue
    (dead letters, requeues and quarantines are collected and reported), nothing is archived again,
    and old mail is not "degraded" (its age is the outage's, not a backlog's)."""
    settings = settings or get_settings()
    db = Database(database_url, max_size=2, connect_timeout=settings.db_connect_timeout_seconds)
    queue = CollectingQueue()
    adapters = _analysis_adapters(settings)
    adapters.pop("nango")  # no remediator: quarantines a live run would have done are reported
    pipeline = Pipeline(database=db, policies=PolicyCache(PostgresVerdictStore(db)), queue=queue,
                        degraded_backlog_seconds=float("inf"), **adapters)
    return pipeline, queue, db


# --- the remediation retry ----------------------------------------------------------------------


def build_remediation_retry(settings: Settings | None = None) -> RemediationRetry:
    settings = settings or get_settings()
    nango = nango_client(settings)
    if nango is None or not settings.remediation_retry_queue_url:
        raise RuntimeError("remediation needs Nango (SWORDFISH_NANGO_BASE_URL or _SECRET_NAME) and "
                           "SWORDFISH_REMEDIATION_RETRY_QUEUE_URL")
    # No defer callback: an open breaker raises, and RemediationRetry requeues with a delay.
    return RemediationRetry(GuardedRemediator(nango, ledger=PostgresQuarantineLedger(database())),
                            SqsRemediationQueue(aws_client("sqs", settings), settings.remediation_retry_queue_url))


# --- bulk response jobs (issue 28) -----------------------------------------------------------------


def build_response_worker(settings: Settings | None = None):
    """The job worker: Nango behind nango_remediate, the throttle from settings, the job queue to
    send a job back to while its items wait."""
    from swordfish.pipeline.response import ResponseWorker, SqsJobQueue
    from swordfish.store.response_jobs import Bucket

    settings = settings or get_settings()
    nango = nango_client(settings)
    if nango is None:
        raise RuntimeError("bulk response needs Nango (SWORDFISH_NANGO_BASE_URL or _SECRET_NAME)")
    kick = SqsJobQueue(aws_client("sqs", settings), settings.response_jobs_queue_url) \
        if settings.response_jobs_queue_url else None
    return ResponseWorker(database(), nango, bucket=Bucket(settings.response_rate_per_second, settings.response_burst),
                          kick=kick)


def response_kick(settings: Settings) -> Callable[[int], None] | None:
    """What the API and the console call once a job is stored: the job onto its queue."""
    if not settings.response_jobs_queue_url:
        return None
    from swordfish.pipeline.queues import send_job

    client = functools.cache(lambda: aws_client("sqs", settings))
    return lambda job_id: send_job(client(), settings.response_jobs_queue_url, job_id)


# --- the threat-feed refresher ------------------------------------------------------------------


def build_feed_refresher(settings: Settings | None = None) -> FeedRefresher:
    settings = settings or get_settings()
    if not settings.redis_url:
        raise RuntimeError("the feed refresher needs Redis: set SWORDFISH_REDIS_URL")
    # Loading a large feed moves megabytes; the lookup timeout (redis_timeout_seconds) is too tight.
    load_timeout = max(settings.redis_timeout_seconds,
                       getattr(settings, "feed_load_timeout_seconds", DEFAULT_LOAD_TIMEOUT_SECONDS))
    return FeedRefresher(
        IndicatorStore.from_url(settings.redis_url, load_timeout),
        # Each feed's fetch goes through its breaker; an open breaker keeps the last good snapshot.
        GuardedFeedFetcher(FeedFetcher(settings.feed_timeout_seconds, settings.feed_max_bytes),
                           registry=BreakerRegistry(settings=settings)),
        feed_sources(settings),
        getattr(settings, "feed_min_keep_ratio", DEFAULT_MIN_KEEP_RATIO),
    )


# --- health ---------------------------------------------------------------------------------------


def build_health_dependencies(settings: Settings | None = None) -> HealthDependencies:
    settings = settings or get_settings()
    url: str | Callable[[], str] | None = settings.database_url
    url_after_auth_failure = None
    uses_secrets = _credentials_from_secret(settings) and (settings.environment != "local" or
                                                           settings.db_credentials_from_secret)
    if uses_secrets:  # resolved per check, as the pool does: re-read at once when the login is refused
        conninfo = database_conninfo(settings)
        url, url_after_auth_failure = conninfo, conninfo.after_auth_failure
    feed_status = progress = None
    if settings.redis_url:
        feed_status = IndicatorStore.from_url(settings.redis_url, settings.redis_timeout_seconds).status
        # Worker heartbeats and progress counters, for the workers and pipeline checks.
        progress = ProgressRecorder.from_url(settings.redis_url, max(0.5, settings.redis_timeout_seconds * 2))
    on_aws = settings.aws_endpoint_url is None and settings.sqs_endpoint_url is None
    queue_age_probe = None
    if settings.emails_queue_url:  # CloudWatch on AWS; locally fauxqs through our read-only route
        queue_age_probe = (cloudwatch_queue_age_probe(settings) if on_aws else
                           fauxqs_queue_age_probe(settings.sqs_endpoint_url, constants.EMAILS_QUEUE_NAME)
                           if settings.sqs_endpoint_url else None)
    return HealthDependencies(
        database_url=url,
        database_url_after_auth_failure=url_after_auth_failure,
        redis_url=settings.redis_url,
        nango_base_url=settings.nango_base_url,
        feed_urls={f: getattr(settings, f"{f}_feed_url", None) for f in constants.THREAT_FEEDS},
        feed_status=feed_status,
        sqs_client=aws_client("sqs", settings) if settings.emails_queue_url else None,
        queue_url=settings.emails_queue_url,
        dlq_url=settings.emails_dlq_url,
        queue_age_probe=queue_age_probe,
        breakers=get_registry(),
        flag_status=lambda: flags_client().store_status(),
        secret_reader=secret_reader() if uses_secrets else None,
        timeouts={"postgresql": max(2.0, float(settings.db_connect_timeout_seconds)),
                  "redis": max(0.5, settings.redis_timeout_seconds * 2),
                  "nango": settings.nango_timeout_seconds, "feed": min(settings.feed_timeout_seconds, 3.0)},
        default_timeout=settings.health_check_timeout_seconds,
        deadline_seconds=float(getattr(settings, "health_deadline_seconds", 6.0)),
        cache_seconds=float(getattr(settings, "health_cache_seconds", 5.0)),
        backlog_warn_seconds=settings.degraded_backlog_seconds,
        release=settings.release,
        progress=progress,
        expected_workers=settings.expected_workers,
        worker_stale_seconds=settings.worker_stale_seconds,
        pipeline_stall_seconds=settings.pipeline_stall_seconds,
        backlog_fail_seconds=settings.backlog_fail_seconds,
        backup_status=_backup_status(settings) if settings.backup_health else None,
        backup_rpo_seconds=settings.backup_rpo_seconds,
        backup_schedule_seconds=settings.backup_schedule_seconds,
        backup_verify_max_age_seconds=settings.backup_verify_max_age_seconds,
        kept_state=_kept_state_probes(settings),
    )


def _kept_state_probes(settings: Settings) -> dict[str, Callable[[], str | None]]:
    """The embedded stack's markers (moto, fauxqs, its folders) and the backup key: each probe
    returns None while the state is there, else a line saying what came back empty (issue 25)."""
    from pathlib import Path

    from botocore.exceptions import ClientError

    probes: dict[str, Callable[[], str | None]] = {}
    token = settings.state_marker

    def code(exc: ClientError) -> str:
        return exc.response.get("Error", {}).get("Code", "")

    if token and settings.large_mail_bucket:
        def moto() -> str | None:
            where = f"s3://{settings.large_mail_bucket}/{constants.STATE_MARKER_KEY}"
            try:
                obj = aws_client("s3", settings).get_object(Bucket=settings.large_mail_bucket,
                                                            Key=constants.STATE_MARKER_KEY)
                found = obj["Body"].read(256).decode("utf-8", "replace")
            except ClientError as exc:
                if code(exc) not in ("NoSuchKey", "NoSuchBucket", "404"):
                    raise
                found = None
            if found == token:
                return None
            state = "gone" if found is None else "another stack's"
            return (f"moto came back empty: its marker {where} is {state}; buckets, secrets, flags and KMS keys "
                    "are not re-created yet")
        probes["moto"] = moto
    if token and settings.emails_queue_url:
        marker_url = f"{settings.emails_queue_url.rsplit('/', 1)[0]}/{constants.STATE_MARKER_QUEUE}"

        def fauxqs() -> str | None:
            try:
                aws_client("sqs", settings).get_queue_attributes(QueueUrl=marker_url, AttributeNames=["QueueArn"])
                return None
            except ClientError as exc:
                if "NonExistentQueue" not in code(exc) and "QueueDoesNotExist" not in code(exc):
                    raise
            return (f"fauxqs came back empty: its marker queue {constants.STATE_MARKER_QUEUE} is gone; the queues "
                    "are not re-created yet (their journal puts queued mail back when they are)")
        probes["fauxqs"] = fauxqs
    for name, folder, what in (("rawArchive", settings.raw_mail_archive_dir, "the raw-submission archive"),
                               ("largeMail", settings.large_mail_dir, "large mail")):
        if token and folder:
            def marked(folder: str = folder, what: str = what) -> str | None:
                try:
                    if (Path(folder) / constants.STATE_MARKER_FILE).read_text().strip() == token:
                        return None
                except OSError:
                    pass
                return (f"{what} came back empty: {Path(folder) / constants.STATE_MARKER_FILE} is gone or another "
                        "stack's (the folder was emptied or replaced): what it held before is lost")
            probes[name] = marked
    if settings.backup_health:
        key = settings.backup_kms_key_id

        def backup_key() -> str | None:
            if key.startswith("file:"):
                path = Path(key[len("file:"):])
                if path.is_file() and path.stat().st_size:
                    return None
            else:
                try:
                    aws_client("kms", settings).describe_key(KeyId=key)
                    return None
                except ClientError as exc:
                    if code(exc) not in ("NotFoundException", "KMSInvalidStateException"):
                        raise
            return (f"the backup key {key} is gone: backups taken under it cannot be decrypted; take a new base "
                    "backup under a new key")
        probes["backupKey"] = backup_key
    return probes


def _backup_status(settings: Settings) -> Callable[[], dict]:
    """The embedded stack's backup repository, read from its files on each check (any process)."""
    from pathlib import Path

    from swordfish.backup.status import repository_status

    return lambda: repository_status(Path(settings.backup_dir))


# --- the API --------------------------------------------------------------------------------------


def build_api_dependencies(settings: Settings | None = None) -> ApiDependencies:
    """One pool and one set of clients per container."""
    settings = settings or get_settings()
    if not settings.emails_queue_url:
        raise RuntimeError("SWORDFISH_EMAILS_QUEUE_URL must be set for the API")
    submitter = build_submitter(settings)
    limiter = None
    if settings.redis_url:
        limiter = ApiRateLimiter(redis.Redis.from_url(settings.redis_url, socket_timeout=settings.redis_timeout_seconds,
                                                      socket_connect_timeout=settings.redis_timeout_seconds),
                                 per_key=settings.api_rate_limit_per_key, per_tenant=settings.api_rate_limit_per_tenant,
                                 failed_auth_per_source=settings.api_rate_limit_failed_auth_per_source,
                                 window_seconds=settings.api_rate_limit_window_seconds)
    return ApiDependencies(store=PostgresApiStore(database()), submitter=lambda: submitter,
                           max_message_bytes=settings.max_message_bytes,
                           health=functools.cache(lambda: build_health_dependencies(settings)),
                           rate_limiter=limiter, operator_token=lambda: operator_token(settings),
                           releaser=releaser_factory(settings),
                           alert_rules=functools.cache(lambda: alert_rules_admin(settings)),
                           responses=functools.cache(lambda: ResponseDesk(database(), response_kick(settings))))


def releaser_factory(settings: Settings) -> Callable[[], GuardedRemediator | None]:
    """Release from quarantine, for the API and the console: the quarantine's Nango client and
    breaker, built on the first release (on AWS the Nango secret is read then, not at cold start,
    so a secret problem costs releases, not every page)."""
    return functools.cache(lambda: GuardedRemediator(nango) if (nango := nango_client(settings)) else None)


def operator_token(settings: Settings) -> str | None:
    """The token operators present for /health/deep: a setting locally, a secret on AWS."""
    if settings.operator_token or settings.environment == "local":
        return settings.operator_token
    return secret_reader().get(constants.OPERATOR_TOKEN_SECRET_NAME).value  # cached, versioned, audited


# --- API Gateway's authorizer (AWS only) ----------------------------------------------------------


def build_authorizer_store(settings: Settings | None = None) -> PostgresApiStore:
    """The API's own store: the authorizer verifies keys with the same code as the API."""
    return PostgresApiStore(database())


def build_unverified_usage_key(settings: Settings | None = None) -> str:
    """The value of the API Gateway key every unverified caller shares, read once per container
    (the stack gives its id; "" when unset, and then the authorizer denies such callers). A failed
    lookup raises and is retried on the next call: the authorizer answers 500, nothing is cached."""
    settings = settings or get_settings()
    if not settings.unverified_usage_key_id:
        return ""
    from swordfish.integrations.usage_plans import usage_key_value

    return usage_key_value(aws_client("apigateway", settings), settings.unverified_usage_key_id)


# --- the MSP console ------------------------------------------------------------------------------


def console_secret_key(settings: Settings) -> str:
    if settings.console_secret_key:
        return settings.console_secret_key
    if settings.environment == "local":
        return secrets.token_urlsafe(32)  # one process locally: its sessions end with it, which is fine
    return secret_reader().get(constants.CONSOLE_SECRET_NAME).value  # the one reader: cached, audited


def build_console_dependencies(settings: Settings | None = None) -> ConsoleDependencies:
    settings = settings or get_settings()
    if not settings.redis_url:
        raise RuntimeError("SWORDFISH_REDIS_URL must be set: console sessions and login throttling live in Redis")
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    health = functools.cache(lambda: build_health_dependencies(settings))

    def health_report(kind: str) -> tuple[int, dict]:
        if kind == "ready":
            return health_deep.ready(health())
        return health_deep.deep(health(), emit_metric=False)

    def flag_admin(actor: str) -> FlagAdmin:
        return FlagAdmin(repository_from_settings(), database_url(settings), actor)

    def flag_document() -> tuple[str, dict]:
        deployed = repository_from_settings().deployed()
        return deployed.version, deployed.document

    return ConsoleDependencies(
        message_source=message_source_factory(settings), releaser=releaser_factory(settings),
        database=database(), redis=client, secret_key=console_secret_key(settings),
        idle=timedelta(minutes=settings.console_idle_minutes),
        absolute=timedelta(hours=settings.console_absolute_hours), totp_for_all=settings.console_totp_for_all,
        flag_admin=flag_admin, flag_document=flag_document, health_report=health_report,
        dead_letters=dead_letters_factory(settings), alert_http_allowed=settings.alert_http_allowed,
        oidc=build_oidc_client(settings, client), alert_dead_letters=alert_dead_letters_factory(settings),
        responses=functools.cache(lambda: ResponseDesk(database(), response_kick(settings))))


def alert_dead_letters_factory(settings: Settings) -> Callable[[], object] | None:
    """The alerts' own DLQ for the console's alerts page (redrive starts a delivery over)."""
    if not settings.alerts_dlq_url or not settings.alerts_queue_url:
        return None
    from swordfish.pipeline.queues import DeadLetters

    return functools.cache(lambda: DeadLetters(aws_client("sqs", settings), dlq_url=settings.alerts_dlq_url,
                                               queue_url=settings.alerts_queue_url))


def build_oidc_client(settings: Settings, redis_client):
    """Sign-in with the MSP's identity provider; None when no issuer is configured (password only)."""
    if not settings.oidc_issuer:
        return None
    from swordfish.console.oidc import OidcClient, OidcConfig

    secret = settings.oidc_client_secret
    if not secret and settings.oidc_client_secret_name:
        secret = secret_reader().get(settings.oidc_client_secret_name).value
    if not settings.oidc_client_id or not secret:
        raise RuntimeError("OIDC sign-in needs SWORDFISH_OIDC_CLIENT_ID and SWORDFISH_OIDC_CLIENT_SECRET(_NAME)")
    return OidcClient(OidcConfig(issuer=settings.oidc_issuer, client_id=settings.oidc_client_id, client_secret=secret,
                                 provider_name=settings.oidc_provider_name, groups_claim=settings.oidc_groups_claim,
                                 group_map=settings.oidc_group_map,
                                 trust_provider_mfa=settings.oidc_trust_provider_mfa), redis_client)


def dead_letters_factory(settings: Settings) -> Callable[[], object] | None:
    """The emails DLQ for the console's operations page; None where the console has no queue URLs."""
    if not settings.emails_dlq_url or not settings.emails_queue_url:
        return None
    from swordfish.pipeline.queues import DeadLetters

    return functools.cache(lambda: DeadLetters(aws_client("sqs", settings), dlq_url=settings.emails_dlq_url,
                                               queue_url=settings.emails_queue_url))


def raw_mail_archive(settings: Settings):
    """The raw-submission archive: a folder on the embedded stack, S3 on AWS, or none."""
    if settings.raw_mail_archive_dir:
        from swordfish.integrations.raw_archive import DirRawMailArchive

        return DirRawMailArchive(settings.raw_mail_archive_dir)
    if settings.raw_mail_archive_bucket:
        from swordfish.integrations.raw_archive import S3RawMailArchive

        return S3RawMailArchive(aws_client("s3", settings), settings.raw_mail_archive_bucket)
    return None


def message_source_factory(settings: Settings) -> Callable[[], object | None] | None:
    """A verdict's message, re-read from the raw archive with its pointers resolved as the pipeline
    does (S3, the mailbox via Nango behind its breaker); built on the first page that needs it."""
    if not (settings.raw_mail_archive_bucket or settings.raw_mail_archive_dir):
        return None

    @functools.cache
    def build():
        from swordfish.integrations.message_content import ArchivedMessageSource

        s3, nango = large_mail_objects(settings), nango_client(settings)
        return ArchivedMessageSource(
            raw_mail_archive(settings),
            MailSourceLoader(s3_client=GuardedS3(s3), mailbox_fetch=guarded_mailbox_fetch(nango) if nango else None,
                             max_bytes=settings.max_message_bytes))

    return build


def build_console_app(settings: Settings | None = None):
    """The console's Flask app (a WSGI app), built once per container."""
    return create_console_app(build_console_dependencies(settings))


# --- flag audit -----------------------------------------------------------------------------------


@dataclass
class FlagAudit:
    """What the flag-audit function needs: the flag store and a connection to the audit table."""

    repository: ConfigurationRepository
    database: Database

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with self.database.connection() as conn, conn.transaction():
            yield conn


def build_flag_audit(settings: Settings | None = None) -> FlagAudit:
    return FlagAudit(repository_from_settings(), database())


# --- alerts and the SIEM export (issue 28) -------------------------------------------------------


def build_alert_publisher(settings: Settings | None = None):
    """Events onto the alerts queue (``alerts.dispatcher.SqsAlertPublisher``); None without the queue.
    The campaign hook's caller takes it from ``wiring.alert_publisher()``."""
    settings = settings or get_settings()
    if not settings.alerts_queue_url:
        return None
    from swordfish.alerts.dispatcher import SqsAlertPublisher

    return SqsAlertPublisher(aws_client("sqs", settings), settings.alerts_queue_url)


def alert_rules_admin(settings: Settings | None = None):
    from swordfish.alerts.rules import AlertRulesAdmin
    from swordfish.security.totp_keys import TotpSecretBox

    settings = settings or get_settings()
    return AlertRulesAdmin(database(), TotpSecretBox(), allow_http=settings.alert_http_allowed)


def build_alert_dispatcher(settings: Settings | None = None):
    from swordfish.alerts.channels import SesEmailChannel, SmtpEmailChannel, WebhookChannel
    from swordfish.alerts.dispatcher import AlertDispatcher, SqsAlertQueue
    from swordfish.alerts.rules import AlertRuleStore
    from swordfish.security.totp_keys import TotpSecretBox

    settings = settings or get_settings()
    if not (settings.alerts_queue_url and settings.alerts_dlq_url):
        raise RuntimeError("SWORDFISH_ALERTS_QUEUE_URL and SWORDFISH_ALERTS_DLQ_URL must be set")
    email = (SmtpEmailChannel(settings.alert_smtp_url, settings.alert_email_from) if settings.alert_smtp_url
             else SesEmailChannel(aws_client("sesv2", settings), settings.alert_email_from))
    return AlertDispatcher(
        AlertRuleStore(database(), TotpSecretBox()),
        SqsAlertQueue(aws_client("sqs", settings), queue_url=settings.alerts_queue_url, dlq_url=settings.alerts_dlq_url),
        {"webhook": WebhookChannel(clock=time.time, timeout=settings.alert_webhook_timeout_seconds,
                                   allow_private=settings.alert_http_allowed), "email": email},
        max_attempts=settings.alert_max_attempts, backoff_seconds=settings.alert_backoff_seconds,
        max_backoff_seconds=settings.alert_max_backoff_seconds)


def build_rate_monitor(settings: Settings | None = None):
    from swordfish.alerts.rate_monitor import PhishingRateMonitor

    settings = settings or get_settings()
    publisher = build_alert_publisher(settings)
    if publisher is None:
        raise RuntimeError("the phishing-rate check needs SWORDFISH_ALERTS_QUEUE_URL")
    return PhishingRateMonitor(
        database(), publisher.publish, window=timedelta(minutes=settings.phishing_rate_window_minutes),
        baseline=timedelta(days=settings.phishing_rate_baseline_days), min_messages=settings.phishing_rate_min_messages,
        min_rate=settings.phishing_rate_min_rate, factor=settings.phishing_rate_factor,
        cooldown=timedelta(hours=settings.phishing_rate_cooldown_hours))


def build_siem_exporter(settings: Settings | None = None):
    """The SIEM export's sinks from settings: S3 (the export bucket) and/or a signed webhook."""
    from swordfish.alerts.export import S3Sink, SiemExporter, WebhookSink

    settings = settings or get_settings()
    sinks = []
    if settings.siem_export_bucket:
        sinks.append(S3Sink(aws_client("s3", settings), settings.siem_export_bucket))
    if settings.siem_export_webhook_url:
        secret = settings.siem_export_webhook_secret
        if not secret and settings.siem_export_webhook_secret_name:
            secret = secret_reader().get(settings.siem_export_webhook_secret_name).value
        if not secret:
            raise RuntimeError("the SIEM webhook needs SWORDFISH_SIEM_EXPORT_WEBHOOK_SECRET(_NAME) to sign with")
        sinks.append(WebhookSink(settings.siem_export_webhook_url, secret))
    if not sinks:
        raise RuntimeError("the SIEM export needs SWORDFISH_SIEM_EXPORT_BUCKET or SWORDFISH_SIEM_EXPORT_WEBHOOK_URL")
    return SiemExporter(database(), sinks, lag_seconds=settings.siem_export_lag_seconds,
                        max_rows=settings.siem_export_max_rows, release=settings.release)


def purge_expired_traces(time_left: Callable[[], float] | None = None) -> dict:
    """Traces past the raw archive's retention, deleted in batches through the process's pool."""
    from datetime import UTC, datetime

    from swordfish.store.traces import purge_all_expired

    return purge_all_expired(database().connection, datetime.now(UTC), time_left=time_left)


# --- error tracking -------------------------------------------------------------------------------


def sentry_dsn(settings: Settings | None = None) -> str | None:
    """The Sentry DSN: from its secret when one is named (AWS), else from settings (local)."""
    settings = settings or get_settings()
    if not settings.sentry_dsn_secret_name:
        return settings.sentry_dsn
    try:
        value = secret_reader().get(settings.sentry_dsn_secret_name).value.strip()
    except SecretError as exc:  # errors still reach the logs and the metric; only Sentry is off
        logger.warning("Sentry DSN unavailable: error tracking runs without Sentry", extra={"error": str(exc)})
        return settings.sentry_dsn
    if value.startswith("{"):
        value = str(json.loads(value).get("dsn") or "")
    return value if value.startswith("https://") else None  # the deploy-time placeholder is not a DSN


def configure_error_tracking(settings: Settings | None = None) -> None:
    """Once per container, at handler import: sinks, release, rate limits, Sentry's DSN."""
    from swordfish.monitoring import error_tracker

    error_tracker.configure(sentry_dsn=sentry_dsn(settings) or "")


# --- secret rotation ----------------------------------------------------------------------------


def build_rotator(settings: Settings | None = None) -> Rotator:
    settings = settings or get_settings()
    return Rotator(secretsmanager_client(settings.aws_region, settings.secrets_endpoint_url or settings.aws_endpoint_url,
                                         settings.secrets_timeout_seconds), sslmode=settings.db_sslmode)


# --- per-process values ---------------------------------------------------------------------------

secret_reader: Callable[[], SecretReader] = process_secret_reader
_database = ProcessSingleton(build_database, close=Database.close)
_pipeline = ProcessSingleton(build_pipeline)
_api = ProcessSingleton(build_api_dependencies)
_authorizer = ProcessSingleton(build_authorizer_store)
_unverified_usage_key = ProcessSingleton(build_unverified_usage_key)
_remediation = ProcessSingleton(build_remediation_retry)
_feed_refresher = ProcessSingleton(build_feed_refresher)
_flag_audit = ProcessSingleton(build_flag_audit)
_rotator = ProcessSingleton(build_rotator)
_console = ProcessSingleton(build_console_app)
_health = ProcessSingleton(build_health_dependencies)  # the health canary's, one per container
_alert_dispatcher = ProcessSingleton(build_alert_dispatcher)
_rate_monitor = ProcessSingleton(build_rate_monitor)
_alert_publisher = ProcessSingleton(build_alert_publisher)
_siem_exporter = ProcessSingleton(build_siem_exporter)
_response_worker = ProcessSingleton(build_response_worker)

database = _database.get
pipeline = _pipeline.get
api_dependencies = _api.get
authorizer_store = _authorizer.get
unverified_usage_key = _unverified_usage_key.get
remediation_retry = _remediation.get
feed_refresher = _feed_refresher.get
flag_audit = _flag_audit.get
rotator = _rotator.get
console_app = _console.get
health_dependencies = _health.get
alert_dispatcher = _alert_dispatcher.get
rate_monitor = _rate_monitor.get
siem_exporter = _siem_exporter.get
response_worker = _response_worker.get
alert_publisher = _alert_publisher.get  # the campaign hook's publisher (None without the alerts queue)


def reset() -> None:
    """Forget every per-process value (closing the pool): after a settings change, and between tests."""
    for singleton in (_pipeline, _api, _authorizer, _unverified_usage_key, _console, _remediation, _feed_refresher,
                      _flag_audit, _rotator, _health, _alert_dispatcher, _rate_monitor, _alert_publisher,
                      _siem_exporter, _response_worker, _database):
        singleton.reset()
    reset_process_secret_reader()
    reset_registry()
    reset_flags_client()
