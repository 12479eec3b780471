"""The import directions of docs/architecture.md hold (the contracts in .importlinter, also run by
`make lint`): adapters never import the processor or the wiring, nothing in the Lambda asset
imports the devstack, and no layer imports one above it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_lint_imports(config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "functions"), str(REPO)])}
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache", "--config", str(config)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_the_layer_contracts_are_kept():
    result = run_lint_imports(REPO / ".importlinter")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_adapter_importing_the_processor_breaks_a_contract(tmp_path):
    """The check can fail: a copy of the package where an adapter imports the processor is refused."""
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(REPO / "functions", copy / "functions", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "devstack", copy / "devstack", ignore=shutil.ignore_patterns("__pycache__", "*.mjs"))
    shutil.copy(REPO / ".importlinter", copy / ".importlinter")
    source = copy / "functions" / "swordfish" / "integrations" / "mail_source.py"
    source.write_text(source.read_text() + "\nfrom swordfish.pipeline.processor import Pipeline  # noqa\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(copy / "functions"), str(copy)])}
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=copy, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "swordfish.integrations.mail_source -> swordfish.pipeline.processor" in result.stdout
