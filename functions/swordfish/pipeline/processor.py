"""Processing one batch of submissions: load, analyse, persist in one transaction, remediate.

Nothing here knows the shape of an SQS event: the Lambda handler (and the local poller, through
the same handler) turns records into ``IncomingRecord`` and reports failures back. The outcome of
each record is one of:

- analysed, and its verdict written with the rest of the batch in one transaction;
- dead-lettered at once with its reason, when retrying cannot help (bad JSON, unknown tenant,
  message too large, mail that no longer exists);
- requeued with a delay, when a dependency's breaker is open (not counted as a failed receive);
- failed, so SQS redelivers it (and after maxReceiveCount moves it to the DLQ): any other error,
  including a database error while committing, which fails every record of the batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from swordfish.analysis import EXPERIMENTAL_DETECTORS, TenantPolicy, Verdict, parse_message, score_message
from swordfish.features import AUTO_QUARANTINE, DEGRADED_MODE_KILL_SWITCH, detector_flag
from swordfish.monitoring import error_tracker
from swordfish.monitoring.breadcrumbs import add_breadcrumb
from swordfish.monitoring.context_provider import bind_context
from swordfish.pipeline.submission import InvalidSubmission, Submission, parse_submission
from swordfish.store.database import Database
from swordfish.store.tenants import UnknownTenant, load_policy
from swordfish.store.verdicts import StoredVerdict, VerdictRecord, save_verdicts

# --- outcomes and ports -------------------------------------------------------------------------


class PermanentFailure(Exception):
    """Retrying cannot help: the record goes to the DLQ now, with this reason."""

    def __init__(self, reason: str, code: str):
        super().__init__(reason)
        self.reason, self.code = reason, code


class RetryLater(Exception):
    """A dependency is unavailable (its breaker is open): put the record back with a delay."""

    def __init__(self, reason: str, delay_seconds: int = 60):
        super().__init__(reason)
        self.reason, self.delay_seconds = reason, delay_seconds


@dataclass(frozen=True)
class IncomingRecord:
    queue_message_id: str
    body: str
    sent_at: datetime | None
    receive_count: int = 1
    correlation_id: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)


class MailLoader(Protocol):
    def load(self, submission: Submission) -> bytes: ...


class QueuePort(Protocol):
    def dead_letter(self, record: IncomingRecord, reason: str, code: str) -> None: ...
    def requeue(self, record: IncomingRecord, delay_seconds: int) -> None: ...
    def defer_remediation(self, payload: dict) -> None: ...


class RawMailArchive(Protocol):
    """Keeps every received submission before analysis, for replay after a database restore."""

    def archive(self, records: list[IncomingRecord]) -> str | None: ...


class IndicatorLookup(Protocol):
    def match(self, candidates: set[str]) -> dict[str, str]: ...


class Remediator(Protocol):
    def quarantine(self, submission: Submission) -> None: ...


class FlagView(Protocol):
    version: str | None

    def is_on(self, name: str, *, tenant_id: str | None = None, default: bool = False) -> bool: ...


class DefaultFlags:
    """Every flag at its declared default: used when no flag store is configured (for example in
    `swordfish analyze`), never as a stand-in for a configured store."""

    version = None

    def is_on(self, name: str, *, tenant_id: str | None = None, default: bool = False) -> bool:
        return default


REMEDIATE_VERDICTS = frozenset({"phishing", "malware"})


# --- policies -----------------------------------------------------------------------------------


class PolicyCache:
    """Tenant policies, cached per process for ``ttl`` seconds (policy changes apply within a minute)."""

    def __init__(self, database: Database, ttl: float = 60.0):
        self.database, self.ttl = database, ttl
        self._entries: dict[str, tuple[float, TenantPolicy]] = {}

    def get(self, tenant_id: str) -> TenantPolicy:
        now = time.monotonic()
        hit = self._entries.get(tenant_id)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        with self.database.tenant_transaction(tenant_id) as conn:
            policy = TenantPolicy.model_validate(load_policy(conn, tenant_id))
        self._entries[tenant_id] = (now, policy)
        return policy


# --- the batch ----------------------------------------------------------------------------------


@dataclass
class Analysed:
    record: IncomingRecord
    submission: Submission
    verdict: Verdict
    indicators_degraded: bool


@dataclass
class Pipeline:
    database: Database
    policies: PolicyCache
    mail: MailLoader
    queue: QueuePort
    indicators: IndicatorLookup | None = None
    remediator: Remediator | None = None
    flags_snapshot: Callable[[], FlagView] = DefaultFlags
    degraded_backlog_seconds: float = 60.0
    max_message_bytes: int = 25 * 1024 * 1024
    experimental_detectors: frozenset[str] = EXPERIMENTAL_DETECTORS
    on_verdicts: Callable[[list[tuple[Analysed, StoredVerdict]], bool], None] | None = None
    raw_archive: RawMailArchive | None = None

    def new_batch(self, records: list[IncomingRecord]) -> Batch:
        return Batch(self, records)


class Batch:
    """One invocation's records: ``add`` each, then ``commit`` once."""

    def __init__(self, pipeline: Pipeline, records: list[IncomingRecord]):
        self.pipeline = pipeline
        self.flags = pipeline.flags_snapshot()  # one flag configuration for the whole batch
        now = datetime.now(UTC)
        ages = [(now - r.sent_at).total_seconds() for r in records if r.sent_at]
        self.oldest_age_seconds = max(ages, default=0.0)
        self.degraded = (self.oldest_age_seconds > pipeline.degraded_backlog_seconds
                         and not self.flags.is_on(DEGRADED_MODE_KILL_SWITCH, default=False))
        self.analysed: list[Analysed] = []
        self.dead_lettered: list[tuple[IncomingRecord, str]] = []
        self.requeued: list[IncomingRecord] = []
        if pipeline.raw_archive is not None:
            self._archive_raw(records)

    def _archive_raw(self, records: list[IncomingRecord]) -> None:
        # Before any analysis: a verdict lost with the database is recovered by replaying the archive.
        # Failing open: an archive outage costs replayability (database RPO still applies), not mail.
        try:
            self.pipeline.raw_archive.archive(records)
        except Exception as exc:
            error_tracker.capture_exception(exc, level="warning", fingerprint=["raw-archive-failed"],
                                            fallback="analysed without an archived copy", records=len(records))

    def add(self, record: IncomingRecord) -> None:
        """Analyse one record. Raises for a failure worth a redelivery; handles the rest itself."""
        try:
            self.analysed.append(self._analyse(record))
        except PermanentFailure as failure:
            add_breadcrumb("dlq", failure.reason, code=failure.code)
            error_tracker.capture_exception(failure, level="warning", fingerprint=["dead-letter", failure.code],
                                            queue_message_id=record.queue_message_id)
            self.pipeline.queue.dead_letter(record, failure.reason, failure.code)
            self.dead_lettered.append((record, failure.code))
        except RetryLater as retry:
            add_breadcrumb("retry", retry.reason, delay_seconds=retry.delay_seconds)
            # Reported as the exception, so the event carries the tenant bound while it was raised.
            error_tracker.capture_exception(retry, level="warning", fingerprint=["retry-later"],
                                            fallback="requeued with a delay", delay_seconds=retry.delay_seconds)
            self.pipeline.queue.requeue(record, retry.delay_seconds)
            self.requeued.append(record)

    def _analyse(self, record: IncomingRecord) -> Analysed:
        try:
            submission = parse_submission(record.body)
        except InvalidSubmission as exc:
            raise PermanentFailure(str(exc), "invalid_submission") from exc
        with bind_context(tenant_id=submission.tenant_id):
            return self._analyse_submission(record, submission)

    def _analyse_submission(self, record: IncomingRecord, submission: Submission) -> Analysed:
        p = self.pipeline
        try:
            policy = p.policies.get(submission.tenant_id)
        except UnknownTenant as exc:
            raise PermanentFailure(str(exc), "unknown_tenant") from exc
        raw = p.mail.load(submission)
        if len(raw) > p.max_message_bytes:
            raise PermanentFailure(f"message is {len(raw)} bytes, over the {p.max_message_bytes}-byte limit",
                                   "message_too_large")
        parsed = parse_message(raw, policy)
        add_breadcrumb("parsed", "message parsed", size=len(raw), source=submission.source.kind,
                       problems=len(parsed.parse_problems))
        hits: dict[str, str] = {}
        indicators_degraded = False
        if p.indicators is not None:
            try:
                hits = p.indicators.match(parsed.indicator_candidates())
            except Exception as exc:  # the lookup's own fallback failed too: analyse without feeds
                error_tracker.capture_exception(exc, level="warning", fingerprint=["indicator-lookup-failed"])
                indicators_degraded = True
            else:
                indicators_degraded = bool(getattr(p.indicators, "last_lookup_degraded", False))
            add_breadcrumb("indicator_lookup", "threat indicators looked up", hits=len(hits),
                           degraded=indicators_degraded)
        experimental = frozenset(d for d in p.experimental_detectors
                                 if self.flags.is_on(detector_flag(d), tenant_id=submission.tenant_id))
        verdict = score_message(parsed, policy, hits, experimental=experimental)
        add_breadcrumb("analysed", "verdict computed", verdict=str(verdict.verdict), score=verdict.score)
        return Analysed(record, submission, verdict, indicators_degraded)

    def handed_off_ids(self) -> set[str]:
        """Queue message ids this batch already dead-lettered or requeued (they need no retry)."""
        return {r.queue_message_id for r, _ in self.dead_lettered} | {r.queue_message_id for r in self.requeued}

    def records_for_commit(self) -> list[VerdictRecord]:
        return [
            VerdictRecord(
                tenant_id=a.submission.tenant_id,
                message_id=a.submission.message_id,
                verdict=str(a.verdict.verdict),
                score=a.verdict.score,
                reasons=[r.model_dump(mode="json") for r in a.verdict.reasons],
                parse_problems=list(a.verdict.parse_problems),
                subject=a.verdict.subject,
                sender=a.verdict.sender,
                submitted_at=a.submission.submitted_at,
                sqs_sent_at=a.record.sent_at,
                degraded=self.degraded or a.indicators_degraded,
                deferred_work=self._deferred_work(a),
                flags_version=self.flags.version,
                correlation_id=a.record.correlation_id,
            )
            for a in self.analysed
        ]

    def commit(self) -> list[StoredVerdict]:
        """Write every verdict of the batch in one transaction, then remediate. All or nothing."""
        if not self.analysed:
            return []
        with self.pipeline.database.connection() as conn, conn.transaction():
            stored = save_verdicts(conn, self.records_for_commit())
        add_breadcrumb("stored", "batch committed", verdicts=len(stored))
        pairs = list(zip(self.analysed, stored, strict=True))
        self._remediate(pairs)
        if self.pipeline.on_verdicts:
            self.pipeline.on_verdicts(pairs, self.degraded)
        return stored

    # --- remediation ----------------------------------------------------------------------------

    def _wants_remediation(self, a: Analysed) -> bool:
        return (str(a.verdict.verdict) in REMEDIATE_VERDICTS
                and a.submission.source.kind == "mailbox"
                and self.flags.is_on(AUTO_QUARANTINE, tenant_id=a.submission.tenant_id))

    def _deferred_work(self, a: Analysed) -> list[str]:
        return ["remediation"] if self.degraded and self._wants_remediation(a) else []

    def _remediate(self, pairs: list[tuple[Analysed, StoredVerdict]]) -> None:
        for analysed, stored in pairs:
            if not stored.inserted or not self._wants_remediation(analysed):
                continue  # a redelivery was remediated the first time
            payload = {"tenant_id": analysed.submission.tenant_id, "message_id": analysed.submission.message_id,
                       "source": analysed.submission.source.model_dump(mode="json"),
                       "verdict": str(analysed.verdict.verdict)}
            if self.degraded or self.pipeline.remediator is None:
                self.pipeline.queue.defer_remediation({**payload, "why": "degraded mode"})
                continue
            try:
                outcome = self.pipeline.remediator.quarantine(analysed.submission)
                add_breadcrumb("remediated", f"remediation {outcome}", message_id=payload["message_id"])
            except Exception as exc:  # the verdict is stored; remediation is retried from its queue
                error_tracker.capture_exception(exc, level="warning", fingerprint=["remediation-deferred"],
                                                message_id=payload["message_id"])
                self.pipeline.queue.defer_remediation({**payload, "why": str(exc)})


def verdict_summary(verdict: Verdict, top: int = 3) -> dict[str, Any]:
    reasons = sorted(verdict.reasons, key=lambda r: -abs(r.weight))[:top]
    return {"verdict": str(verdict.verdict), "score": verdict.score, "top_reasons": [r.name for r in reasons]}
