"""Health checks that say exactly what is broken, in the IETF health-check format.

``live()`` needs nothing; ``ready(deps)`` checks the critical dependencies (PostgreSQL and the
queue); ``deep(deps)`` checks everything, concurrently, each check with its own timeout and the
whole under one deadline. Each returns ``(http_status, body)``; the body is
``application/health+json`` (draft-inadarei-api-health-check): ``status`` pass | warn | fail,
``checks`` keyed ``component:measurement``, each an array of objects with ``observedValue``,
``observedUnit``, ``status``, ``time`` and ``componentType``. We add ``components`` (each
component's own status, HTTP status code, weight and criticality) and ``score`` (0-100, weighted
by criticality). A failing critical component fails the whole; any other failure is a warn.
Results are cached for ``cache_seconds`` so a burst of health calls does not hammer dependencies.

The handler stays thin: build ``HealthDependencies`` once per process (``swordfish.wiring``), then call
``live()``, ``ready(deps)`` or ``deep(deps)`` and send the body with ``HEALTH_CONTENT_TYPE``.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import urllib3

from swordfish import constants
from swordfish.api import health_backup, health_progress
from swordfish.api.health_model import (  # noqa: F401 - re-exported: callers import them from here
    FAIL,
    PASS,
    STATUS_RANK,
    WARN,
    ComponentResult,
    HealthDependencies,
    Measurement,
    disk_probe,
    memory_probe,
)
from swordfish.config import Settings
from swordfish.monitoring.observability import logger

HEALTH_CONTENT_TYPE = "application/health+json"
_SCORE_FACTOR = {PASS: 1.0, WARN: 0.5, FAIL: 0.0}
_STARTED = time.time()

DISK_MIN_FREE_PERCENT = 10.0
MEMORY_MAX_USED_PERCENT = 85.0
FEED_MAX_AGE_SECONDS = 2 * constants.FEED_REFRESH_MINUTES * 60  # two missed refreshes


@dataclass(frozen=True)
class Component:
    name: str
    component_type: str  # datastore | component | system (IETF)
    weight: int
    critical: bool = False


# Weights: how much each component's health matters to "mail gets a verdict". Critical ones fail
# the whole report: without PostgreSQL no verdict is stored, without the queue nothing arrives.
COMPONENTS: dict[str, Component] = {c.name: c for c in (
    Component("postgresql", "datastore", 30, critical=True),
    Component("queue", "component", 20, critical=True),
    # Measured where the work happens (health_progress.py): a stalled pipeline or no live worker
    # means no verdicts, whatever the gateway can reach.
    Component("pipeline", "component", 20, critical=True),
    Component("workers", "component", 15, critical=True),
    Component("redis", "datastore", 10),
    Component("nango", "component", 10),
    *(Component(f"feed_{f}", "component", 4) for f in constants.THREAT_FEEDS),
    Component("disk", "system", 5),
    Component("memory", "system", 5),
    Component("circuitBreakers", "component", 5),
    Component("featureFlags", "component", 3),
    Component("secrets", "component", 0),
    # Not critical (mail still gets verdicts), but a failure of its own past the RPO: the canary's
    # ComponentStatus for it feeds the BackupFailing alarm.
    Component("backup", "component", 10),
    # A dependency restarted without its state (health_progress.check_restarts): a warn for a while
    # that the operator reads; like secrets, it does not move the score.
    Component("restarts", "component", 0),  # a warn only: the fallback value works; the score stays
    # An emulator, a folder or the backup key that came back empty (issue 25): mail may still flow,
    # but what recovery depends on is gone until re-created, so it fails on its own.
    Component("keptState", "component", 10),
)}
READY_COMPONENTS = ("postgresql", "queue")


def _status_of(value: float, fail_when: Callable[[float], bool], warn_when: Callable[[float], bool] = lambda v: False,
               ) -> str:
    return FAIL if fail_when(value) else WARN if warn_when(value) else PASS


def cloudwatch_queue_age_probe(settings: Settings, queue_name: str = constants.EMAILS_QUEUE_NAME,
                               ) -> Callable[[], float | None]:
    """Age of the oldest message from CloudWatch (AWS only: no local equivalent, and peeking with
    ReceiveMessage would raise the message's receive count towards the DLQ)."""
    import boto3
    from botocore.config import Config

    client = boto3.client("cloudwatch", region_name=settings.aws_region,
                          config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}))

    def probe() -> float | None:
        now = datetime.now(UTC)
        points = client.get_metric_statistics(
            Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": queue_name}],
            StartTime=now.timestamp() - 600, EndTime=now.timestamp(), Period=60, Statistics=["Maximum"],
        )["Datapoints"]
        return max(points, key=lambda p: p["Timestamp"])["Maximum"] if points else None

    return probe


# --- checks (each returns a ComponentResult or raises; a raise or a timeout is a fail) -------------


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def check_postgresql(deps: HealthDependencies) -> ComponentResult:
    import psycopg

    from swordfish.store.database import is_authentication_failure, proxy_connect

    url = deps.database_url() if callable(deps.database_url) else deps.database_url
    timeout = deps.timeout_for("postgresql")

    def connect(dsn: str):
        # No startup options (RDS Proxy refuses them): the role's statement timeout applies, and the
        # check's own deadline cuts the wait.
        return proxy_connect(dsn, connect_timeout=max(2, int(timeout)), autocommit=True,
                             application_name="swordfish-health")

    start = time.perf_counter()
    # A fresh connection on purpose: the check proves a new connection can be made, not that a pooled one lives.
    try:
        conn = connect(url)
    except psycopg.OperationalError as exc:
        # After a rotation the cached login may be refused while the pool (which re-reads) works:
        # re-read and retry once, or health reports the database down while mail flows.
        if deps.database_url_after_auth_failure is None or not is_authentication_failure(exc):
            raise
        conn = connect(deps.database_url_after_auth_failure())
    with conn:
        connect_ms = _ms(start)
        start = time.perf_counter()
        conn.execute("SELECT 1").fetchone()
        query_ms = _ms(start)
    return ComponentResult("postgresql", [Measurement("connectTime", connect_ms, "ms", PASS),
                                          Measurement("responseTime", query_ms, "ms", PASS)])


def check_redis(deps: HealthDependencies) -> ComponentResult:
    import redis

    timeout = deps.timeout_for("redis")
    client = redis.Redis.from_url(deps.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        start = time.perf_counter()
        client.ping()
        return ComponentResult("redis", [Measurement("responseTime", _ms(start), "ms", PASS)])
    finally:
        client.close()


_HTTP = urllib3.PoolManager(num_pools=4, maxsize=4, retries=False)


def _http_status(url: str, timeout: float) -> int:
    """Status of a GET without reading the body (a feed can be megabytes; not every server does HEAD)."""
    response = _HTTP.request("GET", url, timeout=urllib3.Timeout(connect=timeout, read=timeout),
                             preload_content=False, redirect=False)
    try:
        return response.status
    finally:
        response.close()  # drop the connection rather than drain an unread body
        response.release_conn()


def check_nango(deps: HealthDependencies) -> ComponentResult:
    start = time.perf_counter()
    if deps.nango_health is not None:
        deps.nango_health()
    else:
        status = _http_status(deps.nango_base_url.rstrip("/") + "/health", deps.timeout_for("nango"))
        if status >= 300:
            return ComponentResult("nango", [Measurement("responseTime", _ms(start), "ms", FAIL,
                                                         f"/health answered HTTP {status}")])
    return ComponentResult("nango", [Measurement("responseTime", _ms(start), "ms", PASS)])


def check_feed(deps: HealthDependencies, feed: str, statuses: dict[str, Any] | None, status_error: str | None,
               ) -> ComponentResult:
    name = f"feed_{feed}"
    measurements = []
    start = time.perf_counter()
    try:
        code = _http_status(deps.feed_urls[feed], deps.timeout_for(name))
        ok = code < 400
        measurements.append(Measurement("responseTime", _ms(start), "ms", PASS if ok else FAIL,
                                        None if ok else f"HTTP {code} from {deps.feed_urls[feed]}"))
    except Exception as exc:  # noqa: BLE001 - unreachable or timed out: the measurement says which
        measurements.append(Measurement("responseTime", _ms(start), "ms", FAIL,
                                        f"{deps.feed_urls[feed]} unreachable: {type(exc).__name__}: {exc}"))
    if statuses is None:
        measurements.append(Measurement("refreshAge", None, "s", WARN,
                                        status_error or "last refresh unknown (no indicator store configured)"))
    else:
        feed_status = statuses.get(feed)
        age = feed_status.age_seconds() if feed_status is not None else None
        if age is None:
            measurements.append(Measurement("refreshAge", None, "s", WARN, "never refreshed successfully"))
        else:
            stale = age > FEED_MAX_AGE_SECONDS
            measurements.append(Measurement("refreshAge", round(age, 1), "s", WARN if stale else PASS,
                                            f"older than {FEED_MAX_AGE_SECONDS}s" if stale else None))
    return ComponentResult(name, measurements)


def check_disk(deps: HealthDependencies) -> ComponentResult:
    free, total = deps.disk_probe()
    percent = round(100.0 * free / total, 2) if total else 0.0
    status = _status_of(percent, lambda v: v <= DISK_MIN_FREE_PERCENT)
    return ComponentResult("disk", [Measurement("freeSpace", percent, "percent", status,
                                                f"{percent}% free, needs over {DISK_MIN_FREE_PERCENT}%"
                                                if status != PASS else None)])


def check_memory(deps: HealthDependencies) -> ComponentResult:
    used, limit = deps.memory_probe()
    percent = round(100.0 * used / limit, 2) if limit else 100.0
    status = _status_of(percent, lambda v: v >= MEMORY_MAX_USED_PERCENT)
    return ComponentResult("memory", [Measurement("utilization", percent, "percent", status,
                                                  f"{percent}% of the limit used, must stay under "
                                                  f"{MEMORY_MAX_USED_PERCENT}%" if status != PASS else None)])


def check_breakers(deps: HealthDependencies) -> ComponentResult:
    measurements = []
    for s in deps.breakers.statuses():
        status = PASS if s.state == "CLOSED" else WARN  # open breakers mean a fallback is in use, not an outage
        detail = s.error or (f"forced open by {s.forced_by}: {s.forced_reason}" if s.forced else
                             f"open since {datetime.fromtimestamp(s.opened_at, UTC).isoformat()}"
                             if s.opened_at else None)
        measurements.append(Measurement("state", s.state, None, status, detail if status != PASS else None, s.name))
    return ComponentResult("circuitBreakers", measurements)


def check_queue(deps: HealthDependencies) -> ComponentResult:
    def depth(url: str) -> int:
        attrs = deps.sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    measurements = [Measurement("depth", depth(deps.queue_url), "messages", PASS)]
    if deps.queue_age_probe is not None:
        age = deps.queue_age_probe()
        late = age is not None and age > deps.backlog_warn_seconds
        measurements.append(Measurement("oldestMessageAge", age, "s", WARN if late else PASS,
                                        f"backlog older than {deps.backlog_warn_seconds:g}s" if late else None))
    else:
        measurements.append(Measurement("oldestMessageAge", None, "s", PASS,
                                        "not measured here (CloudWatch only; peeking would count as a receive)"))
    if deps.dlq_url:
        dlq = depth(deps.dlq_url)
        measurements.append(Measurement("dlqDepth", dlq, "messages", WARN if dlq else PASS,
                                        f"{dlq} message(s) in the DLQ: inspect and redrive" if dlq else None))
    return ComponentResult("queue", measurements)


def check_flags(deps: HealthDependencies) -> ComponentResult:
    try:
        status = deps.flag_status()
    except Exception as exc:  # noqa: BLE001 - the flag store never fails the report: mail flows on defaults
        return ComponentResult("featureFlags", [Measurement("store", "unknown", None, WARN, f"{type(exc).__name__}: {exc}")])
    state = getattr(getattr(status, "state", None), "value", str(getattr(status, "state", status)))
    warning = bool(getattr(status, "warning", state != "ok"))
    age = getattr(status, "age_seconds", None)
    return ComponentResult("featureFlags", [
        Measurement("store", state, None, WARN if warning else PASS, getattr(status, "error", None) if warning else None),
        Measurement("configurationAge", None if age is None else round(age, 1), "s", PASS),
    ])


# --- running, aggregating, caching --------------------------------------------------------------


def check_secrets(reader) -> ComponentResult:
    """``warn`` while any secret in use came from the environment fallback instead of the vault."""
    fallbacks = sorted(reader.fallbacks_used)
    return ComponentResult("secrets", [Measurement(
        "envFallback", len(fallbacks), None, WARN if fallbacks else PASS,
        f"read from the environment, Secrets Manager unreachable: {', '.join(fallbacks)}" if fallbacks else None)])


def check_kept_state(deps: HealthDependencies) -> ComponentResult:
    """``fail`` per probe that finds its marker gone: the dependency came back without its state
    (restarted empty, a folder emptied, the backup key deleted), and passes once it is re-created."""
    measurements = []
    for name, probe in deps.kept_state.items():
        try:
            lost = probe()
        except Exception as exc:  # noqa: BLE001 - unreachable: its own check says so; here unknown
            measurements.append(Measurement(name, None, None, WARN, f"unknown: {type(exc).__name__}: {exc}"))
            continue
        measurements.append(Measurement(name, lost is None, None, PASS if lost is None else FAIL, lost))
    return ComponentResult("keptState", measurements)


def _planned_checks(deps: HealthDependencies, names: tuple[str, ...] | None) -> dict[str, Callable[[], ComponentResult]]:
    plan: dict[str, Callable[[], ComponentResult]] = {}
    if deps.database_url:
        plan["postgresql"] = lambda: check_postgresql(deps)
    if deps.sqs_client is not None and deps.queue_url:
        plan["queue"] = lambda: check_queue(deps)
    if deps.redis_url:
        plan["redis"] = lambda: check_redis(deps)
    if deps.progress is not None:
        plan["workers"] = lambda: health_progress.check_workers(deps)
        plan["restarts"] = lambda: health_progress.check_restarts(deps)
        if deps.sqs_client is not None and deps.queue_url:
            plan["pipeline"] = lambda: health_progress.check_pipeline(deps)
    if deps.nango_base_url or deps.nango_health:
        plan["nango"] = lambda: check_nango(deps)
    feeds = [f for f in constants.THREAT_FEEDS if deps.feed_urls.get(f)]
    if feeds:
        # One read of every feed's refresh time (one Redis round trip), shared by the feed checks.
        statuses_future: dict[str, Any] = {}
        lock = threading.Lock()

        def feed_statuses() -> tuple[dict | None, str | None]:
            with lock:
                if "value" not in statuses_future:
                    try:
                        statuses_future["value"] = (deps.feed_status() if deps.feed_status else None, None)
                    except Exception as exc:  # noqa: BLE001 - Redis down: ages unknown, reachability still checked
                        statuses_future["value"] = (None, f"last refresh unknown: {exc}")
                return statuses_future["value"]

        for feed in feeds:
            plan[f"feed_{feed}"] = lambda feed=feed: check_feed(deps, feed, *feed_statuses())
    plan["disk"] = lambda: check_disk(deps)
    plan["memory"] = lambda: check_memory(deps)
    if deps.breakers is not None:
        plan["circuitBreakers"] = lambda: check_breakers(deps)
    if deps.flag_status is not None:
        plan["featureFlags"] = lambda: check_flags(deps)
    if deps.secret_reader is not None:
        plan["secrets"] = lambda: check_secrets(deps.secret_reader)
    if deps.backup_status is not None:
        plan["backup"] = lambda: health_backup.check_backup(deps)
    if deps.kept_state:
        plan["keptState"] = lambda: check_kept_state(deps)
    if names is not None:
        plan = {k: v for k, v in plan.items() if k in names}
    return plan


def run_checks(deps: HealthDependencies, names: tuple[str, ...] | None = None) -> list[ComponentResult]:
    """Every planned check at once; each bounded by its own timeout, all by ``deps.deadline_seconds``."""
    plan = _planned_checks(deps, names)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(plan)), thread_name_prefix="health")
    started = time.monotonic()
    futures = {name: pool.submit(fn) for name, fn in plan.items()}
    results = []
    try:
        for name, future in futures.items():
            limit = deps.timeout_for(name)
            remaining = max(0.0, started + limit - time.monotonic())
            try:
                results.append(future.result(timeout=remaining))
            except concurrent.futures.TimeoutError:
                results.append(ComponentResult(name, [Measurement("responseTime", round(limit * 1000), "ms", FAIL,
                                                                  f"no answer within {limit:g}s")]))
            except Exception as exc:  # noqa: BLE001 - the failure is the finding: report it, do not raise
                results.append(ComponentResult(name, [Measurement("responseTime", None, "ms", FAIL,
                                                                  f"{type(exc).__name__}: {exc}")]))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a hung check's thread ends with its client timeout
    return results


def _ietf_body(results: list[ComponentResult], deps: HealthDependencies, description: str) -> dict:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    checks: dict[str, list[dict]] = {}
    components: dict[str, dict] = {}
    weighted = total = 0.0
    overall = PASS
    for result in results:
        comp = COMPONENTS.get(result.name, Component(result.name, "component", 1))
        status = result.status
        for m in result.measurements:
            entry = {"componentType": comp.component_type, "observedValue": m.value, "status": m.status, "time": now}
            if m.unit:
                entry["observedUnit"] = m.unit
            if m.component_id:
                entry["componentId"] = m.component_id
            if m.output:
                entry["output"] = m.output
            checks.setdefault(f"{result.name}:{m.name}", []).append(entry)
        components[result.name] = {"status": status, "statusCode": 503 if status == FAIL else 200,
                                   "critical": comp.critical, "weight": comp.weight}
        weighted += comp.weight * _SCORE_FACTOR[status]
        total += comp.weight
        if status == FAIL and not comp.critical:
            status = WARN  # a non-critical failure degrades the service, it does not take it down
        overall = max(overall, status, key=STATUS_RANK.__getitem__)
    return {
        "status": overall,
        "version": "1",
        "releaseId": deps.release,
        "serviceId": constants.SERVICE_NAME,
        "description": description,
        "score": round(100.0 * weighted / total, 1) if total else 100.0,
        "components": components,
        "checks": checks,
    }


def _response(body: dict) -> tuple[int, dict]:
    return (503 if body["status"] == FAIL else 200), body


_cache: dict[tuple[str, int], tuple[float, dict]] = {}
_cache_locks: dict[str, threading.Lock] = {"ready": threading.Lock(), "deep": threading.Lock()}


def _cached(kind: str, deps: HealthDependencies, compute: Callable[[], dict]) -> dict:
    key = (kind, id(deps))
    with _cache_locks[kind]:  # single flight: a burst waits for one evaluation instead of starting many
        hit = _cache.get(key)
        if hit and deps.clock() < hit[0]:
            return hit[1]
        body = compute()
        _cache[key] = (deps.clock() + deps.cache_seconds, body)
        return body


def live() -> tuple[int, dict]:
    """The process is up and answering; touches no dependency."""
    return 200, {"status": PASS, "version": "1", "serviceId": constants.SERVICE_NAME,
                 "description": "liveness", "checks": {"uptime": [{
                     "componentType": "system", "observedValue": round(time.time() - _STARTED, 1),
                     "observedUnit": "s", "status": PASS,
                     "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}]}}


def ready(deps: HealthDependencies) -> tuple[int, dict]:
    """Can this instance do its job: the critical dependencies only."""
    return _response(_cached("ready", deps, lambda: _ietf_body(run_checks(deps, READY_COMPONENTS), deps, "readiness")))


def deep(deps: HealthDependencies, *, emit_metric: bool = True) -> tuple[int, dict]:
    """Every dependency, what is wrong with each, and the weighted score (also emitted as a metric,
    unless ``emit_metric`` is False: the CLI keeps its stdout pure JSON)."""

    def compute() -> dict:
        body = _ietf_body(run_checks(deps), deps, "deep health")
        if emit_metric:
            _emit_score(body)
        return body

    return _response(_cached("deep", deps, compute))


def _emit_score(body: dict) -> None:
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    failing = sorted(name for name, c in body["components"].items() if c["status"] != PASS)
    log = logger.info if body["status"] == PASS else logger.warning
    log(f"deep health {body['status']} (score {body['score']})", extra={"health_status": body["status"],
                                                                     "health_score": body["score"],
                                                                     "components_not_passing": failing})
    with single_metric(name=constants.METRIC_HEALTH_SCORE, unit=MetricUnit.Count, value=body["score"],
                       namespace=constants.METRICS_NAMESPACE,
                       default_dimensions={constants.METRIC_SERVICE_DIMENSION: constants.SERVICE_NAME}):
        pass
