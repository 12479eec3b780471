"""Lambda: the SIEM export (verdicts and the audit trail as OCSF JSON lines), on an EventBridge
schedule. Raises when every sink failed every stream, so Lambda's Errors metric (and its alarm)
shows an export that moves nothing; what failed is read again on the next run."""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext
from swordfish import wiring
from swordfish.monitoring.observability import logger, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    report = wiring.siem_exporter().run()
    results = [value for streams in report.values() for value in streams.values()]
    if results and all(isinstance(v, str) for v in results):
        raise RuntimeError(f"the SIEM export failed for every sink: {report}")
    return report
