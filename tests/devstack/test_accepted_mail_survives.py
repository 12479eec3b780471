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


def wait_until(predicate, what: str, guard: float = HANG_GUARD_SECONDS):
    deadline = time.monotonic() + guard
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {guard} s")


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


def restarted(stack: EmbeddedStack, name: str, after: int) -> bool:
    return any(e.name == name and e.ok for e in stack.supervisor.events[after:])


def kill_through_the_supervisor(stack: EmbeddedStack, name: str) -> None:
    service = getattr(stack, name)
    seen = len(stack.supervisor.events)
    os.kill(service.pid(), signal.SIGKILL)
    wait_until(lambda: restarted(stack, name, seen), f"{name} restarted by the supervisor")


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
            wait_until(lambda: len(verdicts(stack, "queued")) == 20, "a verdict for each of 20 accepted emails")
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
            wait_until(lambda: len(verdicts(stack, "at-stop")) == 5 and len(verdicts(stack, "archived-only")) == 3,
                       "a verdict for the queued and the archived-only mail after the restart")
        assert len(verdicts(stack, "queued")) == 20
