"""REST API: throttling, access logs, request validation, WAF."""

from __future__ import annotations

import json

from cdk_helpers import only, props, refers_to, resources

from stacks.api_stack import AUTH_HEADER


def test_stage_throttles_logs_access_and_traces(prod):
    stage = only(prod.templates["api"], "AWS::ApiGateway::Stage")
    env = prod.stacks.settings.env
    (settings,) = stage["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == env.api_throttle_rate
    assert settings["ThrottlingBurstLimit"] == env.api_throttle_burst
    assert settings["DataTraceEnabled"] is False  # request bodies are emails
    assert settings["LoggingLevel"] in ("ERROR", "INFO")
    assert stage["TracingEnabled"] is True
    assert refers_to(stage["AccessLogSetting"]["DestinationArn"], "AccessLogs")
    assert "$context.requestId" in stage["AccessLogSetting"]["Format"]


PUBLIC_PATHS = ("health", "openapi.json")  # everything else is under /v1 and needs a key


def test_every_v1_method_requires_the_authorization_header_and_is_validated(prod):
    api = prod.templates["api"]
    paths = {lid: p["PathPart"] for lid, p in
             ((lid, r["Properties"]) for lid, r in resources(api, "AWS::ApiGateway::Resource").items())}
    v1_methods = [m for m in props(api, "AWS::ApiGateway::Method")
                  if any(lid in json.dumps(m["ResourceId"]) for lid, part in paths.items()
                         if part not in PUBLIC_PATHS and "health" not in lid.lower())]
    assert len(v1_methods) >= 5
    for method in v1_methods:
        assert method["RequestParameters"][AUTH_HEADER] is True
        assert "RequestValidatorId" in method


def test_the_openapi_document_is_served_without_a_key(prod):
    api = prod.templates["api"]
    [openapi_id] = [lid for lid, r in resources(api, "AWS::ApiGateway::Resource").items()
                    if r["Properties"]["PathPart"] == "openapi.json"]
    [method] = [m for m in props(api, "AWS::ApiGateway::Method") if openapi_id in json.dumps(m["ResourceId"])]
    assert method["HttpMethod"] == "GET" and AUTH_HEADER not in method.get("RequestParameters", {})


def test_submissions_bodies_are_validated_against_a_model(prod):
    api = prod.templates["api"]
    (post,) = [m for m in props(api, "AWS::ApiGateway::Method") if m["HttpMethod"] == "POST"]
    assert "application/json" in post["RequestModels"]
    validators = {lid: v for lid, v in resources(api, "AWS::ApiGateway::RequestValidator").items()}
    (validator_id,) = [lid for lid in validators if refers_to(post["RequestValidatorId"], lid)]
    assert validators[validator_id]["Properties"]["ValidateRequestBody"] is True


def test_waf_limits_each_ip_and_applies_managed_common_and_sqli_rules(prod):
    acl = only(prod.templates["api"], "AWS::WAFv2::WebACL")
    assert acl["Scope"] == "REGIONAL"
    rules = {r["Name"]: r for r in acl["Rules"]}
    rate = rules["rate-limit-per-ip"]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"]["Limit"] == prod.stacks.settings.env.waf_rate_limit_per_5min
    assert rate["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    for group in ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesSQLiRuleSet"):
        statement = rules[group]["Statement"]["ManagedRuleGroupStatement"]
        assert statement["VendorName"] == "AWS" and rules[group]["OverrideAction"] == {"None": {}}
    # Whole emails exceed the common rule set's 8 KB body limit: that one rule only counts.
    overrides = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
    assert overrides == [{"ActionToUse": {"Count": {}}, "Name": "SizeRestrictions_BODY"}]


def test_waf_protects_the_api_stage(prod):
    association = only(prod.templates["api"], "AWS::WAFv2::WebACLAssociation")
    assert refers_to(association["WebACLArn"], "WebAcl")
    assert "/stages/" in json.dumps(association["ResourceArn"])


def test_api_function_may_enqueue_emails_but_not_consume_them(prod):
    actions = {a for p in props(prod.templates["api"], "AWS::IAM::Policy")
               for st in p["PolicyDocument"]["Statement"] for a in (st["Action"] if isinstance(st["Action"], list)
                                                                     else [st["Action"]])}
    assert "sqs:SendMessage" in actions
    assert not {"sqs:ReceiveMessage", "sqs:DeleteMessage"} & actions
