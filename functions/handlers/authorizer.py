"""API Gateway REQUEST authorizer for the tenant routes. Thin: the event in, ``api.authorizer`` decides,
an IAM policy for the whole stage out (API Gateway caches it per Authorization header, for every
route) with the usage-plan key as ``usageIdentifierKey``: the tenant's for a verified key, the one
shared by every unverified caller otherwise (Allow: the API function answers 401, and 429 per source).

A database outage, or a failed lookup of the shared key, raises (API Gateway answers 500 and caches
nothing) rather than denying: a cached Deny would lock callers out for the cache TTL afterwards.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from swordfish import wiring
from swordfish.api.authorizer import identify
from swordfish.monitoring.observability import logger


@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    request = APIGatewayAuthorizerRequestEvent(event)
    arn = request.parsed_arn
    caller = identify(wiring.authorizer_store(), request.headers, wiring.unverified_usage_key)
    response = APIGatewayAuthorizerResponse(
        principal_id=caller.principal if caller else "anonymous",
        region=arn.region, aws_account_id=arn.aws_account_id, api_id=arn.api_id, stage=arn.stage,
        partition=arn.partition,
        context=caller.context if caller else None,
        usage_identifier_key=caller.usage_key if caller else None,
    )
    if caller is None:
        response.deny_all_routes()
    else:
        response.allow_all_routes()
    logger.info("authorizer decision", extra={"allowed": caller is not None,
                                              "verified": bool(caller and caller.verified),
                                              "caller": caller.principal if caller else None,
                                              "tenant_id": caller.tenant_id if caller else None})
    return response.asdict()
