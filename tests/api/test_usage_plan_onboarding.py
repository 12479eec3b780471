"""Tenant onboarding on AWS (moto's API Gateway): `swordfish tenants create` creates or finds the
tenant's usage-plan key, puts it in the plan and records it for the authorizer; locally (no plan id)
it does nothing with API Gateway."""

from __future__ import annotations

import boto3
import pytest
from swordfish import constants
from swordfish.cli import main
from swordfish.store.database import proxy_connect
from swordfish.store.tenants import create_tenant

REGION = "eu-west-1"


@pytest.fixture()
def apigateway(moto_server):
    client = boto3.client("apigateway", region_name=REGION, endpoint_url=moto_server.url)
    api = client.create_rest_api(name=f"swordfish-{id(client)}")
    plan = client.create_usage_plan(name=f"tenants-{api['id']}", throttle={"rateLimit": 20, "burstLimit": 40},
                                    quota={"limit": 1000, "period": "DAY"})
    yield client, plan["id"]
    for key in client.get_api_keys(limit=500)["items"]:  # moto is shared by the session
        client.delete_api_key(apiKey=key["id"])


@pytest.fixture()
def owner(database, settings_env, moto_server):
    database.reset()
    settings_env(environment="local", aws_region=REGION, aws_endpoint_url=moto_server.url, api_key_pepper="p" * 40)
    return database.owner_url


def usage_columns(owner_url: str, tenant_id: str) -> tuple[str | None, str | None]:
    with proxy_connect(owner_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        return conn.execute("SELECT usage_key_id, usage_key_value FROM tenants WHERE tenant_id = %s",
                            (tenant_id,)).fetchone()


def named_keys(client, tenant_id: str) -> list[dict]:
    name = constants.USAGE_KEY_NAME_PREFIX + tenant_id
    return [k for k in client.get_api_keys(includeValues=True, limit=500)["items"] if k["name"] == name]


def plan_key_ids(client, plan_id: str) -> list[str]:
    return [k["id"] for k in client.get_usage_plan_keys(usagePlanId=plan_id)["items"]]


def test_creating_a_tenant_creates_its_usage_key_in_the_plan_and_records_it(owner, apigateway, settings_env,
                                                                           capsys):
    client, plan_id = apigateway
    settings_env(usage_plan_id=plan_id)
    assert main(["tenants", "create", "acme-corp", "--database-url", owner]) == 0
    [key] = named_keys(client, "acme-corp")
    assert usage_columns(owner, "acme-corp") == (key["id"], key["value"])
    assert plan_key_ids(client, plan_id) == [key["id"]]
    assert key["value"] not in capsys.readouterr().out  # the value is never printed


def test_onboarding_twice_finds_the_key_instead_of_making_another(owner, apigateway, settings_env):
    client, plan_id = apigateway
    settings_env(usage_plan_id=plan_id)
    assert main(["tenants", "create", "acme", "--database-url", owner]) == 0
    # A tenant whose id starts with the first's: the name lookup is a prefix match, the key is not theirs.
    assert main(["tenants", "create", "acme-corp", "--database-url", owner]) == 0
    assert main(["tenants", "create", "acme", "--name", "Acme renamed", "--database-url", owner]) == 0
    [acme] = named_keys(client, "acme")
    [acme_corp] = named_keys(client, "acme-corp")
    assert acme["id"] != acme_corp["id"]
    assert usage_columns(owner, "acme")[0] == acme["id"]
    assert sorted(plan_key_ids(client, plan_id)) == sorted([acme["id"], acme_corp["id"]])


def test_sync_gives_tenants_made_before_usage_plans_their_key(owner, apigateway, settings_env):
    client, plan_id = apigateway
    with proxy_connect(owner) as conn, conn.transaction():
        create_tenant(conn, "globex", "Globex", {})  # no plan configured yet
    assert usage_columns(owner, "globex") == (None, None)
    settings_env(usage_plan_id=plan_id)
    assert main(["tenants", "sync-usage-keys", "--database-url", owner]) == 0
    [key] = named_keys(client, "globex")
    assert usage_columns(owner, "globex") == (key["id"], key["value"])
    assert plan_key_ids(client, plan_id) == [key["id"]]


def test_locally_without_a_usage_plan_onboarding_leaves_api_gateway_alone(owner, apigateway):
    client, _ = apigateway
    assert main(["tenants", "create", "initech", "--database-url", owner]) == 0
    assert named_keys(client, "initech") == []
    assert usage_columns(owner, "initech") == (None, None)
    assert main(["tenants", "sync-usage-keys", "--database-url", owner]) == 1  # says there is nothing to do


def test_an_onboarded_tenants_key_is_what_the_authorizer_returns(owner, apigateway, settings_env, database):
    """End to end: onboarding, a tenant key, the authorizer naming the plan's key to API Gateway."""
    from swordfish import wiring
    from swordfish.store.tenants import create_api_key

    from tests.api.test_authorizer import Context, request_event

    client, plan_id = apigateway
    settings_env(usage_plan_id=plan_id, database_url=database.app_url)
    assert main(["tenants", "create", "acme-corp", "--database-url", owner]) == 0
    with proxy_connect(owner) as conn, conn.transaction():
        key = create_api_key(conn, "acme-corp", "client")
    wiring.reset()
    try:
        from handlers import authorizer

        response = authorizer.handler(request_event(f"Bearer {key.plaintext}"), Context())
    finally:
        wiring.reset()
    [usage_key] = named_keys(client, "acme-corp")
    assert response["usageIdentifierKey"] == usage_key["value"]
    assert usage_key["id"] in plan_key_ids(client, plan_id)
