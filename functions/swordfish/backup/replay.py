"""Replay archived raw submissions into a (restored) database: the pipeline-aware half of recovery.

Each archived submission goes through the same ``Pipeline`` as live mail, against the database
given (normally the restored server), in batches. Verdicts are idempotent on (tenant_id,
message_id): a submission whose verdict survived the restore is a no-op; one whose verdict was lost
gets it again. Nothing is sent to a queue: dead letters, requeues and deferred quarantines are
collected and reported for the operator instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from swordfish.pipeline.processor import IncomingRecord, Pipeline, PolicyCache
from swordfish.store.database import Database

BATCH = 10


@dataclass
class CollectingQueue:
    """The pipeline's queue port during a replay: records what it would have sent."""

    dead_letters: list[tuple[str, str]] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    deferred: list = field(default_factory=list)  # RemediationRequests a live run would have queued

    def dead_letter(self, record: IncomingRecord, reason: str, code: str) -> None:
        self.dead_letters.append((record.queue_message_id, f"{code}: {reason}"))

    def requeue(self, record: IncomingRecord, delay_seconds: int) -> None:
        self.requeued.append(record.queue_message_id)

    def defer_remediation(self, payload) -> None:
        self.deferred.append(payload)


@dataclass
class ReplayResult:
    read: int = 0
    inserted: int = 0
    already_present: int = 0
    failed: list[str] = field(default_factory=list)
    dead_lettered: list[tuple[str, str]] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    remediation_deferred: int = 0

    def as_dict(self) -> dict:
        return dict(vars(self))


def build_replay_pipeline(database_url: str, mail_loader=None) -> tuple[Pipeline, CollectingQueue, Database]:
    from swordfish.integrations.mail_source import MailSourceLoader

    database = Database(database_url, max_size=2)
    queue = CollectingQueue()
    mail = mail_loader or MailSourceLoader(s3_client=None, mailbox_fetch=None, max_bytes=25 * 1024 * 1024)
    # No remediator: a replay restores verdicts; quarantines it would have done are reported (deferred).
    return Pipeline(database=database, policies=PolicyCache(database), mail=mail, queue=queue), queue, database


def _record(entry: dict) -> IncomingRecord:
    sent = entry.get("sent_at")
    return IncomingRecord(queue_message_id=entry["queue_message_id"], body=entry["body"],
                          sent_at=datetime.fromisoformat(sent) if sent else None,
                          correlation_id=entry.get("correlation_id"))


def replay(entries: Iterable[dict], pipeline: Pipeline, queue: CollectingQueue | None = None) -> ReplayResult:
    result = ReplayResult()
    pending: list[IncomingRecord] = []

    def flush() -> None:
        if not pending:
            return
        batch = pipeline.new_batch(list(pending))
        for record in pending:
            try:
                batch.add(record)
            except Exception as exc:  # one bad record never costs the others their verdict
                result.failed.append(f"{record.queue_message_id}: {type(exc).__name__}: {exc}")
        committed = batch.commit()
        for _analysed, stored in committed.stored:
            if stored.inserted:
                result.inserted += 1
            else:
                result.already_present += 1
        for analysed, exc in committed.retry:  # a refused row: reported, its batch-mates kept
            result.failed.append(f"{analysed.record.queue_message_id}: {type(exc).__name__}: {exc}")
        pending.clear()

    for entry in entries:
        result.read += 1
        pending.append(_record(entry))
        if len(pending) >= BATCH:
            flush()
    flush()
    if queue is not None:
        result.dead_lettered, result.requeued = list(queue.dead_letters), list(queue.requeued)
        result.remediation_deferred = len(queue.deferred)
    return result
