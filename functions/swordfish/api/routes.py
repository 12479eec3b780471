"""The operator and MSP-admin REST API (Powertools REST resolver, OpenAPI from the route types).

Only the health routes are anonymous. Every tenant route needs that tenant's API key, presented as
``Authorization: Bearer sfk.<tenant>.<id>.<secret>`` or ``x-api-key``; a key for another tenant
gets 403, a missing or wrong key 401.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import quote, unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import (
    BadRequestError,
    NotFoundError,
    ServiceError,
    UnauthorizedError,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from swordfish import constants
from swordfish.api import health_deep
from swordfish.api.auth import presented_api_key
from swordfish.api.health_deep import HEALTH_CONTENT_TYPE
from swordfish.api.ratelimit import ApiRateLimiter, RateLimited
from swordfish.monitoring.context_provider import current_context, identify_caller
from swordfish.pipeline.ports import NotQuarantined, ReleaseFailed, Releaser
from swordfish.pipeline.submitter import Submitter, message_id_for
from swordfish.store.database import DatabaseUnavailable
from swordfish.store.feedback import VerdictNotFound
from swordfish.store.tenants import TENANT_ID_PATTERN, parse_api_key

VERDICT_KINDS = constants.VERDICTS
OPENAPI_PATH = "/openapi.json"
MAX_PAGE = 500
TENANT_PATH = re.compile(r"^/v1/tenants/([^/]+)")


# --- request and response models (the OpenAPI document is generated from these) -----------------

# Timestamps as Python's isoformat ("+00:00"), as the API has always returned them.
Timestamp = Annotated[datetime, PlainSerializer(lambda value: value.isoformat(), return_type=str)]
VerdictKind = Literal["clean", "spam", "suspicious", "phishing", "malware"]


class SubmissionRequest(BaseModel):
    raw_mime_b64: str = Field(description="the raw RFC 5322 message, base64-encoded")
    message_id: str | None = Field(default=None, max_length=512,
                                   description="idempotency key; defaults to a hash of the content")


MAX_BATCH = 10  # one SQS SendMessageBatch


class BatchSubmissionRequest(BaseModel):
    messages: list[SubmissionRequest] = Field(min_length=1, max_length=MAX_BATCH,
                                              description=f"1 to {MAX_BATCH} messages")


class BatchItemResult(BaseModel):
    index: int
    message_id: str | None
    queue_message_id: str | None = None
    error: str | None = Field(default=None, description="why this message was not queued (the others were)")


class BatchAccepted(BaseModel):
    tenant_id: str
    correlation_id: str | None
    accepted: int
    rejected: int
    results: list[BatchItemResult]


class SubmissionAccepted(BaseModel):
    tenant_id: str
    message_id: str
    queue_message_id: str | None
    correlation_id: str | None
    verdict_url: str = Field(description="where the verdict appears once the message is analysed")


class StoredVerdictView(BaseModel):
    """One verdict as stored (later columns appear as extra fields)."""

    model_config = ConfigDict(extra="allow")

    tenant_id: str
    message_id: str
    verdict: VerdictKind
    score: float
    reasons: list[dict[str, Any]] = Field(description="name, weight and evidence of each signal")
    parse_problems: list[Any]
    subject: str | None
    sender: str | None
    submitted_at: Timestamp
    sqs_sent_at: Timestamp | None
    committed_at: Timestamp
    e2e_latency_ms: float | None
    degraded: bool
    deferred_work: list[Any]
    flags_version: str | None
    correlation_id: str | None


class VerdictPage(BaseModel):
    tenant_id: str
    verdicts: list[StoredVerdictView]
    next_before: str | None = Field(description="pass as ?before= for the next (older) page; null on the last")


class Message(BaseModel):
    message: str


class FeedbackRequest(BaseModel):
    label: Literal["phishing", "legitimate"] = Field(description="the analyst's judgement of the message")
    analyst: str = Field(min_length=1, max_length=200, description="who judged it (kept in the audit trail)")
    comment: str = Field(default="", max_length=2000)


class FeedbackView(BaseModel):
    """One stored judgement: append-only, the latest per message counts."""

    model_config = ConfigDict(extra="allow")

    feedback_id: int
    tenant_id: str
    message_id: str
    label: Literal["phishing", "legitimate"]
    analyst: str
    comment: str
    verdict: str = Field(description="the verdict as it was when judged")
    score: float
    signals: dict[str, float] = Field(description="signal name -> value of the judged verdict: a training row")
    list_entry: str | None = Field(description="the sender address put on the block or allow list")
    created_at: Timestamp


class ReleaseRequest(BaseModel):
    analyst: str = Field(min_length=1, max_length=200, description="who releases it (kept in the audit trail)")
    comment: str = Field(default="", max_length=2000)


class ReleaseView(BaseModel):
    """The message is back in the inbox (Nango confirmed the move)."""

    tenant_id: str
    message_id: str
    state: Literal["released"]
    released_by: str
    released_at: Timestamp


class FeedbackPage(BaseModel):
    tenant_id: str
    feedback: list[FeedbackView]
    next_after: int | None = Field(description="pass as ?after= for the next page; null on the last")


class TrainingExamples(BaseModel):
    tenant_id: str
    examples: list[dict[str, Any]] = Field(description="rows for scripts/fit_weights.py --extra")


class ApiStore(Protocol):
    """What the routes read (``store.pipeline_store.PostgresApiStore``); raises ``DatabaseUnavailable``."""

    def authenticate(self, presented_key: str) -> str | None: ...  # the key's tenant, or None
    def list_verdicts(self, tenant_id: str, *, limit: int, verdict: str | None,
                      before: datetime | None) -> list[dict]: ...
    def get_verdict(self, tenant_id: str, message_id: str) -> dict | None: ...
    def record_feedback(self, tenant_id: str, message_id: str, label: str, analyst: str,
                        comment: str) -> dict: ...  # raises VerdictNotFound
    def list_feedback(self, tenant_id: str, *, limit: int, after_id: int) -> list[dict]: ...
    def feedback_examples(self, tenant_id: str) -> list[dict]: ...
    def release(self, tenant_id: str, message_id: str, releaser: Any, *, actor: str,
                note: str) -> dict: ...  # raises NotQuarantined, ReleaseFailed


@dataclass
class ApiDependencies:
    store: ApiStore
    submitter: Callable[[], Submitter]
    max_message_bytes: int
    health: Callable[[], Any] | None = None  # builds HealthDependencies (once) for the health routes
    deep_health_needs_key: bool = True  # kept for older callers; /health/deep always needs the operator token
    rate_limiter: ApiRateLimiter | None = None
    operator_token: Callable[[], str | None] | None = None  # who may read /health/deep
    releaser: Callable[[], Releaser | None] | None = None  # built on first release: Nango behind its breaker


def _reused_for_other_content(store: ApiStore, tenant_id: str, message_id: str, raw: bytes) -> str | None:
    """Why this submission must be refused (409), or None: its message_id already has a verdict for
    different content. The same content again is a harmless duplicate (202: the first verdict
    stands). A reuse racing the first message, before its verdict, is caught by the pipeline
    (dead-lettered as message_id_reused, with both digests)."""
    existing = store.get_verdict(tenant_id, message_id)
    stored = existing.get("content_sha256") if existing else None
    if stored and stored != hashlib.sha256(raw).hexdigest():
        return (f"message_id {message_id!r} already names a different message (its verdict was computed from "
                "other content); submit this one under its own message_id, or omit message_id to derive one")
    return None


class ForbiddenError(ServiceError):
    def __init__(self, msg: str):
        super().__init__(403, msg)


class MessageTooLarge(Exception):
    """413 with the limit in the message."""


def _path_value(value: str) -> str:
    # API Gateway REST (and our local gateway) hands the resolver the path still percent-encoded, and
    # Powertools matches path parameters on it as is: a Message-ID like <a/b@x> arrives as %3Ca%2Fb%40x%3E.
    return unquote(value) if "%" in value else value  # bad UTF-8 becomes U+FFFD: a 404, never a 500


def _error(status: int, message: str) -> Response:
    return Response(status, content_types.APPLICATION_JSON, {"statusCode": status, "message": message})


def _problems(exc: RequestValidationError) -> str:
    """``limit: Input should be a valid integer; ...``: each invalid field by name (query, path or body)."""
    parts = []
    for error in exc.errors():
        location = [str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body", "header")]
        parts.append(f"{'.'.join(location) or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def build_app(deps_factory: Callable[[], ApiDependencies]) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)

    def source_ip() -> str:
        identity = (app.current_event.raw_event.get("requestContext") or {}).get("identity") or {}
        return identity.get("sourceIp") or "unknown"

    def authorise(tenant_id: str, cost: int = 1) -> str:
        """The key's tenant, counted against its limits. Identity comes only from the key that
        authenticated (one parser, ``presented_api_key``), named in logs only once verified."""
        if not TENANT_ID_PATTERN.match(tenant_id):
            raise NotFoundError(f"no tenant {tenant_id!r}")
        deps = deps_factory()
        limiter = deps.rate_limiter
        if limiter is not None:
            limiter.check_source(source_ip())
        presented = presented_api_key(app.current_event.headers)
        if not presented:
            raise UnauthorizedError("missing API key: send 'Authorization: Bearer <key>' "
                                    "(create one with `swordfish tenants create-key`)")
        owner = deps.store.authenticate(presented)
        if owner is None:
            if limiter is not None:
                limiter.failed_authentication(source_ip())
            raise UnauthorizedError("invalid API key")
        key_id = parse_api_key(presented)[1]
        identify_caller(f"api-key:{key_id}")
        if owner != tenant_id:
            raise ForbiddenError(f"this key belongs to tenant {owner!r}, not {tenant_id!r}")
        if limiter is not None:
            limiter.admit(owner, key_id, cost)
        return owner

    @app.exception_handler(RateLimited)
    def _rate_limited(exc: RateLimited):
        return Response(429, content_types.APPLICATION_JSON, {"statusCode": 429, "message": str(exc)},
                        headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(RequestValidationError)
    def _invalid_request(exc: RequestValidationError):
        # Powertools validates before the route runs; a caller without a valid key for the tenant
        # still learns only that (401/403), never what was wrong with the request.
        tenant = TENANT_PATH.match(app.current_event.path or "")
        if tenant:
            try:
                authorise(tenant.group(1))
            except ServiceError as denied:
                return _error(denied.status_code, denied.msg)
            except RateLimited as limited:
                return _rate_limited(limited)
        return _error(400, _problems(exc))

    @app.exception_handler(DatabaseUnavailable)
    def _database_down(exc: DatabaseUnavailable):
        return Response(503, content_types.APPLICATION_JSON,
                        {"message": "the verdict store is unavailable; retry shortly", "detail": str(exc)})

    @app.exception_handler(MessageTooLarge)
    def _too_large(exc: MessageTooLarge):
        return Response(413, content_types.APPLICATION_JSON, {"message": str(exc)})

    def health_response(result: tuple[int, dict]) -> Response:
        status, body = result
        return Response(status, HEALTH_CONTENT_TYPE, json.dumps(body))

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi_document():
        return Response(200, content_types.APPLICATION_JSON, openapi_json(app))

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "pass"}

    # The health routes answer application/health+json (draft-inadarei-api-health-check): say so.
    health_document = {HEALTH_CONTENT_TYPE: {"schema": {"type": "object", "required": ["status"],
                                                        "properties": {"status": {"enum": ["pass", "warn", "fail"]},
                                                                       "checks": {"type": "object"}}}}}
    health_responses = {200: {"description": "healthy or degraded", "content": health_document},
                        503: {"description": "failing", "content": health_document}}

    @app.get("/health/live", tags=["health"], responses=health_responses)
    def health_live():
        return health_response(health_deep.live())

    @app.get("/health/ready", tags=["health"], responses=health_responses)
    def health_ready():
        return health_response(health_deep.ready(deps_factory().health()))

    @app.get("/health/deep", tags=["health"], description="every dependency, application/health+json (operators)",
             responses=health_responses)
    def health_full():
        """For operators only (the operator token, never a tenant's key), and scrubbed: statuses and
        figures, no internal addresses or exception text. The console's health page shows the rest."""
        deps = deps_factory()
        expected = deps.operator_token() if deps.operator_token else None
        presented = presented_api_key(app.current_event.headers)
        if not expected or not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
            if deps.rate_limiter is not None and presented:
                deps.rate_limiter.failed_authentication(source_ip())
            raise UnauthorizedError("/health/deep is for operators: send 'Authorization: Bearer <operator token>'")
        status, body = health_deep.deep(deps.health())
        return health_response((status, scrub_health(body)))

    @app.post("/v1/tenants/<tenant_id>/submissions", status_code=202, tags=["tenants"])
    def submit(tenant_id: str, request: Annotated[SubmissionRequest, Body()]) -> SubmissionAccepted:
        authorise(tenant_id)
        deps = deps_factory()
        try:
            raw = base64.b64decode(request.raw_mime_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequestError(f"raw_mime_b64 is not valid base64: {exc}") from exc
        if not raw:
            raise BadRequestError("the message is empty")
        if len(raw) > deps.max_message_bytes:
            raise MessageTooLarge(f"message is {len(raw)} bytes; the limit is {deps.max_message_bytes}")
        message_id = request.message_id or message_id_for(raw)
        reused = _reused_for_other_content(deps.store, tenant_id, message_id, raw)
        if reused:
            raise ServiceError(409, reused)
        submitter = deps.submitter()
        correlation_id = current_context().get("correlation_id")
        result = submitter.send([submitter.build(tenant_id, message_id, raw)], correlation_id)[0]
        if result.error:
            raise ServiceError(502, f"could not queue the message: {result.error}")
        return SubmissionAccepted(tenant_id=tenant_id, message_id=message_id, queue_message_id=result.queue_message_id,
                                  correlation_id=correlation_id,
                                  verdict_url=f"/v1/tenants/{tenant_id}/verdicts/{quote(message_id, safe='')}")

    @app.post("/v1/tenants/<tenant_id>/submissions/batch", status_code=202, tags=["tenants"])
    def submit_batch(tenant_id: str, request: Annotated[BatchSubmissionRequest, Body()]) -> BatchAccepted:
        """Up to ten messages in one request (one queue call), counted as that many requests."""
        authorise(tenant_id, cost=len(request.messages))
        deps = deps_factory()
        submitter = deps.submitter()
        correlation_id = current_context().get("correlation_id")
        results: list[BatchItemResult] = []
        queued: list[tuple[int, Any]] = []
        for index, item in enumerate(request.messages):
            try:
                raw = base64.b64decode(item.raw_mime_b64, validate=True)
            except (binascii.Error, ValueError) as exc:
                results.append(BatchItemResult(index=index, message_id=item.message_id,
                                               error=f"raw_mime_b64 is not valid base64: {exc}"))
                continue
            if not raw or len(raw) > deps.max_message_bytes:
                results.append(BatchItemResult(index=index, message_id=item.message_id,
                                               error=f"the message must be 1 to {deps.max_message_bytes} bytes"))
                continue
            message_id = item.message_id or message_id_for(raw)
            reused = _reused_for_other_content(deps.store, tenant_id, message_id, raw)
            if reused:
                results.append(BatchItemResult(index=index, message_id=message_id, error=f"409: {reused}"))
                continue
            try:
                queued.append((index, submitter.build(tenant_id, message_id, raw)))
            except ValueError as exc:
                results.append(BatchItemResult(index=index, message_id=message_id, error=str(exc)))
        if queued:
            for (index, submission), sent in zip(queued, submitter.send([s for _, s in queued], correlation_id),
                                                 strict=True):
                results.append(BatchItemResult(index=index, message_id=submission.message_id,
                                               queue_message_id=sent.queue_message_id,
                                               error=f"could not queue: {sent.error}" if sent.error else None))
        results.sort(key=lambda r: r.index)
        rejected = sum(1 for r in results if r.error)
        return BatchAccepted(tenant_id=tenant_id, correlation_id=correlation_id, accepted=len(results) - rejected,
                             rejected=rejected, results=results)

    @app.get("/v1/tenants/<tenant_id>/verdicts", tags=["tenants"])
    def verdicts(
        tenant_id: str,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size, 1 to {MAX_PAGE}")] = 50,
        verdict: Annotated[VerdictKind | None, Query(description="only this verdict")] = None,
        before: Annotated[datetime | None, Query(description="ISO 8601: only verdicts committed before")] = None,
    ) -> VerdictPage:
        authorise(tenant_id)
        rows = deps_factory().store.list_verdicts(tenant_id, limit=limit, verdict=verdict, before=before)
        return VerdictPage(tenant_id=tenant_id, verdicts=rows,
                           next_before=rows[-1]["committed_at"].isoformat() if len(rows) == limit else None)

    @app.get("/v1/tenants/<tenant_id>/verdicts/<message_id>", tags=["tenants"])
    def one_verdict(tenant_id: str, message_id: str) -> StoredVerdictView:
        message_id = _path_value(message_id)
        authorise(tenant_id)
        row = deps_factory().store.get_verdict(tenant_id, message_id)
        if row is None:
            raise NotFoundError(f"no verdict yet for message {message_id!r} (it may still be queued)")
        # Where the raw submission is archived is ours, not the tenant's (the console reads it).
        return StoredVerdictView.model_validate({k: v for k, v in row.items()
                                                 if not k.startswith("raw_archive_") and k != "content_sha256"})

    @app.post("/v1/tenants/<tenant_id>/verdicts/<message_id>/feedback", status_code=201, tags=["feedback"])
    def feedback(tenant_id: str, message_id: str, request: Annotated[FeedbackRequest, Body()]) -> FeedbackView:
        """An analyst's 'this is phishing' / 'this is legitimate' on a stored verdict: stored append-only,
        its sender put on the tenant's block or allow list, exported as a training row."""
        message_id = _path_value(message_id)
        authorise(tenant_id)
        try:
            row = deps_factory().store.record_feedback(tenant_id, message_id, request.label, request.analyst,
                                                       request.comment)
        except VerdictNotFound as exc:
            raise NotFoundError(str(exc)) from exc
        return FeedbackView.model_validate(row)

    @app.post("/v1/tenants/<tenant_id>/verdicts/<message_id>/release", tags=["feedback"])
    def release(tenant_id: str, message_id: str, request: Annotated[ReleaseRequest, Body()]) -> ReleaseView:
        """Move a message Swordfish quarantined back to the inbox through Nango. 409: it is not in
        quarantine (never was, or already released); 503: Nango unavailable; 410: the message is no
        longer in the mailbox; 502: Nango refused. Nothing is marked released unless Nango moved it."""
        message_id = _path_value(message_id)
        authorise(tenant_id)
        deps = deps_factory()
        if deps.store.get_verdict(tenant_id, message_id) is None:
            raise NotFoundError(f"no verdict for message {message_id!r}")
        try:
            releaser = deps.releaser() if deps.releaser else None
        except Exception as exc:  # the Nango client could not be built (its secret): nothing was tried
            raise ServiceError(503, "the mailbox integration (Nango) cannot be reached; nothing was released") from exc
        if releaser is None:
            raise ServiceError(503, "releasing needs the mailbox integration (Nango), which is not configured")
        actor = f"{request.analyst} ({current_context().get('user_id', 'api')})"
        try:
            row = deps.store.release(tenant_id, message_id, releaser, actor=actor, note=request.comment)
        except NotQuarantined as exc:
            raise ServiceError(409, str(exc)) from exc
        except ReleaseFailed as exc:
            raise ServiceError(exc.http_status, str(exc)) from exc
        return ReleaseView.model_validate(row)

    @app.get("/v1/tenants/<tenant_id>/feedback", tags=["feedback"])
    def feedback_list(
        tenant_id: str,
        limit: Annotated[int, Query(description=f"page size, 1 to {MAX_PAGE}")] = 100,
        after: Annotated[int, Query(description="only feedback after this feedback_id")] = 0,
    ) -> FeedbackPage:
        authorise(tenant_id)
        limit = min(MAX_PAGE, max(1, limit))
        rows = deps_factory().store.list_feedback(tenant_id, limit=limit, after_id=max(0, after))
        return FeedbackPage(tenant_id=tenant_id, feedback=rows,
                            next_after=rows[-1]["feedback_id"] if len(rows) == limit else None)

    @app.get("/v1/tenants/<tenant_id>/feedback/examples", tags=["feedback"])
    def feedback_examples(tenant_id: str) -> TrainingExamples:
        """The latest judgement per message as training rows for `scripts/fit_weights.py --extra`."""
        authorise(tenant_id)
        return TrainingExamples(tenant_id=tenant_id, examples=deps_factory().store.feedback_examples(tenant_id))

    return app


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


def scrub_health(body: dict) -> dict:
    """The health document without what helps an attacker: internal URLs, hosts and exception
    text (``output``) go; statuses, figures and times stay."""
    checks = {}
    for name, items in (body.get("checks") or {}).items():
        checks[_URL.sub("<url>", name)] = [
            {k: v for k, v in item.items() if k in ("status", "observedValue", "observedUnit", "time", "componentType")}
            for item in items]
    kept = ("status", "version", "releaseId", "serviceId", "description", "score", "components")
    return {k: v for k, v in body.items() if k in kept} | {"checks": checks}


def openapi_json(app: APIGatewayRestResolver) -> str:
    """The OpenAPI 3 document of the routes and models above (served at /openapi.json)."""
    return app.get_openapi_json_schema(
        title="Swordfish API", version="1",
        description="Submit mail for analysis and read per-tenant verdicts. Tenant routes need that "
                    "tenant's key: 'Authorization: Bearer sfk.<tenant>.<id>.<secret>' or 'x-api-key'.")
