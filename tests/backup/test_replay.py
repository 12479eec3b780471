"""Pipeline-aware recovery: raw submissions are archived (moto S3) before analysis, and a replay
after a restore brings back every verdict, idempotently; an archive outage costs no verdict."""

from __future__ import annotations

import base64
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from swordfish import constants
from swordfish.backup.replay import build_replay_pipeline, replay
from swordfish.integrations.raw_archive import S3RawMailArchive

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from helpers import invoke, receive_event, send_bodies, verdict_rows  # noqa: E402

SAMPLE = (Path(__file__).resolve().parents[2] / "samples" / "sublime" / "bec_ceo_impersonation.eml").read_bytes()


def bodies(prefix: str, count: int) -> list[str]:
    return [json.dumps({"tenant_id": "acme-corp", "message_id": f"{prefix}-{i}",
                        "submitted_at": datetime.now(UTC).isoformat(),
                        "source": {"kind": "inline", "raw_mime_b64": base64.b64encode(SAMPLE).decode()}})
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
    pipeline, queue, database = build_replay_pipeline(stack_env.info.app_url)
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
