"""What the API function does with a request API Gateway let through *unverified* (on AWS the authorizer
passes unknown, revoked and expired keys on under the shared UnverifiedCallers usage key, with the context
``verified: false``): it verifies the key itself, answers 401, and after too many failures from one
address 429 with Retry-After. The authorizer's context is never taken as identity, whatever it says.
In process through the API handler, on the test PostgreSQL and Redis, with the limiter on a fixed clock."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import pytest
from swordfish.store.database import proxy_connect
from swordfish.store.tenants import create_api_key, create_tenant

ATTACKER, TENANT_HOST = "203.0.113.7", "198.51.100.20"
NOW = 1_800_000_010.0  # 50 s before the end of a one-minute window


@dataclass
class Context:  # the attributes Powertools' logger reads from a Lambda context
    function_name: str = "swordfish-api"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:111111111111:function:swordfish-api"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@pytest.fixture()
def api(database, redis_url, settings_env):
    """acme-corp with one valid key; the API as API Gateway invokes it, failed-auth limit 3 a minute."""
    from swordfish import wiring

    database.reset()
    settings_env(environment="local", database_url=database.app_url, api_key_pepper="p" * 40, redis_url=redis_url,
                 emails_queue_url="https://sqs.eu-west-1.amazonaws.com/111111111111/emails",
                 api_rate_limit_failed_auth_per_source=3)
    wiring.reset()
    with proxy_connect(database.owner_url) as conn, conn.transaction():
        create_tenant(conn, "acme-corp", "Acme", {})
        valid = create_api_key(conn, "acme-corp", "valid")
    wiring.api_dependencies().rate_limiter.clock = lambda: NOW
    from handlers import api as api_handler

    def call(key: str | None, authorizer: dict, source: str = ATTACKER, method: str = "GET",
             path: str = "/v1/tenants/acme-corp/verdicts", body: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        event = {"httpMethod": method, "path": path, "resource": "/v1/{proxy+}", "headers": headers,
                 "multiValueHeaders": {k: [v] for k, v in headers.items()},
                 "queryStringParameters": None, "multiValueQueryStringParameters": None,
                 "pathParameters": {"proxy": path[4:]}, "body": body, "isBase64Encoded": False,
                 "requestContext": {"requestId": str(uuid.uuid4()), "stage": "prod", "httpMethod": method,
                                    "path": f"/prod{path}", "resourcePath": "/v1/{proxy+}",
                                    "identity": {"sourceIp": source}, "authorizer": authorizer}}
        return api_handler.handler(event, Context())

    call.valid = valid.plaintext
    call.valid_principal = f"api-key:{valid.key_id}"
    yield call
    wiring.reset()


def header(response: dict, name: str) -> str | None:
    """A response header, from ``headers`` or (events with multiValueHeaders) ``multiValueHeaders``."""
    if name in (response.get("headers") or {}):
        return response["headers"][name]
    values = (response.get("multiValueHeaders") or {}).get(name)
    return values[-1] if values else None


UNVERIFIED = {"principalId": "unverified", "verified": "false", "integrationLatency": 12}


def test_a_wrong_key_let_through_unverified_gets_401_then_429_from_the_applications_limit(api):
    statuses = [api(f"sfk.acme-corp.0123456789ab.guess-{n}", UNVERIFIED)["statusCode"] for n in range(3)]
    assert statuses == [401, 401, 401]
    refused = api("sfk.acme-corp.0123456789ab.guess-4", UNVERIFIED)
    assert refused["statusCode"] == 429
    assert header(refused, "Retry-After") == "50"  # the rest of the window, on the fixed clock
    assert "source address" in json.loads(refused["body"])["message"]
    # The address stays refused even with a real key this window; the tenant's own address is not.
    assert api(api.valid, UNVERIFIED)["statusCode"] == 429
    verified = {"principalId": api.valid_principal, "verified": "true", "tenant_id": "acme-corp"}
    assert api(api.valid, verified, source=TENANT_HOST)["statusCode"] == 200


def test_the_authorizers_context_is_never_taken_as_identity(api):
    """A context naming a verified tenant does not make a wrong or missing key valid, and a context saying
    unverified does not refuse a valid key: the API verifies the key on every request."""
    claims_acme = {"principalId": api.valid_principal, "verified": "true", "tenant_id": "acme-corp"}
    wrong = api("sfk.acme-corp.0123456789ab.wrong", claims_acme, source=TENANT_HOST)
    assert wrong["statusCode"] == 401 and "invalid API key" in json.loads(wrong["body"])["message"]
    assert api(None, claims_acme, source=TENANT_HOST)["statusCode"] == 401
    assert api(api.valid, UNVERIFIED, source=TENANT_HOST)["statusCode"] == 200


def test_every_tenant_route_verifies_the_key_itself(api):
    """API Gateway now lets unverified callers reach the function, so no /v1 route may rely on it:
    each one in the OpenAPI document answers a wrong key with 401 (an empty body included)."""
    document = json.loads(api(None, {}, path="/openapi.json")["body"])
    routes = [(method.upper(), path) for path, item in document["paths"].items() if path.startswith("/v1/")
              for method in item]
    assert len(routes) >= 7  # submissions, batch, verdicts, a verdict, feedback, its list, examples
    for n, (method, template) in enumerate(routes):
        path = template.replace("{tenant_id}", "acme-corp").replace("{message_id}", "m-1")
        response = api("sfk.acme-corp.0123456789ab.wrong", UNVERIFIED, source=f"192.0.2.{n + 1}", method=method,
                       path=path, body="{}" if method == "POST" else None)
        assert response["statusCode"] == 401, (method, template, response["body"])
