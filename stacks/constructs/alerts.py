"""Alerts to the MSP and the SIEM export on AWS (issue 28): the alerts queue and its own DLQ, the
function that delivers (SQS event source), the phishing-rate check and the export on schedules,
and the export bucket (KMS, no public access, TLS only, access-logged, tiered then expired).

Built inside the pipeline stack, whose processor publishes malware and VIP alerts to the queue.
Grants name exact actions on exact resources (``permissions``); the DLQ and the export's failures
are alarmed in the observability stack (``ObservedResources.alerts_dlq`` and the functions list).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct
from swordfish import constants

from stacks.constructs import permissions
from stacks.constructs.buckets import hardened_bucket
from stacks.constructs.lambda_function import FunctionKit
from stacks.settings import EnvSettings

ALERTS_RESERVED_CONCURRENCY = 5  # webhooks of the MSP's tools, not a flood
ALERTS_MAX_CONCURRENCY = 4
SCHEDULED_RESERVED_CONCURRENCY = 1  # the rate check and the export: one run at a time each
SCHEDULE_RETRY_ATTEMPTS = 2
EXPORT_TO_INFREQUENT_ACCESS_DAYS = 30


class AlertsResources(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvSettings, data, kit: FunctionKit,
                 queue_factory) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.dlq = queue_factory("AlertsDlq", constants.ALERTS_DLQ_NAME, dlq=None,
                                 visibility=constants.ALERTS_TIMEOUT_SECONDS * 6)
        self.queue = queue_factory("Alerts", constants.ALERTS_QUEUE_NAME, dlq=self.dlq,
                                   visibility=constants.ALERTS_TIMEOUT_SECONDS * 6)
        NagSuppressions.add_resource_suppressions(self.dlq, [NagPackSuppression(
            id="AwsSolutions-SQS3", reason="This queue is itself the alerts' dead-letter queue.")])

        email_env = {"SWORDFISH_ALERT_EMAIL_FROM": settings.alert_email_from} if settings.alert_email_from else {}
        self.dispatcher = kit.function(
            scope, "AlertsDispatcher",
            function_name=constants.ALERTS_FUNCTION_NAME, handler=constants.ALERTS_HANDLER,
            description="Delivers alerts to the MSP: signed webhooks and e-mail, retried, then dead-lettered",
            timeout_seconds=constants.ALERTS_TIMEOUT_SECONDS, memory_mb=512,
            reserved_concurrency=ALERTS_RESERVED_CONCURRENCY, reads_flags=False,
            environment={"SWORDFISH_ALERTS_QUEUE_URL": self.queue.queue_url,
                         "SWORDFISH_ALERTS_DLQ_URL": self.dlq.queue_url, **email_env},
        )
        self.dispatcher.function.add_event_source(event_sources.SqsEventSource(
            self.queue, batch_size=10, report_batch_item_failures=True, max_concurrency=ALERTS_MAX_CONCURRENCY))
        role = self.dispatcher.role
        permissions.send_to_queue(role, self.queue, data.key)  # a retry goes back with its delay
        permissions.send_to_queue(role, self.dlq, data.key)  # given up: with the reason
        permissions.read_secret(role, data.app_secret)
        permissions.read_secret(role, data.console_totp_keys)  # webhook signing secrets are sealed under it
        permissions.read_secret(role, data.sentry_dsn_secret)
        if settings.alert_email_from:
            domain = settings.alert_email_from.rsplit("@", 1)[-1]
            role.add_to_principal_policy(iam.PolicyStatement(
                actions=["ses:SendEmail", "ses:SendRawEmail"],
                resources=[f"arn:{stack.partition}:ses:{stack.region}:{stack.account}:identity/{domain}"]))

        def scheduled(construct_id: str, *, function_name: str, handler: str, description: str, minutes: int,
                      environment: dict[str, str]):
            function = kit.function(scope, construct_id, function_name=function_name, handler=handler,
                                    description=description, timeout_seconds=120, memory_mb=512,
                                    reserved_concurrency=SCHEDULED_RESERVED_CONCURRENCY, reads_flags=False,
                                    environment=environment)
            events.Rule(scope, f"{construct_id}Schedule", description=description,
                        schedule=events.Schedule.rate(Duration.minutes(minutes)),
                        targets=[targets.LambdaFunction(function.function, retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                                                        max_event_age=Duration.minutes(minutes))])
            permissions.read_secret(function.role, data.app_secret)
            permissions.read_secret(function.role, data.sentry_dsn_secret)
            return function

        self.rate_check = scheduled(
            "PhishingRateCheck", function_name=constants.ALERTS_RATE_CHECK_FUNCTION_NAME,
            handler=constants.ALERTS_RATE_CHECK_HANDLER, minutes=constants.ALERTS_RATE_CHECK_MINUTES,
            description="Alerts when a tenant's phishing rate jumps against its own week",
            environment={"SWORDFISH_ALERTS_QUEUE_URL": self.queue.queue_url})
        permissions.send_to_queue(self.rate_check.role, self.queue, data.key)

        self.export_bucket = hardened_bucket(
            self, "SiemExport",
            bucket_name=f"{constants.SIEM_EXPORT_BUCKET_PREFIX}-{stack.account}-{stack.region}",
            encryption=s3.BucketEncryption.KMS, encryption_key=data.key, bucket_key_enabled=True,
            server_access_logs_bucket=data.access_logs_bucket,
            server_access_logs_prefix=f"{constants.SIEM_EXPORT_BUCKET_PREFIX}/",
            lifecycle_rules=[s3.LifecycleRule(
                id="tier-and-expire-export",
                transitions=[s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                                           transition_after=Duration.days(EXPORT_TO_INFREQUENT_ACCESS_DAYS))],
                expiration=Duration.days(settings.siem_export_retention_days),
                noncurrent_version_expiration=Duration.days(7),
                abort_incomplete_multipart_upload_after=Duration.days(1))],
        )
        export_env = {"SWORDFISH_SIEM_EXPORT_BUCKET": self.export_bucket.bucket_name}
        self.export_webhook_secret = None
        if settings.siem_export_webhook_url:
            self.export_webhook_secret = secretsmanager.Secret(
                self, "SiemExportWebhookSecret", secret_name=constants.SIEM_EXPORT_WEBHOOK_SECRET_NAME,
                description="Signs the SIEM export's webhook requests (HMAC-SHA256); share it with the SIEM",
                encryption_key=data.key,
                generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True,
                                                                            password_length=48))
            NagSuppressions.add_resource_suppressions(self.export_webhook_secret, [NagPackSuppression(
                id="AwsSolutions-SMG4",
                reason="Shared with the MSP's SIEM, which must be given the new value at the same moment; "
                       "rotated by hand with the SIEM's owner, not on a schedule.")])
            export_env |= {"SWORDFISH_SIEM_EXPORT_WEBHOOK_URL": settings.siem_export_webhook_url,
                           "SWORDFISH_SIEM_EXPORT_WEBHOOK_SECRET_NAME": constants.SIEM_EXPORT_WEBHOOK_SECRET_NAME}
        self.exporter = scheduled(
            "SiemExport", function_name=constants.SIEM_EXPORT_FUNCTION_NAME, handler=constants.SIEM_EXPORT_HANDLER,
            minutes=constants.SIEM_EXPORT_MINUTES, environment=export_env,
            description="Exports verdicts and the audit trail to the SIEM as OCSF JSON lines")
        permissions.write_objects(self.exporter.role, self.export_bucket, data.key)
        if self.export_webhook_secret is not None:
            permissions.read_secret(self.exporter.role, self.export_webhook_secret)

    def publish_from(self, role: iam.IRole, key) -> None:
        """Let a function (the processor, the campaign grouping) publish alert events."""
        permissions.send_to_queue(role, self.queue, key)
