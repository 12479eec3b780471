"""AppConfig flags: profile content, strategy, rollback monitors, deployment audit."""

from __future__ import annotations

import json

import pytest
from aws_cdk import aws_appconfig as appconfig
from cdk_helpers import only, props, refers_to
from swordfish import constants

from stacks.flags_stack import DEPLOYMENT_EVENTS_EXTENSION, FLAGS_FILE, FLAGS_SCHEMA_FILE, flags_profile_type

PROFILE_TYPES = {appconfig.ConfigurationType.FEATURE_FLAGS: "AWS.AppConfig.FeatureFlags",
                 appconfig.ConfigurationType.FREEFORM: "AWS.Freeform"}


def test_flag_profile_starts_with_the_repo_flags_file(prod):
    flags = prod.templates["flags"]
    profile = only(flags, "AWS::AppConfig::ConfigurationProfile")
    assert profile["Name"] == constants.APPCONFIG_FLAGS_PROFILE and profile["LocationUri"] == "hosted"
    version = only(flags, "AWS::AppConfig::HostedConfigurationVersion")
    assert version["ContentType"] == "application/json"
    document = json.loads(FLAGS_FILE.read_text())
    assert json.loads(version["Content"]) == document
    assert profile["Type"] == PROFILE_TYPES[flags_profile_type(document)]
    assert only(flags, "AWS::AppConfig::Application")["Name"] == constants.APPCONFIG_APPLICATION
    assert only(flags, "AWS::AppConfig::Environment")["Name"] == constants.APPCONFIG_ENVIRONMENT


@pytest.mark.parametrize(("document", "expected"), [
    ({"version": "1", "flags": {"kill": {"name": "kill"}}, "values": {"kill": {"enabled": False}}},
     appconfig.ConfigurationType.FEATURE_FLAGS),
    ({"degraded_mode_kill_switch": {"default": False}}, appconfig.ConfigurationType.FREEFORM),
])
def test_profile_type_follows_the_document_format(document, expected):
    assert flags_profile_type(document) == expected


def test_initial_content_is_deployed_with_a_baking_strategy(prod):
    flags = prod.templates["flags"]
    strategy = only(flags, "AWS::AppConfig::DeploymentStrategy")
    assert strategy["FinalBakeTimeInMinutes"] == prod.stacks.settings.env.flags_bake_minutes > 0
    assert strategy["GrowthType"] == "LINEAR"
    deployment = only(flags, "AWS::AppConfig::Deployment")
    assert refers_to(deployment["DeploymentStrategyId"], "Strategy")


def test_flag_deployments_roll_back_when_the_monitor_alarms_fire(prod):
    flags = prod.templates["flags"]
    monitors = only(flags, "AWS::AppConfig::Environment")["Monitors"]
    alarms = {lid for lid in (m["AlarmArn"]["Fn::GetAtt"][0] for m in monitors)}
    assert len(alarms) == 2
    metrics = {a["MetricName"] for a in props(flags, "AWS::CloudWatch::Alarm")}
    assert metrics == {"Errors", constants.METRIC_ERROR_EVENTS}
    role_statements = [st for p in props(flags, "AWS::IAM::Policy") for st in p["PolicyDocument"]["Statement"]
                       if st["Action"] == "cloudwatch:DescribeAlarms"]
    (statement,) = role_statements
    assert "*" not in json.dumps(statement["Resource"])


def test_appconfig_deployment_events_reach_the_audit_function(prod):
    flags = prod.templates["flags"]
    association = only(flags, "AWS::AppConfig::ExtensionAssociation")
    assert association["ExtensionIdentifier"] == DEPLOYMENT_EVENTS_EXTENSION
    rule = only(flags, "AWS::Events::Rule")
    # Deployment events only: not CloudTrail API calls, not start/step/baking events.
    assert rule["EventPattern"] == {"source": ["aws.appconfig"],
                                    "detail-type": list(constants.APPCONFIG_AUDITED_DETAIL_TYPES)}
    (target,) = rule["Targets"]
    assert refers_to(target["Arn"], "FlagsAudit")
    assert refers_to(target["DeadLetterConfig"]["Arn"], "AuditDlq")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    fn = only(flags, "AWS::Lambda::Function")
    assert fn["Handler"] == constants.FLAGS_AUDIT_HANDLER


def test_the_audit_rule_matches_exactly_the_deployments_the_handler_records():
    from handlers.flags_audit import RECORDED_TYPES

    assert set(constants.APPCONFIG_AUDITED_DETAIL_TYPES) == set(RECORDED_TYPES)


def test_the_flag_profile_rejects_content_outside_the_powertools_schema(prod):
    flags = prod.templates["flags"]
    profile = only(flags, "AWS::AppConfig::ConfigurationProfile")
    assert profile["Type"] == "AWS.Freeform"
    (validator,) = profile["Validators"]
    assert validator["Type"] == "JSON_SCHEMA"
    assert json.loads(validator["Content"]) == json.loads(FLAGS_SCHEMA_FILE.read_text())
