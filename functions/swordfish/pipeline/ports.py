"""The pipeline's ports: the values and contracts shared by the domain and its adapters.

This module is the bottom of the pipeline's layers (see docs/architecture.md). The processor and
the remediation retry speak only these types; the adapters (SQS, S3, Nango, Redis, breakers)
implement the Protocols and raise these exceptions. Adapters import this module, never the
processor; this module imports nothing of the pipeline but the submission contract.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from swordfish.pipeline.submission import MailboxSource, Submission

if TYPE_CHECKING:  # the row values are the store's; only their names are needed here
    from swordfish.store.verdicts import StoredVerdict, VerdictRecord

SQS_MAX_DELAY_SECONDS = 900  # SQS's ceiling for DelaySeconds (15 minutes)

REMEDIATE_VERDICTS = frozenset({"phishing", "malware"})


# --- outcomes ------------------------------------------------------------------------------------


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


class MessageGone(Exception):
    """The mailbox no longer has the message (the user deleted or moved it): nothing to quarantine."""


class RemediationUnavailable(Exception):
    """The quarantine was not attempted because the remediation service is unavailable: try later."""


class NotQuarantined(Exception):
    """A release was asked for a message that is not in quarantine (never was, or already released)."""


class ReleaseFailed(Exception):
    """The mailbox did not move the message back. ``kind`` says why, for the analyst and the audit:
    "unavailable" (Nango down, slow or its breaker open: try later), "gone" (the message no longer
    exists in the mailbox), "refused" (Nango or the mailbox refused our credentials or request)."""

    HTTP_STATUS = {"unavailable": 503, "gone": 410, "refused": 502}  # for the console and the API alike

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind

    @property
    def http_status(self) -> int:
        return self.HTTP_STATUS.get(self.kind, 502)


# --- values --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncomingRecord:
    """One queue message as the pipeline sees it (no event shape: the handler builds these)."""

    queue_message_id: str
    body: str
    sent_at: datetime | None
    receive_count: int = 1
    correlation_id: str | None = None


class RemediationRequest(BaseModel):
    """The only remediation payload: what goes onto the remediation retry queue, from the processor
    (degraded mode, a failed quarantine), from the guarded remediator (breaker open) and from the
    remediation retry itself (requeued). Unknown keys are ignored so older bodies still parse."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["quarantine"] = "quarantine"
    tenant_id: str
    message_id: str
    source: MailboxSource
    verdict: str | None = None
    why: str = ""
    attempts: int = 0
    deferred_at: float = Field(default_factory=time.time)

    @classmethod
    def for_submission(cls, submission: Submission | Any, why: str, verdict: str | None = None) -> RemediationRequest:
        return cls(tenant_id=submission.tenant_id, message_id=submission.message_id, source=submission.source,
                   verdict=verdict, why=why)


@dataclass(frozen=True)
class QuarantineEntry:
    """A mailbox message Swordfish moved to Junk Email, and where it is now."""

    tenant_id: str
    message_id: str
    connection_id: str
    provider_config_key: str
    provider_message_id: str


# --- ports ---------------------------------------------------------------------------------------


class MailLoader(Protocol):
    def load(self, submission: Submission) -> bytes: ...


class RemediationQueue(Protocol):
    def defer(self, request: RemediationRequest, delay_seconds: int = 0) -> None: ...


class QueuePort(Protocol):
    def dead_letter(self, record: IncomingRecord, reason: str, code: str) -> None: ...
    def requeue(self, record: IncomingRecord, delay_seconds: int) -> None: ...
    def defer_remediation(self, request: RemediationRequest) -> None: ...


class RawMailArchive(Protocol):
    """Keeps every received submission before analysis, for replay after a database restore."""

    def archive(self, records: list[IncomingRecord]) -> str | None: ...


class IndicatorLookup(Protocol):
    def match(self, candidates: set[str]) -> dict[str, str]: ...


@dataclass(frozen=True)
class LinkDomainSightings:
    """What the link-domain history answered for one batch: when each domain was first seen, and since
    when the deployment has been observing at all (epoch seconds)."""

    now: float
    observing_since: float
    first_seen: dict[str, float]

    def new_domains(self, window_seconds: float, warmup_seconds: float) -> dict[str, float]:
        """Domain -> hours since first seen, for those first seen within the window; nothing while the
        deployment is still warming up (every domain is new to a deployment that just started)."""
        if self.now - self.observing_since < warmup_seconds:
            return {}
        return {d: round((self.now - t) / 3600, 1) for d, t in self.first_seen.items()
                if self.now - t < window_seconds}


class LinkDomainHistory(Protocol):
    """First sightings of link domains across the deployment: records every domain it is shown (the
    first sighting stands) and answers with the first-seen times, in one round trip per call."""

    def observe(self, domains: set[str]) -> LinkDomainSightings: ...


class Remediator(Protocol):
    def quarantine(self, submission: Submission | RemediationRequest) -> str: ...


class Releaser(Protocol):
    """Moves a quarantined message back to the inbox; returns its id there. Raises ReleaseFailed."""

    def release(self, entry: QuarantineEntry) -> str | None: ...


class QuarantineLedger(Protocol):
    """Remembers each quarantine that succeeded (``store.quarantines``), so it can be released."""

    def record_quarantine(self, entry: QuarantineEntry) -> None: ...


class AlertPublisher(Protocol):
    """Where alert events go (``alerts.dispatcher.SqsAlertPublisher``: the alerts queue)."""

    def publish(self, events: list[Any]) -> None: ...  # alerts.events.AlertEvent


class VerdictStore(Protocol):
    """Where verdicts are written (``store.pipeline_store.PostgresVerdictStore``)."""

    def save(self, records: list[VerdictRecord]) -> list[StoredVerdict]: ...
    def save_each(self, records: list[VerdictRecord]) -> list[StoredVerdict | Exception]: ...
    def is_row_error(self, exc: BaseException) -> bool: ...


class CampaignObserver(Protocol):
    """Groups stored verdicts that share indicators with other tenants' (``store.campaigns``)."""

    def observe(self, hits: list) -> list[int]: ...  # store.campaigns.Hit: campaign ids touched (.grown: rose)

    def summaries(self, campaign_ids: list[int]) -> list[dict]: ...  # store.campaigns.summary of each


class PolicySource(Protocol):
    def load_policy(self, tenant_id: str) -> dict: ...  # raises store.tenants.UnknownTenant


class FlagView(Protocol):
    version: str | None

    def is_on(self, name: str, *, tenant_id: str | None = None, default: bool = False) -> bool: ...


class DefaultFlags:
    """Every flag at its declared default: used when no flag store is configured (for example in
    `swordfish analyze`), never as a stand-in for a configured store."""

    version = None

    def is_on(self, name: str, *, tenant_id: str | None = None, default: bool = False) -> bool:
        return default
