"""A deploy rehearsal, offline: what would block `npx cdk deploy --all` before it is run.

    .venv/bin/python scripts/deploy_check.py [--env prod] [--outdir cdk.out.deploy-check]  (make deploy-check)

Checks, each printed PASS / FAIL / SKIP with its name:
1. synth: the CDK app for the environment, with cdk-nag (synthesis fails on an unsuppressed finding);
   `bundle_dependencies=false`, so no package index is needed (the layer holds a marker file).
2. cfn-lint over every template.
3. the service limits cfn-lint does not know (scripts/template_limits.py).
4. IAM: every AWS call of every function against its role (scripts/iam_check.py).
5. the database behind a transaction pooler (tests/store/test_behind_pooler.py, when present).
6. CloudFormation rehearsal: every stack created in moto's CloudFormation, in dependency order, with
   the weak cross-stack references (Fn::GetStackOutput) resolved from the stacks created before it.
   moto models only some resource types: the report names, per stack, what it created and the types
   it could not check. A stack moto cannot create at all is reported, not failed: moto is not AWS.

Exit status 1 when a check fails. What it cannot know (quotas of the account, service-side
validation moto does not model) is listed at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "functions")]
VENV_BIN = Path(sys.executable).parent
POOLER_TEST = REPO / "tests" / "store" / "test_behind_pooler.py"
# What deploying needs that no local check sees.
NOT_CHECKED = (
    "account quotas: Lambda concurrency (docs/deploy.md: reserved + 100 unreserved), VPC endpoints, EIPs",
    "the CDK bootstrap stack in both regions (`npx cdk bootstrap`), and the real dependencies layer "
    "(this synth used bundle_dependencies=false)",
    "service-side validation moto does not model (WAF rule syntax, RDS engine/class availability in the "
    "region, AWS Backup restore-testing metadata keys)",
)


class Report:
    def __init__(self) -> None:
        self.results: list[tuple[str, str, list[str]]] = []

    def add(self, status: str, name: str, details: list[str] | None = None) -> None:
        self.results.append((status, name, details or []))
        print(f"{status:4}  {name}", flush=True)
        for line in details or []:
            print(f"      {line}", flush=True)

    @property
    def failed(self) -> list[str]:
        return [name for status, name, _ in self.results if status == "FAIL"]


def synth(env_name: str, outdir: Path, report: Report) -> bool:
    started = time.monotonic()
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    command = ["npx", "cdk", "synth", "--quiet", "-c", f"env={env_name}", "-c", "bundle_dependencies=false",
               "-c", "nag=true", "-o", str(outdir)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    stacks = sorted(p.name.removesuffix(".template.json") for p in outdir.glob("*.template.json"))
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        report.add("FAIL", "synth with cdk-nag", tail)
        return False
    # cdk-nag's own reports: a finding neither compliant nor suppressed blocks the deploy.
    import csv

    rows = [row for report_file in sorted(outdir.glob("AwsSolutions-*-NagReport.csv"))
            for row in csv.DictReader(report_file.open())]
    open_findings = [f"{r['Rule ID']} {r['Resource ID']}" for r in rows
                     if r["Compliance"] not in ("Compliant", "Suppressed") and r["Rule Level"] == "Error"]
    details = [f"{len(stacks)} stacks in {time.monotonic() - started:.0f} s: {', '.join(stacks)}",
               f"cdk-nag: {len(rows)} rule results, {sum(r['Compliance'] == 'Suppressed' for r in rows)} suppressed "
               f"with a reason, {len(open_findings)} open", *open_findings[:20]]
    report.add("FAIL" if open_findings else "PASS", "synth with cdk-nag", details)
    return True


def cfn_lint(outdir: Path, report: Report) -> None:
    # W3005: CDK's own redundant DependsOn; W3010: availability zones pinned on purpose (offline synth).
    done = subprocess.run([str(VENV_BIN / "cfn-lint"), "--ignore-checks", "W3005", "W3010", "--",
                           *map(str, sorted(outdir.glob("*.template.json")))], capture_output=True, text=True)
    findings = [line for line in done.stdout.splitlines() if line.strip()]
    report.add("PASS" if done.returncode == 0 else "FAIL", "cfn-lint", findings[:20])


def limits(templates: dict, env_name: str, report: Report) -> None:
    from scripts import template_limits

    plans = template_limits.plans_for(env_name)
    for name, findings in template_limits.run_checks(templates, plans).items():
        details = [str(f) for f in findings]
        if name.startswith("database connections"):
            _, figures = template_limits.check_connection_budget(templates, plans)
            details.append(f"demand {figures['demand']} of budget {figures['budget']} ({plans.db_instance_class}: "
                           f"max_connections {figures['max_connections']} x {figures['proxy_percent']}%); "
                           f"unreserved: {', '.join(figures['unreserved']) or 'none'}")
        report.add("FAIL" if findings else "PASS", f"limits: {name}", details)


def iam(templates: dict, report: Report) -> None:
    from scripts import iam_check

    denied, figures = iam_check.check(templates)
    details = [str(d) for d in denied]
    if figures["undeclared_functions"]:
        details.append(f"functions with no declared calls: {', '.join(figures['undeclared_functions'])}")
    report.add("FAIL" if details else "PASS",
               f"iam: {figures['calls']} AWS calls of {figures['functions']} functions against their roles", details)


def pooled_database(report: Report) -> None:
    name = "database behind a transaction pooler (tests/store/test_behind_pooler.py)"
    if not POOLER_TEST.exists():
        report.add("SKIP", name, ["the file is not in this tree yet (issue 24, PgBouncer in front of PostgreSQL)"])
        return
    done = subprocess.run([str(VENV_BIN / "pytest"), "-q", "-p", "no:cacheprovider", str(POOLER_TEST)],
                          cwd=REPO, capture_output=True, text=True)
    summary = [line for line in done.stdout.splitlines() if line.strip()][-1:]
    report.add("PASS" if done.returncode == 0 else "FAIL", name,
               summary if done.returncode == 0 else done.stdout.splitlines()[-20:])


# --- the CloudFormation rehearsal in moto ---------------------------------------------------------

def stack_order(outdir: Path) -> list[tuple[str, str, str]]:
    """(stack, account, region) in dependency order, from the cloud assembly's manifest."""
    artifacts = json.loads((outdir / "manifest.json").read_text())["artifacts"]
    stacks = {k: a for k, a in artifacts.items() if a["type"] == "aws:cloudformation:stack"}
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for dependency in stacks[name].get("dependencies", []):
            if dependency in stacks:
                visit(dependency)
        ordered.append(name)

    for name in stacks:
        visit(name)
    return [(n, *stacks[n]["environment"].removeprefix("aws://").split("/")) for n in ordered]


def _placeholder(name: str) -> str:
    # ARN-shaped: moto checks that policy resources are ARNs.
    return f"arn:aws:not-created-in-moto:eu-west-1:111111111111:{name}"


# moto 5 gives these a generated name it does not return for Ref (the Ref yields the model object):
# properties that name them are left out, so moto uses its default.
MOTO_UNREFERENCEABLE = {"AWS::RDS::DBParameterGroup"}


def _substitute(value: object, outputs: dict[str, dict[str, str]], removed: set[str]) -> object:
    """Weak references -> the producing stack's output (as created in moto, or a placeholder when moto
    could not create it); references to resources left out -> placeholder strings."""
    if isinstance(value, dict):
        if set(value) == {"Fn::GetStackOutput"}:
            ref = value["Fn::GetStackOutput"]
            return outputs.get(ref["StackName"], {}).get(ref["OutputName"], _placeholder(ref["OutputName"]))
        if set(value) == {"Ref"} and value["Ref"] in removed:
            return _placeholder(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            target = value["Fn::GetAtt"]
            lid, attribute = target if isinstance(target, list) else target.split(".", 1)
            if lid in removed:
                return _placeholder(f"{lid}.{attribute}")
        return {k: _substitute(v, outputs, removed) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, outputs, removed) for v in value]
    return value


def prune_for_moto(template: dict, modelled: set[str], outputs: dict[str, dict[str, str]]) -> tuple[dict, set[str]]:
    """The template without the resources moto does not model (and custom resources, whose handlers
    would have to run), every reference to them a placeholder."""
    template = json.loads(json.dumps(template))
    for lid, r in template["Resources"].items():
        if r["Type"] in MOTO_UNREFERENCEABLE:
            for user in template["Resources"].values():
                properties = user.get("Properties", {})
                for key in [k for k, v in properties.items() if v == {"Ref": lid}]:
                    del properties[key]
    removed = {lid for lid, r in template["Resources"].items() if r["Type"] not in modelled
               or r["Type"].startswith("Custom::") or r["Type"] == "AWS::CloudFormation::CustomResource"}
    body = {k: v for k, v in template.items() if k != "Rules"}
    body["Resources"] = {lid: dict(r) for lid, r in template["Resources"].items() if lid not in removed}
    for resource in body["Resources"].values():
        depends = [d for d in (resource.get("DependsOn") or []) if d not in removed] if isinstance(
            resource.get("DependsOn"), list) else ([] if resource.get("DependsOn") in removed else resource.get("DependsOn"))
        if depends:
            resource["DependsOn"] = depends
        else:
            resource.pop("DependsOn", None)
    return _substitute(body, outputs, removed), removed


def _publish_assets(outdir: Path, stack: str, clients) -> int:
    """What `cdk deploy` uploads first: each file asset zipped into the bootstrap bucket."""
    manifest = outdir / f"{stack}.assets.json"
    if not manifest.exists():
        return 0
    count = 0
    for asset in json.loads(manifest.read_text()).get("files", {}).values():
        source = outdir / asset["source"]["path"]
        for destination in asset["destinations"].values():
            s3 = clients("s3", destination["region"])
            try:
                s3.create_bucket(Bucket=destination["bucketName"], CreateBucketConfiguration={
                    "LocationConstraint": destination["region"]})
            except s3.exceptions.BucketAlreadyOwnedByYou:
                pass
            if source.is_dir():
                buffer = io.BytesIO()
                with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                    for path in sorted(source.rglob("*")):
                        if path.is_file() and "__pycache__" not in path.parts:
                            archive.write(path, path.relative_to(source))
                body = buffer.getvalue()
            else:
                body = source.read_bytes()
            s3.put_object(Bucket=destination["bucketName"], Key=destination["objectKey"], Body=body)
            count += 1
    return count


def moto_rehearsal(outdir: Path, templates: dict, report: Report) -> None:
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1", "MOTO_ALLOW_NONEXISTENT_REGION": "true"})
    import boto3
    from moto import mock_aws
    from moto.cloudformation.parsing import get_model_map

    modelled = set(get_model_map())
    outputs: dict[str, dict[str, str]] = {}
    created_all = True
    with mock_aws():
        def clients(service: str, region: str):
            return boto3.client(service, region_name=region)

        for region in {r for _, _, r in stack_order(outdir)}:
            clients("ssm", region).put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String")
        for stack, _account, region in stack_order(outdir):
            template = templates[stack]
            types = [r["Type"] for r in template["Resources"].values()]
            unmodelled = sorted({t for t in types if t not in modelled and not t.startswith("Custom::")
                                 and t != "AWS::CDK::Metadata"})
            custom = sorted({t for t in types if t.startswith("Custom::")})
            _publish_assets(outdir, stack, clients)
            body, removed = prune_for_moto(template, modelled, outputs)
            cfn = clients("cloudformation", region)
            try:
                cfn.create_stack(StackName=stack, TemplateBody=json.dumps(body),
                                 Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
                described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
                status = described["StackStatus"]
            except Exception as exc:  # moto raises what it cannot model; the report says so
                status, described = f"{type(exc).__name__}: {str(exc)[:300]}", {}
            outputs[stack] = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
            done = status == "CREATE_COMPLETE"
            created_all &= done
            created = len(cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]) if done else 0
            details = [f"{created} of {len(types) - len(removed)} modelled resources created "
                       f"({len(removed)} of {len(types)} left out); outputs {len(outputs[stack])}"]
            if unmodelled:
                details.append(f"types moto does not model (not checked): {', '.join(unmodelled)}")
            if custom:
                details.append(f"custom resources (their Lambda handlers are not run): {', '.join(custom)}")
            if not done:
                details.append(f"moto could not create it: {status}")
            report.add("PASS" if done else "WARN", f"moto CloudFormation: {stack} ({region})", details)
    if not created_all:
        print("      (WARN: moto's own limits, not a deploy blocker by themselves; see the reasons above)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="prod", help="environment of cdk.json (default prod)")
    parser.add_argument("--outdir", type=Path, default=REPO / "cdk.out.deploy-check")
    parser.add_argument("--skip-moto", action="store_true", help="leave out the CloudFormation rehearsal")
    args = parser.parse_args(argv)
    from scripts.template_limits import load_templates

    report = Report()
    print(f"deploy check of env={args.env} (offline) into {args.outdir}", flush=True)
    if args.outdir.exists():
        for stale in args.outdir.glob("*.template.json"):
            stale.unlink()
    if synth(args.env, args.outdir, report):
        templates = load_templates(args.outdir)
        cfn_lint(args.outdir, report)
        limits(templates, args.env, report)
        iam(templates, report)
        pooled_database(report)
        if not args.skip_moto:
            moto_rehearsal(args.outdir, templates, report)
    else:
        pooled_database(report)
    print()
    if report.failed:
        print(f"would block a first deploy: {len(report.failed)} failed check(s):")
        for name in report.failed:
            print(f"  - {name}")
    else:
        print("nothing found that would block a first deploy")
    print("not checked here:")
    for line in NOT_CHECKED:
        print(f"  - {line}")
    counts = {s: sum(1 for r in report.results if r[0] == s) for s in ("PASS", "FAIL", "WARN", "SKIP")}
    print(f"deploy-check: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['WARN']} warned, "
          f"{counts['SKIP']} skipped")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
