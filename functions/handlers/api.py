"""API Gateway (REST, proxy integration) → the API Lambda. Thin: wiring and the resolver."""

from __future__ import annotations

import functools
import re

from aws_lambda_powertools.utilities.typing import LambdaContext
from swordfish.api.health_deep import HealthDependencies
from swordfish.api.routes import ApiDependencies, build_app
from swordfish.config import get_settings
from swordfish.lazy import ProcessSingleton
from swordfish.monitoring import error_tracker
from swordfish.monitoring.context_provider import bind_context, new_correlation_id
from swordfish.monitoring.observability import logger, metrics, tracer
from swordfish.pipeline.factory import aws_client
from swordfish.pipeline.submitter import Submitter
from swordfish.store.database import get_database


def _build_dependencies() -> ApiDependencies:
    """One pool and one set of clients per container."""
    settings = get_settings()
    if not settings.emails_queue_url:
        raise RuntimeError("SWORDFISH_EMAILS_QUEUE_URL must be set for the API")
    submitter = Submitter(aws_client("sqs", settings), settings.emails_queue_url,
                          s3=aws_client("s3", settings), bucket=settings.large_mail_bucket)
    health = functools.cache(HealthDependencies.from_settings)
    return ApiDependencies(database=get_database(), submitter=lambda: submitter,
                           max_message_bytes=settings.max_message_bytes, health=health,
                           deep_health_needs_key=settings.environment != "local",
                           api_key_peppers=_api_key_peppers)


def _api_key_peppers() -> list[bytes]:
    from swordfish.security.secrets import SecretNotFound, api_key_peppers, get_secret_reader

    settings = get_settings()
    try:
        return [pepper for _, pepper in api_key_peppers(get_secret_reader(), settings.api_key_pepper_secret_name)]
    except SecretNotFound:
        if settings.environment == "prod":
            raise
        return []  # a local setup without the pepper secret: keys are plain SHA-256


_deps = ProcessSingleton(_build_dependencies)
dependencies = _deps.get


app = build_app(dependencies)
error_tracker.configure()
_TENANT_PATH = re.compile(r"^/v1/tenants/([^/]+)")


def caller_key_id(headers: dict[str, str]) -> str | None:
    """The API key's id (never its secret) names the caller in logs and errors."""
    presented = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
    parts = presented.split(".")
    return f"api-key:{parts[2]}" if len(parts) == 4 else None


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
@metrics.log_metrics
@error_tracker.track_errors
def handler(event: dict, context: LambdaContext) -> dict:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    tenant = _TENANT_PATH.match(event.get("path") or "")
    # The correlation id travels with a submission through SQS into the processor's logs and errors.
    with bind_context(api_request_id=(event.get("requestContext") or {}).get("requestId"),
                      tenant_id=tenant.group(1) if tenant else None,
                      user_id=caller_key_id(headers),
                      correlation_id=headers.get("x-correlation-id") or new_correlation_id()):
        return app.resolve(event, context)
