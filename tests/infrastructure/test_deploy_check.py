"""`make deploy-check`'s own pieces (scripts/deploy_check.py), fast: the run itself is `make deploy-check`."""

from __future__ import annotations

import json

from scripts import deploy_check


def test_stacks_are_created_in_dependency_order(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": {
        "B": {"type": "aws:cloudformation:stack", "environment": "aws://1/eu-west-1", "dependencies": ["A", "B.assets"]},
        "C": {"type": "aws:cloudformation:stack", "environment": "aws://1/eu-west-1", "dependencies": ["B"]},
        "A": {"type": "aws:cloudformation:stack", "environment": "aws://1/eu-central-1"},
        "B.assets": {"type": "cdk:asset-manifest"},
    }}))
    assert deploy_check.stack_order(tmp_path) == [("A", "1", "eu-central-1"), ("B", "1", "eu-west-1"),
                                                   ("C", "1", "eu-west-1")]


def test_what_moto_cannot_model_is_left_out_and_references_resolve():
    template = {"Rules": {"CheckBootstrapVersion": {}}, "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": {"Fn::GetStackOutput": {"StackName": "Data", "OutputName": "KeyArn"}}}},
        "Acl": {"Type": "AWS::WAFv2::WebACL", "Properties": {}},
        "Fn": {"Type": "AWS::Lambda::Function", "DependsOn": ["Acl", "Queue"], "Properties": {
            "Environment": {"Variables": {"ACL": {"Fn::GetAtt": ["Acl", "Arn"]}, "Q": {"Ref": "Queue"},
                                          "MISSING": {"Fn::GetStackOutput": {"StackName": "Gone", "OutputName": "X"}}}}}},
    }}
    body, removed = deploy_check.prune_for_moto(template, {"AWS::SQS::Queue", "AWS::Lambda::Function"},
                                                {"Data": {"KeyArn": "arn:aws:kms:eu-west-1:1:key/k"}})
    assert removed == {"Acl"} and "Rules" not in body and set(body["Resources"]) == {"Queue", "Fn"}
    assert body["Resources"]["Queue"]["Properties"]["QueueName"] == "arn:aws:kms:eu-west-1:1:key/k"
    variables = body["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]
    assert variables["ACL"].startswith("arn:aws:") and "Acl.Arn" in variables["ACL"]
    assert variables["Q"] == {"Ref": "Queue"} and variables["MISSING"].startswith("arn:aws:")
    assert body["Resources"]["Fn"]["DependsOn"] == ["Queue"]


def test_a_pooler_test_that_is_not_there_is_skipped_with_its_reason(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(deploy_check, "POOLER_TEST", tmp_path / "test_behind_pooler.py")
    report = deploy_check.Report()
    deploy_check.pooled_database(report)
    assert report.results[0][0] == "SKIP" and not report.failed
    assert "not in this tree" in capsys.readouterr().out


def test_the_first_deploy_steps_are_complete_and_in_order():
    from cdk_helpers import REPO_ROOT

    text = (REPO_ROOT / "docs" / "deploy.md").read_text()
    steps = text[text.index("## First deploy, in order"):]
    steps = steps[:steps.index("\n## ", 10)]
    in_order = ["cdk bootstrap", "make deploy-check", "cdk deploy --all", "swordfish/nango", "bootstrap(",
                "GRANT pg_read_all_data TO swordfish_master", "swordfish db migrate", '"db_users_created": true',
                "swordfish tenants create"]
    positions = [steps.find(marker) for marker in in_order]
    assert -1 not in positions, [m for m, p in zip(in_order, positions, strict=True) if p == -1]
    assert positions == sorted(positions)
    assert "docs/deploy.md" in (REPO_ROOT / "README.md").read_text()
