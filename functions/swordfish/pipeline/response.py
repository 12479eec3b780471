"""The bulk response worker (issue 28): works off the items of response jobs (``store.response_jobs``).

Each item is one message in one mailbox: quarantine (move to Junk Email), release (back to the
Inbox) or delete (Graph's delete: to Deleted Items), through Nango behind the ``nango_remediate``
breaker, as the pipeline's own quarantines and the analysts' releases. For each item, in order:

1. where the message is: the quarantine ledger, else the mailbox reference stored with its verdict;
   a message with neither (not from a connected mailbox), or already in the state asked for, is
   ``skipped`` with why;
2. a token of the tenant's and provider's bucket (``Bucket``: ``rate`` a second, ``burst`` at
   once); none left: the item waits until one is (no attempt counted);
3. the call. Breaker open or Nango failing or throttling: the item waits (``not_before``) and is
   tried again, never failed for it, up to ``MAX_ATTEMPTS`` provider failures; 404: ``gone``;
   credentials or request refused: ``failed`` with Nango's words; else ``done``, and the ledger
   follows (a quarantine is recorded, so it can be released; a release or delete marks it);
4. the outcome and its audit row commit together.

Resumable: items are taken under a lease (``claim``), so a worker killed mid-job leaves its items
to the next one when the lease ends; an outcome is written once (``finish`` only moves a pending
item). The window between a mailbox's answer and the commit is the one place an item can be
tried twice (a move to the folder it is in, or a delete of what is gone: harmless).

On AWS the job queue carries ``{"job_id": n}``: the handler runs a chunk within its time budget
and sends the job back with a delay until its next item falls due. Times come from ``clock``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from swordfish.integrations.nango import (
    NangoAuthError,
    NangoError,
    NangoNotFound,
    NangoUnavailable,
)
from swordfish.monitoring.observability import logger
from swordfish.pipeline.ports import SQS_MAX_DELAY_SECONDS, PermanentFailure, QuarantineEntry
from swordfish.pipeline.queues import send_job
from swordfish.resilience.circuit_breaker import NANGO_REMEDIATE, BreakerRegistry, BreakerTimeout, get_registry
from swordfish.resilience.fallbacks import retry_delay
from swordfish.store.database import set_tenant
from swordfish.store.quarantines import record_quarantine
from swordfish.store.response_jobs import Bucket, claim, finish, locate, next_due, postpone, take_token
from swordfish.store.storable import storable_text

MAX_ATTEMPTS = 8  # provider failures before an item fails (backoff 30 s doubling, capped at 15 min)
BACKOFF_SECONDS = 30


class _Waiting(Exception):
    def __init__(self, why: str, seconds: float):
        super().__init__(why)
        self.seconds = seconds


@dataclass
class RunResult:
    counts: Counter = field(default_factory=Counter)
    next_due: datetime | None = None

    def __str__(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "nothing due"


def utc_now() -> datetime:
    return datetime.now(UTC)


class ResponseWorker:
    def __init__(self, database: Any, client: Any, *, bucket: Bucket, registry: BreakerRegistry | None = None,
                 clock: Callable[[], datetime] = utc_now, lease: timedelta = timedelta(minutes=2), chunk: int = 5,
                 kick: Callable[[int, int], None] | None = None):
        self.database, self.client, self.bucket = database, client, bucket
        self._registry, self.clock, self.lease, self.chunk, self.kick = registry, clock, lease, chunk, kick

    # --- running -------------------------------------------------------------------------------
    def run(self, job_id: int | None = None, *, max_items: int | None = None,
            budget_seconds: float | None = None) -> RunResult:
        """Work off the due items (of one job, or of all), at most ``max_items``, within ``budget_seconds``."""
        result = RunResult()
        started = time.monotonic()
        taken = 0
        while max_items is None or taken < max_items:
            if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                break
            limit = self.chunk if max_items is None else min(self.chunk, max_items - taken)
            with self.database.connection() as conn, conn.transaction():
                items = claim(conn, self.clock(), lease=self.lease, limit=limit, job_id=job_id)
            if not items:
                break
            for item in items:
                result.counts[self._work(item)] += 1
            taken += len(items)
        with self.database.connection() as conn, conn.transaction():
            result.next_due = next_due(conn, job_id)
        return result

    def handle(self, body: str) -> str:
        """One job-queue message: a chunk of the job, then the job back on the queue while items wait."""
        try:
            job_id = int(json.loads(body)["job_id"])
        except (ValueError, TypeError, KeyError) as exc:
            raise PermanentFailure(f"not a response job message: {body[:200]!r}", "invalid_response_job") from exc
        result = self.run(job_id, budget_seconds=20)
        if result.next_due is not None and self.kick is not None:
            delay = (result.next_due - self.clock()).total_seconds()
            self.kick(job_id, int(min(SQS_MAX_DELAY_SECONDS, max(0, delay))))
        return str(result)

    # --- one item ------------------------------------------------------------------------------
    def _work(self, item: dict) -> str:
        now = self.clock()
        with self.database.connection() as conn, conn.transaction():
            set_tenant(conn, item["tenant_id"])
            mailbox, ledger = locate(conn, item["tenant_id"], item["message_id"])
        target, skip = _target(item["action"], mailbox, ledger)
        if skip:
            return self._finish(item, "skipped", skip, now, "")
        connection_id, provider, provider_message_id = target
        with self.database.connection() as conn, conn.transaction():
            wait = take_token(conn, self.bucket, item["tenant_id"], provider, now)
            if wait:
                postpone(conn, item, now + timedelta(seconds=wait), f"throttled: {provider} for {item['tenant_id']}",
                         provider=provider, count_attempt=False)
        if wait:
            return "throttled"
        try:
            new_id = self._call(item["action"], connection_id, provider, provider_message_id)
        except _Waiting as waiting:
            self._postpone(item, now + timedelta(seconds=waiting.seconds), str(waiting), provider, count=False)
            return "waiting"
        except NangoNotFound as exc:
            return self._finish(item, "gone", f"no longer in the mailbox: {exc}", now, provider)
        except NangoAuthError as exc:
            return self._finish(item, "failed", f"Nango refused our credentials or the mailbox grant: {exc}", now,
                                provider)
        except (NangoUnavailable, BreakerTimeout) as exc:
            if item["attempts"] >= MAX_ATTEMPTS:
                return self._finish(item, "failed", f"still failing after {MAX_ATTEMPTS} attempts: {exc}", now,
                                    provider)
            backoff = min(SQS_MAX_DELAY_SECONDS, BACKOFF_SECONDS * 2 ** (item["attempts"] - 1))
            self._postpone(item, now + timedelta(seconds=backoff), f"provider failing, retrying: {exc}", provider)
            return "retrying"
        except NangoError as exc:
            return self._finish(item, "failed", f"Nango rejected the request: {exc}", now, provider)
        return self._finish(item, "done", "", now, provider, moved=(target, new_id))

    def _call(self, action: str, connection_id: str, provider: str, provider_message_id: str) -> str | None:
        registry = self._registry or get_registry()
        operation = {"quarantine": self.client.quarantine, "release": self.client.release,
                     "delete": self.client.delete}[action]

        def wait(*_args: Any, circuit: Any) -> None:
            raise _Waiting(f"waiting: the mailbox service's breaker ({NANGO_REMEDIATE}) is {circuit.state}",
                           retry_delay(circuit, registry.config(NANGO_REMEDIATE).recovery_timeout))

        return registry.call(NANGO_REMEDIATE, operation, connection_id, provider, provider_message_id, fallback=wait)

    def _postpone(self, item: dict, until: datetime, why: str, provider: str, *, count: bool = True) -> None:
        with self.database.connection() as conn, conn.transaction():
            postpone(conn, item, until, why, provider=provider, count_attempt=count)

    def _finish(self, item: dict, outcome: str, why: str, now: datetime, provider: str, *,
                moved: tuple | None = None) -> str:
        with self.database.connection() as conn, conn.transaction():
            if not finish(conn, item, outcome, why, now, provider=provider):
                logger.info("response item already finished by another worker", extra={"item_id": item["item_id"]})
                return "already"
            if moved is not None:
                _follow_ledger(conn, item, moved[0], moved[1], now)
        return outcome


def _target(action: str, mailbox: dict | None, ledger: dict | None) -> tuple[tuple[str, str, str] | None, str]:
    """(connection, provider config key, provider message id) to act on, or why the item is skipped."""
    state = ledger["state"] if ledger else None
    at_ledger = (ledger["connection_id"], ledger["provider_config_key"], ledger["provider_message_id"]) if ledger \
        else None
    at_mailbox = (mailbox["connection_id"], mailbox["provider_config_key"], mailbox["provider_message_id"]) \
        if mailbox else None
    if state == "deleted":
        return None, "deleted from the mailbox by an earlier response"
    if action == "release":
        if state != "quarantined":
            return None, "not in quarantine (never quarantined by Swordfish, or already released)"
        return at_ledger, ""
    if action == "quarantine" and state == "quarantined":
        return None, "already in quarantine"
    target = at_ledger or at_mailbox  # after a release the ledger knows the id in the inbox
    if target is None:
        return None, "not from a connected mailbox: Swordfish cannot reach this copy"
    return target, ""


def _follow_ledger(conn: Any, item: dict, target: tuple[str, str, str], new_id: Any, now: datetime) -> None:
    """The quarantine ledger after a mailbox confirmed the move (the finish's transaction)."""
    tenant_id, message_id = item["tenant_id"], item["message_id"]
    set_tenant(conn, tenant_id)
    moved_id = new_id if isinstance(new_id, str) and new_id else target[2]
    actor = storable_text(f"response-job:{item['job_id']} ({item['created_by']})", 254)
    if item["action"] == "quarantine":
        record_quarantine(conn, QuarantineEntry(tenant_id=tenant_id, message_id=message_id, connection_id=target[0],
                                                provider_config_key=target[1], provider_message_id=moved_id))
    elif item["action"] == "release":
        conn.execute("UPDATE mailbox_quarantines SET state = 'released', released_at = %s, released_by = %s, "
                     "provider_message_id = %s WHERE tenant_id = %s AND message_id = %s",
                     (now, actor, moved_id, tenant_id, message_id))
        conn.execute("INSERT INTO verdict_releases (tenant_id, message_id, actor, note) VALUES (%s, %s, %s, %s)",
                     (tenant_id, message_id, actor, f"bulk release, job {item['job_id']}"))
    else:
        conn.execute("UPDATE mailbox_quarantines SET state = 'deleted' WHERE tenant_id = %s AND message_id = %s",
                     (tenant_id, message_id))


class SqsJobQueue:
    """Where ``ResponseWorker.kick`` sends a job back (the response-jobs queue)."""

    def __init__(self, sqs_client: Any, queue_url: str):
        self.sqs, self.queue_url = sqs_client, queue_url

    def __call__(self, job_id: int, delay_seconds: int = 0) -> None:
        send_job(self.sqs, self.queue_url, job_id, delay_seconds)
