"""The health canary: the deep health check run on a schedule (every minute on AWS), so the alarms
and the dashboard see data whether or not anyone calls ``/health/deep``.

It runs whatever checks ``swordfish.api.health_deep.deep`` has (which emits ``HealthScore``) and
emits, from the same report (EMF, namespace ``Swordfish``, dimension ``service``):

- ``ComponentStatus`` per component (dimension ``component``): 0 pass, 1 warn, 2 fail;
- ``CircuitState`` per breaker (dimension ``circuit``), the gauge the breakers emit on transitions
  (0 closed, 1 half-open, 2 open). Emitted every run, so the ``CircuitOpen`` alarm stays in alarm
  for as long as a breaker is open, not just for the minute it opened. A breaker whose state could
  not be read (``UNKNOWN``) emits nothing: the health report already fails that check;
- ``FeedSnapshotAge`` per configured feed (dimension ``feed``): seconds since its last good refresh.

If the canary cannot run at all (it raises, or is not invoked), ``HealthScore`` goes missing, and
the ``HealthScoreLow`` alarm treats missing data as breaching.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from swordfish import constants
from swordfish.api import health_deep
from swordfish.monitoring.observability import logger

STATUS_VALUE = {health_deep.PASS: 0, health_deep.WARN: 1, health_deep.FAIL: 2}
CIRCUIT_VALUE = {"CLOSED": constants.CIRCUIT_STATE_CLOSED, "HALF_OPEN": constants.CIRCUIT_STATE_HALF_OPEN,
                 "OPEN": constants.CIRCUIT_STATE_OPEN}
BREAKER_CHECK = "circuitBreakers:state"
FEED_AGE_CHECK_SUFFIX = ":refreshAge"


@dataclass(frozen=True)
class Gauge:
    name: str
    value: float
    dimension: str
    dimension_value: str
    unit: str = MetricUnit.Count.value


def gauges(body: dict[str, Any]) -> list[Gauge]:
    """The periodic metrics one deep-health report yields (``HealthScore`` is emitted by ``deep`` itself)."""
    found = [Gauge(constants.METRIC_COMPONENT_STATUS, STATUS_VALUE[c["status"]], constants.COMPONENT_DIMENSION, name)
             for name, c in sorted(body.get("components", {}).items())]
    for entry in body.get("checks", {}).get(BREAKER_CHECK, []):
        state = CIRCUIT_VALUE.get(str(entry.get("observedValue")))
        if state is not None and entry.get("componentId"):
            found.append(Gauge(constants.METRIC_CIRCUIT_STATE, state, constants.CIRCUIT_DIMENSION, entry["componentId"]))
    for key, entries in sorted(body.get("checks", {}).items()):
        if key.startswith("feed_") and key.endswith(FEED_AGE_CHECK_SUFFIX):
            age = entries[0].get("observedValue")
            if age is not None:
                feed = key.removeprefix("feed_").removesuffix(FEED_AGE_CHECK_SUFFIX)
                found.append(Gauge(constants.METRIC_FEED_SNAPSHOT_AGE, float(age), constants.FEED_DIMENSION, feed,
                                   MetricUnit.Seconds.value))
    return found


def emit(found: list[Gauge]) -> None:
    # One EMF line per gauge: each has its own dimension set, and CircuitState must carry exactly
    # {service, circuit} to land in the series the transitions write and the alarm's query reads.
    for gauge in found:
        with single_metric(name=gauge.name, unit=gauge.unit, value=gauge.value, namespace=constants.METRICS_NAMESPACE,
                           default_dimensions={constants.METRIC_SERVICE_DIMENSION: constants.SERVICE_NAME}) as metric:
            metric.add_dimension(name=gauge.dimension, value=gauge.dimension_value)


def run_canary(deps: health_deep.HealthDependencies) -> dict[str, Any]:
    """Run the deep health check once, emit its metrics, return a summary (the Lambda's result)."""
    _, body = health_deep.deep(deps, emit_metric=True)
    found = gauges(body)
    emit(found)
    summary = {
        "status": body["status"],
        "score": body["score"],
        "components": {name: c["status"] for name, c in sorted(body["components"].items())},
        "breakers": {g.dimension_value: g.value for g in found if g.name == constants.METRIC_CIRCUIT_STATE},
    }
    logger.info("health canary", extra={"canary": summary})
    return summary
