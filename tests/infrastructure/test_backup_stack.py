"""AWS Backup: vault, daily plan, copy to a second region, restore testing."""

from __future__ import annotations

import json

from cdk_helpers import as_list, by_property, only, policy_statements, props, refers_to

from stacks.backup_stack import copy_vault_name


def test_daily_plan_keeps_recovery_points_for_30_days(prod):
    plan = only(prod.templates["backup"], "AWS::Backup::BackupPlan")["BackupPlan"]
    (rule,) = plan["BackupPlanRule"]
    assert rule["ScheduleExpression"] == "cron(0 5 * * ? *)"
    assert rule["Lifecycle"]["DeleteAfterDays"] == 30
    assert refers_to(rule["TargetBackupVault"], "Vault")


def test_backup_never_takes_continuous_backup_of_the_instance_rds_already_recovers(prod):
    (rule,) = only(prod.templates["backup"], "AWS::Backup::BackupPlan")["BackupPlan"]["BackupPlanRule"]
    assert rule.get("EnableContinuousBackup", False) is False


def test_prod_copies_every_recovery_point_to_the_second_region(prod):
    (rule,) = only(prod.templates["backup"], "AWS::Backup::BackupPlan")["BackupPlan"]["BackupPlanRule"]
    (copy,) = rule["CopyActions"]
    region = prod.stacks.settings.env.backup_copy_region
    assert f":backup:{region}:" in copy["DestinationBackupVaultArn"]
    assert copy["DestinationBackupVaultArn"].endswith(copy_vault_name("prod"))
    assert copy["Lifecycle"]["DeleteAfterDays"] == 30
    assert prod.stacks.backup_copy.region == region
    copy_vault = only(prod.templates["backup_copy"], "AWS::Backup::BackupVault")
    assert copy_vault["BackupVaultName"] == copy_vault_name("prod") and "EncryptionKeyArn" in copy_vault


def test_dev_keeps_backups_in_one_region(dev):
    (rule,) = only(dev.templates["backup"], "AWS::Backup::BackupPlan")["BackupPlan"]["BackupPlanRule"]
    assert "CopyActions" not in rule
    assert dev.stacks.backup_copy is None


def test_prod_vault_is_encrypted_and_locked(prod):
    vault = only(prod.templates["backup"], "AWS::Backup::BackupVault")
    assert refers_to(vault["EncryptionKeyArn"], "VaultKey")
    lock = vault["LockConfiguration"]
    assert lock["MinRetentionDays"] <= 30 <= lock["MaxRetentionDays"]
    assert lock["ChangeableForDays"] >= 3  # compliance mode after the grace period


def test_dev_vault_is_not_locked(dev):
    assert "LockConfiguration" not in only(dev.templates["backup"], "AWS::Backup::BackupVault")


def test_plan_selects_the_database(prod):
    selection = only(prod.templates["backup"], "AWS::Backup::BackupSelection")["BackupSelection"]
    assert any("DatabaseArn" in str(r) or "rds" in str(r) for r in selection["Resources"])


def test_restore_testing_restores_the_latest_database_snapshot_weekly(prod):
    plan = only(prod.templates["backup"], "AWS::Backup::RestoreTestingPlan")
    assert plan["ScheduleExpression"].startswith("cron(")
    selection = plan["RecoveryPointSelection"]
    assert selection["Algorithm"] == "LATEST_WITHIN_WINDOW" and selection["RecoveryPointTypes"] == ["SNAPSHOT"]
    assert refers_to(selection["IncludeVaults"], "Vault")
    tested = only(prod.templates["backup"], "AWS::Backup::RestoreTestingSelection")
    assert tested["ProtectedResourceType"] == "RDS"
    assert tested["RestoreTestingPlanName"] == plan["RestoreTestingPlanName"]
    assert "dbsubnetgroupname" in tested["RestoreMetadataOverrides"]
    assert len(props(prod.templates["backup"], "AWS::Backup::RestoreTestingSelection")) == 1


# --- disaster recovery (issue 13) ------------------------------------------------------------------

def test_prod_replicates_automated_backups_to_the_second_region_for_pitr_there(prod):
    from swordfish import constants

    database = only(prod.templates["data"], "AWS::RDS::DBInstance")
    region = prod.stacks.settings.env.backup_copy_region
    assert database["AutomaticBackupReplicationRegion"] == region
    assert database["AutomaticBackupReplicationRetentionPeriod"] == 30
    assert database["AutomaticBackupReplicationKmsKeyId"].endswith(f":kms:{region}:111111111111:"
                                                                   f"{constants.RDS_REPLICA_KEY_ALIAS}")
    aliases = [a["AliasName"] for a in props(prod.templates["backup_copy"], "AWS::KMS::Alias")]
    assert constants.RDS_REPLICA_KEY_ALIAS in aliases
    # The key exists before the instance that replicates under it.
    assert prod.stacks.backup_copy in prod.stacks.data.dependencies


def test_dev_does_not_replicate_backups(dev):
    database = only(dev.templates["data"], "AWS::RDS::DBInstance")
    assert "AutomaticBackupReplicationRegion" not in database


def test_backup_failures_alarm_to_the_alarm_topic(prod):
    template = prod.templates["backup"]
    alarms = {a["AlarmDescription"]: a for a in props(template, "AWS::CloudWatch::Alarm")}
    by_metric = {a.get("MetricName"): a for a in alarms.values()}
    for metric in ("NumberOfBackupJobsFailed", "NumberOfCopyJobsFailed", "NumberOfRestoreJobsFailed"):
        alarm = by_metric[metric]
        assert alarm["Namespace"] == "AWS/Backup" and alarm["Threshold"] == 1
    assert by_metric["NumberOfBackupJobsFailed"]["Dimensions"] == [{"Name": "BackupVaultName", "Value": "swordfish-prod"}]
    assert "RestoreValidationFailed" in by_metric
    for alarm in alarms.values():
        assert alarm["AlarmActions"] and all("AlarmTopic" in json.dumps(a) for a in alarm["AlarmActions"])


def test_a_completed_restore_job_invokes_the_validator(prod):
    from swordfish import constants

    template = prod.templates["backup"]
    (rule,) = [r for r in props(template, "AWS::Events::Rule") if "EventPattern" in r]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.backup"] and pattern["detail-type"] == ["Restore Job State Change"]
    assert pattern["detail"] == {"status": ["COMPLETED"], "resourceType": ["RDS"]}
    (target,) = rule["Targets"]
    assert refers_to(target["Arn"], "RestoreValidator")
    fn = by_property(template, "AWS::Lambda::Function", "FunctionName", constants.RESTORE_VALIDATOR_FUNCTION_NAME)
    assert fn["Handler"] == constants.RESTORE_VALIDATOR_HANDLER
    actions = {a for _, st in policy_statements(template) for a in as_list(st["Action"])}
    assert {"backup:PutRestoreValidationResult", "backup:DescribeRestoreJob", "rds:DescribeDBInstances",
            "secretsmanager:GetSecretValue"} <= actions


def test_restored_test_instances_are_reachable_only_by_the_validator(prod):
    tested = only(prod.templates["backup"], "AWS::Backup::RestoreTestingSelection")
    assert "vpcsecuritygroupids" in tested["RestoreMetadataOverrides"]
    data = prod.templates["data"].to_json()["Resources"]
    ingress = [r["Properties"] for r in data.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"
               and refers_to(r["Properties"].get("GroupId"), "RestoreTestDbSg")]
    assert len(ingress) == 1 and refers_to(ingress[0]["SourceSecurityGroupId"], "RestoreValidatorSg")
    assert ingress[0]["FromPort"] == ingress[0]["ToPort"] == 5432


def test_the_processor_archives_raw_submissions_to_the_backup_bucket(prod):
    from swordfish import constants

    processor = by_property(prod.templates["pipeline"], "AWS::Lambda::Function", "FunctionName",
                            constants.PROCESSOR_FUNCTION_NAME)
    assert "SWORDFISH_RAW_MAIL_ARCHIVE_BUCKET" in processor["Environment"]["Variables"]
    puts = [st for _, st in policy_statements(prod.templates["pipeline"]) if "s3:PutObject" in as_list(st["Action"])]
    assert any("Backups" in json.dumps(st["Resource"]) for st in puts)
