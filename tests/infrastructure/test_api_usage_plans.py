"""Per-tenant usage plans on AWS: a Lambda authorizer names each tenant's usage key, the plan throttles
and caps it, and the public routes stay as they were."""

from __future__ import annotations

import json

import pytest
from cdk_helpers import ENVIRONMENTS, by_property, only, props, refers_to, resources
from swordfish import constants

from stacks.api_stack import AUTH_HEADER


def _methods_by_path(api) -> dict[str, list[dict]]:
    """Methods by their resource's full path (e.g. "/v1/tenants/{tenant_id}/submissions")."""
    raw = resources(api, "AWS::ApiGateway::Resource")

    def path(lid: str) -> str:
        parent = raw[lid]["Properties"]["ParentId"]
        parent_ids = [p for p in raw if refers_to(parent, p)]
        return (path(parent_ids[0]) if parent_ids else "") + "/" + raw[lid]["Properties"]["PathPart"]

    out: dict[str, list[dict]] = {}
    for method in props(api, "AWS::ApiGateway::Method"):
        owners = [lid for lid in raw if refers_to(method["ResourceId"], lid)]
        out.setdefault(path(owners[0]) if owners else "/", []).append(method)
    return out


def test_usage_keys_come_from_the_authorizer_never_from_a_client_header(prod):
    api = only(prod.templates["api"], "AWS::ApiGateway::RestApi")
    assert api["ApiKeySourceType"] == "AUTHORIZER"


def test_every_tenant_method_goes_through_the_authorizer_and_needs_a_usage_key(prod):
    methods = _methods_by_path(prod.templates["api"])
    tenant = {p: ms for p, ms in methods.items() if p.startswith("/v1/")}
    assert {"/v1/tenants", "/v1/tenants/{tenant_id}/submissions", "/v1/tenants/{tenant_id}/submissions/batch",
            "/v1/{proxy+}"} <= set(tenant)
    [authorizer_id] = resources(prod.templates["api"], "AWS::ApiGateway::Authorizer")
    for path, ms in tenant.items():
        for method in ms:
            assert method["AuthorizationType"] == "CUSTOM", path
            assert refers_to(method["AuthorizerId"], authorizer_id), path
            assert method["ApiKeyRequired"] is True, path
            assert method["RequestParameters"][AUTH_HEADER] is True, path


def test_health_openapi_and_the_console_stay_public(prod):
    methods = _methods_by_path(prod.templates["api"])
    public = {p: ms for p, ms in methods.items() if not p.startswith("/v1/")}
    assert {"/health", "/health/{proxy+}", "/openapi.json", "/console", "/console/{proxy+}"} <= set(public)
    for path, ms in public.items():
        for method in ms:
            assert method.get("AuthorizationType", "NONE") == "NONE", path
            assert not method.get("ApiKeyRequired"), path
            assert "AuthorizerId" not in method, path


def test_the_authorizer_is_a_request_authorizer_on_the_bearer_header_with_a_short_cache(prod):
    api = prod.templates["api"]
    authorizer = only(api, "AWS::ApiGateway::Authorizer")
    assert authorizer["Type"] == "REQUEST"
    assert authorizer["IdentitySource"] == "method.request.header.Authorization"
    assert authorizer["AuthorizerResultTtlInSeconds"] == constants.AUTHORIZER_CACHE_SECONDS <= 60
    assert refers_to(authorizer["AuthorizerUri"], "AuthorizerFunction")
    functions = {f["FunctionName"]: f for f in props(api, "AWS::Lambda::Function") if "FunctionName" in f}
    assert functions[constants.AUTHORIZER_FUNCTION_NAME]["Handler"] == constants.AUTHORIZER_HANDLER
    # API Gateway may invoke it (CDK's permission), scoped to this API's authorizers.
    permissions = [p for p in props(api, "AWS::Lambda::Permission")
                   if refers_to(p["FunctionName"], "AuthorizerFunction")]
    assert permissions and all(p["Principal"] == "apigateway.amazonaws.com" for p in permissions)
    assert any("/authorizers/" in json.dumps(p["SourceArn"]) for p in permissions)


def test_the_authorizer_reads_only_what_key_verification_needs(prod):
    from cdk_helpers import as_list, policy_statements

    statements = [s for lid, s in policy_statements(prod.templates["api"]) if lid.startswith("AuthorizerFunction")]
    secret_reads = [s for s in statements if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])]
    assert secret_reads
    assert all(r.get("Resource") for r in secret_reads)
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith(("sqs:", "s3:", "dynamodb:"))}
    # API Gateway: reading the one shared key of unverified callers, nothing else (no other key, no wildcard).
    [key_read] = [s for s in statements if any(a.startswith("apigateway:") for a in as_list(s["Action"]))]
    assert as_list(key_read["Action"]) == ["apigateway:GET"]
    [resource] = as_list(key_read["Resource"])
    rendered = json.dumps(resource)
    assert "/apikeys/" in rendered and refers_to(resource, "UnverifiedCallersKey") and "*" not in rendered


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_one_usage_plan_throttles_and_caps_each_tenant_per_environment(synthesised, env_name):
    built = synthesised[env_name]
    env = built.stacks.settings.env
    plan = by_property(built.templates["api"], "AWS::ApiGateway::UsagePlan", "UsagePlanName",
                       f"{constants.SERVICE_NAME}-{env_name}-tenants")
    assert plan["Throttle"] == {"RateLimit": env.tenant_throttle_rate, "BurstLimit": env.tenant_throttle_burst}
    assert plan["Quota"] == {"Limit": env.tenant_quota_per_day, "Period": "DAY"}
    # A tenant's limit is below the stage's: one busy tenant cannot take the whole stage.
    assert env.tenant_throttle_rate < env.api_throttle_rate
    [stage] = plan["ApiStages"]
    assert refers_to(stage["ApiId"], "Api") and refers_to(stage["Stage"], "ApiDeploymentStage")
    outputs = built.templates["api"].to_json()["Outputs"]
    assert any(k.startswith("UsagePlanId") and refers_to(v["Value"], "ApiTenantUsagePlan") for k, v in outputs.items())


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_callers_without_a_valid_key_share_one_tiny_usage_plan(synthesised, env_name):
    """UnverifiedCallers: the authorizer lets unknown, revoked and expired keys through under one shared
    usage key, so API Gateway answers a wrong-key flood with 429 (an authorizer itself can only say 401)."""
    built = synthesised[env_name]
    env, api = built.stacks.settings.env, built.templates["api"]
    plans = resources(api, "AWS::ApiGateway::UsagePlan")
    [(plan_id, plan)] = [(lid, r["Properties"]) for lid, r in plans.items() if lid.startswith("ApiUnverifiedUsagePlan")]
    assert plan["UsagePlanName"] == f"{constants.SERVICE_NAME}-{env_name}-unverified-callers"
    assert plan["Throttle"] == {"RateLimit": env.unverified_throttle_rate, "BurstLimit": env.unverified_throttle_burst}
    assert plan["Quota"] == {"Limit": env.unverified_quota_per_day, "Period": "DAY"}
    # Far below one tenant's share: all wrong keys together get less than any single tenant.
    assert env.unverified_throttle_rate <= 5 < env.tenant_throttle_rate
    assert env.unverified_throttle_burst < env.tenant_throttle_burst
    assert env.unverified_quota_per_day < env.tenant_quota_per_day
    [stage] = plan["ApiStages"]
    assert refers_to(stage["ApiId"], "Api") and refers_to(stage["Stage"], "ApiDeploymentStage")
    # The stack's one API Gateway key (tenant keys are made by onboarding), enabled, in that plan only.
    [(key_id, key)] = [(lid, r["Properties"]) for lid, r in resources(api, "AWS::ApiGateway::ApiKey").items()]
    assert key["Enabled"] is True and "Value" not in key  # API Gateway generates the value
    assert not key["Name"].startswith(constants.USAGE_KEY_NAME_PREFIX)  # never found as a tenant's key
    memberships = props(api, "AWS::ApiGateway::UsagePlanKey")
    assert len(memberships) == 1
    assert refers_to(memberships[0]["KeyId"], key_id) and refers_to(memberships[0]["UsagePlanId"], plan_id)
    assert memberships[0]["KeyType"] == "API_KEY"
    # The authorizer gets the key's id (it reads the value itself, once per container).
    functions = {f["FunctionName"]: f for f in props(api, "AWS::Lambda::Function") if "FunctionName" in f}
    variables = functions[constants.AUTHORIZER_FUNCTION_NAME]["Environment"]["Variables"]
    assert refers_to(variables["SWORDFISH_UNVERIFIED_USAGE_KEY_ID"], key_id)
    assert "SWORDFISH_UNVERIFIED_USAGE_KEY_ID" not in functions[constants.API_FUNCTION_NAME]["Environment"]["Variables"]


def test_gateway_refusals_say_401_or_429_with_retry_after(prod):
    responses = {r["ResponseType"]: r for r in props(prod.templates["api"], "AWS::ApiGateway::GatewayResponse")}
    assert responses["ACCESS_DENIED"]["StatusCode"] == "401"
    for kind, retry_after in (("THROTTLED", "'1'"), ("QUOTA_EXCEEDED", "'3600'")):
        assert responses[kind]["StatusCode"] == "429"
        assert responses[kind]["ResponseParameters"]["gatewayresponse.header.Retry-After"] == retry_after
