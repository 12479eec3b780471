"""Lambda: traces past the raw archive's retention deleted, once a day on an EventBridge schedule
(issue 28); what one run's budget leaves is deleted by the next."""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext
from swordfish import wiring
from swordfish.monitoring.observability import logger, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    report = wiring.purge_expired_traces(time_left=lambda: context.get_remaining_time_in_millis() / 1000)
    logger.info("traces purged", extra=report)
    return report
