"""Small readers over synthesised templates (plain dicts from `Template.to_json()`)."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk.assertions import Template

ENVIRONMENTS = ("prod", "dev")  # every environment in cdk.json is synthesised and checked
REPO_ROOT = Path(__file__).resolve().parents[2]


def cdk_context(**overrides: object) -> dict:
    """cdk.json's context, as `cdk synth` would pass it, with overrides (like `-c key=value`)."""
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context.update(overrides)
    return context


def resources(template: Template, resource_type: str) -> dict[str, dict]:
    return {lid: r for lid, r in template.to_json()["Resources"].items() if r["Type"] == resource_type}


def props(template: Template, resource_type: str) -> list[dict]:
    return [r.get("Properties", {}) for r in resources(template, resource_type).values()]


def only(template: Template, resource_type: str) -> dict:
    found = props(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return found[0]


def by_property(template: Template, resource_type: str, key: str, value: object) -> dict:
    matches = [p for p in props(template, resource_type) if p.get(key) == value]
    assert len(matches) == 1, f"expected one {resource_type} with {key}={value!r}, found {len(matches)}"
    return matches[0]


def as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


def policy_statements(template: Template) -> list[tuple[str, dict]]:
    """Every identity-policy statement of every role and policy, with the owning logical id."""
    found = []
    for resource_type in ("AWS::IAM::Policy", "AWS::IAM::Role", "AWS::IAM::ManagedPolicy"):
        for lid, resource in resources(template, resource_type).items():
            p = resource.get("Properties", {})
            documents = [pol["PolicyDocument"] for pol in p.get("Policies", [])]
            if "PolicyDocument" in p:
                documents.append(p["PolicyDocument"])
            for document in documents:
                found.extend((lid, statement) for statement in document["Statement"])
    return found


def refers_to(value: object, logical_id_prefix: str) -> bool:
    """True if an intrinsic (Ref/GetAtt, possibly inside Join) names a resource with this prefix."""
    if isinstance(value, dict):
        if "Ref" in value and str(value["Ref"]).startswith(logical_id_prefix):
            return True
        if "Fn::GetAtt" in value and str(value["Fn::GetAtt"][0]).startswith(logical_id_prefix):
            return True
        return any(refers_to(v, logical_id_prefix) for v in value.values())
    if isinstance(value, list):
        return any(refers_to(v, logical_id_prefix) for v in value)
    return False


def cloud_assembly_findings(outdir: Path, levels: tuple[str, ...] = ("error", "warning")) -> list[str]:
    """Every annotation of the given levels (`aws:cdk:error`, ...) that synthesis wrote for any stack, read from
    the cloud assembly, as `cdk synth` reports them. Reading the files costs milliseconds where asking each stack
    through `Annotations.from_stack` cost 20 s per environment."""
    wanted = {f"aws:cdk:{level}" for level in levels}
    manifest = json.loads((outdir / "manifest.json").read_text())
    findings = []
    for name, artifact in manifest["artifacts"].items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        metadata = dict(artifact.get("metadata") or {})
        if extra := artifact.get("additionalMetadataFile"):  # newer CDK writes a stack's metadata beside it
            metadata.update(json.loads((outdir / extra).read_text()))
        findings.extend(f"{name} {path}: {str(entry.get('data'))[:160]}"
                        for path, entries in metadata.items() for entry in entries if entry["type"] in wanted)
    return findings
