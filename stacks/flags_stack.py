"""Flags: the AppConfig application, environment and feature-flag profile (initial content from the
repo), a deployment strategy with bake time and alarms that roll a bad deployment back, and the audit
of deployments made outside `swordfish flags` (AppConfig deployment events -> EventBridge -> Lambda)."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_appconfig as appconfig
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct
from swordfish import constants

from stacks.constructs import permissions
from stacks.constructs.lambda_function import FUNCTIONS_DIR, FunctionKit
from stacks.settings import EnvSettings

FLAGS_FILE = FUNCTIONS_DIR / constants.FLAGS_FILE
# JSON Schema (draft-04, what AppConfig validators take) of the Powertools feature-flag rule schema:
# AppConfig rejects a malformed flag document before any function reads it.
FLAGS_SCHEMA_FILE = FLAGS_FILE.with_name("flags.schema.json")
# The AWS-authored extension that publishes deployment start/complete/rollback events to the
# account's default event bus (source "aws.appconfig").
DEPLOYMENT_EVENTS_EXTENSION = "AWS.AppConfig.DeploymentNotificationsToEventBridge"
ROLLBACK_ERRORS_PER_MINUTE = 5


def flags_profile_type(document: dict) -> appconfig.ConfigurationType:
    """AppConfig's own feature-flag document ({"version": "1", "flags": .., "values": ..}) deploys as
    AWS.AppConfig.FeatureFlags. The Powertools feature-flags schema (flag -> default/rules) fails
    that type's validation and is read by Powertools from an AWS.Freeform profile, so it deploys as
    Freeform."""
    if str(document.get("version")) == "1" and isinstance(document.get("flags"), dict):
        return appconfig.ConfigurationType.FEATURE_FLAGS
    return appconfig.ConfigurationType.FREEFORM


def read_flags_file(path: Path = FLAGS_FILE) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"the feature-flag profile's initial content {path} is missing") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc


class FlagsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvSettings, kit_props: dict,
                 app_secret: secretsmanager.ISecret, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.application = appconfig.Application(
            self, "Application",
            application_name=constants.APPCONFIG_APPLICATION,
            description="Swordfish feature flags",
        )
        self.rollback_alarms = self._rollback_alarms()
        self.flags_environment = appconfig.Environment(
            self, "Environment",
            application=self.application,
            environment_name=constants.APPCONFIG_ENVIRONMENT,
            description=f"Swordfish {settings.name}",
            monitors=[appconfig.Monitor.from_cloud_watch_alarm(alarm, alarm_role=self._monitor_role())
                      for alarm in self.rollback_alarms],
        )
        self.strategy = appconfig.DeploymentStrategy(
            self, "Strategy",
            deployment_strategy_name=f"{constants.APPCONFIG_DEPLOYMENT_STRATEGY}-{settings.name}",
            description="Linear rollout, then a bake time during which the alarms can roll back",
            rollout_strategy=appconfig.RolloutStrategy.linear(
                growth_factor=settings.flags_growth_percent,
                deployment_duration=Duration.minutes(settings.flags_deployment_minutes),
                final_bake_time=Duration.minutes(settings.flags_bake_minutes),
            ),
        )
        document = read_flags_file()
        self.profile_type = flags_profile_type(document)
        self.flags = appconfig.HostedConfiguration(
            self, "FeatureFlags",
            application=self.application,
            name=constants.APPCONFIG_FLAGS_PROFILE,
            description="Initial content: functions/" + constants.FLAGS_FILE,
            type=self.profile_type,
            content=appconfig.ConfigurationContent.from_inline_json(json.dumps(document, sort_keys=True)),
            validators=([appconfig.JsonSchemaValidator.from_inline(FLAGS_SCHEMA_FILE.read_text())]
                        if self.profile_type == appconfig.ConfigurationType.FREEFORM else None),
            deployment_strategy=self.strategy,
            deploy_to=[self.flags_environment],
        )
        # Hosted versions are kept when replaced (a rollback may deploy them again), but not when
        # their own first create rolls back.
        for child in self.flags.node.find_all():
            if isinstance(child, appconfig.CfnHostedConfigurationVersion):
                child.apply_removal_policy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)
        self.configuration_arn = self._arn(
            f"environment/{self.flags_environment.environment_id}/configuration/"
            f"{self.flags.configuration_profile_id}")
        appconfig.CfnExtensionAssociation(
            self, "DeploymentEvents",
            extension_identifier=DEPLOYMENT_EVENTS_EXTENSION,
            resource_identifier=self.application.application_arn,
        )
        self._audit(settings, kit_props, app_secret)

    def _arn(self, suffix: str) -> str:
        return (f"arn:{self.partition}:appconfig:{self.region}:{self.account}:application/"
                f"{self.application.application_id}/{suffix}")

    def _monitor_role(self) -> iam.Role:
        """AppConfig reads the rollback alarms' state with this role (CDK's default allows every alarm)."""
        if getattr(self, "_monitors_role", None) is None:
            self._monitors_role = iam.Role(
                self, "MonitorsRole", assumed_by=iam.ServicePrincipal("appconfig.amazonaws.com"),
                description="AppConfig reads the Swordfish flag rollback alarms")
            self._monitors_role.add_to_policy(iam.PolicyStatement(
                actions=["cloudwatch:DescribeAlarms"],
                resources=[alarm.alarm_arn for alarm in self.rollback_alarms]))
        return self._monitors_role

    def _rollback_alarms(self) -> list[cloudwatch.Alarm]:
        """Alarms AppConfig watches while a flag change bakes. Metrics are addressed by name (the
        functions are built after this stack, which they depend on)."""
        processor_errors = cloudwatch.Metric(
            namespace="AWS/Lambda", metric_name="Errors",
            dimensions_map={"FunctionName": constants.PROCESSOR_FUNCTION_NAME},
            statistic="Sum", period=Duration.minutes(1))
        error_events = cloudwatch.Metric(
            namespace=constants.METRICS_NAMESPACE, metric_name=constants.METRIC_ERROR_EVENTS,
            statistic="Sum", period=Duration.minutes(1))
        return [
            cloudwatch.Alarm(
                self, "RollbackProcessorErrors",
                alarm_description="Flag rollback: processor invocations failing",
                metric=processor_errors, threshold=ROLLBACK_ERRORS_PER_MINUTE, evaluation_periods=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
            cloudwatch.Alarm(
                self, "RollbackErrorEvents",
                alarm_description="Flag rollback: application error events rising",
                metric=error_events, threshold=constants.ERROR_EVENTS_ALARM_THRESHOLD, evaluation_periods=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
        ]

    def _audit(self, settings: EnvSettings, kit_props: dict, app_secret: secretsmanager.ISecret) -> None:
        kit = FunctionKit(self, "Kit", **kit_props)
        audit = kit.function(
            self, "FlagsAudit",
            function_name=constants.FLAGS_AUDIT_FUNCTION_NAME,
            handler=constants.FLAGS_AUDIT_HANDLER,
            description="Records AppConfig deployments made outside `swordfish flags` in the audit table",
            timeout_seconds=constants.FLAGS_AUDIT_TIMEOUT_SECONDS,
            reads_flags=False,
        )
        self.audit_function = audit
        permissions.read_secret(audit.role, app_secret)  # writes the audit table as the app role
        profile = f"configurationprofile/{self.flags.configuration_profile_id}"
        deployments = f"environment/{self.flags_environment.environment_id}/deployment/*"
        versions = f"{profile}/hostedconfigurationversion/*"
        # Before/after content of a deployment: the deployment record and the hosted versions.
        audit.role.add_to_policy(iam.PolicyStatement(
            sid="ReadFlagDeployments",
            actions=["appconfig:GetDeployment", "appconfig:GetHostedConfigurationVersion",
                     "appconfig:ListHostedConfigurationVersions", "appconfig:GetConfigurationProfile"],
            resources=[self._arn(profile), self._arn(deployments), self._arn(versions)],
        ))
        # features/repository.py finds the application, environment and profile ids by name first.
        audit.role.add_to_policy(iam.PolicyStatement(
            sid="FindFlagStore",
            actions=["appconfig:ListEnvironments", "appconfig:ListConfigurationProfiles"],
            resources=[self.application.application_arn]))
        audit.role.add_to_policy(iam.PolicyStatement(
            sid="ListApplications", actions=["appconfig:ListApplications"], resources=["*"]))
        NagSuppressions.add_resource_suppressions(audit.role, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason="Deployment numbers and hosted version numbers of our one profile are created by "
                   "each change; the ARNs end in /* below that profile and environment only.",
            applies_to=[RegexAppliesTo(regex=r"/^Resource::arn:.*:appconfig:.*\/(deployment|hostedconfigurationversion)\/\*$/g")],
        )], apply_to_children=True)
        failed = sqs.Queue(
            self, "AuditDlq",
            # EventBridge cannot deliver to a queue under a customer-managed key without a key
            # policy for it; these events hold no secrets, so SQS-managed encryption is enough.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(constants.DLQ_RETENTION_DAYS),
        )
        NagSuppressions.add_resource_suppressions(failed, [NagPackSuppression(
            id="AwsSolutions-SQS3", reason="This queue is itself the dead-letter queue of the audit rule.")])
        self.audit_dlq = failed
        self.audit_rule = events.Rule(
            self, "FlagDeployments",
            description="AppConfig deployment events to the flags audit function",
            # Only finished and rolled-back deployments: not the start/step/baking events, nor the
            # CloudTrail API calls that share the aws.appconfig source.
            event_pattern=events.EventPattern(source=["aws.appconfig"],
                                              detail_type=list(constants.APPCONFIG_AUDITED_DETAIL_TYPES)),
            targets=[targets.LambdaFunction(
                audit.function, dead_letter_queue=failed, retry_attempts=4,
                max_event_age=Duration.hours(6))],
        )
