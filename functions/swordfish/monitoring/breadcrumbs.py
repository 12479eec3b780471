"""A bounded trail of typed steps, per invocation and per record, attached to every error event.

Public API:

- ``BreadcrumbKind``: the typed kinds (received, parsed, analysed, indicator_lookup, stored,
  remediated, fallback, dlq, retry, external_call, deadline, info).
- ``add_breadcrumb(kind, message, **data)``: ``kind`` is a BreadcrumbKind or its value (an unknown
  kind raises ValueError). ``data`` is scrubbed when added. Inside ``record_scope()`` it goes to
  the record's trail, else to the invocation's.
- ``record_scope(**fields)``: context manager; a fresh per-record trail nested in the invocation's,
  and ``bind_context(**fields)`` for the record (tenant_id, sqs_message_id, correlation_id...).
- ``current_breadcrumbs() -> list[dict]``: what an error raised here gets: the invocation's trail
  then the current record's, oldest first, each tagged ``scope`` "invocation" or "record".
- ``all_breadcrumbs() -> list[dict]``: the invocation's trail plus every record trail still open
  (from any thread): what the deadline warning reports.
- ``breadcrumbs_of(exc)``: the trail as it was when an exception left a ``record_scope``, so an
  error captured after the record scope has closed still carries the record's steps.
- ``reset_breadcrumbs()``: a fresh invocation trail (``track_errors`` calls it per invocation).
- ``trail_dropped() -> int``: entries the bounded trails in scope have dropped.

Each trail keeps the last MAX_BREADCRUMBS (50) entries.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections import deque
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from swordfish.monitoring.context_provider import bind_context, remember_on
from swordfish.monitoring.scrubber import scrub, scrub_text

MAX_BREADCRUMBS = 50
_EXC_BREADCRUMBS_ATTR = "_swordfish_breadcrumbs"


class BreadcrumbKind(StrEnum):
    RECEIVED = "received"
    PARSED = "parsed"
    ANALYSED = "analysed"
    INDICATOR_LOOKUP = "indicator_lookup"  # data: indicator kind, hit, breaker state
    STORED = "stored"
    REMEDIATED = "remediated"
    FALLBACK = "fallback"
    DLQ = "dlq"
    RETRY = "retry"
    EXTERNAL_CALL = "external_call"
    DEADLINE = "deadline"
    INFO = "info"


class _Trail:
    def __init__(self, scope: str, fields: dict[str, Any] | None = None):
        self.scope = scope
        self.fields = fields or {}
        self.entries: deque[dict[str, Any]] = deque(maxlen=MAX_BREADCRUMBS)
        self.added = 0

    def add(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)
        self.added += 1

    @property
    def dropped(self) -> int:
        return self.added - len(self.entries)

    def snapshot(self) -> list[dict[str, Any]]:
        return [dict(entry, scope=self.scope) for entry in list(self.entries)]


class _Invocation:
    def __init__(self) -> None:
        self.trail = _Trail("invocation")
        self.open_records: dict[int, _Trail] = {}
        self.lock = threading.Lock()


_invocation: ContextVar[_Invocation | None] = ContextVar("swordfish_breadcrumbs", default=None)
_record: ContextVar[_Trail | None] = ContextVar("swordfish_record_breadcrumbs", default=None)
_record_ids = itertools.count()


def _current_invocation() -> _Invocation:
    invocation = _invocation.get()
    if invocation is None:  # outside track_errors (devstack processes, scripts): one lazily made trail
        invocation = _Invocation()
        _invocation.set(invocation)
    return invocation


def reset_breadcrumbs() -> None:
    _invocation.set(_Invocation())
    _record.set(None)


def add_breadcrumb(kind: BreadcrumbKind | str, message: str, **data: Any) -> None:
    try:
        kind = BreadcrumbKind(kind)
    except ValueError:
        valid = ", ".join(k.value for k in BreadcrumbKind)
        raise ValueError(f"unknown breadcrumb kind {kind!r}; use one of: {valid}") from None
    # Stored as given and scrubbed when read (current_breadcrumbs) and again in the error event:
    # a trail is read only when an error is reported, while every email adds several crumbs, and
    # scrubbing each one as it was added was a tenth of a worker's time under load.
    entry = {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "kind": kind.value,
        "message": str(message),
        "data": data,
    }
    (_record.get() or _current_invocation().trail).add(entry)


@contextlib.contextmanager
def record_scope(**fields: Any) -> Iterator[None]:
    invocation = _current_invocation()
    trail = _Trail("record", {k: v for k, v in fields.items() if v is not None})
    record_id = next(_record_ids)
    token = _record.set(trail)
    with invocation.lock:
        invocation.open_records[record_id] = trail
    try:
        with bind_context(**fields):
            yield
    except BaseException as exc:
        remember_on(exc, _EXC_BREADCRUMBS_ATTR, current_breadcrumbs())
        raise
    finally:
        _record.reset(token)
        with invocation.lock:
            invocation.open_records.pop(record_id, None)


def current_breadcrumbs() -> list[dict[str, Any]]:
    crumbs = _current_invocation().trail.snapshot()
    record = _record.get()
    if record is not None:
        crumbs += record.snapshot()
    return [_scrubbed(c) for c in crumbs]


def _scrubbed(crumb: dict[str, Any]) -> dict[str, Any]:
    return {**crumb, "message": scrub_text(crumb["message"]), "data": scrub(crumb["data"])}


def breadcrumbs_of(exc: BaseException) -> list[dict[str, Any]] | None:
    """The trail as it was when ``exc`` left a ``record_scope`` (the record's trail is gone after)."""
    return getattr(exc, _EXC_BREADCRUMBS_ATTR, None)


def trail_dropped() -> int:
    record = _record.get()
    return _current_invocation().trail.dropped + (record.dropped if record is not None else 0)


def all_breadcrumbs() -> list[dict[str, Any]]:
    invocation = _current_invocation()
    crumbs = invocation.trail.snapshot()
    with invocation.lock:
        records = list(invocation.open_records.values())
    for trail in records:
        crumbs += [dict(entry, record=trail.fields) for entry in trail.snapshot()]
    return [_scrubbed(c) for c in crumbs]
