"""Pipeline-aware recovery: raw submissions are archived (moto S3) before analysis, and a replay
after a restore brings back every verdict, idempotently; an archive outage costs no verdict."""

from __future__ import annotations

import base64
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from swordfish import constants, wiring
from swordfish.analysis import TenantPolicy, parse_message
from swordfish.backup.replay import compare_verdicts, replay, stored_verdicts
from swordfish.integrations.indicators import IndicatorStore
from swordfish.integrations.raw_archive import S3RawMailArchive

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from helpers import invoke, receive_event, send_bodies, verdict_rows  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "sublime"
SAMPLE = (SAMPLES / "bec_ceo_impersonation.eml").read_bytes()
PHISH = (SAMPLES / "amazon_phish_url_shortener.eml").read_bytes()


def bodies(prefix: str, count: int, mail: bytes = SAMPLE) -> list[str]:
    return [json.dumps({"tenant_id": "acme-corp", "message_id": f"{prefix}-{i}",
                        "submitted_at": datetime.now(UTC).isoformat(),
                        "source": {"kind": "inline", "raw_mime_b64": base64.b64encode(mail).decode()}})
            for i in range(count)]


def backup_bucket() -> str:
    return f"{constants.BACKUP_BUCKET_PREFIX}-000000000000-eu-west-1"


def test_submissions_are_archived_before_analysis_and_replay_restores_lost_verdicts(stack_env, settings_env):
    settings_env(raw_mail_archive_bucket=backup_bucket())
    start = datetime.now(UTC) - timedelta(seconds=1)
    send_bodies(stack_env, bodies("replay", 6))
    response = invoke(receive_event(stack_env, 6))
    assert response == {"batchItemFailures": []}
    assert len(verdict_rows(stack_env)) == 6

    archive = S3RawMailArchive(stack_env.client("s3"), backup_bucket())
    archived = list(archive.since(start))
    assert sorted(json.loads(e["body"])["message_id"] for e in archived) == [f"replay-{i}" for i in range(6)]

    # The disaster: the verdicts are gone (as after a restore to an earlier point).
    with psycopg.connect(stack_env.info.superuser_url, autocommit=True) as conn:
        conn.execute("DELETE FROM verdicts WHERE message_id IN ('replay-1', 'replay-4')")
    pipeline, queue, database = wiring.build_replay_pipeline(stack_env.info.app_url)
    try:
        first = replay(archive.since(start), pipeline, queue)
        again = replay(archive.since(start), pipeline, queue)
    finally:
        database.close()
    assert (first.read, first.inserted, first.already_present, first.failed) == (6, 2, 4, [])
    assert (again.inserted, again.already_present) == (0, 6)  # idempotent
    assert sorted(r["message_id"] for r in verdict_rows(stack_env)) == [f"replay-{i}" for i in range(6)]


def test_an_archive_outage_costs_no_verdict(stack_env, settings_env):
    settings_env(raw_mail_archive_bucket="no-such-archive-bucket")
    send_bodies(stack_env, bodies("outage", 3))
    response = invoke(receive_event(stack_env, 3))
    assert response == {"batchItemFailures": []}
    assert sorted(r["message_id"] for r in verdict_rows(stack_env)) == [f"outage-{i}" for i in range(3)]


def test_replay_gives_back_the_verdicts_the_tenants_got_with_threat_indicators(stack_env, settings_env):
    """Issue 25: `backup replay` built its own pipeline without the threat indicators, so a phishing
    verdict whose URL was in a feed came back without URL_IN_THREAT_FEED (and often clean)."""
    settings = settings_env(raw_mail_archive_bucket=backup_bucket())
    url = sorted(link.url for link in parse_message(PHISH, TenantPolicy()).links)[0]
    IndicatorStore.from_url(settings.redis_url, 2.0).replace("openphish", [url], min_keep_ratio=0)
    start = datetime.now(UTC) - timedelta(seconds=1)
    send_bodies(stack_env, bodies("feed", 3, PHISH))
    assert invoke(receive_event(stack_env, 3)) == {"batchItemFailures": []}
    keys = [("acme-corp", f"feed-{i}") for i in range(3)]
    with psycopg.connect(stack_env.info.superuser_url, autocommit=True) as conn:
        before = stored_verdicts(conn, keys)
        assert all("URL_IN_THREAT_FEED" in {r["name"] for r in v["reasons"]} for v in before.values())
        conn.execute("DELETE FROM verdicts WHERE message_id LIKE 'feed-%'")

    from swordfish.cli import main

    code = main(["backup", "replay", "--since", start.isoformat(), "--database-url", stack_env.info.app_url,
                 "--bucket", backup_bucket()])
    assert code == 0
    with psycopg.connect(stack_env.info.superuser_url, autocommit=True) as conn:
        after = stored_verdicts(conn, keys)
    assert compare_verdicts(before, after) == []
    assert not any(v["degraded"] for v in after.values())  # old mail replayed is not a backlog


def test_every_difference_is_reported_with_its_cause():
    def row(verdict, score, *names, flags="v1"):
        return {"verdict": verdict, "score": score, "flags_version": flags, "degraded": False,
                "reasons": [{"name": n, "weight": 1.0} for n in names]}

    before = {("t", "same"): row("phishing", 9.0, "URL_IN_THREAT_FEED", "URL_SHORTENER"),
              ("t", "feed"): row("phishing", 9.0, "URL_IN_THREAT_FEED", "URL_SHORTENER"),
              ("t", "flags"): row("spam", 4.0, "SPAM_LANGUAGE"),
              ("t", "score"): row("spam", 4.0, "SPAM_LANGUAGE"),
              ("t", "gone"): row("clean", 0.0)}
    after = {("t", "same"): row("phishing", 9.0, "URL_SHORTENER", "URL_IN_THREAT_FEED"),
             ("t", "feed"): row("clean", 1.0, "URL_SHORTENER"),
             ("t", "flags"): row("spam", 4.0, "SPAM_LANGUAGE", "CONTENT_MODEL", flags="v2"),
             ("t", "score"): row("spam", 4.5, "SPAM_LANGUAGE")}
    differences = {d["message_id"]: d for d in compare_verdicts(before, after)}
    assert sorted(differences) == ["feed", "flags", "gone", "score"]
    assert differences["feed"]["cause"].startswith("threat indicators differ")
    assert "-URL_IN_THREAT_FEED" in differences["feed"]["cause"]
    assert differences["feed"]["before"]["verdict"] == "phishing" and differences["feed"]["after"]["verdict"] == "clean"
    assert "flags changed (v1 -> v2)" in differences["flags"]["cause"] and "+CONTENT_MODEL" in differences["flags"]["cause"]
    assert differences["score"]["cause"].startswith("the analysis itself changed")
    assert differences["gone"]["cause"] == "missing after the replay"
