"""Lambda: the alerts queue → deliveries (``handler``), and the phishing-rate check on an
EventBridge schedule (``rate_check_handler``). Thin: each record is one event or one retry."""

from __future__ import annotations

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from swordfish import wiring
from swordfish.monitoring import error_tracker
from swordfish.monitoring.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)
wiring.configure_error_tracking()


alert_dispatcher = wiring.alert_dispatcher


def record_handler(record: SQSRecord) -> list[str]:
    return alert_dispatcher().handle(record.body)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@error_tracker.track_errors
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def rate_check_handler(event: dict, context: LambdaContext) -> dict:
    fired = wiring.rate_monitor().check()
    return {"alerts": [e.event_id for e in fired]}
