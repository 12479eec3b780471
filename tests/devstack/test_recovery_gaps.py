"""Issue 25's remaining gaps on the embedded stack (brief i25c).

- Large mail (the body in the large-mail bucket, the queue message a pointer) lived in moto's
  memory: a moto restart lost mail already answered 202. It is kept on disk beside the raw archive.
- The start's re-enqueue looked back 48 hours: an archived submission older than that with no
  verdict stayed unanswered. It reads the whole archive within its retention.
- Deep health said pass while moto or fauxqs had come back empty: keptState fails until the
  stack re-creates what they held (and for an emptied folder or a deleted backup key).
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from swordfish import constants
from swordfish.api.health_deep import _ietf_body, check_kept_state, run_checks
from swordfish.config import Settings
from swordfish.integrations.raw_archive import DirRawMailArchive
from swordfish.pipeline.ports import IncomingRecord
from swordfish.pipeline.submission import inline_submission
from swordfish.pipeline.submitter import INLINE_LIMIT_BYTES
from swordfish.wiring import build_health_dependencies, build_submitter

from devstack.poller import WorkerPool
from devstack.stack import EmbeddedStack
from devstack.supervisor import Backoff

HANG_GUARD_SECONDS = 120
NOTIFY_ON_VERDICT = """
CREATE OR REPLACE FUNCTION test_notify_verdict() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('test_verdict', NEW.message_id); RETURN NULL; END $$;
DROP TRIGGER IF EXISTS test_notify_verdict ON verdicts;
CREATE TRIGGER test_notify_verdict AFTER INSERT ON verdicts FOR EACH ROW EXECUTE FUNCTION test_notify_verdict();
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("gaps")
    with EmbeddedStack(run_dir=root / "run", data_dir=root / "data", supervise=True, raw_archive=True,
                       backoff=Backoff(initial=0.1, cap=1.0)) as stack:
        yield stack


def settings_of(stack: EmbeddedStack) -> Settings:
    return Settings(**{k[len(constants.ENV_PREFIX):].lower(): v for k, v in stack.info.env.items()
                       if k.startswith(constants.ENV_PREFIX)})


def dlq_depth(stack: EmbeddedStack) -> int:
    attrs = stack.client("sqs").get_queue_attributes(QueueUrl=stack.info.dlq_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(v) for v in attrs.values())


def verdict_of(stack: EmbeddedStack, message_id: str) -> str | None:
    with psycopg.connect(stack.info.superuser_url, autocommit=True) as conn:
        row = conn.execute("SELECT verdict FROM verdicts WHERE message_id = %s", (message_id,)).fetchone()
    return row[0] if row else None


def wait_for_verdict_or_dead_letter(stack: EmbeddedStack, message_id: str) -> str | None:
    """Woken by each verdict commit; the DLQ is looked at between waits (a lost object dead-letters)."""
    with psycopg.connect(stack.info.superuser_url, autocommit=True) as conn:
        conn.execute(NOTIFY_ON_VERDICT)
        conn.execute("LISTEN test_verdict")
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        while (found := verdict_of(stack, message_id)) is None:
            assert not dlq_depth(stack), f"{message_id} was dead-lettered, not answered"
            assert time.monotonic() < deadline, f"no verdict for {message_id} within {HANG_GUARD_SECONDS} s"
            for _ in conn.notifies(timeout=1.0, stop_after=1):
                pass
    return found


def kill_through_the_supervisor(stack: EmbeddedStack, name: str) -> None:
    service = getattr(stack, name)
    seen = len(stack.supervisor.events)
    os.kill(service.pid(), signal.SIGKILL)
    assert stack.supervisor.wait_for_event(
        lambda events: any(e.name == name and e.ok for e in events[seen:]), HANG_GUARD_SECONDS), \
        f"{name} restarted by the supervisor: not within {HANG_GUARD_SECONDS} s"


@pytest.mark.slow  # an embedded stack, a moto kill and a worker (~30 s on a shared 2-core machine)
def test_a_large_submission_outlives_a_moto_restart(stack):
    raw = (b"From: alice@partner.example\r\nTo: bob@acme-corp.com\r\nSubject: the big report\r\n"
           b"Message-ID: <large-1@partner.example>\r\n\r\n" + b"All figures attached, see below.\r\n" * 9000)
    assert len(raw) > INLINE_LIMIT_BYTES  # too large for SQS: the queue message points at the object
    submitter = build_submitter(settings_of(stack))  # as the API's submissions route builds it
    submission = submitter.build("acme-corp", "large-1", raw)
    assert submission.source.kind == "s3"
    (result,) = submitter.send([submission])
    assert result.error is None  # accepted: the API would answer 202 now

    kill_through_the_supervisor(stack, "moto")
    with WorkerPool(stack.info.env, workers=1, log_dir=stack.run_dir / "logs"):
        assert wait_for_verdict_or_dead_letter(stack, "large-1")


def test_the_start_requeues_unanswered_mail_from_the_whole_archive(stack):
    now = datetime.now(UTC)
    archive = DirRawMailArchive(stack.raw_archive_dir)

    def archived(message_id: str, age: timedelta) -> None:
        body = inline_submission("acme-corp", message_id, b"Subject: x\r\n\r\nhello\r\n").model_dump_json()
        archive.clock = lambda: now - age
        archive.archive([IncomingRecord(str(uuid.uuid4()), body, now - age)])

    archived("old-3-days", timedelta(days=3))  # past the 48 hours it used to look back
    archived("old-40-days", timedelta(days=40))
    archived("past-retention", timedelta(days=constants.BACKUP_OBJECT_EXPIRY_DAYS + 5))
    sqs = stack.client("sqs")
    sqs.purge_queue(QueueUrl=stack.info.queue_url)

    assert stack.requeue_unanswered(now=now) == 2
    bodies = []
    while batch := sqs.receive_message(QueueUrl=stack.info.queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=1).get("Messages", []):
        bodies.extend(json.loads(m["Body"])["message_id"] for m in batch)
    assert sorted(bodies) == ["old-3-days", "old-40-days"]
    # Queued now (in flight here): a second pass sends nothing twice.
    assert stack.requeue_unanswered(now=now) == 0

    # The next pass starts after the last object of the last complete one (a year of archive is not
    # read at every start): a new submission is found, what the last pass settled is not read again.
    sqs.purge_queue(QueueUrl=stack.info.queue_url)  # the two put back are lost again
    archived("new-after-pass", timedelta(0))
    assert stack.requeue_unanswered(now=now + timedelta(seconds=1)) == 1
    # A database restored or replaced (or asked for) reads it all again.
    assert stack.requeue_unanswered(now=now, from_start=True) == 2  # the two lost; the new one is queued
    sqs.purge_queue(QueueUrl=stack.info.queue_url)


def restarted_empty(stack: EmbeddedStack, name: str) -> None:
    """Killed and started again as a bare process: what the supervisor's restart would re-create is not."""
    stack.supervisor.hold(name)
    service = getattr(stack, name)
    service.proc.kill()
    service.proc.wait(10)
    service.restart()


def test_deep_health_says_which_dependency_came_back_empty_until_it_is_recreated(stack, tmp_path):
    key_file = tmp_path / "backup-data-key"
    key_file.write_bytes(b"k" * 32)
    settings = settings_of(stack).model_copy(update={"backup_health": True, "backup_kms_key_id": f"file:{key_file}",
                                                     "backup_dir": str(tmp_path / "backups")})
    deps = build_health_dependencies(settings)
    deps.cache_seconds = 0

    def kept() -> dict:
        return {m.name: m for m in check_kept_state(deps).measurements}

    assert {name: m.status for name, m in kept().items()} == {
        "moto": "pass", "fauxqs": "pass", "rawArchive": "pass", "largeMail": "pass", "backupKey": "pass"}

    started = time.monotonic()
    restarted_empty(stack, "moto")
    print(f"moto restarted empty in {time.monotonic() - started:.1f} s")
    try:
        moto = kept()["moto"]
        assert moto.status == "fail" and "moto came back empty" in moto.output
        body = _ietf_body(run_checks(deps, ("keptState", "redis")), deps, "deep")  # as /health/deep
        assert body["status"] == "warn"  # mail still flows: not critical, a failure of its own
        assert body["components"]["keptState"]["status"] == "fail"
        assert "moto came back empty" in body["checks"]["keptState:moto"][0]["output"]
    finally:
        started = time.monotonic()
        stack.recreate_moto()
        stack.supervisor.release("moto")
        print(f"moto re-created in {time.monotonic() - started:.1f} s")
    assert kept()["moto"].status == "pass"

    restarted_empty(stack, "fauxqs")
    try:
        fauxqs = kept()["fauxqs"]
        assert fauxqs.status == "fail" and "fauxqs came back empty" in fauxqs.output
    finally:
        stack._create_queues()
        stack.supervisor.release("fauxqs")
    assert kept()["fauxqs"].status == "pass"

    (stack.raw_archive_dir / constants.STATE_MARKER_FILE).unlink()  # the folder emptied under the stack
    assert "raw-submission archive came back empty" in kept()["rawArchive"].output
    key_file.unlink()
    assert "backup key file:" in kept()["backupKey"].output and kept()["backupKey"].status == "fail"
