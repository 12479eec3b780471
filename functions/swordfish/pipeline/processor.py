"""Processing one batch of submissions: load, analyse, persist in one transaction, remediate.

Nothing here knows the shape of an SQS event: the Lambda handler (and the local poller, through
the same handler) turns records into ``IncomingRecord`` and reports failures back. The outcome of
each record is one of:

- analysed, and its verdict written with the rest of the batch in one transaction;
- dead-lettered at once with its reason, when retrying cannot help (bad JSON, unknown tenant,
  message too large, mail that no longer exists);
- requeued with a delay, when a dependency's breaker is open (not counted as a failed receive);
- failed, so SQS redelivers it: any other error. A row PostgreSQL refuses fails only its own
  record (the batch is written again row by row, each under a savepoint); an unreachable database
  fails every record of the batch.

On a record's last receive (``max_receive_count``) a failure is dead-lettered by us, with its reason
and code, instead of being left to SQS's redrive, which would move it there with no reason at all.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from swordfish import constants
from swordfish.alerts.events import campaign_reached, events_for_verdict
from swordfish.analysis import (
    CONTENT_MODEL,
    EXPERIMENTAL_DETECTORS,
    AnalysisBudget,
    ParsedMessage,
    TenantPolicy,
    Verdict,
    parse_message,
    score_message,
)
from swordfish.analysis.budget import DEFAULT_ANALYSIS_BUDGET_SECONDS
from swordfish.analysis.trace import TraceFields, extract_trace
from swordfish.analysis.urls import is_ip_host
from swordfish.features import AUTO_QUARANTINE, CONTENT_MODEL_KILL_SWITCH, DEGRADED_MODE_KILL_SWITCH, detector_flag
from swordfish.monitoring import error_tracker
from swordfish.monitoring.breadcrumbs import add_breadcrumb
from swordfish.monitoring.context_provider import bind_context
from swordfish.pipeline.ports import (
    REMEDIATE_VERDICTS,
    AlertPublisher,
    CampaignObserver,
    DefaultFlags,
    FlagView,
    IncomingRecord,
    IndicatorLookup,
    LinkDomainHistory,
    MailLoader,
    PermanentFailure,
    PolicySource,
    QueuePort,
    RawMailArchive,
    RemediationRequest,
    Remediator,
    RetryLater,
    VerdictStore,
)
from swordfish.pipeline.submission import InvalidSubmission, Submission, parse_submission
from swordfish.store.campaigns import Hit
from swordfish.store.database import Database
from swordfish.store.pipeline_store import PostgresVerdictStore
from swordfish.store.tenants import UnknownTenant
from swordfish.store.verdicts import StoredVerdict, VerdictRecord

# The outcomes, values and ports live in ports.py (adapters import them from there); they are
# re-exported here for callers that still import them from the processor.
__all__ = ["DefaultFlags", "FlagView", "IncomingRecord", "IndicatorLookup", "MailLoader", "PermanentFailure",
           "QueuePort", "REMEDIATE_VERDICTS", "RemediationRequest", "Remediator", "RetryLater"]


class MessageIdReused(Exception):
    """A submission reused a message_id that already names a different message."""


def _mailbox_of(submission: Submission) -> tuple[str, str, str] | None:
    """Where a connected mailbox's message is, kept with its verdict for a later bulk response."""
    source = submission.source
    if getattr(source, "kind", None) != "mailbox":
        return None
    return source.connection_id, source.provider_config_key, source.provider_message_id


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --- policies -----------------------------------------------------------------------------------


class PolicyCache:
    """Tenant policies, cached per process for ``ttl`` seconds (policy changes apply within a minute)."""

    def __init__(self, source: PolicySource | Database, ttl: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.source = PostgresVerdictStore(source) if isinstance(source, Database) else source
        self.ttl, self.clock = ttl, clock
        self._entries: dict[str, tuple[float, TenantPolicy]] = {}

    def get(self, tenant_id: str) -> TenantPolicy:
        now = self.clock()
        hit = self._entries.get(tenant_id)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        policy = TenantPolicy.model_validate(self.source.load_policy(tenant_id))
        self._entries[tenant_id] = (now, policy)
        return policy


# --- the batch ----------------------------------------------------------------------------------

MAX_LINK_DOMAINS_PER_MESSAGE = 30
LINK_DOMAIN_RETRY_SECONDS = 30.0  # after the history failed, batches go without it this long


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:900]


@dataclass
class Analysed:
    record: IncomingRecord
    submission: Submission
    verdict: Verdict
    indicators_degraded: bool
    analysis_seconds: float = 0.0  # CPU time of parsing and scoring (the indicator lookup excluded)
    # What scoring again needs, once the batch's link-domain history is known (dropped after commit)
    parsed: ParsedMessage | None = None
    policy: TenantPolicy | None = None
    indicator_hits: dict[str, str] = field(default_factory=dict)
    experimental: frozenset[str] = frozenset()
    disabled: frozenset[str] = frozenset()
    content_sha256: str | None = None  # of the raw MIME: tells a reused message_id from a redelivery
    trace: TraceFields | None = None  # what search and campaigns read (issue 28), stored with the verdict

    def link_domains(self) -> set[str]:
        if self.parsed is None:
            return set()
        found = {link.domain for link in self.parsed.links
                 if link.domain and "." in link.domain and not is_ip_host(link.domain)}
        return set(sorted(found)[:MAX_LINK_DOMAINS_PER_MESSAGE])


@dataclass
class Committed:
    """What a batch commit did: the verdicts stored, and the records to retry with the error."""

    stored: list[tuple[Analysed, StoredVerdict]] = field(default_factory=list)
    retry: list[tuple[Analysed, BaseException]] = field(default_factory=list)


@dataclass
class Pipeline:
    database: Database | None
    policies: PolicyCache
    mail: MailLoader
    queue: QueuePort
    indicators: IndicatorLookup | None = None
    remediator: Remediator | None = None
    flags_snapshot: Callable[[], FlagView] = DefaultFlags
    degraded_backlog_seconds: float = 60.0
    max_message_bytes: int = 25 * 1024 * 1024
    experimental_detectors: frozenset[str] = EXPERIMENTAL_DETECTORS
    max_receive_count: int = constants.MAX_RECEIVE_COUNT
    # Per message: past it, the verdict covers what was analysed so far and says so.
    analysis_budget_seconds: float = DEFAULT_ANALYSIS_BUDGET_SECONDS
    analysis_clock: Callable[[], float] | None = None  # the budget's clock; None: the thread's CPU time
    verdicts: VerdictStore | None = None  # None: PostgreSQL through ``database``
    clock: Callable[[], datetime] = _utc_now  # for message ages (degraded mode)
    raw_archive: RawMailArchive | None = None  # submissions kept before analysis, for replay
    link_domains: LinkDomainHistory | None = None  # None: no NEW_LINK_DOMAIN signal
    campaigns: CampaignObserver | None = None  # None: no campaign grouping (issue 28)
    new_link_domain_window_seconds: float = 48 * 3600
    new_link_domain_warmup_seconds: float = 7 * 86_400
    # Epoch seconds (of `clock`) before which the link-domain history is not asked again (it failed).
    link_domains_retry_at: float = field(default=0.0, repr=False)
    alerts: AlertPublisher | None = None  # malware and VIP-impersonation alerts; None: none sent

    def verdict_store(self) -> VerdictStore:
        return self.verdicts if self.verdicts is not None else PostgresVerdictStore(self.database)

    def new_batch(self, records: list[IncomingRecord]) -> Batch:
        return Batch(self, records)


class Batch:
    """One invocation's records: ``add`` each, then ``commit`` once."""

    def __init__(self, pipeline: Pipeline, records: list[IncomingRecord]):
        self.pipeline = pipeline
        self.flags = pipeline.flags_snapshot()  # one flag configuration for the whole batch
        now = pipeline.clock()
        ages = [(now - r.sent_at).total_seconds() for r in records if r.sent_at]
        self.oldest_age_seconds = max(ages, default=0.0)
        self.degraded = (self.oldest_age_seconds > pipeline.degraded_backlog_seconds
                         and not self.flags.is_on(DEGRADED_MODE_KILL_SWITCH, default=False))
        self.analysed: list[Analysed] = []
        self.dead_lettered: list[tuple[IncomingRecord, str]] = []
        self.requeued: list[IncomingRecord] = []
        # queue message id -> (archive object key, line): stored with the verdict, so the console can
        # re-read the message from the archive instead of the pipeline storing mail a second time.
        self.archived_at: dict[str, tuple[str, int]] = {}
        if pipeline.raw_archive is not None:
            self._archive_raw(records)

    def _archive_raw(self, records: list[IncomingRecord]) -> None:
        # Before any analysis: a verdict lost with the database is recovered by replaying the archive.
        # Failing open: an archive outage costs replayability (database RPO still applies), not mail.
        try:
            key = self.pipeline.raw_archive.archive(records)
        except Exception as exc:
            error_tracker.capture_exception(exc, level="warning", fingerprint=["raw-archive-failed"],
                                            fallback="analysed without an archived copy", records=len(records))
            return
        if key:  # the archive writes one line per record, in this order
            self.archived_at = {r.queue_message_id: (key, line) for line, r in enumerate(records)}

    def add(self, record: IncomingRecord) -> None:
        """Analyse one record. Raises for a failure worth a redelivery; handles the rest itself."""
        try:
            self.analysed.append(self._analyse(record))
        except PermanentFailure as failure:
            self.dead_letter(record, failure.reason, failure.code, failure)
        except RetryLater as retry:
            add_breadcrumb("retry", retry.reason, delay_seconds=retry.delay_seconds)
            # Reported as the exception, so the event carries the tenant bound while it was raised.
            error_tracker.capture_exception(retry, level="warning", fingerprint=["retry-later"],
                                            fallback="requeued with a delay", delay_seconds=retry.delay_seconds)
            self.pipeline.queue.requeue(record, retry.delay_seconds)
            self.requeued.append(record)
        except Exception as exc:
            if not self.is_last_receive(record):
                raise  # SQS redelivers it
            self.dead_letter(record, f"failed on its last receive: {_describe(exc)}", "retries_exhausted", exc)

    def is_last_receive(self, record: IncomingRecord) -> bool:
        return record.receive_count >= self.pipeline.max_receive_count

    def dead_letter(self, record: IncomingRecord, reason: str, code: str, exc: BaseException) -> None:
        add_breadcrumb("dlq", reason, code=code)
        error_tracker.capture_exception(exc, level="warning", fingerprint=["dead-letter", code],
                                        queue_message_id=record.queue_message_id)
        self.pipeline.queue.dead_letter(record, reason, code)
        self.dead_lettered.append((record, code))

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
        except UnknownTenant as exc:  # or TenantDisabled: its own reason
            raise PermanentFailure(str(exc), exc.reason) from exc
        raw = p.mail.load(submission)
        if len(raw) > p.max_message_bytes:
            raise PermanentFailure(f"message is {len(raw)} bytes, over the {p.max_message_bytes}-byte limit",
                                   "message_too_large")
        budget = AnalysisBudget(p.analysis_budget_seconds, p.analysis_clock)
        parsed = parse_message(raw, policy, budget=budget)
        analysis_seconds = budget.spent()
        add_breadcrumb("parsed", "message parsed", size=len(raw), source=submission.source.kind,
                       problems=len(parsed.parse_problems), budget_exceeded=parsed.budget_exceeded)
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
        disabled = frozenset({CONTENT_MODEL}) if self.flags.is_on(
            CONTENT_MODEL_KILL_SWITCH, tenant_id=submission.tenant_id, default=False) else frozenset()
        scoring_started = budget.clock()
        verdict = score_message(parsed, policy, hits, experimental=experimental, disabled=disabled)
        analysis_seconds += budget.clock() - scoring_started
        add_breadcrumb("analysed", "verdict computed", verdict=str(verdict.verdict), score=verdict.score)
        return Analysed(record, submission, verdict, indicators_degraded, analysis_seconds,
                        parsed=parsed if p.link_domains is not None else None, policy=policy,
                        indicator_hits=hits, experimental=experimental, disabled=disabled,
                        content_sha256=hashlib.sha256(raw).hexdigest(),
                        trace=extract_trace(parsed, submission.envelope_recipients))

    def _new_link_domains(self) -> None:
        """One round trip to the link-domain history for the whole batch; the messages with a link
        domain first seen within the window are scored again with it (scoring is pure and cheap; the
        parse is not repeated). Without the history the signal is absent, never a failed message."""
        p = self.pipeline
        if p.link_domains is None or not self.analysed:
            return
        per_message = [a.link_domains() for a in self.analysed]
        domains = set().union(*per_message)
        if not domains or p.clock().timestamp() < p.link_domains_retry_at:
            return
        try:
            sightings = p.link_domains.observe(domains)
        except Exception as exc:  # the history is optional evidence: degrade, say so once per outage
            if p.link_domains_retry_at == 0.0:
                error_tracker.capture_exception(exc, level="warning", fingerprint=["link-domain-history-failed"],
                                                fallback="NEW_LINK_DOMAIN absent until the history answers")
            p.link_domains_retry_at = p.clock().timestamp() + LINK_DOMAIN_RETRY_SECONDS
            return
        p.link_domains_retry_at = 0.0
        new = sightings.new_domains(p.new_link_domain_window_seconds, p.new_link_domain_warmup_seconds)
        add_breadcrumb("external_call", "link-domain history looked up", domains=len(domains), new=len(new))
        if not new:
            return
        for analysed, mine in zip(self.analysed, per_message, strict=True):
            ages = {d: new[d] for d in mine if d in new}
            if ages and analysed.parsed is not None and analysed.policy is not None:
                started = time.thread_time()
                analysed.verdict = score_message(analysed.parsed, analysed.policy, analysed.indicator_hits,
                                                 experimental=analysed.experimental, new_link_domains=ages,
                                                 disabled=analysed.disabled)
                analysed.analysis_seconds += time.thread_time() - started

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
                raw_archive_key=self.archived_at.get(a.record.queue_message_id, (None, None))[0],
                raw_archive_line=self.archived_at.get(a.record.queue_message_id, (None, None))[1],
                content_sha256=a.content_sha256,
                trace=a.trace,
                mailbox=_mailbox_of(a.submission),
            )
            for a in self.analysed
        ]

    def commit(self) -> Committed:
        """Write every verdict of the batch in one transaction, then remediate what was stored.

        When PostgreSQL refuses a row, the batch is written again with a savepoint per row, so only
        the refused records fail (retried, or dead-lettered with the reason on their last receive)
        and their batch-mates keep their verdicts. When the database itself is unreachable this
        raises, and every record is retried (those on their last receive dead-lettered first).
        """
        committed = Committed()
        if not self.analysed:
            return committed
        self._new_link_domains()
        records = self.records_for_commit()
        store = self.pipeline.verdict_store()
        try:
            try:
                outcomes: list = store.save(records)
            except Exception as exc:
                if not store.is_row_error(exc):
                    raise
                add_breadcrumb("fallback", "a row was refused: writing the batch row by row", error=_describe(exc))
                outcomes = store.save_each(records)
        except Exception as exc:
            for analysed in self.analysed:
                if self.is_last_receive(analysed.record):
                    self.dead_letter(analysed.record, f"verdict could not be committed on its last receive: "
                                     f"{_describe(exc)}", "commit_failed", exc)
            raise
        for analysed, outcome in zip(self.analysed, outcomes, strict=True):
            if isinstance(outcome, StoredVerdict) and outcome.conflicting_sha256:
                # Not a duplicate: another message under a message_id that already has a verdict.
                # Its own outcome, with the reason, never counted as a duplicate and dropped.
                self.dead_letter(analysed.record, f"message_id {outcome.message_id!r} already has a verdict for "
                                 f"different content (stored sha256 {outcome.conflicting_sha256[:16]}..., this "
                                 f"{(analysed.content_sha256 or '')[:16]}...): resubmit it under its own message_id",
                                 "message_id_reused", MessageIdReused(outcome.message_id))
            elif isinstance(outcome, StoredVerdict):
                committed.stored.append((analysed, outcome))
            elif self.is_last_receive(analysed.record):
                self.dead_letter(analysed.record, f"the database refused the verdict: {_describe(outcome)}",
                                 "store_rejected", outcome)
            else:
                error_tracker.capture_exception(outcome, level="warning", fingerprint=["store-rejected"],
                                                queue_message_id=analysed.record.queue_message_id)
                committed.retry.append((analysed, outcome))
        add_breadcrumb("stored", "batch committed", verdicts=len(committed.stored), refused=len(committed.retry))
        for analysed in self.analysed:
            analysed.parsed = None  # the parse was kept for scoring again only
        self._group_campaigns(committed.stored)
        self._remediate(committed.stored)
        self._alert(committed.stored)
        return committed

    def _group_campaigns(self, stored: list[tuple[Analysed, StoredVerdict]]) -> None:
        """After the commit, in a transaction of its own: the batch that brings a lure's third tenant
        groups the campaign now, not at some later sweep. A failure loses no verdict; the next
        copy of the lure groups it."""
        if self.pipeline.campaigns is None:
            return
        hits = [Hit(s.tenant_id, s.committed_at, a.trace) for a, s in stored
                if s.inserted and s.committed_at is not None and a.trace is not None]
        if not hits:
            return
        try:
            touched = self.pipeline.campaigns.observe(hits)
        except Exception as exc:
            error_tracker.capture_exception(exc, level="warning", fingerprint=["campaign-grouping-failed"],
                                            fallback="verdicts stored; grouped by the next copy")
            return
        if touched:
            add_breadcrumb("info", "campaigns grouped", campaigns=len(touched))
        grown = list(getattr(touched, "grown", ()))
        if grown and self.pipeline.alerts is not None:
            self._alert_campaigns(grown)

    def _alert_campaigns(self, campaign_ids: list[int]) -> None:
        """A campaign that reached one more tenant is worth telling the MSP (issue 28); the event id
        carries the tenant count, so each count alerts once. Failing open, like the other alerts."""
        try:
            events = [campaign_reached(campaign_id=str(c["campaign_id"]), tenant_ids=c["tenants"],
                                       first_seen=c["first_seen"], last_seen=c["last_seen"],
                                       indicators={c["kind"]: [c["indicator"]]}, verdict_mix=c["verdict_mix"],
                                       reasons=list(c["reasons"]), link=f"/console/campaigns/{c['campaign_id']}")
                      for c in self.pipeline.campaigns.summaries(campaign_ids)]
            if events:
                self.pipeline.alerts.publish(events)
        except Exception as exc:
            error_tracker.capture_exception(exc, level="warning", fingerprint=["campaign-alert-failed"],
                                            fallback="campaign grouped; its alert was not queued",
                                            campaigns=len(campaign_ids))
    def _alert(self, pairs: list[tuple[Analysed, StoredVerdict]]) -> None:
        """Alerts for what was stored (malware, VIP impersonation); a redelivery alerted the first time.
        Failing open: the verdicts are stored whatever happens to their alerts."""
        if self.pipeline.alerts is None:
            return
        events = []
        for a, stored in pairs:
            if stored.inserted:
                events += events_for_verdict(
                    tenant_id=a.submission.tenant_id, message_id=a.submission.message_id,
                    verdict=str(a.verdict.verdict), score=a.verdict.score,
                    reasons=[r.model_dump(mode="json") for r in a.verdict.reasons], subject=a.verdict.subject,
                    sender=a.verdict.sender, at=self.pipeline.clock())
        if not events:
            return
        try:
            self.pipeline.alerts.publish(events)
        except Exception as exc:
            error_tracker.capture_exception(exc, level="warning", fingerprint=["alerts-publish-failed"],
                                            fallback="verdicts stored; these alerts were not queued", events=len(events))

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
            submission, verdict = analysed.submission, str(analysed.verdict.verdict)
            if self.degraded or self.pipeline.remediator is None:
                self.pipeline.queue.defer_remediation(RemediationRequest.for_submission(submission, "degraded mode", verdict))
                continue
            try:
                outcome = self.pipeline.remediator.quarantine(submission)
                add_breadcrumb("remediated", f"remediation {outcome}", message_id=submission.message_id)
            except Exception as exc:  # the verdict is stored; remediation is retried from its queue
                error_tracker.capture_exception(exc, level="warning", fingerprint=["remediation-deferred"],
                                                message_id=submission.message_id)
                self.pipeline.queue.defer_remediation(RemediationRequest.for_submission(submission, str(exc), verdict))
