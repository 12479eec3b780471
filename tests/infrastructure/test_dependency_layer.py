"""The Lambda dependencies layer: built from requirements.lock (the versions the tests run with), and
enough on its own to import every handler.

Lambda runs arm64 Python 3.12; this machine is not that. The default import test therefore builds a
host-platform copy of the same lock (the locked distributions as `make install` put them in .venv:
same names, same versions) and imports every handler in a fresh interpreter whose only paths are
that copy, `functions/` and the standard library. The slow test pip-installs the real aarch64 layer
(needs the package index) and checks what it holds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
from cdk_helpers import REPO_ROOT, props, resources
from packaging.requirements import Requirement

from stacks.constructs.lambda_function import (
    LAMBDA_UNZIPPED_LIMIT_BYTES,
    LOCK_FILE,
    PIP_PLATFORMS,
    PIP_PYTHON_VERSION,
    PipWheelsBundling,
    locked_pins,
    pip_install_command,
)

FUNCTIONS = REPO_ROOT / "functions"
HANDLER_MODULES = sorted(f"handlers.{p.stem}" for p in (FUNCTIONS / "handlers").glob("*.py") if p.stem != "__init__")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_lock_pins_every_runtime_requirement_within_its_range():
    pins = locked_pins()
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        name = _normalise(requirement.name)
        assert name in pins, f"{name} is in requirements.txt but not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement.specifier}: run `make lock`")


def test_every_locked_pin_carries_a_hash():
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK_FILE.read_text().split("\n", 6)[-1])
    pinned = [e for e in entries if "==" in e.split("\n", 1)[0]]
    assert len(pinned) == len(locked_pins())
    for entry in pinned:
        assert "--hash=sha256:" in entry, entry.split("\n", 1)[0]


def test_the_tests_run_exactly_the_locked_versions():
    """`make install` installs the lock: what the suite imports is what the layer ships."""
    for name, version in locked_pins().items():
        assert metadata.version(name) == version, f"{name}: .venv has {metadata.version(name)}, lock {version}"


def test_powertools_with_the_circuit_breaker_is_locked():
    assert Requirement(f"aws-lambda-powertools=={locked_pins()['aws-lambda-powertools']}").specifier.contains("3.37.0")
    import aws_lambda_powertools.utilities.circuit_breaker  # noqa: F401 - the module the code needs


def test_layer_is_pip_installed_from_the_lock_for_lambda(tmp_path):
    command = pip_install_command(tmp_path)
    assert command[command.index("-r") + 1] == str(LOCK_FILE)
    assert {"--no-deps", "--require-hashes", "--only-binary=:all:"} <= set(command)
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"] == list(PIP_PLATFORMS)
    assert all(p.endswith("_aarch64") for p in PIP_PLATFORMS)
    assert command[command.index("--python-version") + 1] == PIP_PYTHON_VERSION == "3.12"
    assert command[command.index("--target") + 1] == str(tmp_path)


def test_unbundled_layer_marker_lists_the_locked_pins(tmp_path):
    PipWheelsBundling(LOCK_FILE, install=False).try_bundle(str(tmp_path), None)
    marker = (tmp_path / "python" / "DEPENDENCIES_NOT_BUNDLED.txt").read_text()
    assert "do not deploy" in marker
    assert f"aws-lambda-powertools=={locked_pins()['aws-lambda-powertools']}" in marker.splitlines()


def test_no_function_takes_powertools_from_a_public_layer(prod):
    functions = [f for t in prod.templates.values() for f in props(t, "AWS::Lambda::Function")
                 if str(f.get("FunctionName", "")).startswith("swordfish")]
    assert functions
    for fn in functions:
        layers = json.dumps(fn["Layers"])
        assert "Powertools" not in layers and "017000801446" not in layers, fn["FunctionName"]
        assert "Dependencies" in layers
    for template in prod.templates.values():
        for layer in resources(template, "AWS::Lambda::LayerVersion").values():
            assert f"Powertools {locked_pins()['aws-lambda-powertools']}" in layer["Properties"]["Description"]


def _host_layer_from_venv(target: Path) -> int:
    """Copy every locked distribution's installed files (from its RECORD) into ``target``; returns bytes."""
    size = 0
    for name, version in locked_pins().items():
        dist = metadata.distribution(name)
        assert dist.version == version
        root = Path(dist.locate_file("")).resolve()
        for file in dist.files or []:
            source = Path(dist.locate_file(file)).resolve()
            if root not in source.parents or "__pycache__" in source.parts or not source.is_file():
                continue  # console scripts under bin/, byte-code caches
            destination = target / source.relative_to(root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
            size += destination.stat().st_size
    return size


_IMPORT_EVERY_HANDLER = """
import importlib, json, sys, sysconfig
modules = json.loads(sys.argv[1])
allowed = json.loads(sys.argv[2])
for name in modules:
    importlib.import_module(name)
outside = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())} - {""})
outside = [f for f in outside if not any(f.startswith(root) for root in allowed)]
print(json.dumps({"imported": modules, "outside": outside, "path": sys.path}))
"""


def _import_handlers(layer: Path) -> dict:
    stdlib = {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}
    allowed = [str(layer), str(FUNCTIONS), *sorted(stdlib)]
    # -S: no site module, so not even .venv's site-packages is on sys.path (-I would also drop PYTHONPATH).
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "PYTHONPATH": f"{layer}{os.pathsep}{FUNCTIONS}",
           "PYTHONDONTWRITEBYTECODE": "1", "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1",
           "POWERTOOLS_SERVICE_NAME": "swordfish", "POWERTOOLS_METRICS_NAMESPACE": "Swordfish",
           "POWERTOOLS_TRACE_DISABLED": "1", "SWORDFISH_ENVIRONMENT": "prod"}
    result = subprocess.run(
        [sys.executable, "-s", "-S", "-c", _IMPORT_EVERY_HANDLER, json.dumps(HANDLER_MODULES), json.dumps(allowed)],
        env=env, cwd=layer, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"a handler failed to import from the layer alone:\n{result.stderr[-4000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_handler_imports_from_the_layer_contents_alone(tmp_path):
    layer = tmp_path / "python"
    size = _host_layer_from_venv(layer)
    assert size < LAMBDA_UNZIPPED_LIMIT_BYTES
    report = _import_handlers(layer)
    assert report["imported"] == HANDLER_MODULES and len(HANDLER_MODULES) >= 6
    assert report["outside"] == [], "modules loaded from outside the layer, functions/ and the stdlib"
    assert not any("site-packages" in p for p in report["path"])


def test_a_layer_missing_powertools_fails_the_import_check(tmp_path):
    """The check can fail: without Powertools in the layer the handlers do not import."""
    layer = tmp_path / "python"
    _host_layer_from_venv(layer)
    shutil.rmtree(layer / "aws_lambda_powertools")
    with pytest.raises(AssertionError, match="aws_lambda_powertools"):
        _import_handlers(layer)


@pytest.mark.slow
def test_aarch64_layer_holds_every_locked_wheel_and_the_handlers_import_from_a_host_build(tmp_path):
    """Needs the package index: the real layer build, then the same lock for this machine's platform."""
    PipWheelsBundling(LOCK_FILE, install=True).try_bundle(str(tmp_path / "aarch64"), None)
    built = tmp_path / "aarch64" / "python"
    pins = locked_pins()
    installed = dict(p.name.removesuffix(".dist-info").rsplit("-", 1) for p in built.glob("*.dist-info"))
    installed = {_normalise(name): version for name, version in installed.items()}
    assert installed == pins
    assert (built / "aws_lambda_powertools" / "utilities" / "circuit_breaker").is_dir()
    assert list((built / "psycopg_binary").glob("*aarch64*.so"))
    assert sum(f.stat().st_size for f in built.rglob("*") if f.is_file()) < LAMBDA_UNZIPPED_LIMIT_BYTES

    host = tmp_path / "host" / "python"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes",
                    "--only-binary=:all:", "--target", str(host), "-r", str(LOCK_FILE)], check=True, timeout=900)
    assert _import_handlers(host)["outside"] == []
