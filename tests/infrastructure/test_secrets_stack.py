"""Secret rotation schedules on our function, the secrets audit trail, and its alarms."""

from __future__ import annotations

import json

import pytest
from cdk_helpers import only, props, refers_to, resources
from swordfish import constants


def _names(value: object, fragment: str) -> bool:
    """A reference (same-stack Ref/GetAtt or a cross-stack import) to a resource named like fragment."""
    return fragment in json.dumps(value)


def _schedule_for(template, fragment: str) -> dict:
    (schedule,) = [p for p in props(template, "AWS::SecretsManager::RotationSchedule")
                   if _names(p["SecretId"], fragment)]
    return schedule


@pytest.fixture(scope="module")
def prod_users_created(tmp_path_factory):
    """prod after the first-deploy steps: `db_users_created` true (cdk-nag off: the session's synth checks it)."""
    from aws_cdk import App
    from aws_cdk.assertions import Template
    from cdk_helpers import cdk_context

    from stacks.app_builder import build_app

    context = cdk_context(env="prod", bundle_dependencies=False, nag=False, release="test")
    context["environments"]["prod"] = {**context["environments"]["prod"], "db_users_created": True}
    stacks = build_app(App(context=context, outdir=str(tmp_path_factory.mktemp("cdk-prod-users"))))
    return Template.from_stack(stacks.secrets)


@pytest.mark.parametrize("env_name", ["prod", "dev"])
def test_no_login_rotation_is_created_before_the_database_users_exist(synthesised, env_name):
    """Creating a rotation schedule runs testSecret at once; on a first deploy the logins it would
    test do not exist yet, so the stack (and the deploy) would fail."""
    assert synthesised[env_name].stacks.settings.env.db_users_created is False  # as committed
    schedules = props(synthesised[env_name].templates["secrets"], "AWS::SecretsManager::RotationSchedule")
    assert not [p for p in schedules if _names(p["SecretId"], "AppSecret") or _names(p["SecretId"], "AdminSecret")]
    assert [p for p in schedules if _names(p["SecretId"], "ApiKeyPepper")]  # no database involved


@pytest.mark.parametrize("secret", ["AppSecretAttachment", "AdminSecretAttachment"])
def test_database_logins_rotate_every_30_days_with_our_function(prod_users_created, secret):
    schedule = _schedule_for(prod_users_created, secret)
    assert schedule["RotationRules"]["ScheduleExpression"] == f"rate({constants.SECRET_ROTATION_DAYS} days)"
    assert "HostedRotationLambda" not in schedule
    assert refers_to(schedule["RotationLambdaARN"], "RotateSecret")
    # The roles exist only after `swordfish db migrate`: no rotation at deploy time.
    assert schedule["RotateImmediatelyOnUpdate"] is False


def test_the_pepper_rotates_on_demand_only(prod):
    schedule = _schedule_for(prod.templates["secrets"], "ApiKeyPepper")
    assert refers_to(schedule["RotationLambdaARN"], "RotateSecret")
    assert "RotationRules" not in schedule


def test_no_hosted_rotation_is_left_on_the_user_secrets(prod):
    for p in props(prod.templates["data"], "AWS::SecretsManager::RotationSchedule"):
        assert _names(p["SecretId"], "MasterSecret"), p  # only the master keeps the hosted single-user rotation


def test_the_rotation_function_runs_our_handler_in_the_rotation_security_group(prod):
    template = prod.templates["secrets"]
    (fn,) = [p for p in props(template, "AWS::Lambda::Function")
             if p.get("FunctionName") == constants.ROTATE_SECRET_FUNCTION_NAME]
    assert fn["Handler"] == constants.ROTATE_SECRET_HANDLER
    assert _names(fn["VpcConfig"]["SecurityGroupIds"], "RotationSg")
    permission = [p for p in props(template, "AWS::Lambda::Permission")
                  if p.get("Principal") == "secretsmanager.amazonaws.com"]
    assert permission, "Secrets Manager must be allowed to invoke the rotation function"
    statements = [s for p in props(template, "AWS::IAM::Policy") for s in p["PolicyDocument"]["Statement"]]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage",
            "secretsmanager:GetRandomPassword"} <= actions
    # It reads the master secret to set the other logins' passwords.
    assert any(_names(s.get("Resource"), "DatabaseSecretAttachment") or _names(s.get("Resource"), "MasterSecret")
               for s in statements if "secretsmanager:GetSecretValue" in json.dumps(s.get("Action")))


def test_a_validated_multi_region_trail_records_secret_reads(prod):
    trail = only(prod.templates["secrets"], "AWS::CloudTrail::Trail")
    assert trail["EnableLogFileValidation"] is True
    assert trail["IsMultiRegionTrail"] is True and trail["IsLogging"] is True
    assert refers_to(trail["CloudWatchLogsLogGroupArn"], "TrailLogs")
    selectors = trail.get("EventSelectors") or [{"ReadWriteType": "All", "IncludeManagementEvents": True}]
    assert all(s.get("ReadWriteType", "All") == "All" and s.get("IncludeManagementEvents", True) for s in selectors)
    bucket = next(iter(resources(prod.templates["secrets"], "AWS::S3::Bucket").values()))
    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"


def test_metric_filters_count_unexpected_reads_and_failed_rotations(prod):
    filters = {p["MetricTransformations"][0]["MetricName"]: p["FilterPattern"]
               for p in props(prod.templates["secrets"], "AWS::Logs::MetricFilter")}
    unexpected = json.dumps(filters["UnexpectedSecretReads"])
    assert '$.eventName = \\"GetSecretValue\\"' in unexpected
    assert "sessionIssuer.userName !=" in unexpected and "Swordfish-prod-" in unexpected
    assert '$.eventName = \\"RotationFailed\\"' in json.dumps(filters["SecretRotationFailed"])


@pytest.mark.parametrize("metric", ["UnexpectedSecretReads", "SecretRotationFailed"])
def test_alarms_on_unexpected_reads_and_failed_rotations_notify_the_alarm_topic(prod, metric):
    (alarm,) = [p for p in props(prod.templates["secrets"], "AWS::CloudWatch::Alarm") if p["MetricName"] == metric]
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert _names(alarm["AlarmActions"], "AlarmTopic")


def test_functions_read_the_sentry_dsn_from_its_secret(prod):
    names = {p.get("Name") for p in props(prod.templates["data"], "AWS::SecretsManager::Secret")}
    assert constants.SENTRY_DSN_SECRET_NAME in names
    (processor,) = [p for p in props(prod.templates["pipeline"], "AWS::Lambda::Function")
                    if p.get("FunctionName") == constants.PROCESSOR_FUNCTION_NAME]
    assert processor["Environment"]["Variables"]["SWORDFISH_SENTRY_DSN_SECRET_NAME"] == constants.SENTRY_DSN_SECRET_NAME
    statements = [s for p in props(prod.templates["pipeline"], "AWS::IAM::Policy") for s in p["PolicyDocument"]["Statement"]]
    assert any("SentryDsn" in json.dumps(s.get("Resource")) and "secretsmanager:GetSecretValue" in s["Action"]
               for s in statements)
