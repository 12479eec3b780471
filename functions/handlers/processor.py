"""SQS → email-processor Lambda. Thin: turn records into IncomingRecord, hand them to the pipeline,
report partial failures. The batch's verdicts are committed in one transaction; a row the database
refuses fails only its own record."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from swordfish import wiring
from swordfish.monitoring import error_tracker, progress
from swordfish.monitoring.breadcrumbs import add_breadcrumb, record_scope
from swordfish.monitoring.observability import logger, metrics, tracer
from swordfish.pipeline.ports import IncomingRecord
from swordfish.pipeline.processor import Analysed
from swordfish.pipeline.queues import CORRELATION_ATTRIBUTE
from swordfish.store.verdicts import StoredVerdict
from swordfish.wiring import pipeline as get_pipeline


class TransactionalBatchProcessor(BatchProcessor):
    """Powertools' BatchProcessor, plus: records that succeeded in ``record_handler`` but whose
    verdict was not committed are reported failed afterwards, so SQS redelivers them."""

    def fail_successes(self, exc: BaseException, *, only_ids: set[str] | None = None,
                       except_ids: set[str] = frozenset()) -> None:
        """Report succeeded records failed: those in ``only_ids`` (all when None), but never those
        already handed elsewhere (dead-lettered or requeued), which would go there a second time."""
        exc_info = (type(exc), exc, exc.__traceback__)
        succeeded = list(self.success_messages)
        self.success_messages.clear()
        for record in succeeded:  # success_messages holds raw dicts; failures hold data classes
            message_id = record["messageId"]
            if message_id in except_ids or (only_ids is not None and message_id not in only_ids):
                self.success_messages.append(record)
                continue
            self.failure_handler(SQSRecord(record), exc_info)


processor = TransactionalBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
wiring.configure_error_tracking()  # once per container: sinks, release, rate limits from the environment


def to_incoming(record: SQSRecord) -> IncomingRecord:
    sent_ms = record.attributes.sent_timestamp
    attributes = record.message_attributes
    correlation = attributes[CORRELATION_ATTRIBUTE] if CORRELATION_ATTRIBUTE in attributes else None
    return IncomingRecord(
        queue_message_id=record.message_id,
        body=record.body,
        sent_at=datetime.fromtimestamp(int(sent_ms) / 1000, UTC) if sent_ms else None,
        receive_count=int(record.attributes.approximate_receive_count or 1),
        correlation_id=correlation.string_value if correlation else None,
    )


def record_metrics(pairs: list[tuple[Analysed, StoredVerdict]], degraded: bool) -> None:
    for analysed, stored in pairs:
        if not stored.inserted:
            metrics.add_metric(name="DuplicateSubmissions", unit=MetricUnit.Count, value=1)
            continue
        metrics.add_metric(name="EmailsProcessed", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="AnalysisTime", unit=MetricUnit.Milliseconds, value=analysed.analysis_seconds * 1000)
        if analysed.verdict.budget_exceeded:
            metrics.add_metric(name="AnalysisBudgetExceeded", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=f"Verdict{str(analysed.verdict.verdict).capitalize()}", unit=MetricUnit.Count, value=1)
        if stored.e2e_latency_ms is not None:
            metrics.add_metric(name="EndToEndLatency", unit=MetricUnit.Milliseconds, value=stored.e2e_latency_ms)
    if degraded:
        metrics.add_metric(name="DegradedBatches", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@error_tracker.track_errors
def handler(event: dict, context: LambdaContext) -> dict:
    pipeline = get_pipeline()
    records = event.get("Records", [])
    batch = pipeline.new_batch([to_incoming(SQSRecord(r)) for r in records])
    if batch.degraded:
        logger.warning("degraded mode: shedding optional work", extra={"oldest_age_seconds": batch.oldest_age_seconds})

    def record_handler(record: SQSRecord) -> None:
        incoming = to_incoming(record)
        with record_scope(sqs_message_id=incoming.queue_message_id, correlation_id=incoming.correlation_id):
            add_breadcrumb("received", "record received", receive_count=incoming.receive_count)
            if incoming.correlation_id:
                tracer.put_annotation("correlation_id", incoming.correlation_id)
            try:
                batch.add(incoming)
            except Exception as exc:  # reported, then left to SQS's redelivery (and the DLQ after that)
                error_tracker.capture_exception(exc, receive_count=incoming.receive_count)
                raise

    with processor(records, record_handler, lambda_context=context):
        processor.process()
        try:
            committed = batch.commit()
        except Exception as exc:  # the database is unreachable: every record is retried
            error_tracker.capture_exception(exc, records=len(batch.analysed), stage="commit")
            processor.fail_successes(exc, except_ids=batch.handed_off_ids())
        else:
            for analysed, exc in committed.retry:  # refused rows: only their own records are retried
                processor.fail_successes(exc, only_ids={analysed.record.queue_message_id})
            record_metrics(committed.stored, batch.degraded)
            progress.record_batch(len(committed.stored))  # heartbeat + processed count for the deep health check
    if batch.dead_lettered:
        metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=len(batch.dead_lettered))
    return processor.response()


if __name__ == "__main__":  # pragma: no cover - convenience for `python -m handlers.processor < event.json`
    import json

    print(json.dumps(handler(json.load(sys.stdin), None)))
