"""The API routes with in-memory fakes of the ApiStore and the queue: no PostgreSQL, no SQS, no
HTTP server. API Gateway proxy events go straight to the Powertools resolver."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import pytest
from swordfish.api.routes import ApiDependencies, build_app
from swordfish.pipeline.submitter import Submitter
from swordfish.store.database import DatabaseUnavailable

from tests.unit.fakes import CLEAN, T0

KEYS = {"sfk.acme.0123456789ab.secret": "acme", "sfk.globex.ba9876543210.secret": "globex"}
ROW = {"tenant_id": "acme", "message_id": "m-1", "verdict": "phishing", "score": 18.5,
       "reasons": [{"name": "CREDENTIAL_PHISHING_LANGUAGE", "weight": 6.0, "evidence": "verify your password"}],
       "parse_problems": [], "subject": "Password expiry", "sender": "it@example.com", "submitted_at": T0,
       "sqs_sent_at": T0, "committed_at": T0, "e2e_latency_ms": 41.5, "degraded": False, "deferred_work": [],
       "flags_version": "v3", "correlation_id": "corr-1"}


@dataclass
class FakeApiStore:
    rows: list[dict] = field(default_factory=lambda: [ROW])
    down: bool = False
    list_calls: list[dict] = field(default_factory=list)

    def authenticate(self, presented_key: str) -> str | None:
        if self.down:
            raise DatabaseUnavailable("PostgreSQL unavailable: connection refused")
        return KEYS.get(presented_key)

    def list_verdicts(self, tenant_id, *, limit, verdict, before):
        self.list_calls.append({"tenant_id": tenant_id, "limit": limit, "verdict": verdict, "before": before})
        return [r for r in self.rows if r["tenant_id"] == tenant_id][:limit]

    def get_verdict(self, tenant_id, message_id):
        return next((r for r in self.rows if (r["tenant_id"], r["message_id"]) == (tenant_id, message_id)), None)


@dataclass
class FakeSqs:
    sent: list[dict] = field(default_factory=list)

    def send_message_batch(self, QueueUrl, Entries):  # noqa: N803 - boto3's names
        self.sent.extend(Entries)
        return {"Successful": [{"Id": e["Id"], "MessageId": f"sqs-{len(self.sent)}"} for e in Entries]}


@pytest.fixture()
def api():
    store, sqs = FakeApiStore(), FakeSqs()
    submitter = Submitter(sqs, "https://sqs.local/emails")
    deps = ApiDependencies(store=store, submitter=lambda: submitter, max_message_bytes=10_000)
    app = build_app(lambda: deps)

    def call(method: str, path: str, *, key: str | None = None, body=None, query=None) -> tuple[int, dict]:
        event = {"httpMethod": method, "path": path, "resource": path, "headers": {"content-type": "application/json"},
                 "queryStringParameters": query, "multiValueQueryStringParameters": None,
                 "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False,
                 "requestContext": {"requestId": "req-1", "stage": "prod", "httpMethod": method, "path": path}}
        if key:
            event["headers"]["Authorization"] = f"Bearer {key}"
        response = app.resolve(event, None)
        return response["statusCode"], json.loads(response["body"] or "{}")

    call.store, call.sqs = store, sqs
    return call


def test_a_submission_is_queued_with_its_idempotency_key(api):
    status, body = api("POST", "/v1/tenants/acme/submissions", key="sfk.acme.0123456789ab.secret",
                       body={"raw_mime_b64": base64.b64encode(CLEAN).decode(), "message_id": "s-1"})
    assert status == 202
    assert body == {"tenant_id": "acme", "message_id": "s-1", "queue_message_id": "sqs-1", "correlation_id": None,
                    "verdict_url": "/v1/tenants/acme/verdicts/s-1"}
    [entry] = api.sqs.sent
    assert json.loads(entry["MessageBody"])["tenant_id"] == "acme"


def test_keys_are_checked_before_anything_else(api):
    assert api("GET", "/v1/tenants/acme/verdicts")[0] == 401
    assert api("GET", "/v1/tenants/acme/verdicts", key="sfk.acme.0123456789ab.wrong")[0] == 401
    status, body = api("GET", "/v1/tenants/acme/verdicts", key="sfk.globex.ba9876543210.secret")
    assert status == 403 and "globex" in body["message"]
    # An invalid request from a caller without the tenant's key gets 401/403, not the validation detail.
    assert api("POST", "/v1/tenants/acme/submissions", body={"nothing": 1})[0] == 401
    assert api("GET", "/v1/tenants/acme/verdicts", key="sfk.globex.ba9876543210.secret", query={"limit": "abc"})[0] == 403
    assert api("GET", "/v1/tenants/Not_A_Tenant/verdicts", key="sfk.acme.0123456789ab.secret")[0] == 404


def test_invalid_requests_get_400_naming_the_field(api):
    key = "sfk.acme.0123456789ab.secret"
    cases = [({"limit": "abc"}, "limit"), ({"verdict": "evil"}, "verdict"), ({"before": "yesterday"}, "before")]
    for query, field_name in cases:
        status, body = api("GET", "/v1/tenants/acme/verdicts", key=key, query=query)
        assert status == 400 and body["message"].startswith(f"{field_name}:"), body
    status, body = api("POST", "/v1/tenants/acme/submissions", key=key, body={"raw_mime_b64": "%%%"})
    assert status == 400 and "base64" in body["message"]
    status, body = api("POST", "/v1/tenants/acme/submissions", key=key, body={"nothing": 1})
    assert status == 400 and "raw_mime_b64" in body["message"]
    status, body = api("POST", "/v1/tenants/acme/submissions", key=key,
                       body={"raw_mime_b64": base64.b64encode(b"x" * 10_001).decode()})
    assert status == 413 and "10000" in body["message"]
    assert api.sqs.sent == []


def test_verdicts_are_listed_through_the_response_model_with_timestamps_as_before(api):
    # An out-of-range limit is refused, not clamped silently (issue 15).
    assert api("GET", "/v1/tenants/acme/verdicts", key="sfk.acme.0123456789ab.secret",
               query={"limit": "100000"})[0] == 400
    status, body = api("GET", "/v1/tenants/acme/verdicts", key="sfk.acme.0123456789ab.secret",
                       query={"limit": "500", "verdict": "phishing", "before": "2026-12-01T00:00:00+00:00"})
    assert status == 200
    assert api.store.list_calls[-1]["limit"] == 500 and api.store.list_calls[-1]["verdict"] == "phishing"
    assert api.store.list_calls[-1]["before"].isoformat() == "2026-12-01T00:00:00+00:00"
    [row] = body["verdicts"]
    assert row["committed_at"] == "2026-11-29T12:00:00+00:00" and row["score"] == 18.5
    assert body["next_before"] is None
    status, one = api("GET", "/v1/tenants/acme/verdicts/m-1", key="sfk.acme.0123456789ab.secret")
    assert status == 200 and one["reasons"][0]["name"] == "CREDENTIAL_PHISHING_LANGUAGE"
    assert api("GET", "/v1/tenants/acme/verdicts/m-2", key="sfk.acme.0123456789ab.secret")[0] == 404


def test_a_message_id_with_reserved_characters_is_found_percent_encoded_as_api_gateway_passes_it(api):
    message_id = "<CAF=9a/b+c@mail.example.com>"
    api.store.rows.append({**ROW, "message_id": message_id})
    status, body = api("POST", "/v1/tenants/acme/submissions", key="sfk.acme.0123456789ab.secret",
                       body={"raw_mime_b64": base64.b64encode(CLEAN).decode(), "message_id": message_id})
    assert status == 202
    assert body["verdict_url"] == "/v1/tenants/acme/verdicts/%3CCAF%3D9a%2Fb%2Bc%40mail.example.com%3E"
    status, one = api("GET", body["verdict_url"], key="sfk.acme.0123456789ab.secret")
    assert status == 200 and one["message_id"] == message_id


def test_an_unavailable_store_is_503_not_500(api):
    api.store.down = True
    status, body = api("GET", "/v1/tenants/acme/verdicts", key="sfk.acme.0123456789ab.secret")
    assert status == 503 and "unavailable" in body["message"]


def test_the_openapi_document_describes_every_route_and_model(api):
    status, document = api("GET", "/openapi.json")
    assert status == 200 and document["info"]["title"] == "Swordfish API"
    operations = {(path, method) for path, item in document["paths"].items() for method in item}
    assert {("/v1/tenants/{tenant_id}/submissions", "post"), ("/v1/tenants/{tenant_id}/verdicts", "get"),
            ("/v1/tenants/{tenant_id}/verdicts/{message_id}", "get"), ("/health", "get")} <= operations
    verdict_kinds = document["components"]["schemas"]["StoredVerdictView"]["properties"]["verdict"]["enum"]
    assert verdict_kinds == ["clean", "spam", "suspicious", "phishing", "malware"]
