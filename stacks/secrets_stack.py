"""Secrets: our rotation function and its schedules, and the audit of every secret read.

- ``swordfish-rotate-secret`` (``functions/handlers/rotate_secret.py``) rotates the application and
  owner database logins (alternating users: ``<role>`` <-> ``<role>_clone``, set as the master user)
  every SECRET_ROTATION_DAYS, and the API-key pepper on demand only (``aws secretsmanager
  rotate-secret``): both peppers are accepted during the overlap, but a second rotation would retire
  the pepper the oldest keys were hashed with, so it never runs on a timer. The master user keeps
  AWS's hosted single-user rotation (DataStack): it is the superuser our function uses to set the
  other passwords and cannot alternate with itself.
- A CloudTrail trail (log-file validation on, multi-region) delivers management events, read
  events included, to S3 and CloudWatch Logs. Metric filters count ``GetSecretValue`` calls by
  principals outside this deployment's roles and AWS services, and the ``RotationFailed`` events
  Secrets Manager records; each has an alarm on the observability topic.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct
from swordfish import constants

from stacks.constructs import permissions
from stacks.constructs.buckets import hardened_bucket
from stacks.constructs.lambda_function import FunctionKit, log_retention
from stacks.data_stack import DataStack
from stacks.settings import EnvSettings

TRAIL_NAME = f"{constants.SERVICE_NAME}-secrets-audit"
METRICS_NAMESPACE = f"{constants.METRICS_NAMESPACE}/Secrets"
METRIC_UNEXPECTED_READS = "UnexpectedSecretReads"
METRIC_ROTATION_FAILED = "SecretRotationFailed"
TRAIL_LOG_EXPIRY_DAYS = 365


def unexpected_reads_pattern(role_prefix: str) -> logs.IFilterPattern:
    """GetSecretValue by anyone but this deployment's roles (all named ``<role_prefix>*`` by CDK) and
    AWS services acting for us (RDS Proxy, Secrets Manager's own rotation): a person, another
    account, a role from elsewhere."""
    return logs.FilterPattern.literal(
        '{ ($.eventSource = "secretsmanager.amazonaws.com") && ($.eventName = "GetSecretValue") && '
        f'($.userIdentity.sessionContext.sessionIssuer.userName != "{role_prefix}*") && '
        '($.sourceIPAddress != "*.amazonaws.com") }')


ROTATION_FAILED_PATTERN = logs.FilterPattern.literal(
    '{ ($.eventSource = "secretsmanager.amazonaws.com") && ($.eventName = "RotationFailed") }')


class SecretsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvSettings, data: DataStack,
                 kit_props: dict, alarm_topic: sns.ITopic, role_prefix: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._rotation(data, kit_props)
        self._audit_trail(data, role_prefix)
        self._alarms(alarm_topic)

    # --- rotation -------------------------------------------------------------------------------
    def _rotation(self, data: DataStack, kit_props: dict) -> None:
        # Its own kit: the rotation security group reaches the database itself (not the proxy) and
        # the Secrets Manager endpoint, nothing else.
        kit = FunctionKit(self, "RotationKit", **{**kit_props, "security_group": data.security_groups.rotation})
        self.rotation_function = kit.function(
            self, "RotateSecret",
            function_name=constants.ROTATE_SECRET_FUNCTION_NAME,
            handler=constants.ROTATE_SECRET_HANDLER,
            description="Rotates the database logins (alternating users) and the API-key pepper",
            timeout_seconds=constants.ROTATE_SECRET_TIMEOUT_SECONDS,
            memory_mb=256,
            reads_flags=False,
        )
        role = self.rotation_function.role
        # The master user's password sets the other roles' passwords (the secrets name it in masterarn).
        permissions.read_secret(role, data.database.secret)
        # What rotating a login does to its secret, granted whether or not the schedules exist yet
        # (db_users_created), so the role is the same before and after the first-deploy steps.
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                     "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"],
            resources=[data.app_secret.secret_arn, data.admin_secret.secret_arn]))
        self.schedules: dict[str, secretsmanager.RotationSchedule] = {}
        # Creating a schedule runs testSecret at once: the login schedules come with the deploy after
        # the database users exist (settings.db_users_created, docs/deploy.md).
        logins = [("AppLoginRotation", data.app_secret, constants.SECRET_ROTATION_DAYS),
                  ("AdminLoginRotation", data.admin_secret, constants.SECRET_ROTATION_DAYS)]
        for construct_id, secret, days in (
            *(logins if self.settings.db_users_created else []),
            ("PepperRotation", data.api_key_pepper, 0),  # on demand only: see the module docstring
        ):
            self.schedules[construct_id] = secretsmanager.RotationSchedule(
                self, construct_id, secret=secret, rotation_lambda=self.rotation_function.function,
                automatically_after=Duration.days(days),
                rotate_immediately_on_update=False,
            )
        NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason="secretsmanager:GetRandomPassword takes no resource (CDK's RotationSchedule grant).",
            applies_to=["Resource::*"])], apply_to_children=True)

    # --- audit trail ----------------------------------------------------------------------------
    def _audit_trail(self, data: DataStack, role_prefix: str) -> None:
        retain = self.settings.removal_retain
        self.trail_bucket = hardened_bucket(
            self, "TrailBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            server_access_logs_bucket=data.access_logs_bucket,
            server_access_logs_prefix="secrets-trail/",
            lifecycle_rules=[s3.LifecycleRule(id="expire-trail", expiration=Duration.days(TRAIL_LOG_EXPIRY_DAYS),
                                              noncurrent_version_expiration=Duration.days(30))],
        )
        self.trail_logs = logs.LogGroup(
            self, "TrailLogs",
            retention=log_retention(self.settings.log_retention_days),
            encryption_key=data.key,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if retain else RemovalPolicy.DESTROY,
        )
        self.trail = cloudtrail.Trail(
            self, "Trail",
            trail_name=TRAIL_NAME,
            bucket=self.trail_bucket,
            enable_file_validation=True,
            is_multi_region_trail=True,
            include_global_service_events=True,
            management_events=cloudtrail.ReadWriteType.ALL,  # GetSecretValue is a read event
            send_to_cloud_watch_logs=True,
            cloud_watch_log_group=self.trail_logs,
        )
        self.unexpected_reads_filter = logs.MetricFilter(
            self, "UnexpectedSecretReads",
            log_group=self.trail_logs,
            filter_pattern=unexpected_reads_pattern(role_prefix),
            metric_namespace=METRICS_NAMESPACE, metric_name=METRIC_UNEXPECTED_READS, metric_value="1",
            default_value=0,
        )
        self.rotation_failed_filter = logs.MetricFilter(
            self, "RotationFailedEvents",
            log_group=self.trail_logs,
            filter_pattern=ROTATION_FAILED_PATTERN,
            metric_namespace=METRICS_NAMESPACE, metric_name=METRIC_ROTATION_FAILED, metric_value="1",
            default_value=0,
        )

    # --- alarms (kept here, apart from ObservabilityStack's, on the same topic) ------------------
    def _alarms(self, topic: sns.ITopic) -> None:
        def alarm(construct_id: str, description: str, metric_name: str) -> None:
            metric = cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=metric_name,
                                       statistic="Sum", period=Duration.minutes(5))
            created = cloudwatch.Alarm(
                self, construct_id, alarm_description=description, metric=metric, threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
            created.add_alarm_action(cw_actions.SnsAction(topic))
            self.alarms[construct_id] = created

        # The rotation function is built after the observability stack (it uses its topic), so its
        # own alarms live here: a rotation that errors leaves AWSPENDING behind and AWSCURRENT unchanged.
        function = self.rotation_function
        for metric_name, metric in (("Errors", function.function.metric_errors(statistic="Sum", period=Duration.minutes(5))),
                                    ("Throttles", function.function.metric_throttles(statistic="Sum",
                                                                                      period=Duration.minutes(5)))):
            created = cloudwatch.Alarm(
                self, f"RotateSecret{metric_name}", alarm_description=f"{function.name} {metric_name.lower()}",
                metric=metric, threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
            created.add_alarm_action(cw_actions.SnsAction(topic))
            self.alarms[f"RotateSecret{metric_name}"] = created

        alarm("UnexpectedSecretReadsAlarm",
              "A secret was read by a principal outside this deployment's roles: check the trail "
              f"({TRAIL_NAME}) for who, which secret and from where", METRIC_UNEXPECTED_READS)
        alarm("SecretRotationFailedAlarm",
              "A Secrets Manager rotation failed (RotationFailed): AWSCURRENT is unchanged and keeps "
              f"working; see the {constants.ROTATE_SECRET_FUNCTION_NAME} logs, fix, rotate again",
              METRIC_ROTATION_FAILED)

