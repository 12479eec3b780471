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


def _copy_of_the_code(tmp_path) -> Path:
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(REPO / "functions", copy / "functions", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "devstack", copy / "devstack", ignore=shutil.ignore_patterns("__pycache__", "*.mjs"))
    shutil.copy(REPO / ".importlinter", copy / ".importlinter")
    return copy


def _lint_copy(copy: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(copy / "functions"), str(copy)])}
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache", "--no-logo"], cwd=copy,
                          env=env, capture_output=True, text=True, timeout=120)


def test_the_two_former_circles_cannot_come_back(tmp_path):
    """Issue 29 broke health_deep <-> health_progress and console.app <-> console.views; putting either
    reverse import back breaks the contracts that name it (and the general no-circles one)."""
    copy = _copy_of_the_code(tmp_path)
    package = copy / "functions" / "swordfish"
    progress = package / "api" / "health_progress.py"
    progress.write_text(progress.read_text() + "\nfrom swordfish.api.health_deep import COMPONENTS  # noqa\n")
    users = package / "console" / "views" / "users.py"
    users.write_text(users.read_text() + "\nfrom swordfish.console.app import PREFIX  # noqa\n")
    result = _lint_copy(copy)
    assert result.returncode != 0
    out = " ".join(result.stdout.split())  # the report wraps long contract names
    for contract in ("no import circles among the API's modules or among the console's BROKEN",
                     "deep health imports the progress checks, never the reverse; both share health_model BROKEN",
                     "console: app registers the views, the views use access, nothing reaches back up BROKEN"):
        assert contract in out, result.stdout
    assert "swordfish.api.health_progress -> swordfish.api.health_deep" in result.stdout
    assert "swordfish.console.views.users -> swordfish.console.app" in result.stdout


def test_one_console_area_importing_another_breaks_a_contract(tmp_path):
    copy = _copy_of_the_code(tmp_path)
    keys = copy / "functions" / "swordfish" / "console" / "views" / "keys.py"
    keys.write_text(keys.read_text() + "\nfrom swordfish.console.views.users import users  # noqa\n")
    result = _lint_copy(copy)
    assert result.returncode != 0
    assert "swordfish.console.views.keys -> swordfish.console.views.users" in result.stdout
