"""The analysis engine: MIME parsing, signals and scoring. Pure, deterministic, no I/O, never raises.

The pipeline calls `parse_message`, looks up `parsed.indicator_candidates()` in the threat feeds in one
round trip, then `score_message`; `analyze` does the three in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .budget import AnalysisBudget
from .models import Reason, TenantPolicy, Thresholds, Verdict, VerdictKind
from .parse import Attachment, Link, ParsedMessage
from .parse import parse_message as _parse_message
from .scoring import CONTENT_MODEL, EXPERIMENTAL_DETECTORS, score_message
from .urls import normalize_url, registered_domain

__all__ = [
    "CONTENT_MODEL", "EXPERIMENTAL_DETECTORS", "AnalysisBudget", "Attachment", "Link", "ParsedMessage", "Reason",
    "TenantPolicy", "Thresholds",
    "Verdict", "VerdictKind", "analyze", "normalize_url", "parse_message", "registered_domain",
    "score_message",
]

_DEFAULT_POLICY = TenantPolicy()


def parse_message(raw: bytes, policy: TenantPolicy | None = None, *,
                  budget: AnalysisBudget | None = None) -> ParsedMessage:
    """Parse raw MIME. Never raises; problems are listed in `parse_problems`. The policy, when given,
    selects which Authentication-Results headers are trusted; `budget` bounds the time spent (a fresh
    default budget when not given)."""
    trusted = policy.trusted_ids if policy is not None else None
    return _parse_message(raw, trusted_authserv_ids=trusted, budget=budget)


def analyze(raw: bytes, policy: TenantPolicy | None = None,
            indicator_hits_for: Callable[[set[str]], Mapping[str, str]] | None = None, *,
            experimental: frozenset[str] = frozenset(), budget: AnalysisBudget | None = None) -> Verdict:
    """Parse, look up threat indicators (once, through `indicator_hits_for`) and score one message."""
    policy = policy or _DEFAULT_POLICY
    parsed = parse_message(raw, policy, budget=budget)
    hits: Mapping[str, str] = {}
    if indicator_hits_for is not None:
        candidates = parsed.indicator_candidates()
        if candidates:
            hits = indicator_hits_for(candidates)
    return score_message(parsed, policy, hits, experimental=experimental)
