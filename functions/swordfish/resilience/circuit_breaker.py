"""One named circuit breaker per external service, on the Powertools circuit breaker utility.

State lives in DynamoDB (moto on the embedded stack) through Powertools'
``CircuitBreakerDynamoDBPersistence``, so it is shared by every worker and survives restarts.
Thresholds come from settings (``breaker_failure_threshold`` 5, ``breaker_recovery_timeout_seconds``
30, ``breaker_success_threshold`` 3).

Breakers (``BREAKERS``): ``nango_fetch`` and ``nango_remediate`` are separate on purpose: they hit
the same Nango proxy but different provider scopes and quotas (Graph/Gmail write throttling is
independent of reads), and their fallbacks differ. One shared ``nango`` breaker would let failing
quarantines stop mail fetching, i.e. stop all verdicts for mailbox mail. Each threat feed has its
own breaker (``feed_urlhaus``, ``feed_openphish``, ``feed_phishtank``) because they are different
hosts; ``redis_indicators`` guards the indicator lookup; ``s3_mail`` guards loading large mail.

Where Powertools falls short, ``SwordfishBreakerPersistence`` closes the gap:

1. A late probe result must not overwrite a newer state. Powertools writes a probe's CLOSED or
   reopen unconditionally, so a prober whose lease expired (another worker took the probe over
   and reopened) could close the circuit with a stale success. Our writes out of HALF_OPEN are
   conditional on still holding the probe (state HALF_OPEN, owner = this thread's probe id); a
   stale result is discarded and logged, and no transition metric is emitted for it.
2. A HALF_OPEN record is never served from the local cache, so a worker that lost the probe to a
   lease takeover stops probing at its next call instead of up to ``local_cache_max_age`` later.
3. Operator overrides: a forced-open circuit never half-opens by itself and a worker's trip cannot
   overwrite the operator's record (the probe election and trip writes check ``forced``).
4. ``on_transition`` fires even when the transition write was discarded or failed; our hook
   reports only what was stored (``persisted`` field on the log line, metric only when stored).

Metrics (EMF, namespace ``Swordfish``, dimensions ``service`` = swordfish and ``circuit`` = breaker
name, the names in ``constants``): ``CircuitStateChange`` (Count, 1 per stored transition) and
``CircuitState`` (gauge: 0 closed, 1 half-open, 2 open). Alarm on ``Maximum(CircuitState) >= 2``.

Time: Powertools reads the wall clock itself (``datetime.now()``, no clock parameter), so our
overrides read the same clock (``time.time()``) rather than an injected one that could disagree
with it; tests freeze and move that clock with time-machine (``tests/resilience/conftest.py``).

Audit of forced changes: items in the same DynamoDB table (``id = audit#<name>#<time>#<uuid>``),
written in one transaction with the state change, append-only (``attribute_not_exists``). Chosen
over a PostgreSQL table because an operator must be able to force a breaker while the database is
the thing that is down, and the state and its audit then commit atomically in one store.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.circuit_breaker import (
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitInfo,
    CircuitState,
    CircuitTransition,
    circuit_breaker,
)
from aws_lambda_powertools.utilities.circuit_breaker.persistence import (
    CircuitBreakerDynamoDBPersistence,
    CircuitStateRecord,
)
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from swordfish import constants
from swordfish.config import Settings, get_settings
from swordfish.integrations import nango
from swordfish.lazy import ProcessSingleton
from swordfish.monitoring.observability import logger

KEY_ATTR = "id"  # Powertools' default partition key (string); no sort key
TTL_ATTR = "expiration"  # Powertools' default TTL attribute
FORCED_ATTR = "forced"
AUDIT_PREFIX = "audit#"
METRIC_STATE_CHANGE = "CircuitStateChange"  # Count per stored transition; CircuitState is the gauge

NANGO_FETCH = "nango_fetch"
NANGO_REMEDIATE = "nango_remediate"
REDIS_INDICATORS = "redis_indicators"
S3_MAIL = "s3_mail"


def feed_breaker(feed: str) -> str:
    """The breaker name for a threat feed, e.g. ``feed_urlhaus``."""
    return f"feed_{feed}"


BreakerOpen = CircuitBreakerOpenError  # raised by call() when open and no fallback was given


class BreakerTimeout(TimeoutError):
    """The protected call ran past its deadline; counts as a failure of the service."""


class UnknownBreaker(KeyError):
    def __str__(self) -> str:
        return f"unknown circuit breaker {self.args[0]!r}; known: {', '.join(self.args[1])}"


def _nango_client_errors() -> tuple[type[Exception], ...]:
    """Per-request Nango errors (message gone, grant revoked, bad request) say nothing about Nango's health."""
    return (nango.NangoNotFound, nango.NangoAuthError, nango.NangoRequestError, nango.NangoMessageTooLarge)


@dataclass(frozen=True)
class BreakerSpec:
    name: str
    description: str
    # Deadline for one protected call when the caller passes none: a backstop over the client's
    # own timeouts (connect + read), so a library that ignores its timeout still counts as failed.
    timeout: Callable[[Settings], float | None] = lambda s: None
    ignored: Callable[[], tuple[type[Exception], ...]] = tuple


BREAKERS: dict[str, BreakerSpec] = {
    spec.name: spec
    for spec in (
        BreakerSpec(NANGO_FETCH, "Nango proxy: fetch mailbox mail", lambda s: s.nango_timeout_seconds * 2 + 1,
                    _nango_client_errors),
        BreakerSpec(NANGO_REMEDIATE, "Nango proxy: quarantine (remediation)",
                    lambda s: s.nango_timeout_seconds * 2 + 1, _nango_client_errors),
        *(BreakerSpec(feed_breaker(f), f"threat feed {f}", lambda s: s.feed_timeout_seconds * 2 + 1)
          for f in constants.THREAT_FEEDS),
        # No deadline thread: redis-py enforces socket_timeout and socket_connect_timeout itself, and a
        # thread hand-off on every email cost more than the lookup (profiled under load).
        BreakerSpec(REDIS_INDICATORS, "Redis threat-indicator lookup"),
        BreakerSpec(S3_MAIL, "S3: load large mail"),
    )
}


@dataclass(frozen=True)
class BreakerStatus:
    """What health checks and the CLI show for one breaker."""

    name: str
    state: str  # CLOSED | OPEN | HALF_OPEN | UNKNOWN (store unreadable)
    opened_at: int | None = None
    forced: bool = False
    forced_by: str | None = None
    forced_reason: str | None = None
    forced_at: str | None = None
    half_open_owner: str | None = None
    probe_lease_expiry: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class AuditEntry:
    service: str
    action: str  # force_open | force_close
    actor: str
    reason: str
    at: str
    previous_state: str


def create_breaker_table(dynamodb_client, table_name: str = constants.BREAKER_TABLE_NAME) -> None:
    """Create the breaker table with the key schema Powertools' DynamoDB persistence expects.

    Idempotent: an existing table is left as it is. TTL on ``expiration`` reaps abandoned circuit
    items (Powertools stamps it); audit items carry no ``expiration`` and are kept.
    """
    try:
        dynamodb_client.create_table(
            TableName=table_name,
            KeySchema=[{"AttributeName": KEY_ATTR, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": KEY_ATTR, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        return
    dynamodb_client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    dynamodb_client.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTR})


def dynamodb_client_from_settings(settings: Settings):
    return boto3.client(
        "dynamodb",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 2, "mode": "standard"}),
    )


class SwordfishBreakerPersistence(CircuitBreakerDynamoDBPersistence):
    """Powertools' DynamoDB persistence with the conditional writes it lacks (see module doc)."""

    def __init__(self, table_name: str, dynamodb_client):
        super().__init__(table_name=table_name, key_attr=KEY_ATTR, expiry_attr=TTL_ATTR, boto3_client=dynamodb_client)
        self._local = threading.local()  # per thread: the probe we hold, the fate of the last write

    # -- outcome of the last transition write on this thread, read by the on_transition hook
    def take_write_outcome(self) -> str:
        outcome = getattr(self._local, "outcome", "stored")
        self._local.outcome = "stored"
        return outcome

    def _set_outcome(self, outcome: str) -> None:
        self._local.outcome = outcome

    def _held_probes(self) -> dict[str, str]:
        if not hasattr(self._local, "probes"):
            self._local.probes = {}
        return self._local.probes

    def invalidate(self, name: str) -> None:
        with self._lock:
            self._cache.pop(self._cache_key(name), None)

    # -- reads
    def _get_record(self, name: str) -> CircuitStateRecord | None:
        # Strongly consistent (Powertools reads eventually consistent): at most one read per
        # circuit per cache window, and a stale read is what lets two workers both probe.
        item = self.client.get_item(TableName=self.table_name, Key=self._get_key(name), ConsistentRead=True).get("Item")
        return self._item_to_record(item) if item else None

    def get_state(self, name: str) -> CircuitStateRecord:
        cached = self._retrieve_from_cache(name)
        if cached is not None and cached.state == CircuitState.HALF_OPEN:
            self.invalidate(name)  # gap 2: probe ownership is always read from the store
        return super().get_state(name)

    def read_item(self, name: str) -> dict | None:
        item = self.client.get_item(TableName=self.table_name, Key=self._get_key(name), ConsistentRead=True).get("Item")
        return self._deserializer.deserialize({"M": item}) if item else None

    # -- conditional writes
    def _conditional(self, name: str, fn: Callable[[], None]) -> bool:
        try:
            fn()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                self._set_outcome("failed")
                raise
            self._set_outcome("discarded")
            self.invalidate(name)
            return False
        self._set_outcome("stored")
        return True

    def save_open(self, name: str, failure_count: int, opened_at: int) -> None:
        record = CircuitStateRecord(name=name, state=CircuitState.OPEN, failure_count=failure_count,
                                    opened_at=opened_at, expiry_timestamp=self._durable_ttl(name))
        stored = self._conditional(name, lambda: self.client.put_item(
            TableName=self.table_name, Item=self._record_to_item(record),
            ConditionExpression="attribute_not_exists(#forced)", ExpressionAttributeNames={"#forced": FORCED_ATTR}))
        if stored:
            self._save_to_cache(record)
        else:
            logger.info("circuit trip discarded: an operator has forced this breaker", extra={"breaker": name})

    def try_acquire_half_open(self, name: str, owner: str, opened_at: int) -> bool:
        # Lease rounded up (Powertools truncates now to whole seconds, which can shorten the
        # lease by up to a second: with short recovery timeouts the probe was taken over at once).
        lease = math.ceil(time.time()) + self._settings_for(name).recovery_timeout
        record = CircuitStateRecord(name=name, state=CircuitState.HALF_OPEN, opened_at=opened_at, half_open_owner=owner,
                                    probe_lease_expiry=lease, expiry_timestamp=self._durable_ttl(name))
        condition = self._build_half_open_condition(opened_at)
        condition["ConditionExpression"] = f"({condition['ConditionExpression']}) AND attribute_not_exists(#forced)"
        condition["ExpressionAttributeNames"]["#forced"] = FORCED_ATTR
        try:
            self.client.put_item(TableName=self.table_name, Item=self._record_to_item(record), **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                self.invalidate(name)
                return False
            raise
        self._held_probes()[name] = owner
        self._set_outcome("stored")
        self._save_to_cache(record)
        return True

    def _leave_half_open(self, name: str, record: CircuitStateRecord) -> None:
        owner = self._held_probes().pop(name, None)
        query = self._build_update_query(record)
        query["ConditionExpression"] = "#state = :half_open AND #half_open_owner = :owner"
        query["ExpressionAttributeValues"][":half_open"] = self._s(str(CircuitState.HALF_OPEN))
        query["ExpressionAttributeValues"][":owner"] = self._s(owner or "-")
        if self._conditional(name, lambda: self.client.update_item(**query)):
            self._save_to_cache(record)
        else:
            logger.warning(
                "stale probe result discarded: this worker no longer holds the half-open probe",
                extra={"breaker": name, "discarded_state": str(record.state)},
            )

    def save_closed(self, name: str) -> None:  # gap 1
        self._leave_half_open(name, CircuitStateRecord(
            name=name, state=CircuitState.CLOSED, failure_count=0, expiry_timestamp=self._durable_ttl(name)))

    def save_reopen(self, name: str, opened_at: int) -> None:  # gap 1
        self._leave_half_open(name, CircuitStateRecord(
            name=name, state=CircuitState.OPEN, opened_at=opened_at, expiry_timestamp=self._durable_ttl(name)))

    # -- operator overrides, state and audit in one transaction
    def force(self, name: str, *, open_: bool, actor: str, reason: str, previous_state: str) -> AuditEntry:
        now = dt.datetime.now(dt.UTC)
        at = now.isoformat(timespec="milliseconds")
        item: dict[str, Any] = {**self._get_key(name), self.failure_count_attr: self._n(0)}
        if open_:
            item.update({
                self.state_attr: self._s(str(CircuitState.OPEN)),
                self.opened_at_attr: self._n(int(now.timestamp())),
                FORCED_ATTR: self._s("open"),
                "forced_by": self._s(actor), "forced_reason": self._s(reason), "forced_at": self._s(at),
            })  # no TTL: an operator's pin must not expire on its own
        else:
            item.update({self.state_attr: self._s(str(CircuitState.CLOSED)), self.expiry_attr: self._n(self._durable_ttl(name))})
        action = "force_open" if open_ else "force_close"
        audit = {
            KEY_ATTR: self._s(f"{AUDIT_PREFIX}{name}#{at}#{uuid.uuid4().hex[:8]}"),
            "service": self._s(name), "action": self._s(action), "actor": self._s(actor),
            "reason": self._s(reason), "at": self._s(at), "previous_state": self._s(previous_state),
        }
        self.client.transact_write_items(TransactItems=[
            {"Put": {"TableName": self.table_name, "Item": item}},
            {"Put": {"TableName": self.table_name, "Item": audit, "ConditionExpression": "attribute_not_exists(#id)",
                     "ExpressionAttributeNames": {"#id": KEY_ATTR}}},
        ])
        self.invalidate(name)
        return AuditEntry(name, action, actor, reason, at, previous_state)

    def audit_entries(self, name: str | None = None) -> list[AuditEntry]:
        prefix = AUDIT_PREFIX + (f"{name}#" if name else "")
        entries, kwargs = [], {}
        while True:
            page = self.client.scan(TableName=self.table_name, FilterExpression="begins_with(#id, :p)",
                                    ExpressionAttributeNames={"#id": KEY_ATTR},
                                    ExpressionAttributeValues={":p": self._s(prefix)}, ConsistentRead=True, **kwargs)
            for raw in page.get("Items", []):
                d = self._deserializer.deserialize({"M": raw})
                entries.append(AuditEntry(d["service"], d["action"], d["actor"], d["reason"], d["at"], d["previous_state"]))
            if "LastEvaluatedKey" not in page:
                break
            kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        return sorted(entries, key=lambda e: e.at)


# Deadline runner for calls whose client may ignore its own timeout. Shared and bounded: a hung
# call keeps its thread until the client gives up, but never blocks the caller past the deadline.
_DEADLINE_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="breaker-deadline")


def _with_deadline(fn: Callable, timeout: float, service: str) -> Callable:
    def run(*args, **kwargs):
        future = _DEADLINE_POOL.submit(fn, *args, **kwargs)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BreakerTimeout(f"{service}: call exceeded its {timeout:g}s deadline") from None
    return run


_STATE_GAUGE = {"CLOSED": constants.CIRCUIT_STATE_CLOSED, "HALF_OPEN": constants.CIRCUIT_STATE_HALF_OPEN,
                "OPEN": constants.CIRCUIT_STATE_OPEN}


def emit_transition(service: str, from_state: str, to_state: str, *, persisted: str = "stored",
                    opened_at: int | None = None, actor: str | None = None, reason: str | None = None) -> None:
    """One structured log line per state change and, when it was stored, the two EMF metrics."""
    fields = {"breaker": service, "from_state": from_state, "to_state": to_state, "persisted": persisted,
              "opened_at": opened_at, "actor": actor, "reason": reason}
    fields = {k: v for k, v in fields.items() if v is not None}
    log = logger.warning if to_state == str(CircuitState.OPEN) else logger.info
    log(f"circuit breaker {service}: {from_state} -> {to_state}", extra=fields)
    if persisted != "stored":
        return
    for name, value in ((METRIC_STATE_CHANGE, 1), (constants.METRIC_CIRCUIT_STATE, _STATE_GAUGE[to_state])):
        with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=constants.METRICS_NAMESPACE,
                           default_dimensions={constants.METRIC_SERVICE_DIMENSION: constants.SERVICE_NAME}) as m:
            m.add_dimension(name=constants.CIRCUIT_DIMENSION, value=service)
            m.add_metadata(key="transition", value=f"{from_state}->{to_state}")


@dataclass
class BreakerRegistry:
    """The named breakers of this process, sharing one persistence (and its read cache)."""

    settings: Settings = field(default_factory=get_settings)
    dynamodb_client: Any = None
    table_name: str | None = None
    specs: dict[str, BreakerSpec] = field(default_factory=lambda: dict(BREAKERS))

    def __post_init__(self) -> None:
        self.dynamodb_client = self.dynamodb_client or dynamodb_client_from_settings(self.settings)
        self.table_name = self.table_name or self.settings.breaker_table_name
        self.persistence = SwordfishBreakerPersistence(self.table_name, self.dynamodb_client)
        self._configs: dict[str, CircuitBreakerConfig] = {}

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    def register(self, spec: BreakerSpec) -> None:
        self.specs[spec.name] = spec

    def spec(self, name: str) -> BreakerSpec:
        if name not in self.specs:
            raise UnknownBreaker(name, self.names)
        return self.specs[name]

    def config(self, name: str) -> CircuitBreakerConfig:
        if name not in self._configs:
            ignored = self.spec(name).ignored() or None
            self._configs[name] = CircuitBreakerConfig(
                failure_threshold=self.settings.breaker_failure_threshold,
                # Powertools takes whole seconds; round up so a fractional setting never shortens it.
                recovery_timeout=max(1, math.ceil(self.settings.breaker_recovery_timeout_seconds)),
                success_threshold=self.settings.breaker_success_threshold,
                ignored_exceptions=ignored,
                local_cache_max_age=int(getattr(self.settings, "breaker_cache_seconds", 5)),
            )
        return self._configs[name]

    def _on_transition(self, transition: CircuitTransition) -> None:
        emit_transition(transition.circuit_name, str(transition.from_state), str(transition.to_state),
                        persisted=self.persistence.take_write_outcome(), opened_at=transition.opened_at)

    def call(self, service: str, fn: Callable, *args: Any, fallback: Callable | None = None,
             fallback_on_error: bool = False, timeout: float | None = None, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` through the breaker ``service``.

        Open circuit: ``fallback(*args, circuit=CircuitInfo, **kwargs)`` runs instead and its value
        is returned; without a fallback ``BreakerOpen`` is raised. With ``fallback_on_error`` a
        counted failure of ``fn`` also goes to the fallback (after being counted). ``timeout``
        (default: the breaker's spec) bounds the call; running past it is a failure.
        """
        spec = self.spec(service)
        deadline = timeout if timeout is not None else spec.timeout(self.settings)
        target = _with_deadline(fn, deadline, service) if deadline else fn
        config = self.config(service)
        protected = circuit_breaker(name=service, persistence_store=self.persistence, on_circuit_open=fallback,
                                    on_transition=self._on_transition, config=config)(target)
        try:
            return protected(*args, **kwargs)
        except Exception as exc:
            if not (fallback_on_error and fallback is not None) or isinstance(exc, CircuitBreakerOpenError):
                raise
            if not config.counts_as_failure(exc):
                raise
            logger.warning(f"{service} call failed; using its fallback", extra={"breaker": service, "error": repr(exc)})
            info = CircuitInfo(name=service, state=self.persistence.get_state(service).state, failure_count=0)
            return fallback(*args, circuit=info, **kwargs)

    # -- state for health checks and the CLI
    def status(self, name: str) -> BreakerStatus:
        self.spec(name)
        try:
            item = self.persistence.read_item(name)
        except (ClientError, BotoCoreError) as exc:  # the store itself is down: say so, do not guess
            return BreakerStatus(name=name, state="UNKNOWN", error=f"breaker store unreadable: {exc}")
        if not item:
            return BreakerStatus(name=name, state=str(CircuitState.CLOSED))
        opened_at, lease = item.get("opened_at"), item.get("probe_lease_expiry")
        return BreakerStatus(
            name=name, state=item["state"], opened_at=int(opened_at) if opened_at is not None else None,
            forced=FORCED_ATTR in item, forced_by=item.get("forced_by"), forced_reason=item.get("forced_reason"),
            forced_at=item.get("forced_at"), half_open_owner=item.get("half_open_owner"),
            probe_lease_expiry=int(lease) if lease is not None else None,
        )

    def statuses(self) -> list[BreakerStatus]:
        return [self.status(name) for name in self.names]

    def force_open(self, name: str, *, actor: str, reason: str) -> AuditEntry:
        return self._force(name, True, actor, reason)

    def force_close(self, name: str, *, actor: str, reason: str) -> AuditEntry:
        """Release an operator pin or a tripped circuit: back to CLOSED, counting from zero."""
        return self._force(name, False, actor, reason)

    def _force(self, name: str, open_: bool, actor: str, reason: str) -> AuditEntry:
        if not reason or not reason.strip():
            raise ValueError("a reason is required to force a circuit breaker (it goes in the audit record)")
        previous = self.status(name).state
        entry = self.persistence.force(name, open_=open_, actor=actor, reason=reason.strip(), previous_state=previous)
        emit_transition(name, previous, "OPEN" if open_ else "CLOSED", actor=actor, reason=reason.strip())
        return entry

    def audit_log(self, name: str | None = None) -> list[AuditEntry]:
        if name is not None:
            self.spec(name)
        return self.persistence.audit_entries(name)


# The process-wide registry built from settings (created on first use; reset after a settings change).
_REGISTRY = ProcessSingleton(BreakerRegistry)
get_registry = _REGISTRY.get
reset_registry = _REGISTRY.reset


def call(service: str, fn: Callable, *args: Any, fallback: Callable | None = None, **kwargs: Any) -> Any:
    """``get_registry().call(...)``: the one way the pipeline calls an external service."""
    return get_registry().call(service, fn, *args, fallback=fallback, **kwargs)
