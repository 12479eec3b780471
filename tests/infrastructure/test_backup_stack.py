"""AWS Backup: vault, daily plan, copy to a second region, restore testing."""

from __future__ import annotations

from cdk_helpers import only, props, refers_to

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
