"""Service limits cfn-lint does not know (scripts/template_limits.py): the checks on small templates
made here (each must catch what it is for), then on the prod and dev synth (each must pass)."""

from __future__ import annotations

import json

import pytest
from cdk_helpers import ENVIRONMENTS

from scripts import template_limits as limits

PLANS = limits.Plans(tenant_rate_per_second=100, stage_rate_per_second=500, db_instance_class="m7g.large")


def stack(**resources: dict) -> limits.Templates:
    return {"S": {"Resources": resources}}


def alarm(period: int, evaluations: int, **extra) -> dict:
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Period": period, "EvaluationPeriods": evaluations, **extra}}


# --- each check catches what it is for ---------------------------------------------------------

def test_an_alarm_over_seven_days_is_refused_and_seven_days_pass():
    assert limits.check_alarms(stack(A=alarm(86_400, 8)))  # the RestoreTestMissing defect
    assert not limits.check_alarms(stack(A=alarm(86_400, 7)))
    assert limits.check_alarms(stack(A=alarm(300, 289)))  # under an hour: one day at most
    assert not limits.check_alarms(stack(A=alarm(300, 288)))
    assert limits.check_alarms(stack(A=alarm(90, 1)))  # not a multiple of 60
    assert limits.check_alarms(stack(A=alarm(60, 3, DatapointsToAlarm=4)))
    math_alarm = {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "EvaluationPeriods": 8, "Metrics": [{"Id": "m", "MetricStat": {"Period": 86_400}}]}}
    assert limits.check_alarms(stack(A=math_alarm))


def test_names_longer_than_the_service_allows_are_found():
    long_function = {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "f" * 65}}
    long_queue = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q" * 81}}
    fine = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q" * 80}}
    found = limits.check_names(stack(F=long_function, Q=long_queue, Ok=fine))
    assert {f.resource for f in found} == {"F", "Q"}


def test_a_lambda_environment_over_4_kb_is_found_counting_unresolved_values():
    big = {"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"Variables": {
        f"K{i}": {"Ref": "Something"} for i in range(40)}}}}  # 40 x (2-3 + 128) > 4,096
    small = {"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"Variables": {"A": "b"}}}}
    assert [f.resource for f in limits.check_lambda_environment(stack(Big=big, Small=small))] == ["Big"]


def test_a_queue_whose_visibility_is_under_six_function_timeouts_is_found():
    def template(visibility: int) -> limits.Templates:
        return stack(
            Q={"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": visibility}},
            F={"Type": "AWS::Lambda::Function", "Properties": {"Timeout": 30}},
            M={"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
                "EventSourceArn": {"Fn::GetAtt": ["Q", "Arn"]}, "FunctionName": {"Ref": "F"}}})
    assert limits.check_sqs_visibility(template(179))
    assert not limits.check_sqs_visibility(template(180))


def test_reserved_concurrency_past_the_proxys_connection_budget_is_found():
    assert limits.max_connections("m7g.large") == 847  # 8 GiB less RDS's share / 9,531,392
    assert limits.max_connections("db.t4g.medium") == 423

    def template(reserved: int) -> limits.Templates:
        return stack(
            Secret={"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "swordfish/db/app"}},
            Role={"Type": "AWS::IAM::Role", "Properties": {}},
            Policy={"Type": "AWS::IAM::Policy", "Properties": {"Roles": [{"Ref": "Role"}], "PolicyDocument": {
                "Statement": [{"Action": "secretsmanager:GetSecretValue", "Resource": {"Ref": "Secret"}}]}}},
            Fn={"Type": "AWS::Lambda::Function", "Properties": {
                "FunctionName": "swordfish-processor", "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "ReservedConcurrentExecutions": reserved}},
            Tg={"Type": "AWS::RDS::DBProxyTargetGroup", "Properties": {
                "ConnectionPoolConfigurationInfo": {"MaxConnectionsPercent": 90}}})
    found, figures = limits.check_connection_budget(template(763), PLANS)
    assert found and figures["budget"] == 762
    assert not limits.check_connection_budget(template(762), PLANS)[0]


def test_a_waf_rate_below_a_tenants_plan_or_the_stage_for_one_address_is_found():
    def acl(limit: int, key: str, window: int = 300) -> limits.Templates:
        return stack(W={"Type": "AWS::WAFv2::WebACL", "Properties": {"Rules": [{"Name": "r", "Statement": {
            "RateBasedStatement": {"Limit": limit, "AggregateKeyType": key, "EvaluationWindowSec": window}}}]}})
    assert limits.check_waf_rates(acl(2_000, "IP"), PLANS)  # the defect: 6.7/s per address
    assert not limits.check_waf_rates(acl(150_000, "IP"), PLANS)  # 500/s, the stage
    assert limits.check_waf_rates(acl(29_999, "CUSTOM_KEYS"), PLANS)
    assert not limits.check_waf_rates(acl(30_000, "CUSTOM_KEYS"), PLANS)  # 100/s, a tenant's plan


def test_a_resource_kept_with_plain_retain_is_found():
    vault = {"Type": "AWS::Backup::BackupVault", "DeletionPolicy": "Retain",
             "Properties": {"BackupVaultName": "swordfish-prod"}}
    found = limits.check_retained_on_create(stack(V=vault))
    assert found and "swordfish-prod" in found[0].message
    vault["DeletionPolicy"] = "RetainExceptOnCreate"
    assert not limits.check_retained_on_create(stack(V=vault))


# --- the synthesised app passes every check ---------------------------------------------------

@pytest.mark.parametrize("env_name", ENVIRONMENTS)
@pytest.mark.parametrize("check", list(limits.CHECKS))
def test_the_synthesised_app_is_within_every_limit(synthesised, env_name, check):
    result = synthesised[env_name]
    templates = limits.load_templates(result.outdir)
    assert len(templates) == len(result.stacks.all())
    findings = limits.CHECKS[check](templates, limits.plans_for(env_name))
    assert not findings, "\n".join(map(str, findings))


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_no_stack_holds_a_resource_of_another_by_an_export(synthesised, env_name):
    """An export in use blocks replacing (or removing) the resource it names: a security group whose
    description changes, a queue or function renamed. Cross-stack references are weak
    (Fn::GetStackOutput, cdk.json) or deterministic names."""
    templates = limits.load_templates(synthesised[env_name].outdir)
    exports = [name for name, t in templates.items() for o in t.get("Outputs", {}).values() if "Export" in o]
    imports = [name for name, t in templates.items() if "Fn::ImportValue" in json.dumps(t)]
    assert not exports and not imports, f"exports in {sorted(set(exports))}, imports in {imports}"
