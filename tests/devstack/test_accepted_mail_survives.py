"""Issue 25 item 0: accepted mail is never lost on the embedded stack either.

fauxqs killed lost 2,210 accepted emails; moto killed emptied the raw archive (the log of accepted
mail, so replay had nothing to replay); a restart of `make serve` dropped what was queued. Here
fauxqs and moto are killed through the supervisor with accepted mail on the queue, and the stack
is restarted with mail queued and mail archived whose queue message was lost: every submission
gets its verdict.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from swordfish.integrations.raw_archive import DirRawMailArchive
from swordfish.pipeline.ports import IncomingRecord
from swordfish.pipeline.submission import inline_submission

from devstack.poller import WorkerPool
from devstack.stack import EmbeddedStack
from devstack.supervisor import Backoff

HANG_GUARD_SECONDS = 120
RAW = (b"From: alice@partner.example\r\nTo: bob@acme-corp.com\r\nSubject: invoice %d\r\n"
       b"Message-ID: <m%d@partner.example>\r\n\r\nPlease find the invoice attached.\r\n")


# This test's own database tells it when a worker process commits a verdict: no polling.
NOTIFY_ON_VERDICT = """
CREATE OR REPLACE FUNCTION test_notify_verdict() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('test_verdict', NEW.message_id); RETURN NULL; END $$;
DROP TRIGGER IF EXISTS test_notify_verdict ON verdicts;
CREATE TRIGGER test_notify_verdict AFTER INSERT ON verdicts FOR EACH ROW EXECUTE FUNCTION test_notify_verdict();
"""


def wait_for_verdicts(stack: EmbeddedStack, wanted: dict[str, int], what: str) -> None:
    """Until each prefix has its count of verdicts, woken by each commit (LISTEN before counting,
    so no commit goes unseen); the guard only ends a hang."""
    with psycopg.connect(stack.info.superuser_url, autocommit=True) as conn:
        conn.execute(NOTIFY_ON_VERDICT)
        conn.execute("LISTEN test_verdict")
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        while not all(len(verdicts(stack, prefix)) == count for prefix, count in wanted.items()):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{what}: not within {HANG_GUARD_SECONDS} s"
            for _ in conn.notifies(timeout=remaining, stop_after=1):
                pass


def submissions(prefix: str, count: int) -> list[str]:
    return [inline_submission("acme-corp", f"{prefix}-{i}", RAW % (i, i)).model_dump_json() for i in range(count)]


def send(stack: EmbeddedStack, bodies: list[str]) -> None:
    sqs = stack.client("sqs")
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(QueueUrl=stack.info.queue_url, Entries=[
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start:start + 10])])


def verdicts(stack: EmbeddedStack, prefix: str) -> set[str]:
    with psycopg.connect(stack.info.superuser_url, autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT message_id FROM verdicts WHERE message_id LIKE %s",
                                           (prefix + "-%",)).fetchall()}


def kill_through_the_supervisor(stack: EmbeddedStack, name: str) -> None:
    service = getattr(stack, name)
    seen = len(stack.supervisor.events)
    os.kill(service.pid(), signal.SIGKILL)
    assert stack.supervisor.wait_for_event(
        lambda events: any(e.name == name and e.ok for e in events[seen:]), HANG_GUARD_SECONDS), \
        f"{name} restarted by the supervisor: not within {HANG_GUARD_SECONDS} s"


@pytest.mark.slow  # two embedded stacks and a worker (~60 s on a shared 2-core machine)
def test_accepted_mail_outlives_fauxqs_moto_and_a_stack_restart(tmp_path):
    data_dir = tmp_path / "data"
    backoff = Backoff(initial=0.1, cap=1.0)
    with EmbeddedStack(run_dir=tmp_path / "run1", data_dir=data_dir, supervise=True, raw_archive=True,
                       backoff=backoff) as stack:
        send(stack, submissions("queued", 20))  # accepted (the API answers 202 once this returns)
        kill_through_the_supervisor(stack, "fauxqs")
        assert stack.queue_depth() == 20, "fauxqs came back without the accepted mail"
        kill_through_the_supervisor(stack, "moto")
        with WorkerPool(stack.info.env, workers=1, log_dir=stack.run_dir / "logs"):
            wait_for_verdicts(stack, {"queued": 20}, "a verdict for each of 20 accepted emails")
        # Each processed batch was archived before analysis, on disk: moto's restart did not empty it.
        archive = DirRawMailArchive(stack.raw_archive_dir)
        archived = {json.loads(entry["body"])["message_id"] for entry in archive.since(datetime(2000, 1, 1, tzinfo=UTC))}
        assert {f"queued-{i}" for i in range(20)} <= archived

        # Mail still queued at a stop, and mail a processor archived before its queue message was lost.
        send(stack, submissions("at-stop", 5))
        lost = submissions("archived-only", 3)
        archive.archive([IncomingRecord(str(uuid.uuid4()), body, datetime.now(UTC)) for body in lost])

    with EmbeddedStack(run_dir=tmp_path / "run2", data_dir=data_dir, supervise=True, raw_archive=True,
                       backoff=backoff) as stack:
        assert stack.requeued_at_start == 3  # archived, no verdict, on no queue; the 5 came back from the journal
        assert stack.queue_depth() == 8
        with WorkerPool(stack.info.env, workers=1, log_dir=stack.run_dir / "logs"):
            wait_for_verdicts(stack, {"at-stop": 5, "archived-only": 3},
                              "a verdict for the queued and the archived-only mail after the restart")
        assert len(verdicts(stack, "queued")) == 20
