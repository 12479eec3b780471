"""API Gateway (REST, proxy integration) → the console Lambda: the Flask app behind apig-wsgi.

Thin: builds the dependencies once per container and hands each event to the WSGI adapter.
"""

from __future__ import annotations

from apig_wsgi import make_lambda_handler
from aws_lambda_powertools.utilities.typing import LambdaContext
from swordfish import wiring
from swordfish.lazy import ProcessSingleton
from swordfish.monitoring import error_tracker
from swordfish.monitoring.observability import logger

_wsgi = ProcessSingleton(lambda: make_lambda_handler(wiring.console_app(), binary_support=True))
error_tracker.configure()


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@error_tracker.track_errors
def handler(event: dict, context: LambdaContext) -> dict:
    return _wsgi.get()(event, context)
