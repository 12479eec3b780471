"""API Gateway (REST, proxy integration) → the API Lambda. Thin: wiring and the resolver."""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext
from swordfish import wiring
from swordfish.api.guards import precheck
from swordfish.api.routes import TENANT_PATH, build_app
from swordfish.monitoring import error_tracker
from swordfish.monitoring.context_provider import bind_context, forget_caller, new_correlation_id
from swordfish.monitoring.observability import logger, metrics, tracer
from swordfish.security.headers import add_api_headers

app = build_app(wiring.api_dependencies)  # dependencies built on the first request, once per container
wiring.configure_error_tracking()


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
@metrics.log_metrics
@error_tracker.track_errors
def handler(event: dict, context: LambdaContext) -> dict:
    refusal = precheck(event)  # a malformed correlation id (400) or a body that is not JSON (415)
    if refusal is not None:
        return add_api_headers(refusal)
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    tenant = TENANT_PATH.match(event.get("path") or "")
    # The correlation id travels with a submission through SQS into the processor's logs and errors.
    with bind_context(api_request_id=(event.get("requestContext") or {}).get("requestId"),
                      tenant_id=tenant.group(1) if tenant else None,
                      correlation_id=headers.get("x-correlation-id") or new_correlation_id()):
        try:
            return add_api_headers(app.resolve(event, context))
        finally:
            forget_caller()  # named by the route once its key verified (identify_caller)
