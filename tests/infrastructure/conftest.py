"""Synthesises the CDK app once per test session, for prod and for dev, offline.

The context is cdk.json's, with `bundle_dependencies=false` (no package index needed: the
dependencies layer holds a marker file instead of the wheels) and cdk-nag on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App
from aws_cdk.assertions import Template
from cdk_helpers import ENVIRONMENTS, cdk_context

from stacks.app_builder import SwordfishStacks, build_app


@dataclass
class Synthesised:
    env_name: str
    app: App
    stacks: SwordfishStacks
    outdir: Path
    templates: dict[str, Template]  # by concern: "network", "data", ...

    def template_files(self) -> list[Path]:
        return sorted(self.outdir.glob("*.template.json"))


def synthesise(env_name: str, outdir: Path) -> Synthesised:
    app = App(context=cdk_context(env=env_name, bundle_dependencies=False, nag=True, release="test"),
              outdir=str(outdir))
    stacks = build_app(app)
    app.synth()
    templates = {concern: Template.from_stack(stack) for concern, stack in vars(stacks).items()
                 if stack is not None and concern != "settings"}
    return Synthesised(env_name=env_name, app=app, stacks=stacks, outdir=outdir, templates=templates)


@pytest.fixture(scope="session")
def synthesised(tmp_path_factory) -> dict[str, Synthesised]:
    return {env: synthesise(env, tmp_path_factory.mktemp(f"cdk-{env}")) for env in ENVIRONMENTS}


@pytest.fixture(scope="session")
def prod(synthesised) -> Synthesised:
    return synthesised["prod"]


@pytest.fixture(scope="session")
def dev(synthesised) -> Synthesised:
    return synthesised["dev"]
