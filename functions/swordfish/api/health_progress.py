"""Deep-health checks measured where the work happens: worker heartbeats and queue progress.

A gateway-side check passes while every worker is dead or the pipeline is stalled behind a
database outage. These two checks look at the work itself:

- ``workers``: heartbeats in Redis (``monitoring/progress.py``). Where long-lived workers are
  expected (the devstack's pollers, ``expected_workers``), each must have beaten within
  ``worker_stale_seconds``: one missing is a warn, none alive a fail. On AWS Lambda containers come
  and go, so the freshest beat counts: stale while mail waits is a fail, stale on an empty queue is idle.
- ``pipeline``: backlog (visible + in flight), age of the oldest message (CloudWatch's
  ApproximateAgeOfOldestMessage on AWS; fauxqs's store through our route locally), and emails
  committed in the last minute. Mail waiting past ``pipeline_stall_seconds`` with nothing processed
  is a stall (fail); the oldest message past ``backlog_fail_seconds`` is a fail, past
  ``backlog_warn_seconds`` a warn; a backlog that takes over ``DRAIN_WARN_MINUTES`` to drain at the
  current rate is a warn.

The evaluation is pure (``evaluate_workers``, ``evaluate_pipeline``); the checks only gather.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

from swordfish.api.health_model import FAIL, PASS, WARN, ComponentResult, HealthDependencies, Measurement
from swordfish.monitoring.progress import Heartbeat

DRAIN_WARN_MINUTES = 5.0
PROCESSOR_PREFIX = "processor-"  # the devstack's processor workers; other beats (remediation-*, lambda) are extra


def fauxqs_queue_age_probe(endpoint_url: str, queue_name: str, timeout: float = 1.0) -> Callable[[], float | None]:
    """Age of the oldest non-deleted message from the embedded fauxqs (devstack/fauxqs_server.mjs).
    None where the route does not exist (another emulator): then the age is "not measured"."""
    url = f"{endpoint_url.rstrip('/')}/_swordfish/queues/{queue_name}/age"

    def probe() -> float | None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        try:
            return float(json.loads(body)["oldestAgeSeconds"])
        except (ValueError, KeyError, TypeError):  # answered, but not our route (moto's SQS, say)
            return None

    return probe


def evaluate_workers(beats: list[Heartbeat], *, expected: int | None, stale_seconds: float,
                     backlog: int | None) -> ComponentResult:
    fresh = [b for b in beats if b.age_seconds <= stale_seconds]
    freshest = min((b.age_seconds for b in beats), default=None)
    if expected:
        processors = [b for b in beats if b.worker.startswith(PROCESSOR_PREFIX)]
        alive = [b for b in processors if b.age_seconds <= stale_seconds]
        silent = sorted(b.worker for b in processors if b.age_seconds > stale_seconds)
        status = FAIL if not alive else WARN if len(alive) < expected else PASS
        output = None
        if status != PASS:
            output = (f"{len(alive)} of {expected} processor workers alive (a heartbeat within "
                      f"{stale_seconds:g} s)" + (f"; silent: {', '.join(silent)}" if silent else ""))
        return ComponentResult("workers", [
            Measurement("alive", len(alive), "workers", status, output),
            Measurement("heartbeatAge", freshest, "s", PASS),
        ])
    # Lambda: containers are ephemeral; what matters is that some processor ran recently when mail waits.
    stale = freshest is None or freshest > stale_seconds
    waiting = bool(backlog)
    status = FAIL if stale and waiting else PASS
    output = None
    if status == FAIL:
        since = "ever" if freshest is None else f"for {freshest:.0f} s"
        output = f"no processor has run {since} while {backlog} message(s) wait"
    return ComponentResult("workers", [
        Measurement("alive", len(fresh), "workers", PASS),
        Measurement("heartbeatAge", freshest, "s", status, output),
    ])


def evaluate_pipeline(*, backlog: int, oldest_age: float | None, processed_last_minute: int | None,
                      stall_seconds: float, warn_seconds: float, fail_seconds: float) -> ComponentResult:
    measurements = [Measurement("backlog", backlog, "messages", PASS)]
    if oldest_age is None:
        measurements.append(Measurement("oldestMessageAge", None, "s", PASS, "not measured here"))
    else:
        age_status = FAIL if oldest_age > fail_seconds else WARN if oldest_age > warn_seconds else PASS
        measurements.append(Measurement(
            "oldestMessageAge", round(oldest_age, 1), "s", age_status,
            None if age_status == PASS else
            f"oldest message waited {oldest_age:.0f} s (warn over {warn_seconds:g} s, fail over {fail_seconds:g} s)"))
    if processed_last_minute is None:
        measurements.append(Measurement("processedLastMinute", None, "emails", WARN,
                                        "unknown: the progress counters could not be read"))
        return ComponentResult("pipeline", measurements)
    waiting_long = oldest_age is None or oldest_age > stall_seconds
    stalled = backlog > 0 and processed_last_minute == 0 and waiting_long
    measurements.append(Measurement(
        "processedLastMinute", processed_last_minute, "emails", FAIL if stalled else PASS,
        f"stalled: {backlog} message(s) waiting, none processed in the last minute" if stalled else None))
    if processed_last_minute > 0:
        drain = round(backlog / processed_last_minute, 2)
        slow = drain > DRAIN_WARN_MINUTES
        measurements.append(Measurement("drainTime", drain, "min", WARN if slow else PASS,
                                        f"the backlog takes {drain:g} min to drain at the last minute's rate"
                                        if slow else None))
    return ComponentResult("pipeline", measurements)


# --- the checks (gather, then evaluate) --------------------------------------------------------------


def queue_backlog(deps: HealthDependencies) -> int:
    attrs = deps.sqs_client.get_queue_attributes(QueueUrl=deps.queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(attrs.get(k, 0)) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"))


def check_workers(deps: HealthDependencies) -> ComponentResult:
    backlog = queue_backlog(deps) if deps.sqs_client is not None and deps.queue_url else None
    try:
        beats = deps.progress.heartbeats()
    except Exception as exc:  # noqa: BLE001 - Redis down: workers unknown (a warn); the pipeline check still sees a stall
        return ComponentResult("workers", [Measurement("alive", None, "workers", WARN,
                                                       f"heartbeats unreadable: {type(exc).__name__}: {exc}")])
    return evaluate_workers(beats, expected=deps.expected_workers,
                            stale_seconds=deps.worker_stale_seconds, backlog=backlog)


def check_pipeline(deps: HealthDependencies) -> ComponentResult:
    backlog = queue_backlog(deps)
    oldest = deps.queue_age_probe() if deps.queue_age_probe is not None else None
    try:
        processed = deps.progress.processed_in_last(60) if deps.progress is not None else None
    except Exception:  # noqa: BLE001 - Redis down: the redis check says so; here the rate is unknown
        processed = None
    return evaluate_pipeline(backlog=backlog, oldest_age=oldest, processed_last_minute=processed,
                             stall_seconds=deps.pipeline_stall_seconds, warn_seconds=deps.backlog_warn_seconds,
                             fail_seconds=deps.backlog_fail_seconds)
