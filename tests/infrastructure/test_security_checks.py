"""Checks across every stack: cdk-nag, cfn-lint, IAM, encryption, public access."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App, Aspects, Stack
from aws_cdk import aws_s3 as s3
from cdk_helpers import ENVIRONMENTS, as_list, cloud_assembly_findings, policy_statements, props, resources
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint_file
from swordfish import constants

# The only actions allowed on Resource "*": the services take no resource ARNs for them.
SERVICE_REQUIRES_STAR = {
    "xray:PutTraceSegments", "xray:PutTelemetryRecords",  # X-Ray has no resource-level permissions
    "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
    "cloudwatch:GetMetricStatistics",  # CloudWatch metric reads take no resource ARN
    "secretsmanager:GetRandomPassword",  # the rotation function's password generator takes no resource
    "appconfig:ListApplications", "appconfig:ListDeploymentStrategies",  # AppConfig list calls: no resource ARN
    # AWS Backup's restore-job calls take no resource ARN (the restore-test validator)
    "backup:DescribeRestoreJob", "backup:PutRestoreValidationResult",
}
# CDK's own provider (strips the default security group's rules) and the service roles AWS Backup and
# API Gateway need are the only roles with AWS-managed policies.
MANAGED_POLICY_ROLES = ("CustomVpcRestrictDefaultSG", "PlanDatabaseRole", "RestoreTestingRole", "ApiCloudWatchRole",
                        "DbMonitoringRole")  # RDS Enhanced Monitoring needs its AWS-maintained policy


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_stack_passes_cdk_nag_aws_solutions_checks(synthesised, env_name):
    synth = synthesised[env_name]
    assert len(synth.template_files()) == len(synth.stacks.all())  # the assembly read is the one synthesised
    assert [f for f in cloud_assembly_findings(synth.outdir) if "AwsSolutions-" in f] == []


def test_the_cdk_nag_reader_finds_what_cdk_nag_flags(tmp_path):
    # A bucket with nothing set breaks AwsSolutions-S1 (no access logs) and S10 (no TLS-only policy): the
    # reader above must see both, or its empty list would prove nothing.
    app = App(outdir=str(tmp_path))
    s3.Bucket(Stack(app, "Bare"), "Bucket")
    Aspects.of(app).add(AwsSolutionsChecks())
    app.synth()
    found = cloud_assembly_findings(tmp_path)
    assert any("AwsSolutions-S1:" in f for f in found) and any("AwsSolutions-S10:" in f for f in found), found


TOLERATED_CFN_LINT_WARNINGS = {
    "W3005",  # CDK itself puts the execution role in DependsOn next to GetAtt Role: redundant, harmless
    "W3010",  # availability zones are named on purpose, so synth never has to look them up
}


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_synthesised_template_passes_cfn_lint_without_errors(synthesised, env_name):
    synth = synthesised[env_name]
    files = synth.template_files()
    assert len(files) == len(synth.stacks.all())
    errors = []
    for path in files:
        region = json.loads(path.read_text()).get("Metadata", {}).get("Region")
        config = ManualArgs(regions=[region] if region else [synth.stacks.settings.env.region])
        # Errors fail; so do warnings (an unknown IAM action is only a warning) except the tolerated.
        errors.extend(f"{path.name}: {m.rule.id} {m.message[:200]}" for m in lint_file(path, config)
                      if m.rule.id.startswith("E")
                      or (m.rule.id.startswith("W") and m.rule.id not in TOLERATED_CFN_LINT_WARNINGS))
    assert errors == []


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_no_iam_statement_grants_a_wildcard_action(synthesised, env_name):
    wildcards = [(concern, lid, action)
                 for concern, template in synthesised[env_name].templates.items()
                 for lid, st in policy_statements(template)
                 for action in as_list(st.get("Action", [])) if "*" in action]
    assert wildcards == []


def test_star_resources_are_only_for_actions_that_take_no_resource(prod):
    offending = []
    for concern, template in prod.templates.items():
        for lid, st in policy_statements(template):
            if "*" in as_list(st.get("Resource", [])) and st["Effect"] == "Allow":
                extra = set(as_list(st["Action"])) - SERVICE_REQUIRES_STAR
                if extra:
                    offending.append((concern, lid, sorted(extra)))
    assert offending == []


def test_function_roles_use_no_aws_managed_policies(prod):
    with_managed = [lid for template in prod.templates.values()
                    for lid, role in resources(template, "AWS::IAM::Role").items()
                    if role["Properties"].get("ManagedPolicyArns")]
    assert with_managed and all(lid.startswith(MANAGED_POLICY_ROLES) for lid in with_managed), with_managed


def test_every_bucket_blocks_public_access_requires_tls_and_is_versioned(prod):
    data = prod.templates["data"]
    buckets = resources(data, "AWS::S3::Bucket")
    assert len(buckets) == 3
    for bucket in buckets.values():
        p = bucket["Properties"]
        assert p["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True}
        assert p["VersioningConfiguration"] == {"Status": "Enabled"}
        assert p["LifecycleConfiguration"]["Rules"]
        assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"
    tls_denied = [p for p in props(data, "AWS::S3::BucketPolicy")
                  if any(st["Effect"] == "Deny" and st.get("Condition", {}).get("Bool", {})
                         .get("aws:SecureTransport") == "false" for st in p["PolicyDocument"]["Statement"])]
    assert len(tls_denied) == 3


def test_mail_and_backup_buckets_are_encrypted_with_the_data_key(prod):
    kms_buckets = [p for p in props(prod.templates["data"], "AWS::S3::Bucket")
                   if p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
                   ["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"]
    account_region = f"-{prod.stacks.settings.env.account}-{prod.stacks.settings.env.region}"
    assert {p["BucketName"] for p in kms_buckets} == {
        constants.LARGE_MAIL_BUCKET_PREFIX + account_region, constants.BACKUP_BUCKET_PREFIX + account_region}
    for p in kms_buckets:
        key = p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert key["KMSMasterKeyID"]["Fn::GetAtt"][0].startswith("DataKey")


def test_every_queue_is_kms_encrypted_and_denies_plain_http(prod):
    for concern in ("pipeline", "flags"):
        template = prod.templates[concern]
        queues = props(template, "AWS::SQS::Queue")
        assert queues
        for queue in queues:
            assert "KmsMasterKeyId" in queue or queue.get("SqsManagedSseEnabled") is True
        denies = [st for p in props(template, "AWS::SQS::QueuePolicy") for st in p["PolicyDocument"]["Statement"]
                  if st["Effect"] == "Deny" and st["Condition"]["Bool"]["aws:SecureTransport"] == "false"]
        assert len(denies) == len(queues)


def test_emails_queues_use_the_customer_managed_key(prod):
    queues = props(prod.templates["pipeline"], "AWS::SQS::Queue")
    named = [q for q in queues if "QueueName" in q]  # emails, remediation retry, alerts, response jobs, their DLQs
    assert len(named) == 8
    for queue in named:
        assert "DataKey" in json.dumps(queue["KmsMasterKeyId"])
    # The feed schedule's DLQ holds schedule events only; EventBridge writes it with SQS-managed keys.
    (schedule_dlq,) = [q for q in queues if "QueueName" not in q]
    assert schedule_dlq["SqsManagedSseEnabled"] is True


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_customer_managed_key_rotates(synthesised, env_name):
    keys = [p for t in synthesised[env_name].templates.values() for p in props(t, "AWS::KMS::Key")]
    assert len(keys) >= 3  # data, backup vault, alarm topic
    assert all(k["EnableKeyRotation"] is True for k in keys)


def test_every_function_log_group_is_encrypted_and_expires(prod):
    groups = [(concern, p) for concern, t in prod.templates.items() for p in props(t, "AWS::Logs::LogGroup")
              if str(p.get("LogGroupName", "")).startswith("/aws/lambda/")]
    assert len(groups) == 15  # processor, remediation, API, authorizer, console, feed refresher, flags audit,
    #                           health canary, restore validator, rotate-secret, alerts, rate check, SIEM export,
    #                           trace purge, response jobs
    for _, group in groups:
        assert "KmsKeyId" in group
        assert group["RetentionInDays"] == prod.stacks.settings.env.log_retention_days
