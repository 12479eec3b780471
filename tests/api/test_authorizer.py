"""API Gateway's Lambda authorizer, in process against the test PostgreSQL: the same key checks as the
API (valid, unknown, tampered, revoked, expired), and the tenant's usage-plan key for the usage plan."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from swordfish.store.tenants import create_api_key, create_tenant, revoke_api_key, set_usage_key

REGION, ACCOUNT, API_ID, STAGE = "eu-west-1", "111111111111", "a1b2c3d4e5", "prod"
STAGE_ARN = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{STAGE}"
USAGE_KEY = "usage-key-of-acme-corp-0123456789"


@dataclass
class Context:  # the attributes Powertools' logger reads from a Lambda context
    function_name: str = "swordfish-authorizer"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:swordfish-authorizer"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def request_event(authorization: str | None, path: str = "/v1/tenants/acme-corp/verdicts") -> dict:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return {"type": "REQUEST", "methodArn": f"{STAGE_ARN}/GET{path}", "resource": path, "path": path,
            "httpMethod": "GET", "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {}, "pathParameters": {}, "stageVariables": {},
            "requestContext": {"accountId": ACCOUNT, "apiId": API_ID, "stage": STAGE, "httpMethod": "GET",
                               "path": f"/{STAGE}{path}", "resourcePath": path,
                               "identity": {"sourceIp": "198.51.100.9"}, "requestId": str(uuid.uuid4())}}


@pytest.fixture()
def keys(database, settings_env):
    """acme-corp with a usage key and keys in every state; globex without a usage key yet."""
    from swordfish import wiring

    database.reset()
    settings_env(environment="local", database_url=database.app_url, api_key_pepper="p" * 40)
    wiring.reset()
    with psycopg.connect(database.owner_url) as conn, conn.transaction():
        for tenant in ("acme-corp", "globex"):
            create_tenant(conn, tenant, tenant.title(), {})
        set_usage_key(conn, "acme-corp", "apigw-key-1", USAGE_KEY)
        valid = create_api_key(conn, "acme-corp", "valid")
        revoked = create_api_key(conn, "acme-corp", "revoked")
        revoke_api_key(conn, "acme-corp", revoked.key_id)
        expired = create_api_key(conn, "acme-corp", "expired", expires_at=datetime.now(UTC) - timedelta(minutes=1))
        globex = create_api_key(conn, "globex", "no usage key")
    yield {"valid": valid, "revoked": revoked, "expired": expired, "globex": globex}
    wiring.reset()


def decide(authorization: str | None, **kwargs) -> dict:
    from handlers import authorizer

    return authorizer.handler(request_event(authorization, **kwargs), Context())


def effect(response: dict) -> str:
    [statement] = response["policyDocument"]["Statement"]
    return statement["Effect"]


def test_a_valid_key_is_allowed_on_the_whole_stage_with_its_tenants_usage_key(keys):
    response = decide(f"Bearer {keys['valid'].plaintext}")
    assert effect(response) == "Allow"
    assert response["usageIdentifierKey"] == USAGE_KEY
    assert response["principalId"] == f"api-key:{keys['valid'].key_id}"
    assert response["context"] == {"tenant_id": "acme-corp"}
    # Cached per Authorization header for every route, so the policy covers the stage, not one path.
    [statement] = response["policyDocument"]["Statement"]
    assert statement["Resource"] == [f"{STAGE_ARN}/*/*"]
    # Path-agnostic: the API itself answers 403 for another tenant's path; the usage key stays the key's.
    other = decide(f"Bearer {keys['valid'].plaintext}", path="/v1/tenants/globex/verdicts")
    assert effect(other) == "Allow" and other["usageIdentifierKey"] == USAGE_KEY


@pytest.mark.parametrize("which", ["revoked", "expired"])
def test_revoked_and_expired_keys_are_denied_without_a_usage_key(keys, which):
    response = decide(f"Bearer {keys[which].plaintext}")
    assert effect(response) == "Deny"
    assert "usageIdentifierKey" not in response
    assert response["principalId"] == "anonymous"


def test_unknown_tampered_and_missing_keys_are_denied(keys):
    valid = keys["valid"].plaintext
    tampered = valid[:-1] + ("A" if valid[-1] != "A" else "B")
    unknown_id = valid.replace(keys["valid"].key_id, "0" * 12)
    for authorization in (f"Bearer {tampered}", f"Bearer {unknown_id}", "Bearer sfk.acme-corp.nope.nope",
                          "Bearer ", "Basic dXNlcjpwYXNz", "", None):
        response = decide(authorization)
        assert effect(response) == "Deny", authorization
        assert "usageIdentifierKey" not in response


def test_a_tenant_without_a_usage_key_is_denied_until_onboarded(keys):
    """apiKeyRequired would refuse it anyway; a Deny says so in the authorizer's log."""
    response = decide(f"Bearer {keys['globex'].plaintext}")
    assert effect(response) == "Deny"


def test_the_authorizer_and_the_api_accept_exactly_the_same_keys(keys):
    """One implementation: the API's store decides both."""
    from swordfish import wiring
    from swordfish.store.pipeline_store import PostgresApiStore

    api_store = PostgresApiStore(wiring.database())
    for name, key in keys.items():
        allowed = effect(decide(f"Bearer {key.plaintext}")) == "Allow"
        api_accepts = api_store.authenticate(key.plaintext) is not None
        assert allowed == (api_accepts and name != "globex"), name


def test_revoking_a_key_denies_it_on_the_next_uncached_call(keys):
    assert effect(decide(f"Bearer {keys['valid'].plaintext}")) == "Allow"
    from swordfish import wiring

    with wiring.database().connection() as conn, conn.transaction():
        assert revoke_api_key(conn, "acme-corp", keys["valid"].key_id)
    assert effect(decide(f"Bearer {keys['valid'].plaintext}")) == "Deny"


def test_a_database_outage_fails_the_call_instead_of_caching_a_deny(database, settings_env):
    """API Gateway caches a Deny for the TTL but never an error (500): after an outage nobody stays locked out."""
    from swordfish import wiring
    from swordfish.store.database import DatabaseUnavailable

    settings_env(environment="local", database_url="postgresql://swordfish_app:nope@127.0.0.1:9/swordfish",
                 db_connect_timeout_seconds=1, db_reconnect_timeout_seconds=1, api_key_pepper="p" * 40)
    wiring.reset()
    try:
        with pytest.raises(DatabaseUnavailable):
            decide("Bearer sfk.acme-corp.0123456789ab.secret-part")
    finally:
        wiring.reset()
