"""The health canary: the deep check on a schedule, emitting the score, each component's status, every
breaker's state and each feed's snapshot age, on every run (real Redis, moto DynamoDB, the feed server)."""

from __future__ import annotations

import uuid

import pytest
from swordfish import constants
from swordfish.api.health_canary import run_canary
from swordfish.api.health_deep import HealthDependencies
from swordfish.integrations.indicators import IndicatorStore
from swordfish.resilience.circuit_breaker import BreakerRegistry, create_breaker_table, dynamodb_client_from_settings

from devstack.feed_server import FeedServer
from tests.resilience.breaker_helpers import emf_records

SERVICE = {constants.METRIC_SERVICE_DIMENSION: constants.SERVICE_NAME}


@pytest.fixture(scope="module")
def feeds():
    with FeedServer(hang_seconds=3) as server:
        yield server


@pytest.fixture()
def breakers(moto_server, settings_env):
    settings = settings_env(aws_endpoint_url=moto_server.url, breaker_table_name=f"breakers-{uuid.uuid4().hex[:8]}")
    create_breaker_table(dynamodb_client_from_settings(settings), settings.breaker_table_name)
    return BreakerRegistry(settings=settings)


@pytest.fixture()
def deps(redis_url, feeds, breakers):
    store = IndicatorStore.from_url(redis_url, 1.0)
    for feed in constants.THREAT_FEEDS:
        store.replace(feed, [f"{feed}.example"])
    return HealthDependencies(
        redis_url=redis_url, feed_urls=feeds.urls, feed_status=store.status, breakers=breakers,
        disk_probe=lambda: (50, 100), memory_probe=lambda: (95, 100),  # memory over its limit: fails (non-critical)
        timeouts={"feed": 0.5, "redis": 0.5}, deadline_seconds=3.0, cache_seconds=0)


def metrics_of(out: str) -> list[tuple[str, dict[str, str], float]]:
    """(metric name, dimensions, value) for every EMF record printed."""
    found = []
    for record in emf_records(out):
        (directive,) = record["_aws"]["CloudWatchMetrics"]
        (dimension_names,) = directive["Dimensions"]
        dimensions = {d: record[d] for d in dimension_names}
        for metric in directive["Metrics"]:
            value = record[metric["Name"]]
            found.append((metric["Name"], dimensions, value[0] if isinstance(value, list) else value))
    return found


def test_every_breaker_state_is_emitted_on_every_run_while_one_stays_open(deps, breakers, capsys):
    breakers.force_open("nango_fetch", actor="test", reason="drill")
    capsys.readouterr()  # the transition itself emitted one gauge; the canary must keep emitting it
    for _ in range(2):
        summary = run_canary(deps)
        states = {dims[constants.CIRCUIT_DIMENSION]: value for name, dims, value in metrics_of(capsys.readouterr().out)
                  if name == constants.METRIC_CIRCUIT_STATE}
        assert states["nango_fetch"] == constants.CIRCUIT_STATE_OPEN
        assert set(states) == set(breakers.names)  # every breaker, closed ones too
        assert all(states[n] == constants.CIRCUIT_STATE_CLOSED for n in breakers.names if n != "nango_fetch")
        assert summary["breakers"]["nango_fetch"] == constants.CIRCUIT_STATE_OPEN


def test_circuit_state_carries_exactly_the_dimensions_the_alarm_query_reads(deps, capsys):
    run_canary(deps)
    circuit = [dims for name, dims, _ in metrics_of(capsys.readouterr().out) if name == constants.METRIC_CIRCUIT_STATE]
    assert circuit and all(set(d) == {constants.METRIC_SERVICE_DIMENSION, constants.CIRCUIT_DIMENSION} for d in circuit)


def test_the_score_and_each_components_status_are_emitted(deps, capsys):
    summary = run_canary(deps)
    emitted = metrics_of(capsys.readouterr().out)
    [(score_dims, score)] = [(d, v) for n, d, v in emitted if n == constants.METRIC_HEALTH_SCORE]
    assert score_dims == SERVICE and score == summary["score"] < 100
    statuses = {d[constants.COMPONENT_DIMENSION]: v for n, d, v in emitted if n == constants.METRIC_COMPONENT_STATUS}
    assert statuses["memory"] == 2 and statuses["redis"] == 0 and statuses["disk"] == 0
    assert set(statuses) == set(summary["components"])


def test_each_feeds_snapshot_age_is_emitted(deps, capsys):
    run_canary(deps)
    ages = {d[constants.FEED_DIMENSION]: v for n, d, v in metrics_of(capsys.readouterr().out)
            if n == constants.METRIC_FEED_SNAPSHOT_AGE}
    assert set(ages) == set(constants.THREAT_FEEDS)
    assert all(0 <= age < constants.FEED_SNAPSHOT_AGE_ALARM_SECONDS for age in ages.values())


def test_a_failing_component_is_emitted_as_two(deps, feeds, capsys):
    feeds.set_fault("down")
    try:
        run_canary(deps)
    finally:
        feeds.set_fault("ok")
    statuses = {d[constants.COMPONENT_DIMENSION]: v for n, d, v in metrics_of(capsys.readouterr().out)
                if n == constants.METRIC_COMPONENT_STATUS}
    assert all(statuses[f"feed_{f}"] == 2 for f in constants.THREAT_FEEDS)
