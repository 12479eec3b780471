"""AppConfig deployment events reach the audit log; `swordfish flags` end to end; the agent as a process."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from types import SimpleNamespace

import pytest
from handlers import flags_audit
from swordfish import cli, constants, wiring
from swordfish.features import audit
from swordfish.features.repository import MotoRepository
from swordfish.features.store import VERSION_HEADER, agent_path
from swordfish.store.database import proxy_connect

from devstack.appconfig_agent import seed_flags
from devstack.services import _wait_http, free_port

CONTEXT = SimpleNamespace(
    function_name="flags-audit",
    memory_limit_in_mb=256,
    aws_request_id="req-1",
    invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:flags-audit",
)


@pytest.fixture()
def shared_store(moto_server, database, settings_env):
    """The real (constants-named) flag profile in moto, as `make run` seeds it."""
    settings_env(aws_endpoint_url=moto_server.url, database_url=database.app_url)
    wiring.reset()  # the flag-audit function's store and pool come from these settings
    seed_flags(moto_server.url)
    yield MotoRepository(moto_server.url)
    wiring.reset()


def deployment_event(
    version: str,
    *,
    detail_type="On Deployment Complete",
    profile=constants.APPCONFIG_FLAGS_PROFILE,
    event_id: str | None = None,
) -> dict:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.appconfig",
        "account": "123456789012",
        "time": "2026-11-26T10:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "InvocationId": "x1",
            "Type": "OnDeploymentComplete",
            "Application": {"Id": "a1", "Name": constants.APPCONFIG_APPLICATION},
            "Environment": {"Id": "e1", "Name": constants.APPCONFIG_ENVIRONMENT},
            "ConfigurationProfile": {"Id": "p1", "Name": profile},
            "Description": "changed in the console",
            "DeploymentNumber": "3",
            "ConfigurationVersion": version,
        },
    }


def test_console_deployments_are_audited_once_per_changed_flag(shared_store, database):
    base = shared_store.deployed().document
    v1 = shared_store.publish({**base, "auto_quarantine": {"default": False}}, "console")
    flags_audit.lambda_handler(deployment_event(v1), CONTEXT)
    v2 = shared_store.publish({**base, "auto_quarantine": {"default": True}}, "console")
    event = deployment_event(v2)

    first = flags_audit.lambda_handler(event, CONTEXT)
    again = flags_audit.lambda_handler(event, CONTEXT)  # EventBridge delivers at least once

    assert (first, again) == ({"recorded": 1}, {"recorded": 0})
    with proxy_connect(database.app_url) as conn:
        row = audit.history(conn, shared_store.key, "auto_quarantine", limit=1)[0]
    assert (row.source, row.action, row.config_version, row.previous_version) == (
        "appconfig-deployment",
        "deployment",
        v2,
        v1,
    )
    assert (row.before, row.after, row.reason) == (
        {"default": False},
        {"default": True},
        "changed in the console",
    )


def test_deployment_events_of_other_profiles_or_stages_are_ignored(shared_store):
    version = shared_store.deployed_version()
    assert flags_audit.lambda_handler(deployment_event(version, profile="other"), CONTEXT)["recorded"] == 0
    assert (
        flags_audit.lambda_handler(deployment_event(version, detail_type="On Deployment Start"), CONTEXT)[
            "recorded"
        ]
        == 0
    )


def test_cli_changes_are_audited_and_not_recorded_twice_by_the_deployment_event(
    shared_store, database, capsys
):
    assert cli.main(["flags", "--actor", "bob", "set", "auto_quarantine", "false"]) == 0
    assert (
        cli.main(
            ["flags", "--actor", "bob", "target", "auto_quarantine", "--tenant", "acme", "--reason", "pilot"]
        )
        == 0
    )
    version = shared_store.deployed_version()
    assert f"deployed as version {version}" in capsys.readouterr().out

    assert flags_audit.lambda_handler(deployment_event(version), CONTEXT) == {"recorded": 0}
    with proxy_connect(database.app_url) as conn:
        row = audit.history(conn, shared_store.key, "auto_quarantine", limit=1)[0]
    assert (row.actor, row.action, row.reason, row.config_version) == ("bob", "target", "pilot", version)

    assert cli.main(["flags", "get", "auto_quarantine", "--tenant", "acme"]) == 0
    assert "value=true reason=TARGETING_MATCH variant=tenants on" in capsys.readouterr().out
    assert cli.main(["flags", "--actor", "bob", "rollback", "auto_quarantine"]) == 0
    assert cli.main(["flags", "get", "auto_quarantine", "--tenant", "acme"]) == 0
    assert "value=false" in capsys.readouterr().out


def test_cli_stale_cleanup_removes_only_unreferenced_flags_through_the_audited_path(
    shared_store, database, tmp_path, capsys
):
    code = tmp_path / "code"
    code.mkdir()
    (code / "uses.py").write_text(
        "from swordfish.features import registry\n"
        "FLAGS = [registry.AUTO_QUARANTINE, registry.DETECTOR_QR_CODE_LURE, registry.DEGRADED_MODE_KILL_SWITCH]\n"
        "def f(s):\n    return s.evaluate('still_in_code', default=False)\n"
    )
    assert cli.main(["flags", "--actor", "carol", "set", "leftover_experiment", "false", "--create"]) == 0
    capsys.readouterr()

    assert (
        cli.main(["flags", "--actor", "carol", "stale", "--cleanup", "--code-root", str(code), "--json"]) == 0
    )
    out = capsys.readouterr().out
    report = json.loads(out[: out.rindex("]") + 1])

    by_name = {s["name"]: s for s in report}
    assert by_name["leftover_experiment"]["removable"] is True
    assert by_name["still_in_code"]["removable"] is False
    assert "removed leftover_experiment" in out
    document = shared_store.deployed().document
    assert "leftover_experiment" not in document and "auto_quarantine" in document
    with proxy_connect(database.app_url) as conn:
        row = audit.history(conn, shared_store.key, "leftover_experiment", limit=1)[0]
    assert (row.action, row.actor, row.after) == ("remove", "carol", None)
    assert row.reason.startswith("stale: defined but never referenced")


def test_cli_reports_a_missing_audit_database_clearly(shared_store, settings_env, capsys):
    settings_env(database_url="")
    assert cli.main(["flags", "set", "auto_quarantine", "true"]) == 2
    assert "SWORDFISH_DATABASE_URL" in capsys.readouterr().err


def test_agent_runs_as_a_process_and_serves_the_deployed_version(moto_server):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.appconfig_agent",
            "--port",
            str(port),
            "--moto-url",
            moto_server.url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(url + agent_path(), 30, proc)
        import urllib.error
        import urllib.request

        with urllib.request.urlopen(url + agent_path(), timeout=5) as response:
            assert response.headers[VERSION_HEADER] == MotoRepository(moto_server.url).deployed_version()
            assert "auto_quarantine" in json.loads(response.read())
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(url + agent_path(profile="no-such-profile"), timeout=5)
        assert missing.value.code == 404
    finally:
        proc.terminate()
        proc.wait(10)
