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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from swordfish.api.guards import BODY_METHODS, body_refusal
from swordfish.api.health_deep import HEALTH_CONTENT_TYPE
from swordfish.api.ratelimit import ApiRateLimiter, RateLimited
from swordfish.monitoring.context_provider import current_context, identify_caller
from swordfish.monitoring.observability import logger
from swordfish.pipeline.ports import NotQuarantined, ReleaseFailed, Releaser
from swordfish.pipeline.submission import EnvelopeAddress
from swordfish.pipeline.submitter import Submitter, message_id_for
from swordfish.security.inputs import (
    ASCII_PATTERN,
    MULTI_LINE_PATTERN,
    SINGLE_LINE_PATTERN,
    MessageIdText,
    MultiLineText,
    SingleLineText,
)
from swordfish.store.database import DatabaseUnavailable
from swordfish.store.feedback import VerdictNotFound
from swordfish.store.tenants import TENANT_ID_PATTERN, parse_api_key
from swordfish.store.traces import TraceSearch

VERDICT_KINDS = constants.VERDICTS
OPENAPI_PATH = "/openapi.json"
MAX_PAGE = 500
TENANT_PATH = re.compile(r"^/v1/tenants/([^/]+)")
OPERATOR_PATH = "/v1/alert-rules"
MSP_PATH = "/v1/msp/"


# --- request and response models (the OpenAPI document is generated from these) -----------------

# Timestamps as Python's isoformat ("+00:00"), as the API has always returned them.
Timestamp = Annotated[datetime, PlainSerializer(lambda value: value.isoformat(), return_type=str)]
VerdictKind = Literal["clean", "spam", "suspicious", "phishing", "malware"]


class SubmissionRequest(BaseModel):
    raw_mime_b64: str = Field(description="the raw RFC 5322 message, base64-encoded",
                              json_schema_extra={"format": "rfc5322-base64"})
    message_id: MessageIdText | None = Field(
        default=None, min_length=1, max_length=512, json_schema_extra={"pattern": ASCII_PATTERN},
        description="idempotency key, printable ASCII; defaults to a hash of the content")
    envelope_recipients: list[EnvelopeAddress] | None = Field(
        default=None, max_length=1000, description="the SMTP RCPT TO addresses, when known (kept for search)")


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
    analyst: SingleLineText | None = Field(
        default=None, min_length=1, max_length=200, json_schema_extra={"pattern": SINGLE_LINE_PATTERN},
        description="who says they judged it: stored as stated_analyst, a claim; the judgement is recorded "
                    "as the API key's (analyst 'api-key:<key id>')")
    comment: MultiLineText = Field(default="", max_length=2000, json_schema_extra={"pattern": MULTI_LINE_PATTERN})


class FeedbackView(BaseModel):
    """One stored judgement: append-only, the latest per message counts."""

    model_config = ConfigDict(extra="allow")

    feedback_id: int
    tenant_id: str
    message_id: str
    label: Literal["phishing", "legitimate"]
    analyst: str = Field(description="who judged it: 'api-key:<key id>' or a console user's e-mail")
    api_key_id: str | None = Field(default=None, description="the key that recorded it (API feedback)")
    stated_analyst: str | None = Field(default=None, description="the name the API caller gave (a claim)")
    comment: str
    verdict: str = Field(description="the verdict as it was when judged")
    score: float
    signals: dict[str, float] = Field(description="signal name -> value of the judged verdict: a training row")
    list_entry: str | None = Field(description="the sender address put on the block or allow list")
    created_at: Timestamp


class ReleaseRequest(BaseModel):
    analyst: SingleLineText | None = Field(
        default=None, min_length=1, max_length=200, json_schema_extra={"pattern": SINGLE_LINE_PATTERN},
        description="who says they release it (a claim, audited beside the API key that did)")
    comment: MultiLineText = Field(default="", max_length=2000, json_schema_extra={"pattern": MULTI_LINE_PATTERN})


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


class TraceView(BaseModel):
    """One verdict's trace (issue 28), with the link to the verdict itself."""

    trace_id: int
    tenant_id: str
    message_id: str
    committed_at: Timestamp
    verdict: VerdictKind
    score: float
    reasons: list[str] = Field(description="the names of the signals that scored")
    subject: str | None
    sender: str | None
    sender_domain: str | None
    reply_to_domain: str | None
    header_message_id: str | None
    sending_ip: str | None = Field(description="the client of the trusted Received hop")
    helo: str | None
    envelope_recipients: list[str]
    header_recipients: list[str]
    link_domains: list[str]
    urls: list[str]
    attachment_names: list[str]
    attachment_sha256: list[str]
    verdict_url: str = Field(description="the verdict (GET, with that tenant's key)")


class SearchPage(BaseModel):
    results: list[TraceView]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page; null on the last")


class CampaignView(BaseModel):
    campaign_id: int
    kind: Literal["link_domain", "attachment_sha256", "sender_domain", "content"]
    indicator: str
    first_seen: Timestamp
    last_seen: Timestamp
    tenant_count: int
    grouped_at: Timestamp
    updated_at: Timestamp


class CampaignPage(BaseModel):
    campaigns: list[CampaignView]
    next_before: int | None = Field(description="pass as ?before= for the next page; null on the last")


class CampaignCopy(BaseModel):
    tenant_id: str
    message_id: str
    committed_at: Timestamp
    score: float
    subject: str | None
    recipients: list[str]


class CampaignDetail(BaseModel):
    """A campaign as it stands: who it reached, what caught it, and the copies that scored clean."""

    campaign_id: int
    kind: str
    indicator: str
    grouped_at: Timestamp
    tenants: list[str]
    mailboxes: list[dict[str, str]]
    first_seen: Timestamp
    last_seen: Timestamp
    copies: int
    verdict_mix: dict[str, int]
    reasons: dict[str, int]
    clean_copies: list[CampaignCopy]


QuarantineState = Literal["quarantined", "released", "deleted"]


class QuarantinedMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=TENANT_ID_PATTERN.pattern)
    message_id: MessageIdText = Field(min_length=1, max_length=512, json_schema_extra={"pattern": ASCII_PATTERN})


class ResponseJobRequest(BaseModel):
    """A bulk response: one action on the messages of exactly one campaign (MSP routes), one search
    (its filters are frozen into the job) or chosen quarantined messages (release only)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["quarantine", "release", "delete"]
    campaign_id: int | None = Field(default=None, ge=1, le=2**62, description="MSP routes only")
    search: TraceSearch | None = Field(default=None, description="the search filters, as the search routes take them")
    messages: list[QuarantinedMessage] | None = Field(default=None, min_length=1, max_length=1000,
                                                      description="messages of the quarantine list (release)")
    confirm_delete: bool = Field(default=False, description="must be true to delete: a delete is not undone here")
    note: MultiLineText = Field(default="", max_length=2000, json_schema_extra={"pattern": MULTI_LINE_PATTERN})


class ResponseJobView(BaseModel):
    model_config = ConfigDict(extra="allow")

    job_id: int
    tenant_id: str | None = Field(description="null: a job across tenants (MSP staff)")
    action: str
    source: str
    source_ref: dict[str, Any] = Field(description="what the job was started from: a campaign, the frozen filters...")
    note: str
    created_by: str
    created_role: str
    created_at: Timestamp
    total: int
    finished_at: Timestamp | None
    queued: bool | None = Field(default=None, description="on a new job: false when the job queue could not be "
                                                           "reached (the job is stored; an operator runs "
                                                           "`swordfish response run`)")


class ResponseJobProgress(ResponseJobView):
    """done/total per tenant: ``finished`` counts every outcome (done, gone, failed, skipped)."""

    counts: dict[str, int]
    finished: int
    tenants: list[dict[str, Any]]


class ResponseJobPage(BaseModel):
    jobs: list[dict[str, Any]]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page; null on the last")


class ResponseItemView(BaseModel):
    item_id: int
    tenant_id: str
    message_id: str
    mailbox: str
    provider: str
    state: Literal["pending", "done", "gone", "failed", "skipped"]
    why: str
    attempts: int
    finished_at: Timestamp | None


class ResponseItemPage(BaseModel):
    items: list[ResponseItemView]
    next_after: int | None = Field(description="pass as ?after= for the next page; null on the last")


class QuarantineView(BaseModel):
    tenant_id: str
    message_id: str
    state: QuarantineState
    quarantined_at: Timestamp
    released_at: Timestamp | None
    released_by: str | None
    subject: str | None
    sender: str | None
    verdict: str | None
    score: float | None
    recipients: list[str]
    verdict_url: str


class QuarantinePage(BaseModel):
    results: list[QuarantineView]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page; null on the last")


BlockKind = Literal["link_domain", "attachment_sha256", "sender_domain"]


class BlockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: BlockKind
    indicator: SingleLineText = Field(min_length=3, max_length=300, json_schema_extra={"pattern": SINGLE_LINE_PATTERN})
    tenant: str | None = Field(default=None, pattern=TENANT_ID_PATTERN.pattern,
                               description="MSP routes: block for this tenant only; omitted: MSP-wide")
    comment: MultiLineText = Field(default="", max_length=2000, json_schema_extra={"pattern": MULTI_LINE_PATTERN})


class BlockIndicator(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: BlockKind
    indicator: SingleLineText = Field(min_length=3, max_length=300, json_schema_extra={"pattern": SINGLE_LINE_PATTERN})


class CampaignBlockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str | None = Field(default=None, pattern=TENANT_ID_PATTERN.pattern,
                               description="block for this tenant only; omitted: MSP-wide")
    indicators: list[BlockIndicator] | None = Field(
        default=None, min_length=1, max_length=100,
        description="which of the campaign's indicators (GET …/block lists them); omitted: all of them")
    comment: MultiLineText = Field(default="", max_length=2000, json_schema_extra={"pattern": MULTI_LINE_PATTERN})


class BlockView(BaseModel):
    block_id: int
    tenant_id: str | None = Field(description="null: every tenant")
    kind: str
    indicator: str
    campaign_id: int | None
    comment: str
    created_by: str
    created_at: Timestamp


class BlockPage(BaseModel):
    blocks: list[BlockView]


class CampaignIndicators(BaseModel):
    campaign_id: int
    indicators: list[BlockIndicator]


SearchText = Annotated[str | None, Query(max_length=300)]
ReportFrom = Annotated[str | None, Query(alias="from", max_length=10, description=(
    "first day (UTC, YYYY-MM-DD); default: six days before to"))]
ReportTo = Annotated[str | None, Query(max_length=10, description="last day, included; default: today")]
ReportFormat = Annotated[Literal["json", "html", "pdf"], Query(
    description="json (default), html (a page of its own) or pdf; a PDF needs 'Accept: application/pdf' "
                "through API Gateway")]
AlertEventKind = Literal["malware", "vip_impersonation", "phishing_rate", "campaign"]


class AlertRuleRequest(BaseModel):
    """An alert rule: which events, and where they go (a webhook URL, signed, or an e-mail address)."""

    model_config = ConfigDict(extra="forbid")

    events: list[AlertEventKind] = Field(min_length=1, max_length=4)
    channel: Literal["webhook", "email"]
    target: SingleLineText = Field(min_length=3, max_length=2000, json_schema_extra={"pattern": SINGLE_LINE_PATTERN},
                                   description="an https URL (webhook) or one e-mail address")
    min_tenants: int = Field(default=3, ge=1, le=100_000,
                             description="campaign events: alert once a campaign spans this many tenants")
    label: SingleLineText = Field(default="", max_length=200, json_schema_extra={"pattern": SINGLE_LINE_PATTERN})


class AlertRuleView(BaseModel):
    rule_id: int
    tenant_id: str | None = Field(description="null: the MSP's rule, for every tenant")
    events: list[str]
    channel: str
    target: str
    min_tenants: int
    label: str
    created_by: str
    created_at: Timestamp


class AlertRuleCreated(AlertRuleView):
    signing_secret: str | None = Field(
        description="webhooks only, shown this once: each request carries X-Swordfish-Timestamp and "
                    "X-Swordfish-Signature = 'v1=' + hex HMAC-SHA256(secret, timestamp + '.' + body)")


class AlertRulePage(BaseModel):
    rules: list[AlertRuleView]


class ApiStore(Protocol):
    """What the routes read (``store.pipeline_store.PostgresApiStore``); raises ``DatabaseUnavailable``."""

    def authenticate(self, presented_key: str) -> str | None: ...  # the key's tenant, or None
    def list_verdicts(self, tenant_id: str, *, limit: int, verdict: str | None,
                      before: datetime | None) -> list[dict]: ...
    def get_verdict(self, tenant_id: str, message_id: str) -> dict | None: ...
    def record_feedback(self, tenant_id: str, message_id: str, label: str, analyst: str,
                        comment: str, *, api_key_id: str | None = None,
                        stated_analyst: str | None = None) -> dict: ...  # raises VerdictNotFound
    def list_feedback(self, tenant_id: str, *, limit: int, after_id: int) -> list[dict]: ...
    def feedback_examples(self, tenant_id: str) -> list[dict]: ...
    def release(self, tenant_id: str, message_id: str, releaser: Any, *, actor: str,
                note: str) -> dict: ...  # raises NotQuarantined, ReleaseFailed
    def search(self, query: Any, scope: list[str] | None, *, limit: int,
               cursor: str | None) -> tuple[list[dict], str | None]: ...  # raises InvalidSearch
    def campaigns(self, *, limit: int, before: int | None) -> list[dict]: ...
    def campaign(self, campaign_id: int) -> dict | None: ...  # store.campaigns.summary
    def report(self, tenant_id: str, period: Any, *, now: datetime) -> Any: ...  # store.reports.tenant_report


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
    alert_rules: Callable[[], Any] | None = None  # () -> alerts.rules.AlertRulesAdmin
    responses: Callable[[], Any] | None = None  # () -> store.response_jobs.ResponseDesk (bulk response)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # a report's "today"


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


def _refusal(status: int, message: str, headers: dict | None = None) -> dict:
    """A proxy response built before the resolver runs (``KeyFirstResolver``)."""
    return {"statusCode": status, "headers": {"Content-Type": "application/json", **(headers or {})},
            "body": json.dumps({"statusCode": status, "message": message}), "isBase64Encoded": False}


def _problems(exc: RequestValidationError) -> str:
    """``limit: Input should be a valid integer; ...``: each invalid field by name (query, path or body)."""
    parts = []
    for error in exc.errors():
        location = [str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body", "header")]
        parts.append(f"{'.'.join(location) or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


class KeyFirstResolver(APIGatewayRestResolver):
    """Powertools' resolver, with the tenant's key checked before the body is parsed.

    Powertools validates (parses) the body before any middleware or route runs, so a caller without
    a key could make us parse whatever it sent. ``key_check`` runs first for every request with a
    body on a tenant route; its answer (the key's tenant) is kept for the route's own ``authorise``
    until the request ends. Then the body's nesting is bounded (``guards.body_refusal``)."""

    key_check: Callable[[Mapping[str, Any]], dict | None] | None = None

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        if self.key_check is not None and (event.get("httpMethod") or "").upper() in BODY_METHODS:
            refusal = self.key_check(event) or body_refusal(dict(event))
            if refusal is not None:
                self.clear_context()
                return refusal
        return super().resolve(event, context)


def _source_ip(event: Mapping[str, Any]) -> str:
    identity = (event.get("requestContext") or {}).get("identity") or {}
    return identity.get("sourceIp") or "unknown"


def build_app(deps_factory: Callable[[], ApiDependencies]) -> APIGatewayRestResolver:
    app = KeyFirstResolver(enable_validation=True)

    def source_ip() -> str:
        return _source_ip(app.current_event.raw_event)

    def authenticate(tenant_id: str, headers: Mapping[str, str] | None, source: str) -> tuple[str, str]:
        """(the key's tenant, its key id), or the 404/429/401/403 as an exception. Identity comes
        only from the key that authenticated (one parser, ``presented_api_key``)."""
        if not TENANT_ID_PATTERN.match(tenant_id):
            raise NotFoundError(f"no tenant {tenant_id!r}")
        limiter = deps_factory().rate_limiter
        if limiter is not None:
            limiter.check_source(source)
        presented = presented_api_key(headers)
        if not presented:
            raise UnauthorizedError("missing API key: send 'Authorization: Bearer <key>' "
                                    "(create one with `swordfish tenants create-key`)")
        owner = deps_factory().store.authenticate(presented)
        if owner is None:
            if limiter is not None:
                limiter.failed_authentication(source)
            raise UnauthorizedError("invalid API key")
        if owner != tenant_id:
            raise ForbiddenError(f"this key belongs to tenant {owner!r}, not {tenant_id!r}")
        return owner, parse_api_key(presented)[1]

    def key_check(event: Mapping[str, Any]) -> dict | None:
        tenant = TENANT_PATH.match(event.get("path") or "")
        if (event.get("path") or "").startswith((OPERATOR_PATH, MSP_PATH)):  # the operator token before the body
            try:
                require_operator(event)
            except ServiceError as denied:
                return _refusal(denied.status_code, denied.msg)
            except RateLimited as limited:
                return _refusal(429, str(limited), {"Retry-After": str(limited.retry_after)})
            return None
        if not tenant:
            return None
        try:
            app.append_context(verified_key=authenticate(tenant.group(1), event.get("headers"), _source_ip(event)))
        except ServiceError as denied:
            return _refusal(denied.status_code, denied.msg)
        except RateLimited as limited:
            return _refusal(429, str(limited), {"Retry-After": str(limited.retry_after)})
        return None

    app.key_check = key_check

    def authorise(tenant_id: str, cost: int = 1) -> str:
        """The key's tenant, counted against its limits; the caller is named in logs only once its
        key verified."""
        verified = app.context.get("verified_key")
        if verified is None or verified[0] != tenant_id:
            verified = authenticate(tenant_id, app.current_event.headers, source_ip())
        owner, key_id = verified
        identify_caller(f"api-key:{key_id}")
        app.append_context(key_id=key_id)
        limiter = deps_factory().rate_limiter
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
        # The reason (host, port, the driver's text) is for our logs, never the caller's: a 503
        # may answer a caller whose key was never checked.
        logger.warning("verdict store unavailable", extra={"error": str(exc)[:500]})
        return Response(503, content_types.APPLICATION_JSON,
                        {"statusCode": 503, "message": "the verdict store is unavailable; retry shortly"})

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
        """Anonymous: the status alone (a load balancer needs no more); the checks behind it are
        on /health/deep for operators."""
        status, body = health_deep.ready(deps_factory().health())
        return health_response((status, {"status": body.get("status", "fail")}))

    @app.get("/health/deep", tags=["health"], description="every dependency, application/health+json (operators)",
             responses=health_responses)
    def health_full():
        """For operators only (the operator token, never a tenant's key), and scrubbed: statuses and
        figures, no internal addresses or exception text. The console's health page shows the rest."""
        deps = deps_factory()
        if deps.rate_limiter is not None:  # a source that guessed too often is refused before comparing
            deps.rate_limiter.check_source(source_ip())
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
        try:
            submission = submitter.build(tenant_id, message_id, raw, envelope_recipients=request.envelope_recipients)
        except ValueError as exc:  # the submission contract refused it (SubmissionRequest checks first)
            raise BadRequestError(f"the message cannot be queued: {exc}") from exc
        result = submitter.send([submission], correlation_id)[0]
        if result.error:  # the queue's own words are for our logs
            logger.warning("the queue refused a submission", extra={"error": result.error[:500]})
            raise ServiceError(502, "could not queue the message; retry shortly")
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
                queued.append((index, submitter.build(tenant_id, message_id, raw,
                                                      envelope_recipients=item.envelope_recipients)))
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
        key_id = app.context["key_id"]  # identity from the key that authenticated, never the body
        try:
            row = deps_factory().store.record_feedback(tenant_id, message_id, request.label, f"api-key:{key_id}",
                                                       request.comment, api_key_id=key_id,
                                                       stated_analyst=request.analyst)
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
        actor = f"api-key:{app.context['key_id']}" + (f" (stated: {request.analyst})" if request.analyst else "")
        try:
            row = deps.store.release(tenant_id, message_id, releaser, actor=actor, note=request.comment)
        except NotQuarantined as exc:
            raise ServiceError(409, str(exc)) from exc
        except ReleaseFailed as exc:
            raise ServiceError(exc.http_status, str(exc)) from exc
        return ReleaseView.model_validate(row)

    # --- alert rules: a tenant's own (its key), the MSP's (the operator token) ----------------------

    def rules_admin():
        deps = deps_factory()
        if deps.alert_rules is None:
            raise ServiceError(503, "alert rules are not configured here")
        return deps.alert_rules()

    def require_operator(event: Mapping[str, Any] | None = None) -> None:
        deps = deps_factory()
        source = _source_ip(event) if event is not None else source_ip()
        if deps.rate_limiter is not None:
            deps.rate_limiter.check_source(source)
        expected = deps.operator_token() if deps.operator_token else None
        presented = presented_api_key(event.get("headers") if event is not None else app.current_event.headers)
        if not expected or not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
            if deps.rate_limiter is not None and presented:
                deps.rate_limiter.failed_authentication(source)
            raise UnauthorizedError("MSP-wide alert rules are for operators: send 'Authorization: Bearer <operator token>'")
        identify_caller("operator-token")

    def add_rule(tenant_id: str | None, request: AlertRuleRequest, actor: str, role: str) -> AlertRuleCreated:
        from swordfish.alerts.rules import RuleRefused

        try:
            row, secret = rules_admin().add(tenant_id=tenant_id, actor=actor, actor_role=role, source_ip=source_ip(),
                                            events=request.events, channel=request.channel, target=request.target,
                                            min_tenants=request.min_tenants, label=request.label)
        except RuleRefused as exc:
            raise BadRequestError(str(exc)) from exc
        return AlertRuleCreated.model_validate(row | {"signing_secret": secret})

    def disable_rule(tenant_id: str | None, rule_id: str, actor: str, role: str) -> Message:
        if not rule_id.isdigit() or len(rule_id) > 18:
            raise NotFoundError(f"no alert rule {rule_id[:40]!r}")
        if rules_admin().disable(int(rule_id), tenant_id=tenant_id, actor=actor, actor_role=role,
                                 source_ip=source_ip()) is None:
            raise NotFoundError(f"no active alert rule {rule_id} here")
        return Message(message=f"alert rule {rule_id} disabled")

    @app.get("/v1/tenants/<tenant_id>/alert-rules", tags=["alerts"])
    def tenant_alert_rules(tenant_id: str) -> AlertRulePage:
        """The tenant's rules and the MSP's rules that also cover it."""
        authorise(tenant_id)
        return AlertRulePage(rules=rules_admin().list(tenant_id))

    @app.post("/v1/tenants/<tenant_id>/alert-rules", status_code=201, tags=["alerts"])
    def tenant_add_alert_rule(tenant_id: str, request: Annotated[AlertRuleRequest, Body()]) -> AlertRuleCreated:
        authorise(tenant_id)
        return add_rule(tenant_id, request, f"api-key:{app.context['key_id']}", "api")

    @app.delete("/v1/tenants/<tenant_id>/alert-rules/<rule_id>", tags=["alerts"])
    def tenant_disable_alert_rule(tenant_id: str, rule_id: str) -> Message:
        authorise(tenant_id)
        return disable_rule(tenant_id, rule_id, f"api-key:{app.context['key_id']}", "api")

    @app.get("/v1/alert-rules", tags=["alerts"])
    def msp_alert_rules() -> AlertRulePage:
        """The MSP-wide rules (operator token)."""
        require_operator()
        return AlertRulePage(rules=rules_admin().list(None))

    @app.post("/v1/alert-rules", status_code=201, tags=["alerts"])
    def msp_add_alert_rule(request: Annotated[AlertRuleRequest, Body()]) -> AlertRuleCreated:
        require_operator()
        return add_rule(None, request, "operator-token", "operator")

    @app.delete("/v1/alert-rules/<rule_id>", tags=["alerts"])
    def msp_disable_alert_rule(rule_id: str) -> Message:
        require_operator()
        return disable_rule(None, rule_id, "operator-token", "operator")

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

    # --- search and trace (issue 28) ----------------------------------------------------------

    def operator() -> None:
        """MSP-wide routes: the operator token (the MSP's own credential), never a tenant's key."""
        deps = deps_factory()
        if deps.rate_limiter is not None:
            deps.rate_limiter.check_source(source_ip())
        expected = deps.operator_token() if deps.operator_token else None
        presented = presented_api_key(app.current_event.headers)
        if not expected or not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
            if deps.rate_limiter is not None and presented:
                deps.rate_limiter.failed_authentication(source_ip())
            raise UnauthorizedError("MSP-wide routes need 'Authorization: Bearer <operator token>'")
        identify_caller("operator")

    def run_search(scope: list[str] | None, filters: dict, limit: int, cursor: str | None,
                   ) -> tuple[list[dict], str | None]:
        from pydantic import ValidationError

        from swordfish.store.traces import InvalidSearch, TraceSearch

        if filters.get("verdict"):
            filters["verdict"] = [v.strip() for v in filters["verdict"].split(",") if v.strip()]
        try:
            query = TraceSearch.model_validate({k: v for k, v in filters.items() if v is not None and v != ""})
            return deps_factory().store.search(query, scope, limit=limit, cursor=cursor)
        except ValidationError as exc:
            raise BadRequestError("; ".join(f"{'.'.join(map(str, e['loc'])) or 'query'}: {e['msg']}"
                                            for e in exc.errors(include_url=False))) from exc
        except InvalidSearch as exc:
            raise BadRequestError(str(exc)) from exc

    def filters_of(arguments: dict) -> dict:
        """A route's query parameters that are search filters (its locals hold closures too)."""
        from swordfish.store.traces import TraceSearch

        return {k: arguments[k] for k in TraceSearch.model_fields if k in arguments}

    def trace_view(row: dict) -> TraceView:
        url = f"/v1/tenants/{row['tenant_id']}/verdicts/{quote(row['message_id'], safe='')}"
        return TraceView.model_validate({**row, "verdict_url": url})

    def csv_response(rows: list[dict]) -> Response:
        import csv
        import io

        from swordfish.store.traces import CSV_COLUMNS, csv_rows

        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_rows(rows))
        return Response(200, "text/csv; charset=utf-8", out.getvalue(),
                        headers={"Content-Disposition": 'attachment; filename="swordfish-search.csv"'})

    def export(scope: list[str] | None, filters: dict) -> list[dict]:
        from swordfish.store.traces import MAX_CSV_ROWS, MAX_PAGE

        rows, cursor = run_search(scope, dict(filters), MAX_PAGE, None)
        while cursor and len(rows) < MAX_CSV_ROWS:
            more, cursor = run_search(scope, dict(filters), MAX_PAGE, cursor)
            rows += more
        return rows[:MAX_CSV_ROWS]

    search_doc = ("Filters (all optional, all must hold): recipient (envelope or header), message_id (header "
                  "Message-ID), sending_ip and helo (the trusted Received hop), link_domain, url, attachment_name, "
                  "attachment_sha256, sender_domain, reply_to_domain, verdict (comma-separated), min_score, "
                  "max_score, reason, since, until. Newest first; keyset-paged with cursor.")
    csv_doc = {200: {"description": "the search as CSV (at most 10,000 rows, newest first)",
                     "content": {"text/csv": {"schema": {"type": "string"}}}}}

    @app.get("/v1/tenants/<tenant_id>/search", tags=["search"], description=search_doc)
    def tenant_search(
        tenant_id: str,
        recipient: SearchText = None, message_id: SearchText = None, sending_ip: SearchText = None,
        helo: SearchText = None, link_domain: SearchText = None, url: SearchText = None,
        attachment_name: SearchText = None, attachment_sha256: SearchText = None, sender_domain: SearchText = None,
        reply_to_domain: SearchText = None, verdict: SearchText = None,
        min_score: Annotated[float | None, Query(ge=-1000, le=1000)] = None,
        max_score: Annotated[float | None, Query(ge=-1000, le=1000)] = None,
        reason: SearchText = None, since: Annotated[datetime | None, Query()] = None,
        until: Annotated[datetime | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50, cursor: SearchText = None,
    ) -> SearchPage:
        authorise(tenant_id)
        rows, next_cursor = run_search([tenant_id], filters_of(locals()), limit, cursor)
        return SearchPage(results=[trace_view(r) for r in rows], next_cursor=next_cursor)

    @app.get("/v1/tenants/<tenant_id>/search/csv", tags=["search"], responses=csv_doc, description=search_doc)
    def tenant_search_csv(
        tenant_id: str,
        recipient: SearchText = None, message_id: SearchText = None, sending_ip: SearchText = None,
        helo: SearchText = None, link_domain: SearchText = None, url: SearchText = None,
        attachment_name: SearchText = None, attachment_sha256: SearchText = None, sender_domain: SearchText = None,
        reply_to_domain: SearchText = None, verdict: SearchText = None,
        min_score: Annotated[float | None, Query(ge=-1000, le=1000)] = None,
        max_score: Annotated[float | None, Query(ge=-1000, le=1000)] = None,
        reason: SearchText = None, since: Annotated[datetime | None, Query()] = None,
        until: Annotated[datetime | None, Query()] = None,
    ):
        authorise(tenant_id, cost=10)
        return csv_response(export([tenant_id], filters_of(locals())))

    @app.get("/v1/msp/search", tags=["msp"], description="Every tenant (operator token). " + search_doc)
    def msp_search(
        tenant: SearchText = None,
        recipient: SearchText = None, message_id: SearchText = None, sending_ip: SearchText = None,
        helo: SearchText = None, link_domain: SearchText = None, url: SearchText = None,
        attachment_name: SearchText = None, attachment_sha256: SearchText = None, sender_domain: SearchText = None,
        reply_to_domain: SearchText = None, verdict: SearchText = None,
        min_score: Annotated[float | None, Query(ge=-1000, le=1000)] = None,
        max_score: Annotated[float | None, Query(ge=-1000, le=1000)] = None,
        reason: SearchText = None, since: Annotated[datetime | None, Query()] = None,
        until: Annotated[datetime | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50, cursor: SearchText = None,
    ) -> SearchPage:
        operator()
        rows, next_cursor = run_search(None, filters_of(locals()), limit, cursor)
        return SearchPage(results=[trace_view(r) for r in rows], next_cursor=next_cursor)

    @app.get("/v1/msp/search/csv", tags=["msp"], responses=csv_doc, description="Every tenant. " + search_doc)
    def msp_search_csv(
        tenant: SearchText = None,
        recipient: SearchText = None, message_id: SearchText = None, sending_ip: SearchText = None,
        helo: SearchText = None, link_domain: SearchText = None, url: SearchText = None,
        attachment_name: SearchText = None, attachment_sha256: SearchText = None, sender_domain: SearchText = None,
        reply_to_domain: SearchText = None, verdict: SearchText = None,
        min_score: Annotated[float | None, Query(ge=-1000, le=1000)] = None,
        max_score: Annotated[float | None, Query(ge=-1000, le=1000)] = None,
        reason: SearchText = None, since: Annotated[datetime | None, Query()] = None,
        until: Annotated[datetime | None, Query()] = None,
    ):
        operator()
        return csv_response(export(None, filters_of(locals())))

    @app.get("/v1/msp/campaigns", tags=["msp"])
    def campaigns(
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        before: Annotated[int | None, Query(ge=1, description="a campaign_id: only campaigns before it")] = None,
    ) -> CampaignPage:
        """Lures that reached several tenants (operator token), most recently active first."""
        operator()
        rows = deps_factory().store.campaigns(limit=limit, before=before)
        return CampaignPage(campaigns=rows, next_before=rows[-1]["campaign_id"] if len(rows) == limit else None)

    @app.get("/v1/msp/campaigns/<campaign_id>", tags=["msp"])
    def one_campaign(campaign_id: str) -> CampaignDetail:
        """Its tenants, mailboxes, first and last seen, verdict mix, reasons, and the clean copies."""
        operator()
        if not campaign_id.isdigit() or len(campaign_id) > 18:
            raise NotFoundError(f"no campaign {campaign_id[:40]!r}")
        found = deps_factory().store.campaign(int(campaign_id))
        if found is None:
            raise NotFoundError(f"no campaign {campaign_id}")
        return CampaignDetail.model_validate(found)

    # --- response in bulk, the quarantine list, indicator blocks (issue 28) ---------------------

    def desk():
        deps = deps_factory()
        if deps.responses is None:
            raise ServiceError(503, "bulk response is not configured here")
        return deps.responses()

    def number(value: str, what: str) -> int:
        if not value.isdigit() or len(value) > 18:
            raise NotFoundError(f"no {what} {value[:40]!r}")
        return int(value)

    def start_job(request: ResponseJobRequest, *, scope: list[str] | None, tenant_id: str | None, actor: str,
                  role: str) -> ResponseJobView:
        from swordfish.store.response_jobs import JobRefused

        try:
            job = desk().start(
                scope=scope, tenant_id=tenant_id, action=request.action, created_by=actor, created_role=role,
                campaign_id=request.campaign_id, query=request.search,
                quarantined=[(m.tenant_id, m.message_id) for m in request.messages] if request.messages else None,
                confirm_delete=request.confirm_delete, note=request.note, source_ip=source_ip())
        except JobRefused as exc:
            raise BadRequestError(str(exc)) from exc
        return ResponseJobView.model_validate(job)

    def job_progress(job_id: str, scope: list[str] | None) -> ResponseJobProgress:
        found = desk().progress(number(job_id, "job"), scope)
        if found is None:
            raise NotFoundError(f"no job {job_id}")
        return ResponseJobProgress.model_validate(found)

    def job_items(job_id: str, scope: list[str] | None, limit: int, after: int) -> ResponseItemPage:
        if desk().progress(number(job_id, "job"), scope) is None:
            raise NotFoundError(f"no job {job_id}")
        rows = desk().items(int(job_id), scope, limit=limit, after=after)
        return ResponseItemPage(items=rows, next_after=rows[-1]["item_id"] if len(rows) == limit else None)

    def job_page(scope: list[str] | None, limit: int, before: int | None) -> ResponseJobPage:
        rows = desk().jobs(scope, limit=limit, before=before)
        return ResponseJobPage(jobs=[ResponseJobView.model_validate(r).model_dump(mode="json") for r in rows],
                               next_before=rows[-1]["job_id"] if len(rows) == limit else None)

    def quarantine_page(scope: list[str] | None, limit: int, cursor: str | None, **filters: Any) -> QuarantinePage:
        from swordfish.store.response_jobs import JobRefused

        try:
            rows, next_cursor = desk().quarantine(scope, limit=limit, cursor=cursor,
                                                  **{k: v for k, v in filters.items() if v not in (None, "")})
        except JobRefused as exc:
            raise BadRequestError(str(exc)) from exc
        return QuarantinePage(results=[QuarantineView.model_validate(
            {**r, "recipients": r["envelope_recipients"] or r["header_recipients"] or [],
             "verdict_url": f"/v1/tenants/{r['tenant_id']}/verdicts/{quote(r['message_id'], safe='')}"})
            for r in rows], next_cursor=next_cursor)

    def add_block(request: BlockRequest, *, scope: list[str] | None, tenant_id: str | None, actor: str,
                  role: str, campaign_id: int | None = None) -> BlockView:
        try:
            return BlockView.model_validate(desk().block(
                scope=scope, tenant_id=tenant_id, kind=request.kind, indicator=request.indicator, created_by=actor,
                created_role=role, campaign_id=campaign_id, comment=request.comment, source_ip=source_ip()))
        except ValueError as exc:
            raise BadRequestError(str(exc)) from exc

    def remove_block(block_id: str, scope: list[str] | None, actor: str, role: str) -> Message:
        if desk().unblock(number(block_id, "block"), scope=scope, removed_by=actor, role=role,
                          source_ip=source_ip()) is None:
            raise NotFoundError(f"no block {block_id} in force here")
        return Message(message=f"block {block_id} removed")

    @app.post("/v1/tenants/<tenant_id>/response-jobs", status_code=202, tags=["response"])
    def tenant_start_job(tenant_id: str, request: Annotated[ResponseJobRequest, Body()]) -> ResponseJobView:
        """Quarantine, release or delete this tenant's messages of a search (or release chosen
        quarantined ones) in every mailbox, through Nango: throttled, resumable; read its progress."""
        authorise(tenant_id, cost=10)
        if request.campaign_id is not None:
            raise BadRequestError("campaigns span tenants: a tenant key acts on a search of its own messages")
        return start_job(request, scope=[tenant_id], tenant_id=tenant_id,
                         actor=f"api-key:{app.context['key_id']}", role="api")

    @app.get("/v1/tenants/<tenant_id>/response-jobs", tags=["response"])
    def tenant_jobs(tenant_id: str, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
                    before: Annotated[int | None, Query(ge=1)] = None) -> ResponseJobPage:
        authorise(tenant_id)
        return job_page([tenant_id], limit, before)

    @app.get("/v1/tenants/<tenant_id>/response-jobs/<job_id>", tags=["response"])
    def tenant_job(tenant_id: str, job_id: str) -> ResponseJobProgress:
        authorise(tenant_id)
        return job_progress(job_id, [tenant_id])

    @app.get("/v1/tenants/<tenant_id>/response-jobs/<job_id>/items", tags=["response"])
    def tenant_job_items(tenant_id: str, job_id: str, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
                         after: Annotated[int, Query(ge=0)] = 0) -> ResponseItemPage:
        authorise(tenant_id)
        return job_items(job_id, [tenant_id], limit, after)

    @app.get("/v1/tenants/<tenant_id>/quarantine", tags=["response"])
    def tenant_quarantine(tenant_id: str, state: Annotated[QuarantineState | None, Query()] = "quarantined",
                          recipient: SearchText = None, sender: SearchText = None,
                          since: Annotated[datetime | None, Query()] = None,
                          until: Annotated[datetime | None, Query()] = None,
                          limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
                          cursor: SearchText = None) -> QuarantinePage:
        """What Swordfish quarantined for this tenant, newest first (keyset-paged)."""
        authorise(tenant_id)
        return quarantine_page([tenant_id], limit, cursor, state=state, recipient=recipient, sender=sender,
                               since=since, until=until)

    @app.get("/v1/tenants/<tenant_id>/indicator-blocks", tags=["response"])
    def tenant_blocks(tenant_id: str) -> BlockPage:
        """The tenant's blocks and the MSP-wide ones that also cover it."""
        authorise(tenant_id)
        return BlockPage(blocks=desk().blocks([tenant_id]))

    @app.post("/v1/tenants/<tenant_id>/indicator-blocks", status_code=201, tags=["response"])
    def tenant_add_block(tenant_id: str, request: Annotated[BlockRequest, Body()]) -> BlockView:
        authorise(tenant_id)
        if request.tenant not in (None, tenant_id):
            raise BadRequestError("a tenant key blocks for its own tenant")
        return add_block(request, scope=[tenant_id], tenant_id=tenant_id, actor=f"api-key:{app.context['key_id']}",
                         role="api")

    @app.delete("/v1/tenants/<tenant_id>/indicator-blocks/<block_id>", tags=["response"])
    def tenant_remove_block(tenant_id: str, block_id: str) -> Message:
        authorise(tenant_id)
        return remove_block(block_id, [tenant_id], f"api-key:{app.context['key_id']}", "api")

    @app.post("/v1/msp/response-jobs", status_code=202, tags=["msp"])
    def msp_start_job(request: Annotated[ResponseJobRequest, Body()]) -> ResponseJobView:
        """A bulk response across tenants (operator token): a campaign's copies, a search's results,
        or chosen quarantined messages, in every affected mailbox."""
        operator()
        return start_job(request, scope=None, tenant_id=None, actor="operator-token", role="operator")

    @app.get("/v1/msp/response-jobs", tags=["msp"])
    def msp_jobs(limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
                 before: Annotated[int | None, Query(ge=1)] = None) -> ResponseJobPage:
        operator()
        return job_page(None, limit, before)

    @app.get("/v1/msp/response-jobs/<job_id>", tags=["msp"])
    def msp_job(job_id: str) -> ResponseJobProgress:
        operator()
        return job_progress(job_id, None)

    @app.get("/v1/msp/response-jobs/<job_id>/items", tags=["msp"])
    def msp_job_items(job_id: str, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
                      after: Annotated[int, Query(ge=0)] = 0) -> ResponseItemPage:
        operator()
        return job_items(job_id, None, limit, after)

    @app.get("/v1/msp/quarantine", tags=["msp"])
    def msp_quarantine(tenant: Annotated[str | None, Query(pattern=TENANT_ID_PATTERN.pattern)] = None,
                       state: Annotated[QuarantineState | None, Query()] = "quarantined",
                       recipient: SearchText = None, sender: SearchText = None,
                       since: Annotated[datetime | None, Query()] = None,
                       until: Annotated[datetime | None, Query()] = None,
                       limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
                       cursor: SearchText = None) -> QuarantinePage:
        """Every tenant's quarantine (operator token), newest first (keyset-paged)."""
        operator()
        return quarantine_page(None, limit, cursor, tenant=tenant, state=state, recipient=recipient, sender=sender,
                               since=since, until=until)

    @app.get("/v1/msp/indicator-blocks", tags=["msp"])
    def msp_blocks() -> BlockPage:
        operator()
        return BlockPage(blocks=desk().blocks(None))

    @app.post("/v1/msp/indicator-blocks", status_code=201, tags=["msp"])
    def msp_add_block(request: Annotated[BlockRequest, Body()]) -> BlockView:
        operator()
        return add_block(request, scope=None, tenant_id=request.tenant, actor="operator-token", role="operator")

    @app.delete("/v1/msp/indicator-blocks/<block_id>", tags=["msp"])
    def msp_remove_block(block_id: str) -> Message:
        operator()
        return remove_block(block_id, None, "operator-token", "operator")

    @app.get("/v1/msp/campaigns/<campaign_id>/block", tags=["msp"])
    def campaign_block_choices(campaign_id: str) -> CampaignIndicators:
        """What can be blocked of a campaign: its indicator and what all its flagged copies share."""
        operator()
        found = desk().campaign_indicators(number(campaign_id, "campaign"))
        if found is None:
            raise NotFoundError(f"no campaign {campaign_id}")
        return CampaignIndicators(campaign_id=int(campaign_id),
                                  indicators=[BlockIndicator(kind=k, indicator=i) for k, i in found])

    @app.post("/v1/msp/campaigns/<campaign_id>/block", status_code=201, tags=["msp"])
    def block_campaign(campaign_id: str, request: Annotated[CampaignBlockRequest, Body()]) -> BlockPage:
        """Block a campaign's indicators for one tenant or MSP-wide (audited; undo with DELETE
        /v1/msp/indicator-blocks/<block_id>)."""
        operator()
        offered = desk().campaign_indicators(number(campaign_id, "campaign"))
        if offered is None:
            raise NotFoundError(f"no campaign {campaign_id}")
        chosen = [(i.kind, i.indicator.strip().lower()) for i in request.indicators] if request.indicators else offered
        unknown = [f"{k} {v}" for k, v in chosen if (k, v) not in offered]
        if unknown:
            raise BadRequestError(f"not indicators of campaign {campaign_id}: {', '.join(unknown[:5])}")
        return BlockPage(blocks=[add_block(BlockRequest(kind=k, indicator=v, comment=request.comment),
                                           scope=None, tenant_id=request.tenant, actor="operator-token",
                                           role="operator", campaign_id=int(campaign_id)) for k, v in chosen])

    # --- reports an MSP sends its clients (issue 28) ---------------------------------------------

    from swordfish.reports.model import TenantReport

    report_doc = {
        200: {"description": "the tenant's report: JSON (the figures), an HTML page, or a PDF",
              "content": {"application/json": {"model": TenantReport},
                          "text/html": {"schema": {"type": "string"}},
                          "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}}

    def report_response(tenant_id: str, start: str | None, end: str | None, format: str) -> Response:
        from swordfish.reports.model import InvalidPeriod, parse_period

        deps = deps_factory()
        now = deps.clock()
        try:
            period = parse_period(start, end, today=now.date())
        except InvalidPeriod as exc:
            raise BadRequestError(str(exc)) from exc
        report = deps.store.report(tenant_id, period, now=now)
        if report is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        if format == "json":
            return Response(200, content_types.APPLICATION_JSON, report.model_dump(mode="json", by_alias=True))
        from swordfish.reports import render

        if format == "html":
            return Response(200, "text/html; charset=utf-8", render.report_html(report),
                            headers={"Content-Security-Policy": render.REPORT_CSP,
                                     "Content-Disposition": f'inline; filename="{render.filename(report, "html")}"'})
        return Response(200, "application/pdf", render.report_pdf(report),
                        headers={"Content-Disposition": f'attachment; filename="{render.filename(report, "pdf")}"'})

    report_about = ("Mail volume per day, threats by kind against the previous period of equal length, the most "
                    "targeted recipients, impersonated brands and VIPs, and what was quarantined and released.")

    @app.get("/v1/tenants/<tenant_id>/reports", tags=["reports"], responses=report_doc, description=report_about)
    def tenant_report(tenant_id: str, from_: ReportFrom = None, to: ReportTo = None, format: ReportFormat = "json"):
        """The tenant's report for a period (the tenant's key)."""
        authorise(tenant_id, cost=5 if format == "json" else 20)
        return report_response(tenant_id, from_, to, format)

    @app.get("/v1/msp/tenants/<tenant_id>/reports", tags=["msp"], responses=report_doc, description=report_about)
    def msp_tenant_report(tenant_id: str, from_: ReportFrom = None, to: ReportTo = None,
                          format: ReportFormat = "json"):
        """Any tenant's report for a period (operator token): what the MSP sends each client."""
        operator()
        if not TENANT_ID_PATTERN.match(tenant_id):
            raise NotFoundError(f"no tenant {tenant_id[:64]!r}")
        return report_response(tenant_id, from_, to, format)

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
