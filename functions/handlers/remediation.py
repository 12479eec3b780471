"""Remediation retry queue → remediation Lambda. Thin: each record is one deferred quarantine."""

from __future__ import annotations

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from swordfish.config import get_settings
from swordfish.lazy import ProcessSingleton
from swordfish.monitoring import error_tracker
from swordfish.monitoring.observability import logger, metrics, tracer
from swordfish.pipeline.factory import aws_client, nango_client
from swordfish.pipeline.queues import SqsRemediationQueue
from swordfish.pipeline.remediation import RemediationRetry
from swordfish.resilience.fallbacks import GuardedRemediator

processor = BatchProcessor(event_type=EventType.SQS)
error_tracker.configure()


def _build_retry() -> RemediationRetry:
    settings = get_settings()
    nango = nango_client(settings)
    if nango is None or not settings.remediation_retry_queue_url:
        raise RuntimeError("remediation needs Nango (SWORDFISH_NANGO_BASE_URL or _SECRET_NAME) and "
                           "SWORDFISH_REMEDIATION_RETRY_QUEUE_URL")
    # No defer callback: an open breaker raises, and RemediationRetry requeues with a delay.
    return RemediationRetry(GuardedRemediator(nango),
                            SqsRemediationQueue(aws_client("sqs", settings), settings.remediation_retry_queue_url))


_retry = ProcessSingleton(_build_retry)
remediation_retry = _retry.get


def record_handler(record: SQSRecord) -> str:
    return remediation_retry().handle(record.body)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@error_tracker.track_errors
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
