"""Replay archived raw submissions into a (restored) database: the pipeline-aware half of recovery.

Each archived submission goes through the same ``Pipeline`` as live mail (built by
``wiring.build_replay_pipeline``: the processor's indicators, link-domain history, flags and the
tenants' current policies), against the database given (normally the restored server), in
batches. Verdicts are idempotent on (tenant_id, message_id): a submission whose verdict survived
the restore is a no-op; one whose verdict was lost gets it again. ``compare_verdicts`` tells what a
replay changed and why (the drill uses it). Nothing is sent to a queue: dead letters, requeues and deferred quarantines are
collected and reported for the operator instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from swordfish.pipeline.processor import IncomingRecord, Pipeline

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


# --- did the replay give back the verdicts the tenants got? ------------------------------------

# Reasons whose presence depends on something outside the message, and what that something is.
FEED_REASONS = frozenset({"URL_IN_THREAT_FEED"})
HISTORY_REASONS = frozenset({"NEW_LINK_DOMAIN"})
POLICY_REASONS = frozenset({"ALLOWLISTED", "ALLOWLIST_IGNORED", "BLOCKLISTED", "VIP_IMPERSONATION",
                            "OWN_DOMAIN_SPOOF", "TENANT_LOOKALIKE_DOMAIN", "PAYMENT_ASK_FROM_UNVERIFIED"})
BUDGET_REASONS = frozenset({"ANALYSIS_BUDGET_EXCEEDED", "ANALYSIS_ERROR"})


def _names(stored: dict) -> set[str]:
    return {r["name"] for r in stored.get("reasons") or []}


def _cause(before: dict, after: dict) -> str:
    """Why a replayed verdict differs from the one stored before the disaster, as far as the two
    rows tell: which reasons came and went, and what outside the message decides those reasons."""
    lost, gained = _names(before) - _names(after), _names(after) - _names(before)
    changed = lost | gained
    causes = []
    if changed & FEED_REASONS:
        causes.append("threat indicators differ (the feeds changed since, or a lookup was degraded: "
                      f"degraded before={bool(before.get('degraded'))}, after={bool(after.get('degraded'))})")
    if changed & HISTORY_REASONS:
        causes.append("link-domain history differs (a first sighting is outside the window now, or the history "
                      "was lost)")
    if changed & POLICY_REASONS:
        causes.append("the tenant's policy changed since")
    if changed & BUDGET_REASONS:
        causes.append("the analysis budget ran out in one run and not the other")
    if before.get("flags_version") != after.get("flags_version"):
        causes.append(f"flags changed ({before.get('flags_version')} -> {after.get('flags_version')})")
    if not causes:
        causes.append("the analysis itself changed (code or weights): same inputs, different reasons or weights"
                      if changed or before.get("score") != after.get("score") else "unexplained")
    detail = "; ".join(causes)
    moves = [f"-{n}" for n in sorted(lost)] + [f"+{n}" for n in sorted(gained)]
    return f"{detail} [{' '.join(moves)}]" if moves else detail


def compare_verdicts(before: dict[tuple[str, str], dict], after: dict[tuple[str, str], dict]) -> list[dict]:
    """Every (tenant, message) whose verdict, score or reasons after the replay differ from what was
    stored before the disaster, with its cause; a verdict absent after the replay is a difference too."""
    differences = []
    for key in sorted(before):
        was, now = before[key], after.get(key)
        entry = {"tenant_id": key[0], "message_id": key[1], "before": _summary(was)}
        if now is None:
            differences.append(entry | {"after": None, "cause": "missing after the replay"})
            continue
        same = (was["verdict"] == now["verdict"] and round(float(was["score"]), 2) == round(float(now["score"]), 2)
                and _reason_set(was) == _reason_set(now))
        if not same:
            differences.append(entry | {"after": _summary(now), "cause": _cause(was, now)})
    return differences


def _reason_set(stored: dict) -> set[tuple[str, float]]:
    return {(r["name"], round(float(r.get("weight", 0)), 2)) for r in stored.get("reasons") or []}


def _summary(stored: dict) -> dict:
    return {"verdict": stored["verdict"], "score": float(stored["score"]), "reasons": sorted(_names(stored))}


def stored_verdicts(conn, keys) -> dict[tuple[str, str], dict]:
    """verdict, score, reasons, flags_version and degraded of the given (tenant, message) keys, read
    on ``conn`` (a superuser or owner connection: across tenants)."""
    keys = list(keys)
    if not keys:
        return {}
    rows = conn.execute(
        "SELECT v.tenant_id, v.message_id, v.verdict, v.score, v.reasons, v.flags_version, v.degraded "
        "FROM verdicts v JOIN unnest(%s::text[], %s::text[]) AS k(tenant_id, message_id) "
        "ON v.tenant_id = k.tenant_id AND v.message_id = k.message_id",
        ([k[0] for k in keys], [k[1] for k in keys])).fetchall()
    return {(r[0], r[1]): {"verdict": r[2], "score": r[3], "reasons": r[4] or [], "flags_version": r[5],
                           "degraded": r[6]} for r in rows}
