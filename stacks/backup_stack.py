"""Backup: an AWS Backup vault, a daily plan with 30-day retention, an optional copy to a second
region, a weekly restore test of the database with a validator, and alarms on failed backup, copy
and restore jobs and failed validations (to the alarm topic).

The validator: an EventBridge rule on a completed RDS restore job invokes a function that connects
to the restored instance, runs the integrity checks (swordfish.backup.aws_restore_test) and reports
with PutRestoreValidationResult; it skips restores not made by the restore-testing plan.

RDS owns point-in-time recovery (its automated backups, DataStack). AWS Backup takes daily snapshots
only, never continuous backup of the same instance: a continuous-backup rule takes over the
instance's automated-backup retention setting, so the two would fight over it and RDS's own PITR
window would silently follow the Backup rule.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_backup as backup
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct
from swordfish import constants

from stacks.constructs.lambda_function import FunctionKit
from stacks.settings import EnvSettings

VAULT_LOCK_MIN_RETENTION_DAYS = 7
VAULT_LOCK_MAX_RETENTION_DAYS = 365
VAULT_LOCK_GRACE_DAYS = 3  # after this the lock (compliance mode) can no longer be removed
# Wednesdays and Saturdays 06:00 UTC. Twice a week so that "no validated restore test" fits in
# CloudWatch's longest alarm range (7 days): with one test a week, a 7-day window would miss the last
# test for a few hours every week before the next one reports.
RESTORE_TEST_SCHEDULE = "cron(0 6 ? * WED,SAT *)"
RESTORE_TEST_MISSING_DAYS = 7  # CloudWatch: Period x EvaluationPeriods <= 7 days


def vault_name(env_name: str) -> str:
    return f"{constants.SERVICE_NAME}-{env_name}"


def copy_vault_name(env_name: str) -> str:
    return f"{constants.SERVICE_NAME}-{env_name}-copy"


def _vault_key(scope: Construct, retain: bool) -> kms.Key:
    # Backups have their own key: a compromise or deletion of the data key does not reach them.
    return kms.Key(
        scope, "VaultKey",
        alias=f"alias/{constants.SERVICE_NAME}/backup",
        description="Swordfish backup vault",
        enable_key_rotation=True,
        pending_window=Duration.days(30),
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if retain else RemovalPolicy.DESTROY,
    )


class BackupCopyStack(Stack):
    """The vault in the second region that receives copies of the daily recovery points."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvSettings, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.vault = backup.BackupVault(
            self, "CopyVault",
            backup_vault_name=copy_vault_name(settings.name),
            encryption_key=_vault_key(self, settings.removal_retain),
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
            lock_configuration=_lock(settings),
        )
        # RDS replicates the instance's automated backups here (DataStack): point-in-time recovery in
        # this region too. Encrypted backups need a key of this region, found by its alias.
        self.rds_replica_key = kms.Key(
            self, "RdsReplicaKey",
            alias=constants.RDS_REPLICA_KEY_ALIAS,
            description="Swordfish RDS automated backups replicated from the primary region",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if settings.removal_retain else RemovalPolicy.DESTROY,
        )


def _lock(settings: EnvSettings) -> backup.LockConfiguration | None:
    if not settings.backup_vault_lock:
        return None
    return backup.LockConfiguration(
        min_retention=Duration.days(VAULT_LOCK_MIN_RETENTION_DAYS),
        max_retention=Duration.days(VAULT_LOCK_MAX_RETENTION_DAYS),
        changeable_for=Duration.days(VAULT_LOCK_GRACE_DAYS),
    )


class BackupStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvSettings,
                 database: rds.DatabaseInstance, db_subnet_group: rds.ISubnetGroup,
                 restore_test_security_group: ec2.ISecurityGroup, validator_security_group: ec2.ISecurityGroup,
                 master_secret: secretsmanager.ISecret, alarm_topic: sns.ITopic, kit_props: dict, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.restore_test_security_group = restore_test_security_group
        self.vault = backup.BackupVault(
            self, "Vault",
            backup_vault_name=vault_name(settings.name),
            encryption_key=_vault_key(self, settings.removal_retain),
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
            lock_configuration=_lock(settings),
        )

        copy_actions = []
        if settings.backup_copy_region:
            copy_vault_arn = (f"arn:{self.partition}:backup:{settings.backup_copy_region}:{self.account}:"
                              f"backup-vault:{copy_vault_name(settings.name)}")
            copy_actions.append(backup.BackupPlanCopyActionProps(
                destination_backup_vault=backup.BackupVault.from_backup_vault_arn(
                    self, "CopyVault", copy_vault_arn),
                delete_after=Duration.days(settings.backup_retention_days),
            ))

        self.plan = backup.BackupPlan(
            self, "Plan",
            backup_plan_name=f"{constants.SERVICE_NAME}-{settings.name}-daily",
            backup_vault=self.vault,
        )
        self.plan.add_rule(backup.BackupPlanRule(
            rule_name="daily",
            # After RDS's own backup window (02:00-03:00 UTC) and maintenance window (Sun 03:30-04:30).
            schedule_expression=events.Schedule.cron(hour="5", minute="0"),
            start_window=Duration.hours(1),
            completion_window=Duration.hours(4),
            delete_after=Duration.days(settings.backup_retention_days),
            enable_continuous_backup=False,  # see module docstring
            copy_actions=copy_actions or None,
        ))
        selection = self.plan.add_selection(
            "Database",
            resources=[backup.BackupResource.from_rds_database_instance(database)],
            allow_restores=True,
        )
        NagSuppressions.add_resource_suppressions(selection, [NagPackSuppression(
            id="AwsSolutions-IAM4",
            reason="AWS Backup's service-role policies (backup, restores) are the documented, "
                   "AWS-maintained permissions for backing up and restoring RDS.",
            applies_to=[("Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                        "AWSBackupServiceRolePolicyForBackup"),
                        ("Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                        "AWSBackupServiceRolePolicyForRestores")],
        )], apply_to_children=True)

        self._restore_testing(settings, database, db_subnet_group)
        self._restore_validator(kit_props, validator_security_group, master_secret)
        self._alarms(settings, alarm_topic)

    def _restore_testing(self, settings: EnvSettings, database: rds.DatabaseInstance,
                         db_subnet_group: rds.ISubnetGroup) -> None:
        role = iam.Role(
            self, "RestoreTestingRole",
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            description="AWS Backup restore testing of the Swordfish database",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                "service-role/AWSBackupServiceRolePolicyForRestores")],
        )
        NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
            id="AwsSolutions-IAM4",
            reason="AWSBackupServiceRolePolicyForRestores is the AWS-maintained policy restore "
                   "testing needs to restore and then delete the test instance.",
            applies_to=[("Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                        "AWSBackupServiceRolePolicyForRestores")],
        )])
        plan_name = f"{constants.SERVICE_NAME}_{settings.name}_restore_test"
        self.restore_testing_plan = backup.CfnRestoreTestingPlan(
            self, "RestoreTestingPlan",
            restore_testing_plan_name=plan_name,
            schedule_expression=RESTORE_TEST_SCHEDULE,
            start_window_hours=8,
            recovery_point_selection=backup.CfnRestoreTestingPlan.RestoreTestingRecoveryPointSelectionProperty(
                algorithm="LATEST_WITHIN_WINDOW",
                include_vaults=[self.vault.backup_vault_arn],
                recovery_point_types=["SNAPSHOT"],
                selection_window_days=7,
            ),
        )
        selection = backup.CfnRestoreTestingSelection(
            self, "RestoreTestingDatabase",
            restore_testing_plan_name=plan_name,
            restore_testing_selection_name="database",
            protected_resource_type="RDS",
            protected_resource_arns=[database.instance_arn],
            iam_role_arn=role.role_arn,
            # Restore into the isolated data subnets, single-AZ: a test restore needs no standby.
            restore_metadata_overrides={
                "dbsubnetgroupname": db_subnet_group.subnet_group_name,
                "multiaz": "false",
                # Reachable only by the validator, never by the functions or the proxy.
                "vpcsecuritygroupids": f'["{self.restore_test_security_group.security_group_id}"]',
            },
            validation_window_hours=2,
        )
        selection.add_resource_dependency(self.restore_testing_plan)

    def _restore_validator(self, kit_props: dict, security_group: ec2.ISecurityGroup,
                           master_secret: secretsmanager.ISecret) -> None:
        kit = FunctionKit(self, "Kit", **{**kit_props, "security_group": security_group})
        self.validator = kit.function(
            self, "RestoreValidator",
            function_name=constants.RESTORE_VALIDATOR_FUNCTION_NAME,
            handler=constants.RESTORE_VALIDATOR_HANDLER,
            description="Validates AWS Backup restore tests: integrity checks on the restored instance",
            timeout_seconds=constants.RESTORE_VALIDATOR_TIMEOUT_SECONDS,
            memory_mb=512,
            reads_flags=False,
        )
        role = self.validator.role
        # DescribeRestoreJob and PutRestoreValidationResult take no resource ARN (IAM: "*").
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["backup:DescribeRestoreJob", "backup:PutRestoreValidationResult"], resources=["*"]))
        # Restored instances get generated names: any instance of this account and region.
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["rds:DescribeDBInstances"],
            resources=[f"arn:{self.partition}:rds:{self.region}:{self.account}:db:*"]))
        NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason="Restore-test instances get names generated by AWS Backup, so DescribeDBInstances is "
                   "allowed on db:* of this account and region (read only).",
            applies_to=[f"Resource::arn:{self.partition}:rds:{self.region}:{self.account}:db:*",
                        "Resource::arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:db:*"],
        )], apply_to_children=True)
        # The restored instance keeps the snapshot's master password: the master secret opens it.
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            resources=[master_secret.secret_arn]))
        self.restore_completed_rule = events.Rule(
            self, "RestoreTestCompleted",
            description="A restore job of the database completed: validate it (restore tests only)",
            event_pattern=events.EventPattern(
                source=["aws.backup"],
                detail_type=["Restore Job State Change"],
                detail={"status": ["COMPLETED"], "resourceType": ["RDS"]},
            ),
            targets=[targets.LambdaFunction(self.validator.function, retry_attempts=2,
                                            max_event_age=Duration.hours(1))],
        )

    def _alarms(self, settings: EnvSettings, topic: sns.ITopic) -> None:
        action = cw_actions.SnsAction(topic)
        day = Duration.days(1)

        def backup_metric(name: str, dimensions: dict[str, str]) -> cloudwatch.Metric:
            return cloudwatch.Metric(namespace="AWS/Backup", metric_name=name, statistic="Sum",
                                     period=Duration.hours(1), dimensions_map=dimensions)

        vault = {"BackupVaultName": vault_name(settings.name)}
        definitions = {
            "BackupJobsFailed": ("A daily backup job of the database failed",
                                 backup_metric("NumberOfBackupJobsFailed", vault)),
            "CopyJobsFailed": ("Copying a recovery point to the second region failed",
                               backup_metric("NumberOfCopyJobsFailed", vault)),
            "RestoreJobsFailed": ("A restore job (the weekly restore test) failed",
                                  backup_metric("NumberOfRestoreJobsFailed", {"ResourceType": "RDS"})),
            "RestoreValidationFailed": (
                "The weekly restore test restored a database that fails its integrity checks",
                cloudwatch.Metric(namespace=constants.METRICS_NAMESPACE,
                                  metric_name=constants.METRIC_RESTORE_VALIDATION_FAILED, statistic="Sum",
                                  period=Duration.hours(1),
                                  dimensions_map={constants.METRIC_SERVICE_DIMENSION: constants.SERVICE_NAME})),
            "RestoreValidatorErrors": ("The restore-test validator itself failed (the test went unvalidated)",
                                       self.validator.function.metric_errors(period=Duration.hours(1))),
        }
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for construct_id, (description, metric) in definitions.items():
            alarm = cloudwatch.Alarm(
                self, construct_id, alarm_description=description, metric=metric, threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms[construct_id] = alarm
        # A restore test that never reports is a failure too: with two tests a week (at most 4 days
        # apart), seven days without a validation means at least one test went missing.
        self.alarms["RestoreTestMissing"] = alarm = cloudwatch.Alarm(
            self, "RestoreTestMissing",
            alarm_description=f"No restore test was validated in the last {RESTORE_TEST_MISSING_DAYS} days "
                              "(tests run twice a week)",
            metric=self.validator.function.metric_invocations(period=day),
            threshold=1, comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=RESTORE_TEST_MISSING_DAYS, datapoints_to_alarm=RESTORE_TEST_MISSING_DAYS,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING)
        alarm.add_alarm_action(action)
