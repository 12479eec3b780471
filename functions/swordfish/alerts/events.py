"""What an alert says: one event of a kind, for one or more tenants, as JSON (pure, no I/O).

The kinds: ``malware`` and ``vip_impersonation`` (a stored verdict), ``phishing_rate`` (a tenant's
share of phishing and malware jumped, ``rate_monitor``) and ``campaign`` (one lure reached N tenants).

**The campaign hook.** Campaign grouping (issue 28, elsewhere) calls::

    from swordfish.alerts.events import campaign_reached
    publisher.publish([campaign_reached(campaign_id=..., tenant_ids=[...], first_seen=..., last_seen=...,
                                        indicators={"link_domain": [...]}, verdict_mix={"phishing": 7},
                                        reasons=["CREDENTIAL_PHISHING_LANGUAGE"], link="/console/...")])

every time a campaign's tenant count grows (the ``publisher`` is ``wiring.alert_publisher()``, an
``AlertPublisher``). The event id is the campaign's id and its tenant count, so a campaign that
stays at 3 tenants alerts once, and again at 4; each rule decides with its ``min_tenants`` whether
that count is worth an alert. See docs/alerts.md for the JSON every receiver gets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MALWARE, VIP_IMPERSONATION, PHISHING_RATE, CAMPAIGN = "malware", "vip_impersonation", "phishing_rate", "campaign"
EVENT_KINDS = (MALWARE, VIP_IMPERSONATION, PHISHING_RATE, CAMPAIGN)
SCHEMA_VERSION = 1
VIP_SIGNAL = "VIP_IMPERSONATION"


def _iso(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _event_id(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class AlertEvent:
    """One thing worth telling the MSP. ``event_id`` is stable for the same occurrence (a
    redelivered verdict, a campaign at the same count), so receivers can drop repeats."""

    event_id: str
    kind: str
    tenant_ids: tuple[str, ...]
    occurred_at: str  # ISO 8601, UTC
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r}")
        if not self.tenant_ids:
            raise ValueError("an alert is about at least one tenant")

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "event_id": self.event_id, "kind": self.kind,
                "tenant_ids": list(self.tenant_ids), "occurred_at": self.occurred_at,
                "summary": self.summary, "details": dict(self.details)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertEvent:
        return cls(event_id=str(data["event_id"]), kind=str(data["kind"]),
                   tenant_ids=tuple(str(t) for t in data["tenant_ids"]), occurred_at=str(data["occurred_at"]),
                   summary=str(data.get("summary") or ""), details=dict(data.get("details") or {}))


def _verdict_details(tenant_id: str, message_id: str, verdict: str, score: float, reasons: Iterable[Mapping],
                     subject: str | None, sender: str | None) -> dict:
    return {"tenant_id": tenant_id, "message_id": message_id, "verdict": verdict, "score": round(float(score), 2),
            "reasons": [str(r.get("name")) for r in reasons][:20], "subject": (subject or "")[:300],
            "sender": (sender or "")[:320]}


def events_for_verdict(*, tenant_id: str, message_id: str, verdict: str, score: float, reasons: Iterable[Mapping],
                       subject: str | None, sender: str | None, at: datetime | str) -> list[AlertEvent]:
    """The alerts one stored verdict raises: malware, and an executive impersonated."""
    reasons = list(reasons)
    details = _verdict_details(tenant_id, message_id, verdict, score, reasons, subject, sender)
    found = []
    if verdict == "malware":
        found.append(AlertEvent(_event_id(MALWARE, tenant_id, message_id), MALWARE, (tenant_id,), _iso(at),
                                f"malware for {tenant_id} from {details['sender'] or 'an unknown sender'}", details))
    vip = next((r for r in reasons if r.get("name") == VIP_SIGNAL), None)
    if vip is not None:
        found.append(AlertEvent(_event_id(VIP_IMPERSONATION, tenant_id, message_id), VIP_IMPERSONATION, (tenant_id,),
                                _iso(at), f"VIP impersonation for {tenant_id}: {str(vip.get('evidence') or '')[:200]}",
                                details | {"evidence": str(vip.get("evidence") or "")[:500]}))
    return found


def phishing_rate_jumped(*, tenant_id: str, at: datetime, window_seconds: float, window_total: int,
                         window_bad: int, baseline_rate: float) -> AlertEvent:
    rate = window_bad / window_total if window_total else 0.0
    hour = int(at.timestamp() // 3600)
    return AlertEvent(_event_id(PHISHING_RATE, tenant_id, hour), PHISHING_RATE, (tenant_id,), _iso(at),
                      f"{tenant_id}: {rate:.0%} phishing or malware in the last {window_seconds / 60:.0f} min "
                      f"(usually {baseline_rate:.0%})",
                      {"tenant_id": tenant_id, "window_seconds": window_seconds, "window_total": window_total,
                       "window_phishing_or_malware": window_bad, "window_rate": round(rate, 4),
                       "baseline_rate": round(baseline_rate, 4)})


def campaign_reached(*, campaign_id: str, tenant_ids: Iterable[str], first_seen: datetime | str,
                     last_seen: datetime | str, indicators: Mapping[str, Iterable[str]] | None = None,
                     verdict_mix: Mapping[str, int] | None = None, reasons: Iterable[str] = (),
                     link: str | None = None) -> AlertEvent:
    """The campaign hook: a campaign now spans ``tenant_ids`` (call it when that set grows)."""
    tenants = tuple(sorted(set(tenant_ids)))
    return AlertEvent(_event_id(CAMPAIGN, campaign_id, len(tenants)), CAMPAIGN, tenants, _iso(last_seen),
                      f"campaign {campaign_id} reached {len(tenants)} tenants",
                      {"campaign_id": campaign_id, "tenant_count": len(tenants), "first_seen": _iso(first_seen),
                       "last_seen": _iso(last_seen),
                       "indicators": {k: sorted(set(v))[:50] for k, v in (indicators or {}).items()},
                       "verdict_mix": dict(verdict_mix or {}), "reasons": sorted(set(reasons))[:20],
                       "link": link})
