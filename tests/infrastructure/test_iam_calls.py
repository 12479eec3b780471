"""IAM as on AWS: every AWS call each function's code makes (scripts/iam_check.py CALLS) against the
statements the synthesised templates give that function's role."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import botocore.session
import pytest
from cdk_helpers import ENVIRONMENTS, REPO_ROOT

from scripts import iam_check
from scripts.template_limits import load_templates


@pytest.fixture(scope="module")
def templates(synthesised) -> dict[str, dict]:
    return {env: load_templates(synthesised[env].outdir) for env in ENVIRONMENTS}


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_call_of_every_function_is_allowed_by_its_role(templates, env_name):
    denied, figures = iam_check.check(templates[env_name])
    assert not denied, "\n".join(map(str, denied))
    assert not figures["not_deployed"], f"CALLS names functions the app does not build: {figures['not_deployed']}"
    assert not figures["undeclared_functions"], f"functions without declared calls: {figures['undeclared_functions']}"
    assert figures["functions"] == 15 and figures["calls"] > 150


def test_a_call_the_role_does_not_allow_is_denied(templates):
    """The evaluation can fail: actions, resources and cross-stack ARNs are really compared."""
    processor = iam_check.c.PROCESSOR_FUNCTION_NAME
    calls = {processor: [
        ("sqs:DeleteQueue", iam_check.EMAILS),  # an action no statement names
        ("sqs:SendMessage", "queue:someone-elses-queue"),  # a resource no statement names
        ("secretsmanager:GetSecretValue", iam_check.secret(iam_check.c.DB_MASTER_SECRET_NAME)),
        ("sqs:SendMessage", iam_check.DLQ),  # allowed (through an import from the Pipeline stack)
    ]}
    denied, _ = iam_check.check(templates["prod"], calls)
    assert [d.action for d in denied] == ["sqs:DeleteQueue", "sqs:SendMessage", "secretsmanager:GetSecretValue"]


# --- the list covers the code: every boto3 operation the shipped code calls is declared ----------

SERVICES = ("sqs", "s3", "secretsmanager", "dynamodb", "appconfig", "appconfigdata", "cloudwatch", "apigateway",
            "backup", "rds", "kms")
# Operations the shipped code calls only from operator commands (the CLI, run with the operator's
# credentials, never by a function) or to create local tables in the embedded stack.
OPERATOR_ONLY = {
    "apigateway:CreateApiKey", "apigateway:CreateUsagePlanKey", "apigateway:GetApiKeys", "apigateway:GetUsagePlanKey",
    "dynamodb:CreateTable", "dynamodb:UpdateTimeToLive", "dynamodb:Scan", "dynamodb:DeleteBackup",
    "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey",  # backup/envelope.py (CLI)
    "secretsmanager:ListSecretVersionIds",  # security/commands.py (CLI)
    "s3:ListObjectsV2",  # raw_archive.since: the replay after a restore (swordfish backup replay)
    # queues.DeadLetters: `swordfish dlq` (CLI); the console's DLQ page only where the console is given the
    # queue URLs (make serve): the CDK console function is not, so it has no SQS statement to check
    "sqs:ChangeMessageVisibility",
}
# Method names that are operations of some service but are not AWS calls where the code uses them.
NOT_AWS = {"get", "put", "delete", "update", "list", "copy", "close", "send", "describe", "verify", "encrypt",
           "decrypt", "get_stage", "scan", "tag_resource"}
IAM_ACTION = {"apigateway:GetApiKey": "apigateway:GET", "sqs:SendMessageBatch": "sqs:SendMessage",
              "dynamodb:TransactWriteItems": "dynamodb:PutItem"}


def _operations() -> dict[str, list[str]]:
    session = botocore.session.get_session()
    by_method: dict[str, list[str]] = {}
    for service in SERVICES:
        for operation in session.get_service_model(service).operation_names:
            method = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
            by_method.setdefault(method, []).append(f"{service}:{operation}")
    return by_method


def _called_methods(root: Path) -> dict[str, set[str]]:
    called: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                called.setdefault(node.func.attr, set()).add(str(path.relative_to(root)))
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant)):
                called.setdefault(str(node.args[0].value), set()).add(str(path.relative_to(root)))
    return called


def test_every_aws_operation_in_the_shipped_code_is_declared_for_some_function():
    declared = {action.lower() for calls in iam_check.CALLS.values() for action, _ in calls}
    operations = _operations()
    missing = []
    for method, files in sorted(_called_methods(REPO_ROOT / "functions").items()):
        if method in NOT_AWS or method not in operations:
            continue
        candidates = [IAM_ACTION.get(op, op) for op in operations[method]]
        if not any(op.lower() in declared or op in OPERATOR_ONLY for op in candidates):
            missing.append(f"{method} ({', '.join(operations[method])}) in {', '.join(sorted(files))}")
    assert not missing, "AWS calls not declared in scripts/iam_check.py CALLS:\n" + "\n".join(missing)
