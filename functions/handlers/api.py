"""API Gateway (REST, proxy integration) → the API Lambda. Thin: wiring and the resolver."""

from __future__ import annotations

import threading

from aws_lambda_powertools.utilities.typing import LambdaContext

from swordfish.api.routes import ApiDependencies, build_app
from swordfish.config import get_settings
from swordfish.monitoring.observability import logger, metrics, tracer
from swordfish.pipeline.factory import aws_client
from swordfish.pipeline.submitter import Submitter
from swordfish.store.database import get_database

_deps: ApiDependencies | None = None
_lock = threading.Lock()


def dependencies() -> ApiDependencies:
    """Built on first use and reused: one pool and one set of clients per container."""
    global _deps
    with _lock:
        if _deps is None:
            settings = get_settings()
            if not settings.emails_queue_url:
                raise RuntimeError("SWORDFISH_EMAILS_QUEUE_URL must be set for the API")
            submitter = Submitter(aws_client("sqs", settings), settings.emails_queue_url,
                                  s3=aws_client("s3", settings), bucket=settings.large_mail_bucket)
            _deps = ApiDependencies(database=get_database(), submitter=lambda: submitter,
                                    max_message_bytes=settings.max_message_bytes)
        return _deps


app = build_app(dependencies)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
