"""REST API: throttling, access logs, request validation, WAF."""

from __future__ import annotations

import json

import pytest
from cdk_helpers import ENVIRONMENTS, only, props, refers_to, resources

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


PUBLIC_PATHS = ("health", "openapi.json", "console")  # the rest is under /v1 and needs a key


def test_every_v1_method_requires_the_authorization_header_and_is_validated(prod):
    api = prod.templates["api"]
    paths = {lid: p["PathPart"] for lid, p in
             ((lid, r["Properties"]) for lid, r in resources(api, "AWS::ApiGateway::Resource").items())}
    v1_methods = [m for m in props(api, "AWS::ApiGateway::Method")
                  if any(lid in json.dumps(m["ResourceId"]) for lid, part in paths.items()
                         if part not in PUBLIC_PATHS and "health" not in lid.lower()
                         and "console" not in lid.lower())]
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
    posts = [m for m in props(api, "AWS::ApiGateway::Method") if m["HttpMethod"] == "POST"]
    assert len(posts) == 2  # one message, and a batch of up to ten
    paths = {lid: r["Properties"]["PathPart"] for lid, r in resources(api, "AWS::ApiGateway::Resource").items()}
    assert sorted(paths[lid] for post in posts for lid in paths if refers_to(post["ResourceId"], lid)) == [
        "batch", "submissions"]
    validators = {lid: v for lid, v in resources(api, "AWS::ApiGateway::RequestValidator").items()}
    for post in posts:
        assert "application/json" in post["RequestModels"]
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
    # Whole emails exceed the common rule set's 8 KB body limit: that rule only counts (and the XSS
    # rules, applied outside the mail routes by a rule of our own: the next test).
    overrides = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
    assert {"ActionToUse": {"Count": {}}, "Name": "SizeRestrictions_BODY"} in overrides


MAIL_PATHS = ("/prod/v1/tenants/acme/submissions", "/prod/v1/tenants/acme/submissions/batch",
              "/prod/v1/tenants/acme/verdicts/%3Cabc%40mail.example%3E",
              "/prod/v1/tenants/acme/verdicts/%3Cabc%40x%3E/feedback",
              "/prod/console/tenants/acme/verdicts/%3Cabc%40mail.example%3E", "/v1/tenants/acme/submissions")
OTHER_PATHS = ("/prod/v1/tenants/acme/feedback", "/prod/console/login", "/prod/console/tenants/acme/policy",
               "/prod/console/users", "/prod/health/deep", "/prod/v1/tenants/acme/submissionsx")


def _matches(statement: dict, path: str) -> bool:
    """The URI-path statements of our web ACL, evaluated like WAF (regex, not, and); content matches
    (XSS) count as "would inspect"."""
    import re

    if "RegexMatchStatement" in statement:
        return re.search(statement["RegexMatchStatement"]["RegexString"], path) is not None
    if "NotStatement" in statement:
        return not _matches(statement["NotStatement"]["Statement"], path)
    if "AndStatement" in statement:
        return all(_matches(s, path) for s in statement["AndStatement"]["Statements"])
    if "OrStatement" in statement:
        return any(_matches(s, path) for s in statement["OrStatement"]["Statements"])
    return "XssMatchStatement" in statement or "SqliMatchStatement" in statement


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_sqli_and_xss_rules_skip_the_routes_that_carry_mail_and_inspect_the_rest(synthesised, env_name):
    acl = only(synthesised[env_name].templates["api"], "AWS::WAFv2::WebACL")
    rules = {r["Name"]: r for r in acl["Rules"]}
    sqli = rules["AWSManagedRulesSQLiRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert "ScopeDownStatement" in sqli, "the SQL-injection rules inspect every mail body"
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    counted = {o["Name"] for o in common["RuleActionOverrides"] if o["ActionToUse"] == {"Count": {}}}
    assert {"CrossSiteScripting_BODY", "CrossSiteScripting_URIPATH"} <= counted, "the XSS rules block mail bodies"
    xss = rules["xss-outside-mail-routes"]
    assert xss["Action"] == {"Block": {}}
    fields = {next(iter(s["XssMatchStatement"]["FieldToMatch"])) for s in
              xss["Statement"]["AndStatement"]["Statements"][1]["OrStatement"]["Statements"]}
    assert fields == {"Body", "QueryString", "UriPath"}
    for path in MAIL_PATHS:
        assert not _matches(sqli["ScopeDownStatement"], path), path
        assert not _matches(xss["Statement"], path), path
    for path in OTHER_PATHS:
        assert _matches(sqli["ScopeDownStatement"], path), path
        assert _matches(xss["Statement"], path), path


def test_waf_protects_the_api_stage(prod):
    association = only(prod.templates["api"], "AWS::WAFv2::WebACLAssociation")
    assert refers_to(association["WebACLArn"], "WebAcl")
    assert "/stages/" in json.dumps(association["ResourceArn"])


def _role_statements(template: dict, function_name: str) -> list[dict]:
    """The statements of the policies attached to one function's role."""
    function = next(f for f in props(template, "AWS::Lambda::Function") if f.get("FunctionName") == function_name)
    role_id = function["Role"]["Fn::GetAtt"][0]
    return [st for p in props(template, "AWS::IAM::Policy") if any(refers_to(r, role_id) for r in p["Roles"])
            for st in p["PolicyDocument"]["Statement"]]


def _actions(statement: dict) -> set[str]:
    return set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])


def test_api_function_may_enqueue_emails_but_not_consume_them(prod):
    from swordfish import constants

    actions = {a for st in _role_statements(prod.templates["api"], constants.API_FUNCTION_NAME) for a in _actions(st)}
    assert "sqs:SendMessage" in actions
    assert not {"sqs:ReceiveMessage", "sqs:DeleteMessage"} & actions


def test_the_console_consumes_only_the_dead_letter_queue(prod):
    """The DLQ page lists, redrives and discards dead letters (issue 27); the emails queue it only sends to."""
    from swordfish import constants

    consuming = [st for st in _role_statements(prod.templates["api"], constants.CONSOLE_FUNCTION_NAME)
                 if {"sqs:ReceiveMessage", "sqs:DeleteMessage"} & _actions(st)]
    assert consuming, "the console cannot read its DLQ page"
    # each one names the DLQ (a cross-stack output of its ARN), none the emails queue ("Emails<hash>")
    assert all("EmailsDlq" in json.dumps(st["Resource"]) for st in consuming), consuming
    console = next(f for f in props(prod.templates["api"], "AWS::Lambda::Function")
                   if f.get("FunctionName") == constants.CONSOLE_FUNCTION_NAME)
    assert {"SWORDFISH_EMAILS_QUEUE_URL", "SWORDFISH_EMAILS_DLQ_URL"} <= set(console["Environment"]["Variables"])


def test_the_console_is_its_own_function_under_console_without_the_api_key_header(prod):
    from swordfish import constants

    api = prod.templates["api"]
    functions = {f["FunctionName"]: f for f in props(api, "AWS::Lambda::Function") if "FunctionName" in f}
    console = functions[constants.CONSOLE_FUNCTION_NAME]
    assert console["Handler"] == constants.CONSOLE_HANDLER
    assert console["Environment"]["Variables"]["SWORDFISH_REDIS_URL"]  # sessions and login throttling
    paths = {lid: r["Properties"]["PathPart"] for lid, r in resources(api, "AWS::ApiGateway::Resource").items()}
    console_ids = [lid for lid, part in paths.items() if part == constants.CONSOLE_PATH]
    assert len(console_ids) == 1
    proxy_ids = [lid for lid, r in resources(api, "AWS::ApiGateway::Resource").items()
                 if r["Properties"]["PathPart"] == "{proxy+}" and refers_to(r["Properties"]["ParentId"], console_ids[0])]
    assert len(proxy_ids) == 1
    methods = [m for m in props(api, "AWS::ApiGateway::Method")
               if any(refers_to(m["ResourceId"], lid) for lid in console_ids + proxy_ids)]
    assert len(methods) == 2
    for method in methods:
        assert method["HttpMethod"] == "ANY" and AUTH_HEADER not in (method.get("RequestParameters") or {})
        uri = json.dumps(method["Integration"]["Uri"])
        assert "ConsoleFunction" in uri
    secrets = [s for s in props(api, "AWS::SecretsManager::Secret") if s.get("Name") == constants.CONSOLE_SECRET_NAME]
    assert len(secrets) == 1


def test_the_operator_token_for_deep_health_exists_and_only_the_api_can_read_it(prod):
    from cdk_helpers import by_property, policy_statements
    from swordfish import constants

    by_property(prod.templates["data"], "AWS::SecretsManager::Secret", "Name", constants.OPERATOR_TOKEN_SECRET_NAME)
    readers = {concern for concern, template in prod.templates.items()
               for _, statement in policy_statements(template)
               if "secretsmanager:GetSecretValue" in json.dumps(statement.get("Action"))
               and "OperatorToken" in json.dumps(statement.get("Resource"))}
    assert readers == {"api"}


def test_the_console_reads_only_the_raw_archive_prefix_of_the_backup_bucket(prod):
    from cdk_helpers import policy_statements
    from swordfish import constants

    api = prod.templates["api"]
    console = next(f for f in props(api, "AWS::Lambda::Function")
                   if f.get("FunctionName") == constants.CONSOLE_FUNCTION_NAME)
    assert console["Environment"]["Variables"]["SWORDFISH_RAW_MAIL_ARCHIVE_BUCKET"]
    backup_reads = [json.dumps(statement.get("Resource")) for _, statement in policy_statements(api)
                    if "s3:GetObject" in json.dumps(statement.get("Action"))
                    and "Backups" in json.dumps(statement.get("Resource"))]
    assert backup_reads and all(f"/{constants.RAW_MAIL_ARCHIVE_PREFIX}*" in r for r in backup_reads)


def test_a_pdf_report_passes_as_binary_and_nothing_else_does(prod):
    """GET …/reports?format=pdf answers base64 from the Lambda; API Gateway decodes it for a client
    that accepts application/pdf. Only that type: JSON, HTML and request bodies stay text."""
    api = only(prod.templates["api"], "AWS::ApiGateway::RestApi")
    assert api["BinaryMediaTypes"] == ["application/pdf"]
