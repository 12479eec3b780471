"""The MSP console: a second Lambda (Flask behind apig-wsgi) under /console of the same REST API,
with its own secret for signing CSRF tokens. A separate construct, so the API stack only adds it."""

from __future__ import annotations

from aws_cdk import Fn, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct
from swordfish import constants

from stacks.constructs import permissions
from stacks.constructs.lambda_function import FunctionKit


class ConsoleApi(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, kit: FunctionKit, api: apigw.RestApi,
                 data, pipeline, flags_configuration_arn: str, reserved_concurrency: int | None = None) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self, "ConsoleSecret",
            secret_name=constants.CONSOLE_SECRET_NAME,
            description="Signs the Swordfish console's CSRF tokens",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        )
        NagSuppressions.add_resource_suppressions(self.secret, [NagPackSuppression(
            id="AwsSolutions-SMG4",
            reason="Rotating the CSRF signing key only signs everyone out of the console; it is rotated "
                   "by hand when needed, not on a schedule.")])
        self.function = kit.function(
            self, "ConsoleFunction",
            function_name=constants.CONSOLE_FUNCTION_NAME,
            handler=constants.CONSOLE_HANDLER,
            description="Swordfish MSP console (server-rendered pages)",
            timeout_seconds=constants.API_TIMEOUT_SECONDS,
            memory_mb=1024,
            reserved_concurrency=reserved_concurrency,
            # The verdict page re-reads the message from the raw-submission archive (issue 15); the
            # operations page lists the emails DLQ and redrives to the emails queue (issue 27).
            environment={"SWORDFISH_RAW_MAIL_ARCHIVE_BUCKET": data.backup_bucket.bucket_name,
                         "SWORDFISH_EMAILS_QUEUE_URL": pipeline.queue.queue_url,
                         "SWORDFISH_EMAILS_DLQ_URL": pipeline.dlq.queue_url,
                         "SWORDFISH_RESPONSE_JOBS_QUEUE_URL": pipeline.response_jobs.queue.queue_url},
        )
        role = self.function.role
        pipeline.response_jobs.start_from(role, data.key)  # bulk response jobs (issue 28)
        permissions.read_secret(role, data.app_secret)
        permissions.read_secret(role, data.api_key_pepper)  # creates and rotates tenant API keys
        permissions.read_secret(role, self.secret)
        permissions.read_secret(role, data.console_totp_keys)  # TOTP secrets are encrypted under it
        permissions.read_flags(role, flags_configuration_arn)
        permissions.read_metric_statistics(role)  # deep health page
        self._read_message_content(role, data)
        self._change_flags(role, flags_configuration_arn)
        self._act_on_dead_letters(role, data, pipeline)

        # Pages are public paths: the console signs people in itself (sessions, CSRF, TOTP).
        integration = apigw.LambdaIntegration(self.function.function, proxy=True)
        console = api.root.add_resource(constants.CONSOLE_PATH)
        console.add_method("ANY", integration)
        console.add_resource("{proxy+}").add_method("ANY", integration)
        NagSuppressions.add_resource_suppressions(console, [
            NagPackSuppression(id="AwsSolutions-APIG4",
                               reason="The console authenticates its users itself: argon2id passwords, TOTP for "
                                      "MSP admins, server-side sessions, CSRF; its login page must be reachable."),
            NagPackSuppression(id="AwsSolutions-COG4",
                               reason="Console users live in the console's own table with the MSP's roles."),
        ], apply_to_children=True)

    def _read_message_content(self, role: iam.IRole, data) -> None:
        """A message's content: the archived submission (only the archive's prefix of the backup
        bucket, never the database backups beside it), large mail, and the mailbox through Nango,
        whose moves (release) share the remediation breaker's table."""
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[data.backup_bucket.arn_for_objects(f"{constants.RAW_MAIL_ARCHIVE_PREFIX}*")]))
        permissions.read_objects(role, data.large_mail_bucket, data.key)
        permissions.read_secret(role, data.nango_secret)
        permissions.read_write_items(role, data.breaker_table, data.key)
        NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason="Archived submissions are one object per batch with generated keys, under one prefix.",
            applies_to=[RegexAppliesTo(regex=r"/^Resource::.*Backups[A-Za-z0-9]*.*\/raw-submissions\/\*$/g")],
        )], apply_to_children=True)

    def _act_on_dead_letters(self, role: iam.IRole, data, pipeline) -> None:
        """The DLQ page (pipeline/queues.py DeadLetters): receive to list (then give the messages back
        by visibility), redrive to the emails queue, delete what was redriven or discarded."""
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
                     "sqs:GetQueueAttributes"],
            resources=[pipeline.dlq.queue_arn]))
        permissions.send_to_queue(role, pipeline.queue, data.key)

    def _change_flags(self, role: iam.IRole, configuration_arn: str) -> None:
        """What FlagAdmin needs to publish and deploy a flag change (the audited path), on the
        flags application only; listing applications to resolve names takes no resource ARN."""
        stack = Stack.of(self)
        application_arn = Fn.select(0, Fn.split("/environment/", configuration_arn))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["appconfig:GetConfigurationProfile", "appconfig:GetHostedConfigurationVersion",
                     "appconfig:CreateHostedConfigurationVersion", "appconfig:StartDeployment",
                     "appconfig:GetDeployment", "appconfig:ListDeployments", "appconfig:ListEnvironments",
                     "appconfig:ListConfigurationProfiles", "appconfig:ListHostedConfigurationVersions",
                     "appconfig:ListTagsForResource", "appconfig:TagResource"],
            resources=[application_arn, Fn.join("", [application_arn, "/*"]),
                       f"arn:{stack.partition}:appconfig:{stack.region}:{stack.account}:deploymentstrategy/*"]))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["appconfig:ListApplications", "appconfig:ListDeploymentStrategies"], resources=["*"]))
        NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason="Flag changes publish versions under the one flags application (its sub-resources are "
                   "created at run time) with a named deployment strategy; AppConfig's List calls take no "
                   "resource ARN.")], apply_to_children=True)
