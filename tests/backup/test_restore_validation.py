"""The AWS restore-test validator's checks, against a real PostgreSQL standing in for the restored
RDS instance; AWS Backup and RDS are small fakes (moto implements neither DescribeRestoreJob nor
PutRestoreValidationResult)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlparse

import psycopg
from swordfish.backup.aws_restore_test import restore_job_id, validate

JOB_ID = "restore-job-1"


class FakeBackup:
    def __init__(self, created_by_test_plan: bool = True):
        self.results: list[dict] = []
        self.job = {"RestoreJobId": JOB_ID, "CreatedResourceArn": "arn:aws:rds:eu-west-1:1:db:restored-abc",
                    "RecoveryPointCreationDate": datetime.now(UTC),
                    "CreatedBy": {"RestoreTestingPlanArn": "arn:plan"} if created_by_test_plan else {}}

    def describe_restore_job(self, RestoreJobId):  # noqa: N803 - boto3's argument names
        assert RestoreJobId == JOB_ID
        return self.job

    def put_restore_validation_result(self, **kwargs):
        self.results.append(kwargs)


class FakeRds:
    def describe_db_instances(self, DBInstanceIdentifier):  # noqa: N803
        assert DBInstanceIdentifier == "restored-abc"
        return {"DBInstances": [{"Endpoint": {"Address": "restored-abc.example", "Port": 5432}}]}


def connector(url: str):
    def connect(_dsn: str):  # the DSN points at the (fake) RDS endpoint; connect to the test server
        return psycopg.connect(url)
    return connect


def test_a_healthy_restore_is_reported_successful(live_db):
    backup = FakeBackup()
    result = validate(JOB_ID, backup=backup, rds=FakeRds(), read_secret=lambda: {"username": "u", "password": "p"},
                      connect=connector(live_db.url))
    assert result.status == "SUCCESSFUL", result.problems
    assert result.tables["tenants"] >= 2
    (reported,) = backup.results
    assert reported["ValidationStatus"] == "SUCCESSFUL" and reported["RestoreJobId"] == JOB_ID


def test_a_restore_missing_a_migration_is_reported_failed_with_the_reason(live_db):
    backup = FakeBackup()
    result = validate(JOB_ID, backup=backup, rds=FakeRds(), read_secret=lambda: {"username": "u", "password": "p"},
                      connect=connector(live_db.url), migrations=["0001_core.sql", "9999_future.sql"])
    assert result.status == "FAILED"
    assert backup.results[0]["ValidationStatus"] == "FAILED"
    assert "9999_future.sql" in backup.results[0]["ValidationStatusMessage"]


def test_an_unreachable_instance_fails_the_validation(live_db):
    backup = FakeBackup()
    bad = urlparse(live_db.url)._replace(query="host=/nonexistent").geturl()
    result = validate(JOB_ID, backup=backup, rds=FakeRds(), read_secret=lambda: {"username": "u", "password": "p"},
                      connect=connector(bad))
    assert result.status == "FAILED" and "could not check the restored instance" in result.problems[0]


def test_an_operators_own_restore_is_left_alone():
    backup = FakeBackup(created_by_test_plan=False)
    result = validate(JOB_ID, backup=backup, rds=FakeRds(), read_secret=dict, connect=psycopg.connect)
    assert result.status == "SKIPPED" and backup.results == []
    assert restore_job_id({"detail": {"restoreJobId": JOB_ID}}) == JOB_ID
