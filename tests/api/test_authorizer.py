"""API Gateway's Lambda authorizer, in process against the test PostgreSQL and moto's API Gateway: the
same key checks as the API (valid, unknown, tampered, revoked, expired); a valid key gets its tenant's
usage-plan key, any other is let through unverified under the one usage key all such callers share
(the UnverifiedCallers plan), which the authorizer reads from API Gateway once per container."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from swordfish.store.database import proxy_connect
from swordfish.store.tenants import create_api_key, create_tenant, revoke_api_key, set_usage_key

REGION, ACCOUNT, API_ID, STAGE = "eu-west-1", "111111111111", "a1b2c3d4e5", "prod"
STAGE_ARN = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{STAGE}"
USAGE_KEY = "usage-key-of-acme-corp-0123456789"
UNVERIFIED = {"verified": "false"}


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


@dataclass
class SharedKey:
    """The stack's UnverifiedCallers key, in moto's API Gateway."""
    client: object
    key_id: str
    value: str


@pytest.fixture()
def shared_key(moto_server):
    client = boto3.client("apigateway", region_name=REGION, endpoint_url=moto_server.url)
    created = client.create_api_key(name=f"swordfish-test-unverified-callers-{uuid.uuid4().hex[:8]}", enabled=True)
    yield SharedKey(client, created["id"], created["value"])
    try:
        client.delete_api_key(apiKey=created["id"])
    except ClientError:
        pass  # a test deleted it already


@pytest.fixture()
def keys(database, settings_env, moto_server, shared_key):
    """acme-corp with a usage key and keys in every state; globex without a usage key yet; the shared
    key of unverified callers configured as the stack configures it (its id in the environment)."""
    from swordfish import wiring

    database.reset()
    settings_env(environment="local", database_url=database.app_url, api_key_pepper="p" * 40,
                 aws_region=REGION, aws_endpoint_url=moto_server.url, unverified_usage_key_id=shared_key.key_id)
    wiring.reset()
    with proxy_connect(database.owner_url) as conn, conn.transaction():
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


def is_unverified(response: dict, shared_key: SharedKey) -> bool:
    """Allowed on the whole stage, metered under the shared key, and saying it is not verified."""
    [statement] = response["policyDocument"]["Statement"]
    return (statement["Effect"] == "Allow" and statement["Resource"] == [f"{STAGE_ARN}/*/*"]
            and response["usageIdentifierKey"] == shared_key.value
            and response["principalId"] == "unverified" and response["context"] == UNVERIFIED)


def test_a_valid_key_is_allowed_on_the_whole_stage_with_its_tenants_usage_key(keys):
    response = decide(f"Bearer {keys['valid'].plaintext}")
    assert effect(response) == "Allow"
    assert response["usageIdentifierKey"] == USAGE_KEY
    assert response["principalId"] == f"api-key:{keys['valid'].key_id}"
    assert response["context"] == {"verified": "true", "tenant_id": "acme-corp"}
    # Cached per Authorization header for every route, so the policy covers the stage, not one path.
    [statement] = response["policyDocument"]["Statement"]
    assert statement["Resource"] == [f"{STAGE_ARN}/*/*"]
    # Path-agnostic: the API itself answers 403 for another tenant's path; the usage key stays the key's.
    other = decide(f"Bearer {keys['valid'].plaintext}", path="/v1/tenants/globex/verdicts")
    assert effect(other) == "Allow" and other["usageIdentifierKey"] == USAGE_KEY


@pytest.mark.parametrize("which", ["revoked", "expired"])
def test_revoked_and_expired_keys_go_through_unverified_under_the_shared_key(keys, shared_key, which):
    """Not Deny (API Gateway's 401, which never becomes a 429): the shared plan throttles them, the API says 401."""
    response = decide(f"Bearer {keys[which].plaintext}")
    assert is_unverified(response, shared_key), response
    assert response["usageIdentifierKey"] != USAGE_KEY  # never metered against the tenant's plan


def test_unknown_tampered_and_missing_keys_go_through_unverified_under_the_shared_key(keys, shared_key):
    valid = keys["valid"].plaintext
    tampered = valid[:-1] + ("A" if valid[-1] != "A" else "B")
    unknown_id = valid.replace(keys["valid"].key_id, "0" * 12)
    for authorization in (f"Bearer {tampered}", f"Bearer {unknown_id}", "Bearer sfk.acme-corp.nope.nope",
                          "Bearer ", "Basic dXNlcjpwYXNz", "Bearer \x00\xff<script>", "", None):
        response = decide(authorization)
        assert is_unverified(response, shared_key), authorization


def test_a_tenant_without_a_usage_key_is_denied_until_onboarded(keys):
    """A valid key whose tenant has no usage-plan key yet: Deny, and the authorizer's log says why."""
    response = decide(f"Bearer {keys['globex'].plaintext}")
    assert effect(response) == "Deny"
    assert "usageIdentifierKey" not in response


def test_the_authorizer_and_the_api_accept_exactly_the_same_keys(keys):
    """One implementation: the API's store decides both; only verified keys are named as a tenant's."""
    from swordfish import wiring
    from swordfish.store.pipeline_store import PostgresApiStore

    api_store = PostgresApiStore(wiring.database())
    for name, key in keys.items():
        response = decide(f"Bearer {key.plaintext}")
        verified = (response.get("context") or {}).get("verified") == "true"
        api_accepts = api_store.authenticate(key.plaintext) is not None
        assert verified == (api_accepts and name != "globex"), name
        if verified:
            assert response["context"]["tenant_id"] == "acme-corp"


def test_revoking_a_key_makes_it_unverified_on_the_next_uncached_call(keys, shared_key):
    assert decide(f"Bearer {keys['valid'].plaintext}")["usageIdentifierKey"] == USAGE_KEY
    from swordfish import wiring

    with wiring.database().connection() as conn, conn.transaction():
        assert revoke_api_key(conn, "acme-corp", keys["valid"].key_id)
    assert is_unverified(decide(f"Bearer {keys['valid'].plaintext}"), shared_key)


def test_the_shared_key_is_read_from_api_gateway_once_per_container(keys, shared_key, settings_env):
    from swordfish import wiring

    assert is_unverified(decide("Bearer sfk.acme-corp.0123456789ab.wrong"), shared_key)
    # Gone from API Gateway: this container keeps the value it read ...
    shared_key.client.delete_api_key(apiKey=shared_key.key_id)
    assert is_unverified(decide("Bearer sfk.acme-corp.0123456789ab.other"), shared_key)
    # ... a new container reads it again, and a failed read fails the call (500, nothing cached) ...
    wiring.reset()
    with pytest.raises(ClientError):
        decide("Bearer sfk.acme-corp.0123456789ab.wrong")
    # ... while verified keys never need it.
    assert decide(f"Bearer {keys['valid'].plaintext}")["usageIdentifierKey"] == USAGE_KEY
    # Once API Gateway answers again, the next call reads it (a failure was not cached).
    replacement = shared_key.client.create_api_key(name="swordfish-test-unverified-callers-2", enabled=True)
    try:
        settings_env(unverified_usage_key_id=replacement["id"])
        response = decide("Bearer sfk.acme-corp.0123456789ab.wrong")
        assert response["usageIdentifierKey"] == replacement["value"] and response["context"] == UNVERIFIED
    finally:
        shared_key.client.delete_api_key(apiKey=replacement["id"])


def test_without_a_shared_key_configured_unverified_callers_are_denied_as_before(keys, settings_env):
    from swordfish import wiring

    settings_env(unverified_usage_key_id="")
    wiring.reset()
    response = decide("Bearer sfk.acme-corp.0123456789ab.wrong")
    assert effect(response) == "Deny" and "usageIdentifierKey" not in response
    assert decide(f"Bearer {keys['valid'].plaintext}")["usageIdentifierKey"] == USAGE_KEY


def test_a_database_outage_fails_the_call_instead_of_caching_a_decision(database, settings_env, moto_server,
                                                                        shared_key):
    """API Gateway caches a Deny (or an unverified Allow) for the TTL but never an error (500): after an
    outage nobody stays locked out, and valid keys are not metered as unverified for a minute."""
    from swordfish import wiring
    from swordfish.store.database import DatabaseUnavailable

    settings_env(environment="local", database_url="postgresql://swordfish_app:nope@127.0.0.1:9/swordfish",
                 db_connect_timeout_seconds=1, db_reconnect_timeout_seconds=1, api_key_pepper="p" * 40,
                 aws_region=REGION, aws_endpoint_url=moto_server.url, unverified_usage_key_id=shared_key.key_id)
    wiring.reset()
    try:
        with pytest.raises(DatabaseUnavailable):
            decide("Bearer sfk.acme-corp.0123456789ab.secret-part")
        # A key that does not even parse never needs the database: unverified, outage or not.
        for junk in ("Bearer not-a-key", "Bearer sfk.acme-corp.nope.nope", "Basic dXNlcjpwYXNz"):
            assert is_unverified(decide(junk), shared_key), junk
    finally:
        wiring.reset()
