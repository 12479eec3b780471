"""In-memory fakes of the ports (pipeline/ports.py, api/routes.ApiStore): the unit layer runs the
real processor and the real API routes against these, with no server of any kind."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from swordfish.pipeline.ports import IncomingRecord, LinkDomainSightings, RemediationRequest
from swordfish.pipeline.submission import InlineSource, MailboxSource, Submission
from swordfish.store.tenants import UnknownTenant
from swordfish.store.verdicts import StoredVerdict, VerdictRecord

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "swordfish"
PHISH = (SAMPLES / "m365-password-expiry-phish.eml").read_bytes()
CLEAN = (SAMPLES / "clean-newsletter.eml").read_bytes()
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class ManualClock:
    """A clock the test moves: ``clock()`` for datetimes, ``clock.monotonic()`` for seconds."""

    def __init__(self, start: datetime = T0):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.now.timestamp()

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class RefusedRow(Exception):
    """What the fake store raises for a row it refuses (PostgreSQL's would be a psycopg error)."""


class StoreUnreachable(Exception):
    pass


@dataclass
class FakeVerdictStore:
    """``VerdictStore`` + ``PolicySource``: verdicts in a dict, the first verdict per message stands."""

    policies: dict[str, dict] = field(default_factory=lambda: {"acme": {}, "globex": {}})
    rows: dict[tuple[str, str], VerdictRecord] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)  # message ids whose row is refused
    unreachable: bool = False
    policy_loads: int = 0

    def _one(self, record: VerdictRecord) -> StoredVerdict:
        key = (record.tenant_id, record.message_id)
        inserted = key not in self.rows
        self.rows.setdefault(key, record)
        latency = None
        if inserted and record.sqs_sent_at:
            latency = (T0 - record.sqs_sent_at).total_seconds() * 1000
        return StoredVerdict(record.tenant_id, record.message_id, inserted, latency,
                             committed_at=T0 if inserted else None)

    def save(self, records: list[VerdictRecord]) -> list[StoredVerdict]:
        if self.unreachable:
            raise StoreUnreachable("connection refused")
        if any(r.message_id in self.refuse for r in records):
            raise RefusedRow("a row was refused")  # all or nothing, as one transaction
        return [self._one(r) for r in records]

    def save_each(self, records: list[VerdictRecord]) -> list[StoredVerdict | Exception]:
        if self.unreachable:
            raise StoreUnreachable("connection refused")
        return [RefusedRow(f"refused {r.message_id}") if r.message_id in self.refuse else self._one(r)
                for r in records]

    def is_row_error(self, exc: BaseException) -> bool:
        return isinstance(exc, RefusedRow)

    def load_policy(self, tenant_id: str) -> dict:
        self.policy_loads += 1
        if tenant_id not in self.policies:
            raise UnknownTenant(tenant_id)
        return self.policies[tenant_id]


@dataclass
class FakeQueue:
    """``QueuePort``: what went to the DLQ, back to the queue, and to the remediation retry queue."""

    dead: list[tuple[str, str, str]] = field(default_factory=list)  # (queue message id, code, reason)
    requeued: list[tuple[str, int]] = field(default_factory=list)
    deferred: list[RemediationRequest] = field(default_factory=list)

    def dead_letter(self, record: IncomingRecord, reason: str, code: str) -> None:
        self.dead.append((record.queue_message_id, code, reason))

    def requeue(self, record: IncomingRecord, delay_seconds: int) -> None:
        self.requeued.append((record.queue_message_id, delay_seconds))

    def defer_remediation(self, request: RemediationRequest) -> None:
        self.deferred.append(request)


@dataclass
class FakeMailLoader:
    """``MailLoader``: inline mail decoded; mailbox mail from a dict; ``fail`` raises per message id."""

    mailbox: dict[str, bytes] = field(default_factory=dict)
    fail: dict[str, Exception] = field(default_factory=dict)

    def load(self, submission: Submission) -> bytes:
        if submission.message_id in self.fail:
            raise self.fail[submission.message_id]
        if isinstance(submission.source, InlineSource):
            return submission.source.raw()
        return self.mailbox[submission.source.provider_message_id]


@dataclass
class FakeRemediator:
    quarantined: list[str] = field(default_factory=list)
    error: Exception | None = None

    def quarantine(self, submission) -> str:
        if self.error is not None:
            raise self.error
        self.quarantined.append(submission.message_id)
        return "quarantined"


@dataclass
class FakeFlags:
    """``FlagView``: flags on for every tenant, or for the listed tenants."""

    on: dict[str, set[str] | bool] = field(default_factory=dict)
    version: str | None = "test-1"

    def is_on(self, name: str, *, tenant_id: str | None = None, default: bool = False) -> bool:
        value = self.on.get(name, default)
        return value if isinstance(value, bool) else tenant_id in value


@dataclass
class FakeLinkDomainHistory:
    """``LinkDomainHistory`` in a dict, on an injected clock (epoch seconds); ``down`` fails every call."""

    clock: ManualClock
    first_seen: dict[str, float] = field(default_factory=dict)
    observing_since: float | None = None
    calls: list[set[str]] = field(default_factory=list)
    down: bool = False

    def observe(self, domains: set[str]) -> LinkDomainSightings:
        self.calls.append(set(domains))
        if self.down:
            raise ConnectionError("link-domain history unreachable")
        now = self.clock.monotonic()
        if self.observing_since is None:
            self.observing_since = now
        for d in domains:
            self.first_seen.setdefault(d, now)
        return LinkDomainSightings(now=now, observing_since=self.observing_since,
                                   first_seen={d: self.first_seen[d] for d in domains})


_ids = itertools.count(1)


def record(submission: Submission | str, *, sent_at: datetime | None = T0, receive_count: int = 1) -> IncomingRecord:
    body = submission if isinstance(submission, str) else submission.model_dump_json()
    return IncomingRecord(queue_message_id=f"q-{next(_ids)}", body=body, sent_at=sent_at,
                          receive_count=receive_count, correlation_id="corr-1")


def inline(tenant: str, message_id: str, raw: bytes = CLEAN) -> Submission:
    from swordfish.pipeline.submission import inline_submission

    return inline_submission(tenant, message_id, raw, T0)


def mailbox(tenant: str, message_id: str, provider_message_id: str = "m-1") -> Submission:
    return Submission(tenant_id=tenant, message_id=message_id, submitted_at=T0,
                      source=MailboxSource(connection_id="conn-1", provider_config_key="microsoft",
                                           provider_message_id=provider_message_id))
