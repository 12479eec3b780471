"""Builds the pipeline from settings, once per process (a Lambda cold start, a poller worker)."""

from __future__ import annotations

import boto3
from botocore.config import Config

from swordfish.config import Settings, get_settings
from swordfish.features import flags_client
from swordfish.integrations.indicators import IndicatorStore
from swordfish.integrations.mail_source import MailSourceLoader
from swordfish.integrations.nango import NangoClient
from swordfish.lazy import ProcessSingleton
from swordfish.pipeline.processor import Pipeline, PolicyCache
from swordfish.pipeline.queues import SqsQueuePort
from swordfish.resilience.fallbacks import (
    GuardedIndicatorLookup,
    GuardedRemediator,
    GuardedS3,
    guarded_mailbox_fetch,
)
from swordfish.store.database import get_database

# Short timeouts and few retries: a hung AWS call must not eat the Lambda's whole budget.
_BOTO_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})


def aws_client(service: str, settings: Settings | None = None):
    settings = settings or get_settings()
    endpoint = settings.sqs_endpoint_url if service == "sqs" and settings.sqs_endpoint_url else settings.aws_endpoint_url
    return boto3.client(service, region_name=settings.aws_region, endpoint_url=endpoint, config=_BOTO_CONFIG)


def nango_client(settings: Settings) -> NangoClient | None:
    """From settings locally; on AWS from the secret named by nango_secret_name (cached five minutes)."""
    base_url, secret_key = settings.nango_base_url, settings.nango_secret_key
    if not base_url and settings.nango_secret_name:
        from aws_lambda_powertools.utilities import parameters

        secret = parameters.get_secret(settings.nango_secret_name, transform="json", max_age=300)
        base_url, secret_key = secret["base_url"], secret["secret_key"]
    if not base_url:
        return None
    return NangoClient(base_url, secret_key or "", settings.nango_timeout_seconds,
                       max_message_bytes=settings.max_message_bytes)


def build_pipeline(settings: Settings | None = None) -> Pipeline:
    settings = settings or get_settings()
    if not (settings.emails_queue_url and settings.emails_dlq_url):
        raise RuntimeError("SWORDFISH_EMAILS_QUEUE_URL and SWORDFISH_EMAILS_DLQ_URL must be set")
    database = get_database()
    sqs = aws_client("sqs", settings)
    queue = SqsQueuePort(sqs, queue_url=settings.emails_queue_url, dlq_url=settings.emails_dlq_url,
                         remediation_queue_url=settings.remediation_retry_queue_url)
    # Every outbound call goes through its circuit breaker, with the fallback fallbacks.py documents.
    nango = nango_client(settings)
    mail = MailSourceLoader(s3_client=GuardedS3(aws_client("s3", settings)),
                            mailbox_fetch=guarded_mailbox_fetch(nango) if nango else None,
                            max_bytes=settings.max_message_bytes)
    indicators = GuardedIndicatorLookup(IndicatorStore.from_url(settings.redis_url, settings.redis_timeout_seconds)) \
        if settings.redis_url else None
    raw_archive = None
    if settings.raw_mail_archive_bucket:
        from swordfish.integrations.raw_archive import S3RawMailArchive

        raw_archive = S3RawMailArchive(aws_client("s3", settings), settings.raw_mail_archive_bucket)
    return Pipeline(
        raw_archive=raw_archive,
        database=database,
        policies=PolicyCache(database),
        mail=mail,
        queue=queue,
        indicators=indicators,
        remediator=GuardedRemediator(nango, defer=queue.defer_remediation) if nango else None,
        flags_snapshot=flags_client().snapshot,
        degraded_backlog_seconds=settings.degraded_backlog_seconds,
        max_message_bytes=settings.max_message_bytes,
    )


_pipeline = ProcessSingleton(build_pipeline)
get_pipeline = _pipeline.get
reset_pipeline = _pipeline.reset
