"""`swordfish analyze` over files, folders and mbox files."""

from __future__ import annotations

import json
import shutil

from swordfish.analysis.weights import model
from swordfish.cli import main

from .helpers import SA, SAMPLES, SUBLIME


def _run(capsys, *argv: str) -> tuple[int, list[dict], str]:
    code = main(["analyze", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_analyze_file_prints_one_json_object(capsys):
    code, rows, _ = _run(capsys, str(SUBLIME / "twitter_phish.eml"))
    assert code == 0 and len(rows) == 1
    row = rows[0]
    assert row["source"] == {"path": str(SUBLIME / "twitter_phish.eml")}
    assert row["verdict"] == "phishing" and row["score"] >= model().thresholds["phishing"]
    assert {"name", "weight", "evidence"} <= set(row["reasons"][0]) and row["parse_problems"] == []


def test_analyze_folder_recurses_and_skips_licences_and_docs(capsys, tmp_path):
    shutil.copytree(SAMPLES / "sublime", tmp_path / "a" / "sublime")
    (tmp_path / "a" / "README.md").write_text("# not mail")
    code, rows, _ = _run(capsys, str(tmp_path))
    assert code == 0 and len(rows) == 6
    assert all("LICENSE" not in r["source"]["path"] for r in rows)


def test_analyze_mbox_reports_index_within_the_file(capsys, tmp_path):
    box = tmp_path / "inbox.mbox"
    parts = [(SA / "spam" / "gtube.eml").read_bytes(), (SA / "nice" / "002").read_bytes()]
    box.write_bytes(b"".join(b"From sender@example.com Thu Jan  1 00:00:00 2025\n" + p.replace(b"\nFrom ", b"\n>From ")
                             + b"\n" for p in parts))
    code, rows, _ = _run(capsys, str(box))
    assert code == 0
    assert [(r["source"]["index"], r["verdict"]) for r in rows] == [(0, "spam"), (1, "clean")]


def test_analyze_with_policy_file(capsys, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"vip_names": ["Joshua Kamdjou"]}))
    _, rows, _ = _run(capsys, "--policy", str(policy), str(SUBLIME / "bec_ceo_impersonation.eml"))
    assert "VIP_IMPERSONATION" in {r["name"] for r in rows[0]["reasons"]}


def test_invalid_policy_file_is_a_clear_error(capsys, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text('{"thresholds": {"spam": "lots"}}')
    try:
        main(["analyze", "--policy", str(policy), str(SUBLIME / "twitter_phish.eml")])
    except SystemExit as exc:
        assert "is not a valid tenant policy" in str(exc.code) and "thresholds.spam" in str(exc.code)
    else:
        raise AssertionError("expected SystemExit")


def test_missing_path_exits_2_and_still_analyses_the_rest(capsys, tmp_path):
    code, rows, err = _run(capsys, str(tmp_path / "nope.eml"), str(SA / "spam" / "gtube.eml"))
    assert code == 2 and "no such file or folder" in err and len(rows) == 1
