"""The operator and MSP-admin REST API (Powertools REST resolver, OpenAPI from the route types).

Only the health routes are anonymous. Every tenant route needs that tenant's API key, presented as
``Authorization: Bearer sfk.<tenant>.<id>.<secret>`` or ``x-api-key``; a key for another tenant
gets 403, a missing or wrong key 401.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import (
    BadRequestError,
    NotFoundError,
    ServiceError,
    UnauthorizedError,
)
from pydantic import BaseModel, Field

from swordfish.api import health_deep
from swordfish.api.health_deep import HEALTH_CONTENT_TYPE
from swordfish.monitoring.context_provider import current_context
from swordfish.pipeline.submitter import Submitter, message_id_for
from swordfish.store.database import Database, DatabaseUnavailable
from swordfish.store.tenants import TENANT_ID_PATTERN, authenticate_api_key
from swordfish.store.verdicts import get_verdict, list_verdicts

VERDICT_KINDS = ("clean", "spam", "suspicious", "phishing", "malware")


class ForbiddenError(ServiceError):
    def __init__(self, msg: str):
        super().__init__(403, msg)


class SubmissionRequest(BaseModel):
    raw_mime_b64: str = Field(description="the raw RFC 5322 message, base64-encoded")
    message_id: str | None = Field(default=None, max_length=512,
                                   description="idempotency key; defaults to a hash of the content")


@dataclass
class ApiDependencies:
    database: Database
    submitter: Callable[[], Submitter]
    max_message_bytes: int
    health: Callable[[], Any] | None = None  # builds HealthDependencies (once) for the health routes
    deep_health_needs_key: bool = True  # /health/deep is not for anonymous callers on AWS
    # The API-key peppers accepted now (current, then previous during a rotation's overlap).
    api_key_peppers: Callable[[], Sequence[bytes]] = lambda: ()


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def build_app(deps_factory: Callable[[], ApiDependencies]) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=False)

    def authorise(tenant_id: str) -> str:
        if not TENANT_ID_PATTERN.match(tenant_id):
            raise NotFoundError(f"no tenant {tenant_id!r}")
        headers = app.current_event.headers or {}
        lowered = {k.lower(): v for k, v in headers.items()}
        presented = lowered.get("x-api-key") or ""
        auth = lowered.get("authorization") or ""
        if auth.lower().startswith("bearer "):
            presented = auth[7:].strip()
        if not presented:
            raise UnauthorizedError("missing API key: send 'Authorization: Bearer <key>' "
                                    "(create one with `swordfish tenants create-key`)")
        with deps_factory().database.connection() as conn, conn.transaction():
            owner = authenticate_api_key(conn, presented, deps_factory().api_key_peppers())
        if owner is None:
            raise UnauthorizedError("invalid API key")
        if owner != tenant_id:
            raise ForbiddenError(f"this key belongs to tenant {owner!r}, not {tenant_id!r}")
        return owner

    @app.exception_handler(DatabaseUnavailable)
    def _database_down(exc: DatabaseUnavailable):
        return Response(503, content_types.APPLICATION_JSON,
                        {"message": "the verdict store is unavailable; retry shortly", "detail": str(exc)})

    def health_response(result: tuple[int, dict]) -> Response:
        status, body = result
        return Response(status, HEALTH_CONTENT_TYPE, json.dumps(body))

    @app.get("/health")
    def health():
        return {"status": "pass"}

    @app.get("/health/live")
    def health_live():
        return health_response(health_deep.live())

    @app.get("/health/ready")
    def health_ready():
        return health_response(health_deep.ready(deps_factory().health()))

    @app.get("/health/deep")
    def health_full():
        deps = deps_factory()
        if deps.deep_health_needs_key:
            headers = {k.lower(): v for k, v in (app.current_event.headers or {}).items()}
            presented = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
            with deps.database.connection() as conn, conn.transaction():
                if not presented or authenticate_api_key(conn, presented, deps.api_key_peppers()) is None:
                    raise UnauthorizedError("/health/deep needs an API key")
        return health_response(health_deep.deep(deps.health()))

    @app.post("/v1/tenants/<tenant_id>/submissions")
    def submit(tenant_id: str):
        authorise(tenant_id)
        deps = deps_factory()
        try:
            request = SubmissionRequest.model_validate(app.current_event.json_body or {})
        except Exception as exc:
            raise BadRequestError(f"body must be JSON {{'raw_mime_b64': ..., 'message_id'?: ...}}: {exc}") from exc
        try:
            raw = base64.b64decode(request.raw_mime_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequestError(f"raw_mime_b64 is not valid base64: {exc}") from exc
        if not raw:
            raise BadRequestError("the message is empty")
        if len(raw) > deps.max_message_bytes:
            return Response(413, content_types.APPLICATION_JSON,
                            {"message": f"message is {len(raw)} bytes; the limit is {deps.max_message_bytes}"})
        message_id = request.message_id or message_id_for(raw)
        submitter = deps.submitter()
        correlation_id = current_context().get("correlation_id")
        result = submitter.send([submitter.build(tenant_id, message_id, raw)], correlation_id)[0]
        if result.error:
            raise ServiceError(502, f"could not queue the message: {result.error}")
        return Response(202, content_types.APPLICATION_JSON,
                        {"tenant_id": tenant_id, "message_id": message_id, "queue_message_id": result.queue_message_id,
                         "correlation_id": correlation_id,
                         "verdict_url": f"/v1/tenants/{tenant_id}/verdicts/{message_id}"})

    @app.get("/v1/tenants/<tenant_id>/verdicts")
    def verdicts(tenant_id: str):
        authorise(tenant_id)
        params = app.current_event.query_string_parameters or {}
        try:
            limit = min(500, max(1, int(params.get("limit", 50))))
        except ValueError as exc:
            raise BadRequestError("limit must be a whole number from 1 to 500") from exc
        verdict = params.get("verdict")
        if verdict and verdict not in VERDICT_KINDS:
            raise BadRequestError(f"verdict must be one of {', '.join(VERDICT_KINDS)}")
        before = None
        if params.get("before"):
            try:
                before = datetime.fromisoformat(params["before"])
            except ValueError as exc:
                raise BadRequestError("before must be an ISO 8601 timestamp") from exc
        with deps_factory().database.connection() as conn, conn.transaction():
            rows = list_verdicts(conn, tenant_id, limit=limit, verdict=verdict, before=before)
        return {"tenant_id": tenant_id, "verdicts": _json(rows),
                "next_before": rows[-1]["committed_at"].isoformat() if len(rows) == limit else None}

    @app.get("/v1/tenants/<tenant_id>/verdicts/<message_id>")
    def one_verdict(tenant_id: str, message_id: str):
        authorise(tenant_id)
        with deps_factory().database.connection() as conn, conn.transaction():
            row = get_verdict(conn, tenant_id, message_id)
        if row is None:
            raise NotFoundError(f"no verdict yet for message {message_id!r} (it may still be queued)")
        return _json(row)

    return app
