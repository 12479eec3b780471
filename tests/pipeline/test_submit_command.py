"""`swordfish submit` on the embedded stack: which file got which id, unknown tenants refused, non-mail
skipped, duplicates named with where their verdict is, --wait, stdout only for results."""

from __future__ import annotations

import threading
from pathlib import Path

from swordfish.cli import main

from tests.pipeline.helpers import drain, invoke, receive_event

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "swordfish"
CLEAN = SAMPLES / "clean-project-notes.eml"
PHISH = SAMPLES / "m365-password-expiry-phish.eml"


def folder(tmp_path: Path) -> Path:
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "notes.eml").write_bytes(CLEAN.read_bytes())
    (tmp_path / "mail" / "LICENSE").write_text("MIT License\n\nCopyright (c) 2026\n")
    (tmp_path / "mail" / "policy.txt").write_text("allow everything from partners\n")
    return tmp_path / "mail"


def test_each_file_is_named_with_its_id_and_non_mail_is_skipped(stack_env, tmp_path, capsys):
    assert main(["submit", str(folder(tmp_path)), "--tenant", "globex"]) == 0
    out, err = capsys.readouterr()
    [line] = out.splitlines()  # stdout: one line per submitted file, nothing else
    assert line.startswith(f"{tmp_path / 'mail' / 'notes.eml'}: queued as sha256-")
    assert "skipped" in err and "LICENSE" in err and "policy.txt" in err
    assert len(drain(stack_env, stack_env.info.queue_url)) == 1


def test_an_unknown_or_invalid_tenant_is_refused_and_nothing_is_queued(stack_env, capsys):
    assert main(["submit", str(CLEAN), "--tenant", "acme-crop"]) == 1
    assert main(["submit", str(CLEAN), "--tenant", "Bad_Tenant"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = [line for line in err.splitlines() if not line.startswith("{")]  # JSON log lines aside
    assert len(lines) == 2 and "unknown tenant" in lines[0] and "acme-crop" in lines[0]
    assert lines[1].startswith("error: invalid tenant id")
    assert "Traceback" not in err
    assert drain(stack_env, stack_env.info.queue_url, timeout=1.5) == []


def test_a_resubmission_says_duplicate_and_where_the_verdict_is(stack_env, capsys):
    assert main(["submit", str(PHISH), "--tenant", "globex"]) == 0
    invoke(receive_event(stack_env, 1))
    capsys.readouterr()
    assert main(["submit", str(PHISH), "--tenant", "globex"]) == 0
    out = capsys.readouterr().out
    assert "duplicate" in out and "already judged" in out and "/console/tenants/globex/verdicts/sha256-" in out
    assert "queued" not in out.replace("not queued again", "")


def test_wait_prints_each_verdict_when_the_pipeline_has_it(stack_env, capsys):
    result = {}
    submitter = threading.Thread(target=lambda: result.update(code=main(
        ["submit", str(CLEAN), str(PHISH), "--tenant", "globex", "--wait", "--timeout", "30"])))
    submitter.start()
    invoke(receive_event(stack_env, 2))
    submitter.join(40)
    assert result["code"] == 0
    out = capsys.readouterr().out
    assert f"{CLEAN}: clean" in out and f"{PHISH}: phishing" in out
