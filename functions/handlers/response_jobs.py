"""Lambda: the response-jobs queue → the bulk response worker. Thin: each record is one job to
take a chunk of (``{"job_id": n}``); the worker sends the job back while items wait."""

from __future__ import annotations

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from swordfish import wiring
from swordfish.monitoring import error_tracker
from swordfish.monitoring.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)
wiring.configure_error_tracking()


response_worker = wiring.response_worker


def record_handler(record: SQSRecord) -> str:
    return response_worker().handle(record.body)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@error_tracker.track_errors
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
