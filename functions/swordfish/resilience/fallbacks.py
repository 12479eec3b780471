"""What the pipeline does when a breaker is open: one documented fallback per breaker.

Each fallback says whether it fails OPEN (mail keeps flowing, some protection is weaker) or
CLOSED (the work waits; nothing is judged on incomplete information). ``FALLBACKS`` is the same
table in code (the CLI and the health report show it).

=================  ===========================================================  ===========
breaker            fallback                                                     security
=================  ===========================================================  ===========
nango_fetch        the record goes back to the emails queue with a delay        fail-closed
                   (``RetryLater``: the processor re-sends it with DelaySeconds,
                   so the outage does not use up its receive count; never DLQ)
s3_mail            the same as nango_fetch: no verdict without the mail          fail-closed
nango_remediate    quarantine deferred to the remediation retry queue            fail-open
                   (``REMEDIATION_RETRY_QUEUE_NAME``); the verdict is stored
                   first, so the threat is recorded and visible meanwhile
redis_indicators   match against the last in-process snapshot of the feeds;      fail-open
                   the verdict is marked degraded (indicators newer than the
                   snapshot can be missed; degraded verdicts can be rescanned)
feed_<name>        keep the last good snapshot in Redis (no download, no swap);  fail-open
                   the health report shows the snapshot's age
=================  ===========================================================  ===========

Calls without a breaker, and why. A breaker earns its place where there is a fallback that is better
than failing; these calls have none, or already have their own:

===========================  ==================================================================
call                         what happens when it fails (each call has its own timeout)
===========================  ==================================================================
PostgreSQL (verdicts,        nothing to fall back to: no verdict without the store. A failed
policies, audit)             commit fails the whole batch and SQS redelivers it; on its last
                             receive a record goes to the DLQ with ``commit_failed``. A breaker
                             would only shorten the wait (connect timeout 5 s), not save a record.
SQS sends (API submitter,    no other queue to fall back to: the API answers 5xx and the submitter
DLQ, retry delays, deferred  retries; in the processor a failed send fails that record and SQS
quarantines)                 redelivers it. boto3 retries (standard mode) inside the timeout.
Secrets Manager              read once per container; a cold start that cannot read it fails and
                             Lambda/SQS retry the invocation.
AppConfig agent              a local extension (localhost:2772), not a remote service; the flags
                             client serves the last good flags, else the bundled snapshot
                             (store state ``stale`` / ``down`` in the health report).
Sentry                       the SDK sends from a background queue with a bounded flush and drops
                             rather than blocks; the same event is in the logs and the metric.
error tracker's Redis        the rate-limit counter falls back to its in-process count and
counter                      retries Redis after 30 s (``error_tracker``).
DynamoDB (breaker table)     the breakers' own state: a breaker cannot guard itself; reads are
                             cached per worker for ``breaker_cache_seconds``.
CloudWatch, SQS attributes   health checks only: each is a measurement with its own timeout, and
(health)                     its failure is the finding the report shows.
===========================  ==================================================================
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.circuit_breaker import CircuitBreakerOpenError, CircuitInfo
from botocore.exceptions import ClientError

from swordfish import constants
from swordfish.integrations.indicators import IndicatorStoreError
from swordfish.integrations.nango import (
    NangoAuthError,
    NangoError,
    NangoMessageTooLarge,
    NangoNotFound,
    NangoUnavailable,
)
from swordfish.monitoring.observability import logger
from swordfish.pipeline.ports import (
    SQS_MAX_DELAY_SECONDS,
    PermanentFailure,
    QuarantineEntry,
    QuarantineLedger,
    ReleaseFailed,
    RemediationRequest,
    RemediationUnavailable,
    RetryLater,
)
from swordfish.resilience.circuit_breaker import (
    NANGO_FETCH,
    NANGO_REMEDIATE,
    REDIS_INDICATORS,
    S3_MAIL,
    BreakerRegistry,
    BreakerTimeout,
    feed_breaker,
    get_registry,
)

__all__ = [
    "FALLBACKS",
    "FeedSkipped",
    "GuardedFeedFetcher",
    "GuardedIndicatorLookup",
    "GuardedRemediator",
    "GuardedS3",
    "RemediationDeferred",
    "RetryLater",
    "guarded_mailbox_fetch",
    "retry_delay",
]

MIN_RETRY_DELAY_SECONDS = 5
MAX_RETRY_DELAY_SECONDS = SQS_MAX_DELAY_SECONDS


@dataclass(frozen=True)
class FallbackPolicy:
    breaker: str
    behaviour: str
    security: str  # fail-open | fail-closed
    why: str


FALLBACKS: dict[str, FallbackPolicy] = {
    p.breaker: p
    for p in (
        FallbackPolicy(NANGO_FETCH, "record back to the queue with a delay (RetryLater)", "fail-closed",
                       "no verdict is issued for mail we could not read; it waits, it is not lost"),
        FallbackPolicy(S3_MAIL, "record back to the queue with a delay (RetryLater)", "fail-closed",
                       "no verdict is issued for mail we could not read; it waits, it is not lost"),
        FallbackPolicy(NANGO_REMEDIATE, "quarantine deferred to the remediation retry queue; verdict stored",
                       "fail-open", "the message stays in the mailbox until the retry; the verdict is on record"),
        FallbackPolicy(REDIS_INDICATORS, "last in-process indicator snapshot; verdict marked degraded", "fail-open",
                       "indicators newer than the snapshot are missed; degraded verdicts are flagged for rescan"),
        *(FallbackPolicy(feed_breaker(f), "keep the last good snapshot", "fail-open",
                         "indicators go stale; the health report shows how stale")
          for f in constants.THREAT_FEEDS),
    )
}


def retry_delay(circuit: CircuitInfo | None, recovery_timeout: float) -> int:
    """Seconds until the breaker may half-open (so the retry meets a probing circuit), within SQS limits."""
    delay = float(recovery_timeout)
    if circuit is not None and circuit.opened_at is not None:
        delay = circuit.opened_at + recovery_timeout - time.time()
    return int(min(MAX_RETRY_DELAY_SECONDS, max(MIN_RETRY_DELAY_SECONDS, math.ceil(delay))))


def _registry(registry: BreakerRegistry | None) -> BreakerRegistry:
    return registry or get_registry()


# --- nango_fetch / s3_mail: fail closed, back to the queue ------------------------------------------


def guarded_mailbox_fetch(client: Any, registry: BreakerRegistry | None = None) -> Callable[[Any], bytes]:
    """``MailSourceLoader(mailbox_fetch=...)``: ``client.fetch_message`` (a ``NangoClient``) through ``nango_fetch``.

    Open breaker → ``RetryLater`` (back to the queue with a delay). A message that no longer exists
    or is too large → ``PermanentFailure`` (retrying cannot help). Any other failure propagates,
    counted by the breaker, and SQS redelivers the record.
    """
    def fetch(source: Any) -> bytes:
        reg = _registry(registry)

        def requeue(*_a: Any, circuit: CircuitInfo) -> bytes:
            raise RetryLater(f"Nango is unavailable (breaker {NANGO_FETCH} {circuit.state})",
                             retry_delay(circuit, reg.config(NANGO_FETCH).recovery_timeout))

        try:
            return reg.call(NANGO_FETCH, client.fetch_message, source.connection_id, source.provider_config_key,
                            source.provider_message_id, fallback=requeue)
        except NangoNotFound as exc:
            raise PermanentFailure(str(exc), "mail_not_found") from exc
        except NangoMessageTooLarge as exc:
            raise PermanentFailure(str(exc), "message_too_large") from exc
        except NangoAuthError as exc:
            # The connection's OAuth grant was revoked or expired: retrying will not fix it, an admin must.
            raise PermanentFailure(f"Nango refused connection {source.connection_id}: {exc}", "mailbox_auth") from exc

    return fetch


@dataclass
class _Raise:
    """Carries a client error (404, 403) out of the breaker so it does not count as S3 being down."""

    exc: ClientError


_S3_REQUEST_ERRORS = {"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "404", "AccessDenied", "403", "InvalidRequest"}


class GuardedS3:
    """An S3 client whose ``get_object`` goes through ``s3_mail`` (for ``MailSourceLoader(s3_client=...)``)."""

    def __init__(self, s3_client: Any, registry: BreakerRegistry | None = None):
        self._s3, self._registry = s3_client, registry

    def get_object(self, **kwargs: Any) -> Any:
        reg = _registry(self._registry)

        def attempt() -> Any:
            try:
                return self._s3.get_object(**kwargs)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code", "") in _S3_REQUEST_ERRORS:
                    return _Raise(exc)
                raise

        def requeue(*_a: Any, circuit: CircuitInfo, **_k: Any) -> Any:
            raise RetryLater(f"S3 is unavailable (breaker {S3_MAIL} {circuit.state})",
                             retry_delay(circuit, reg.config(S3_MAIL).recovery_timeout))

        result = reg.call(S3_MAIL, attempt, fallback=requeue)
        if isinstance(result, _Raise):
            raise result.exc
        return result

    def __getattr__(self, name: str) -> Any:  # everything else is the plain client
        return getattr(self._s3, name)


# --- nango_remediate: fail open, deferred --------------------------------------------------------


class RemediationDeferred(CircuitBreakerOpenError, RemediationUnavailable):
    """Quarantine was not attempted because ``nango_remediate`` is open; defer it to the retry queue."""


class GuardedRemediator:
    """``Remediator`` and ``Releaser`` ports: ``quarantine(submission)`` via ``client.quarantine`` and
    ``release(entry)`` via ``client.release`` (a ``NangoClient``), both through ``nango_remediate``:
    one breaker for every mailbox move, so a Nango outage seen by quarantines also stops releases
    from hammering it, and the reverse. Only mailbox mail can be quarantined; other sources are left alone.

    Open breaker on quarantine: with ``defer`` (e.g. ``SqsQueuePort.defer_remediation``) the request
    goes to the remediation retry queue here and ``"deferred"`` is returned; without it
    ``RemediationDeferred`` is raised for the caller's own deferral path. The verdict was committed
    before remediation. A quarantine that succeeded is written to ``ledger`` (when given), so it can
    be released later; a ledger failure is logged and the quarantine stands.

    Release is an analyst's action, answered at once: never deferred. Every failure (open breaker,
    Nango down or slow, message gone, credentials refused) is a ``ReleaseFailed`` with its kind.
    """

    def __init__(self, client: Any, *, defer: Callable[[RemediationRequest], None] | None = None,
                 registry: BreakerRegistry | None = None, ledger: QuarantineLedger | None = None):
        self._client, self._defer, self._registry, self._ledger = client, defer, registry, ledger

    def quarantine(self, submission: Any) -> str:
        source = submission.source
        if getattr(source, "kind", None) != "mailbox":
            return "not_applicable"

        def deferred(*_args: Any, circuit: CircuitInfo) -> str:
            reason = f"Nango remediation unavailable (breaker {NANGO_REMEDIATE} {circuit.state})"
            if self._defer is None:
                raise RemediationDeferred(reason, circuit=circuit)
            self._defer(RemediationRequest.for_submission(submission, reason))
            logger.warning("remediation deferred to the retry queue",
                           extra={"breaker": NANGO_REMEDIATE, "message_id": getattr(submission, "message_id", None)})
            return _DEFERRED

        result = _registry(self._registry).call(
            NANGO_REMEDIATE, self._client.quarantine, source.connection_id, source.provider_config_key,
            source.provider_message_id, fallback=deferred)
        if result is _DEFERRED:
            return "deferred"
        self._remember(submission, source, result)
        return "quarantined"

    def _remember(self, submission: Any, source: Any, moved_id: Any) -> None:
        if self._ledger is None:
            return
        entry = QuarantineEntry(tenant_id=submission.tenant_id, message_id=submission.message_id,
                                connection_id=source.connection_id, provider_config_key=source.provider_config_key,
                                provider_message_id=moved_id if isinstance(moved_id, str) and moved_id
                                else source.provider_message_id)
        try:
            self._ledger.record_quarantine(entry)
        except Exception as exc:  # the message is in Junk Email either way; only the console's release is lost
            logger.warning("quarantined, but the quarantine ledger write failed: the console cannot release it",
                           extra={"message_id": entry.message_id, "error": repr(exc)})

    def release(self, entry: QuarantineEntry) -> str | None:
        def unavailable(*_args: Any, circuit: CircuitInfo) -> str:
            raise ReleaseFailed(f"the mailbox service (Nango) is unavailable: its circuit breaker is "
                                f"{circuit.state}. Nothing was released; try again in a few minutes.", "unavailable")

        try:
            return _registry(self._registry).call(
                NANGO_REMEDIATE, self._client.release, entry.connection_id, entry.provider_config_key,
                entry.provider_message_id, fallback=unavailable)
        except ReleaseFailed:
            raise
        except NangoNotFound as exc:
            raise ReleaseFailed("the message is no longer in the mailbox (deleted or moved by its owner); "
                                f"nothing was released. Nango said: {exc}", "gone") from exc
        except NangoAuthError as exc:
            raise ReleaseFailed(f"Nango refused our credentials or the mailbox grant; nothing was released. "
                                f"An admin must renew the connection. Nango said: {exc}", "refused") from exc
        except (NangoUnavailable, BreakerTimeout) as exc:
            raise ReleaseFailed(f"the mailbox service (Nango) did not answer in time or failed; nothing was "
                                f"released, try again later. Detail: {exc}", "unavailable") from exc
        except NangoError as exc:
            raise ReleaseFailed(f"Nango rejected the release; nothing was released. Detail: {exc}", "refused") from exc


_DEFERRED = object()  # the quarantine's fallback result: told apart from any id the move returns


# --- redis_indicators: fail open, last snapshot, degraded ----------------------------------------


class GuardedIndicatorLookup:
    """``IndicatorLookup`` port: ``IndicatorStore.match`` through ``redis_indicators``.

    Keeps an in-process ``IndicatorSnapshot`` (refreshed through the same breaker at most every
    ``snapshot_max_age`` seconds while Redis is healthy). When the breaker is open or the lookup
    fails, the snapshot answers and ``last_lookup_degraded`` is True for this thread's last lookup.
    """

    def __init__(self, store: Any, registry: BreakerRegistry | None = None, snapshot_max_age: float = 300.0):
        self.store, self._registry, self.snapshot_max_age = store, registry, snapshot_max_age
        self.snapshot: Any = None  # swordfish.integrations.indicators.IndicatorSnapshot
        self._snapshot_taken = -math.inf
        self._snapshot_lock = threading.Lock()
        self._local = threading.local()

    @property
    def last_lookup_degraded(self) -> bool:
        return getattr(self._local, "degraded", False)

    def match(self, candidates: set[str]) -> dict[str, str]:
        reg = _registry(self._registry)
        self._local.degraded = False
        hits = reg.call(REDIS_INDICATORS, self.store.match, set(candidates), fallback=self._from_snapshot,
                        fallback_on_error=True)
        if not self.last_lookup_degraded:
            self._refresh_snapshot_if_old(reg)
        return hits

    def _from_snapshot(self, candidates: Iterable[str], *, circuit: CircuitInfo) -> dict[str, str]:
        self._local.degraded = True
        if self.snapshot is None:
            logger.warning("indicator lookup degraded with no snapshot: no feed matches",
                           extra={"breaker": REDIS_INDICATORS, "state": str(circuit.state)})
            return {}
        return self.snapshot.match(candidates)

    def _refresh_snapshot_if_old(self, reg: BreakerRegistry) -> None:
        if time.monotonic() - self._snapshot_taken < self.snapshot_max_age:
            return
        if not self._snapshot_lock.acquire(blocking=False):
            return  # another thread is copying it
        try:
            self.snapshot = reg.call(REDIS_INDICATORS, self.store.snapshot)
            self._snapshot_taken = time.monotonic()
        except (IndicatorStoreError, CircuitBreakerOpenError, BreakerTimeout) as exc:  # keep the older snapshot
            logger.warning("indicator snapshot refresh failed; keeping the previous one", extra={"error": str(exc)})
        finally:
            self._snapshot_lock.release()


# --- feed_<name>: fail open, keep the last good snapshot -----------------------------------------


class FeedSkipped(CircuitBreakerOpenError):
    """The feed's breaker is open: not downloaded; ``FeedRefresher`` keeps the last good snapshot."""


class GuardedFeedFetcher:
    """``FeedRefresher(fetcher=...)``: ``fetcher.fetch(feed, url)`` through ``feed_<name>``.

    Open breaker → ``FeedSkipped`` without touching the network; the refresher treats it like any
    failed download and keeps the live set in Redis (its last good snapshot).
    """

    def __init__(self, fetcher: Any, registry: BreakerRegistry | None = None):
        self._fetcher, self._registry = fetcher, registry

    def fetch(self, feed: str, url: str) -> bytes:
        name = feed_breaker(feed)

        def keep_last_good(*_args: Any, circuit: CircuitInfo) -> bytes:
            raise FeedSkipped(f"feed {feed} not fetched: breaker {name} is {circuit.state}; "
                              "kept the last good snapshot", circuit=circuit)

        return _registry(self._registry).call(name, self._fetcher.fetch, feed, url, fallback=keep_last_good)
