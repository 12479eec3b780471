"""Least-privilege statements for the function roles.

CDK's `grant_*` helpers use action wildcards (`s3:GetObject*`, `kms:GenerateDataKey*`, the DynamoDB
stream actions); these name exactly the actions the code calls, so the policies hold no wildcard
actions at all.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo


def _kms(role: iam.IRole, key: kms.IKey, *actions: str) -> None:
    role.add_to_principal_policy(iam.PolicyStatement(actions=sorted(set(actions)), resources=[key.key_arn]))


def send_to_queue(role: iam.IRole, queue: sqs.IQueue, key: kms.IKey) -> None:
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
        resources=[queue.queue_arn]))
    # SSE-KMS producers need a data key; Decrypt lets SQS reuse it.
    _kms(role, key, "kms:GenerateDataKey", "kms:Decrypt")


def _objects_of(role: iam.IRole, bucket: s3.IBucket) -> str:
    # Object ARNs need the key part and object keys are generated per submission, so "<bucket>/*" is
    # the narrowest resource there is.
    NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="Objects of one bucket: keys are generated per submission, so the ARN ends in /*.",
        # Same-stack form <LargeMailXXXX.Arn>/*, cross-stack export form <stack>:ExportsOutput..LargeMail..Arn../*
        # and weak-reference form {"Fn::GetStackOutput":{..."OutputName":"PublishOutput..LargeMail..Arn.."}}/*
        applies_to=[RegexAppliesTo(
            regex=rf"/^Resource::.*{bucket.node.id}[A-Za-z0-9]*(\.Arn>|Arn[A-Za-z0-9]*(\"\}}\}})?)\/\*$/g")],
    )], apply_to_children=True)
    return bucket.arn_for_objects("*")


def read_objects(role: iam.IRole, bucket: s3.IBucket, key: kms.IKey) -> None:
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["s3:GetObject"], resources=[_objects_of(role, bucket)]))
    _kms(role, key, "kms:Decrypt")


def write_objects(role: iam.IRole, bucket: s3.IBucket, key: kms.IKey) -> None:
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[_objects_of(role, bucket)]))
    _kms(role, key, "kms:GenerateDataKey", "kms:Decrypt")


def read_secret(role: iam.IRole, secret: secretsmanager.ISecret) -> None:
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
        resources=[secret.secret_arn]))


def read_api_key(role: iam.IRole, key: apigw.IApiKey) -> None:
    """``apigateway:GetApiKey`` (its IAM action is GET on the key's path) on this one key only."""
    stack = Stack.of(key)
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["apigateway:GET"],
        resources=[f"arn:{stack.partition}:apigateway:{stack.region}::/apikeys/{key.key_id}"]))


def read_write_items(role: iam.IRole, table: dynamodb.ITableV2, key: kms.IKey) -> None:
    role.add_to_principal_policy(iam.PolicyStatement(
        # Breaker state: conditional puts/updates, forced changes written with their audit item in one
        # transaction (authorised as the PutItem/UpdateItem/ConditionCheckItem it contains), and a scan
        # of the (small) table for `swordfish breakers`.
        actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                 "dynamodb:Query", "dynamodb:Scan", "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"],
        resources=[table.table_arn]))
    _kms(role, key, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")


def read_flags(role: iam.IRole, configuration_arn: str) -> None:
    """What the AppConfig Agent extension calls, for exactly one environment's one profile."""
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"],
        resources=[configuration_arn]))


def read_queue_depth(role: iam.IRole, queue: sqs.IQueue) -> None:
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["sqs:GetQueueAttributes"], resources=[queue.queue_arn]))


def read_metric_statistics(role: iam.IRole) -> None:
    # CloudWatch's GetMetricStatistics takes no resource ARN: "*" is the only resource it accepts.
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["cloudwatch:GetMetricStatistics"], resources=["*"]))


def read_items(role: iam.IRole, table: dynamodb.ITableV2, key: kms.IKey) -> None:
    """Consistent reads of single items (the health canary reads every breaker's state)."""
    role.add_to_principal_policy(iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=[table.table_arn]))
    _kms(role, key, "kms:Decrypt")
