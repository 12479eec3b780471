"""EventBridge schedule (every minute) -> health canary. Thin: the deep-health dependencies come from
the wiring (once per container); the domain runs the checks and emits the metrics the alarms watch."""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext
from swordfish import wiring
from swordfish.api.health_canary import run_canary
from swordfish.monitoring.observability import logger, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return run_canary(wiring.health_dependencies())
