"""API: API Gateway REST API in front of the API Lambda, with stage throttling, access logs, request
validation, a WAF web ACL (rate limit per IP + AWS managed rule groups), and per-tenant usage plans:
a Lambda REQUEST authorizer verifies the tenant's bearer key (the API's own code) and returns the
tenant's usage-plan key (``usageIdentifierKey``; the API's key source is AUTHORIZER), so the plan's
throttle and daily quota apply to each tenant; callers whose key does not verify all share one key of
a second, tiny plan (UnverifiedCallers), so a flood of wrong keys meets API Gateway's 429 and what
gets through meets the API's own 401 and failed-authentication limit."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct
from swordfish import constants

from stacks.constructs import permissions
from stacks.constructs.console import ConsoleApi
from stacks.constructs.lambda_function import FunctionKit, log_retention
from stacks.data_stack import DataStack
from stacks.pipeline_stack import PipelineStack
from stacks.settings import EnvSettings

AUTH_HEADER = "method.request.header.Authorization"
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesSQLiRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
)
# Submissions carry whole messages (base64 MIME up to the SQS limit): the common rule set's 8 KB body
# limit would block every real email, so that one rule only counts. API Gateway caps bodies at 10 MB.
# Its cross-site-scripting rules count too: XSS_OUTSIDE_MAIL_RULE applies the same match everywhere
# except the routes that carry mail (a phishing mail is made of script tags and tricky markup).
XSS_RULES = ("CrossSiteScripting_BODY", "CrossSiteScripting_QUERYARGUMENTS", "CrossSiteScripting_URIPATH",
             "CrossSiteScripting_COOKIE")
COUNT_ONLY_RULES = {"AWSManagedRulesCommonRuleSet": ["SizeRestrictions_BODY", *XSS_RULES]}
# The SQL-injection rules inspect everything but the mail routes (mail is text about anything).
SCOPED_TO_NON_MAIL_ROUTES = ("AWSManagedRulesSQLiRuleSet",)
# Routes whose requests carry mail content (the message, its Message-ID in the path, an analyst's note
# quoting it): submissions and verdicts under /v1, the console's verdict pages. WAF sees the path with
# the stage in front ("/prod/v1/..."), so an optional first segment is allowed.
MAIL_ROUTES_REGEX = r"^(/[A-Za-z0-9_-]+)?/(v1|console)/tenants/[^/]+/(submissions|verdicts)(/|$)"
XSS_OUTSIDE_MAIL_RULE = "xss-outside-mail-routes"
SUBMISSION_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="Submission",
    description="A submission or a batch of them; the API Lambda validates the fields",
    type=[apigw.JsonSchemaType.OBJECT, apigw.JsonSchemaType.ARRAY],
)


def _xss_in(field: wafv2.CfnWebACL.FieldToMatchProperty) -> wafv2.CfnWebACL.StatementProperty:
    """What the managed CrossSiteScripting_* rules match: WAF's XSS detection after URL and HTML decoding."""
    return wafv2.CfnWebACL.StatementProperty(xss_match_statement=wafv2.CfnWebACL.XssMatchStatementProperty(
        field_to_match=field,
        text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="URL_DECODE"),
                              wafv2.CfnWebACL.TextTransformationProperty(priority=1, type="HTML_ENTITY_DECODE")]))


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True)


class ApiStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvSettings, data: DataStack,
                 pipeline: PipelineStack, flags_configuration_arn: str, kit_props: dict,
                 **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        kit = FunctionKit(self, "Kit", **kit_props)
        self.api_function = kit.function(
            self, "ApiFunction",
            function_name=constants.API_FUNCTION_NAME,
            handler=constants.API_HANDLER,
            description="Swordfish REST API (submissions, verdicts, tenants, health)",
            timeout_seconds=constants.API_TIMEOUT_SECONDS,
            memory_mb=1024,
            reserved_concurrency=settings.api_reserved_concurrency,
            environment={"SWORDFISH_EMAILS_QUEUE_URL": pipeline.queue.queue_url,
                         "SWORDFISH_EMAILS_DLQ_URL": pipeline.dlq.queue_url,
                         "SWORDFISH_RESPONSE_JOBS_QUEUE_URL": pipeline.response_jobs.queue.queue_url},
        )
        role = self.api_function.role
        permissions.send_to_queue(role, pipeline.queue, data.key)
        pipeline.response_jobs.start_from(role, data.key)  # bulk response jobs (issue 28)
        permissions.write_objects(role, data.large_mail_bucket, data.key)  # mail over the SQS limit
        permissions.read_secret(role, data.app_secret)
        permissions.read_secret(role, data.api_key_pepper)
        permissions.read_secret(role, data.operator_token)  # /health/deep
        permissions.read_secret(role, data.nango_secret)  # verifies mailbox webhooks
        permissions.read_secret(role, data.sentry_dsn_secret)
        permissions.read_secret(role, data.console_totp_keys)  # seals the signing secrets of webhook alert rules
        permissions.read_write_items(role, data.breaker_table, data.key)
        permissions.read_flags(role, flags_configuration_arn)
        # Deep health: DLQ depth and the oldest message's age from CloudWatch.
        permissions.read_queue_depth(role, pipeline.dlq)
        permissions.read_metric_statistics(role)

        # Verifies tenant keys for API Gateway (usage plans); reads what key verification reads.
        self.authorizer_function = kit.function(
            self, "AuthorizerFunction",
            function_name=constants.AUTHORIZER_FUNCTION_NAME,
            handler=constants.AUTHORIZER_HANDLER,
            description="Swordfish tenant-key authorizer: names the tenant's usage-plan key",
            timeout_seconds=10,
            memory_mb=512,
            reads_flags=False,
        )
        permissions.read_secret(self.authorizer_function.role, data.app_secret)
        permissions.read_secret(self.authorizer_function.role, data.api_key_pepper)

        access_logs = logs.LogGroup(
            self, "AccessLogs",
            retention=log_retention(settings.log_retention_days),
            encryption_key=data.key,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if settings.removal_retain else RemovalPolicy.DESTROY,
        )
        self.api = apigw.RestApi(
            self, "Api",
            rest_api_name=constants.SERVICE_NAME,
            description="Swordfish API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Usage plans meter the key our authorizer returns, never a header a client sends.
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            # A tenant report as PDF (GET …/reports?format=pdf): passed as binary to a client that
            # sends 'Accept: application/pdf'; every other answer stays text.
            binary_media_types=["application/pdf"],
            # Execution logging needs the account-level CloudWatch role; this stack owns it.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.DESTROY,
            deploy_options=apigw.StageOptions(
                stage_name=settings.name,
                throttling_rate_limit=settings.api_throttle_rate,
                throttling_burst_limit=settings.api_throttle_burst,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=False),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # bodies are emails: never in execution logs
                tracing_enabled=True,
                metrics_enabled=True,
            ),
        )
        integration = apigw.LambdaIntegration(self.api_function.function, proxy=True)
        params_only = self.api.add_request_validator(
            "ParamsValidator", request_validator_name="params", validate_request_parameters=True)
        body_and_params = self.api.add_request_validator(
            "BodyValidator", request_validator_name="body-and-params",
            validate_request_body=True, validate_request_parameters=True)
        submission_model = self.api.add_model(
            "SubmissionModel", content_type="application/json", model_name="Submission",
            schema=SUBMISSION_SCHEMA)

        # Cached per Authorization header for every route (the policy covers the stage): see
        # constants.AUTHORIZER_CACHE_SECONDS for why a revoked key does not outlive its revocation.
        self.authorizer = apigw.RequestAuthorizer(
            self, "TenantKeyAuthorizer",
            authorizer_name="tenant-api-key",
            handler=self.authorizer_function.function,
            identity_sources=[apigw.IdentitySource.header("Authorization")],
            results_cache_ttl=Duration.seconds(constants.AUTHORIZER_CACHE_SECONDS),
        )
        tenant_auth = {"authorizer": self.authorizer, "authorization_type": apigw.AuthorizationType.CUSTOM,
                       "api_key_required": True}

        # Health is public (load balancers, uptime checks; /health/deep checks the operator token
        # itself); everything under /v1 needs a tenant's bearer key, which API Gateway checks is
        # present, the authorizer verifies (and meters by the tenant's usage plan), and the API
        # function verifies again with the tenant in the path.
        health = self.api.root.add_resource("health")
        health.add_method("GET", integration)
        health.add_resource("{proxy+}").add_method("GET", integration)
        # The OpenAPI document generated from the API's models is public too (it holds no data).
        self.api.root.add_resource("openapi.json").add_method("GET", integration)
        v1 = self.api.root.add_resource("v1")

        def authed_any(resource: apigw.IResource) -> None:
            resource.add_method("ANY", integration, request_parameters={AUTH_HEADER: True},
                                request_validator=params_only, **tenant_auth)

        authed_any(v1.add_resource("{proxy+}"))
        tenants = v1.add_resource("tenants")
        tenant = tenants.add_resource("{tenant_id}")
        submissions = tenant.add_resource("submissions")
        batch = submissions.add_resource("batch")  # up to 10 messages per request
        for resource in (tenants, tenant, submissions, batch):
            # Static paths shadow the greedy proxy, so they forward every method themselves.
            authed_any(resource)
        for resource in (submissions, batch):
            resource.add_method(
                "POST", integration,
                request_parameters={AUTH_HEADER: True, "method.request.path.tenant_id": True},
                request_validator=body_and_params,
                request_models={"application/json": submission_model},
                **tenant_auth,
            )
        self._tenant_usage_plan(settings)
        self._unverified_usage_plan(settings)
        NagSuppressions.add_resource_suppressions(self.api, [
            NagPackSuppression(
                id="AwsSolutions-APIG4",
                reason="Tenant routes under /v1 use a Lambda authorizer (bearer keys HMAC'd with a pepper, "
                       "re-checked by the API function); /health and /openapi.json are public by design "
                       "and /health/deep checks the operator token in the function."),
            NagPackSuppression(
                id="AwsSolutions-COG4",
                reason="MSP tenants are machine clients with API keys, not Cognito users."),
        ], apply_to_children=True)
        NagSuppressions.add_resource_suppressions(self.api, [NagPackSuppression(
            id="AwsSolutions-IAM4",
            reason="API Gateway's account role uses the AWS-maintained policy that lets it push "
                   "execution logs to CloudWatch Logs.",
            applies_to=[("Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                        "AmazonAPIGatewayPushToCloudWatchLogs")],
        )], apply_to_children=True)

        # The MSP console: its own Lambda under /console of this API (behind the same WAF).
        self.console = ConsoleApi(self, "Console", kit=kit, api=self.api, data=data, pipeline=pipeline,
                                  flags_configuration_arn=flags_configuration_arn)

        self.web_acl = self._web_acl(settings)
        wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )

    def _usage_plan(self, construct_id: str, name: str, description: str, rate: float, burst: int,
                    quota_per_day: int) -> apigw.UsagePlan:
        plan = self.api.add_usage_plan(
            construct_id, name=name, description=description,
            throttle=apigw.ThrottleSettings(rate_limit=rate, burst_limit=burst),
            quota=apigw.QuotaSettings(limit=quota_per_day, period=apigw.Period.DAY))
        plan.add_api_stage(stage=self.api.deployment_stage)
        return plan

    def _tenant_usage_plan(self, settings: EnvSettings) -> None:
        """One plan for every tenant: each tenant's usage key (``swordfish tenants create`` adds it)
        gets the plan's throttle and daily quota on its own, so a busy tenant meets its own limit,
        not the stage's, and the others keep their share."""
        self.usage_plan = self._usage_plan(
            "TenantUsagePlan", f"{constants.SERVICE_NAME}-{settings.name}-tenants",
            "Per-tenant throttle and daily quota (one API Gateway key per tenant, returned by the authorizer)",
            settings.tenant_throttle_rate, settings.tenant_throttle_burst, settings.tenant_quota_per_day)
        # Operators export it as SWORDFISH_USAGE_PLAN_ID for `swordfish tenants create|sync-usage-keys`.
        CfnOutput(self, "UsagePlanId", value=self.usage_plan.usage_plan_id,
                  description="SWORDFISH_USAGE_PLAN_ID for tenant onboarding")
        # API Gateway's own refusals say what the API's say: 401 for a key the authorizer refused,
        # 429 with Retry-After past a plan's rate (a token bucket: a second) or its daily quota
        # (resets at 00:00 UTC; a static header cannot count down, so clients retry hourly). The
        # same responses serve both plans, so they name no tenant.
        json_type = {"Content-Type": "'application/json'"}
        self.api.add_gateway_response(
            "InvalidKey", type=apigw.ResponseType.ACCESS_DENIED, status_code="401", response_headers=json_type,
            templates={"application/json": '{"statusCode": 401, "message": "invalid API key"}'})
        for construct_id, response_type, retry_after, message in (
            ("Throttled", apigw.ResponseType.THROTTLED, "1", "too many requests for this API key"),
            ("QuotaExceeded", apigw.ResponseType.QUOTA_EXCEEDED, "3600", "the daily quota of this API key is spent"),
        ):
            self.api.add_gateway_response(
                construct_id, type=response_type, status_code="429",
                response_headers={**json_type, "Retry-After": f"'{retry_after}'"},
                templates={"application/json": f'{{"statusCode": 429, "message": "{message}"}}'})

    def _unverified_usage_plan(self, settings: EnvSettings) -> None:
        """Every caller whose key does not verify (unknown, revoked, expired) is let through by the
        authorizer under ONE shared usage key of this plan: an authorizer cannot answer 429, so
        denying them gave a wrong-key flood an endless stream of 401s. Here API Gateway throttles
        them all together (429 + Retry-After), and the few that get through reach the API function,
        which re-verifies every key (401) and limits failed authentications per source (429)."""
        self.unverified_usage_plan = self._usage_plan(
            "UnverifiedUsagePlan", f"{constants.SERVICE_NAME}-{settings.name}-unverified-callers",
            "UnverifiedCallers: every caller without a valid key, together (one shared key, returned by the authorizer)",
            settings.unverified_throttle_rate, settings.unverified_throttle_burst, settings.unverified_quota_per_day)
        # API Gateway generates the value (a usage identifier, never a credential: the key source is
        # AUTHORIZER). The name stays outside USAGE_KEY_NAME_PREFIX, so no tenant can be onboarded onto it.
        self.unverified_usage_key = apigw.ApiKey(
            self, "UnverifiedCallersKey",
            api_key_name=f"{constants.SERVICE_NAME}-{settings.name}-unverified-callers",
            description="Shared usage key of every caller whose API key does not verify (authorizer)",
            enabled=True,
        )
        self.unverified_usage_plan.add_api_key(self.unverified_usage_key)
        self.authorizer_function.function.add_environment(
            "SWORDFISH_UNVERIFIED_USAGE_KEY_ID", self.unverified_usage_key.key_id)
        permissions.read_api_key(self.authorizer_function.role, self.unverified_usage_key)

    def _web_acl(self, settings: EnvSettings) -> wafv2.CfnWebACL:
        # Per source address, at the whole stage's rate: each tenant's own 100/s is enforced exactly by
        # its usage plan (API Gateway, keyed by the tenant), and an MSP may submit for all its tenants
        # from one address, so a lower per-address cap would throttle it below its plans. This rule
        # only stops one address from taking more than the whole API could serve.
        rules = [wafv2.CfnWebACL.RuleProperty(
            name="rate-limit-per-ip",
            priority=0,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    limit=settings.waf_rate_limit_per_5min, aggregate_key_type="IP",
                    evaluation_window_sec=300)),
            visibility_config=_visibility("rate-limit-per-ip"),
        )]
        outside_mail_routes = wafv2.CfnWebACL.StatementProperty(not_statement=wafv2.CfnWebACL.NotStatementProperty(
            statement=wafv2.CfnWebACL.StatementProperty(regex_match_statement=wafv2.CfnWebACL.RegexMatchStatementProperty(
                regex_string=MAIL_ROUTES_REGEX, field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")]))))
        for priority, group in enumerate(MANAGED_RULE_GROUPS, start=1):
            rules.append(wafv2.CfnWebACL.RuleProperty(
                name=group,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=group,
                        scope_down_statement=outside_mail_routes if group in SCOPED_TO_NON_MAIL_ROUTES else None,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}))
                            for rule in COUNT_ONLY_RULES.get(group, [])
                        ] or None)),
                visibility_config=_visibility(group),
            ))
        rules.append(wafv2.CfnWebACL.RuleProperty(
            name=XSS_OUTSIDE_MAIL_RULE,
            priority=len(MANAGED_RULE_GROUPS) + 1,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(and_statement=wafv2.CfnWebACL.AndStatementProperty(statements=[
                outside_mail_routes,
                wafv2.CfnWebACL.StatementProperty(or_statement=wafv2.CfnWebACL.OrStatementProperty(statements=[
                    _xss_in(field) for field in (
                        wafv2.CfnWebACL.FieldToMatchProperty(body=wafv2.CfnWebACL.BodyProperty(oversize_handling="CONTINUE")),
                        wafv2.CfnWebACL.FieldToMatchProperty(query_string={}),
                        wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                    )])),
            ])),
            visibility_config=_visibility(XSS_OUTSIDE_MAIL_RULE),
        ))
        return wafv2.CfnWebACL(
            self, "WebAcl",
            name=f"{constants.SERVICE_NAME}-{settings.name}-api",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{constants.SERVICE_NAME}-api"),
            rules=rules,
        )
