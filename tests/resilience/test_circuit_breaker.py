"""Circuit breakers on Powertools' DynamoDB persistence, against moto, with real faults."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from swordfish import constants
from swordfish.resilience.circuit_breaker import (
    BREAKERS,
    BreakerOpen,
    BreakerRegistry,
    BreakerSpec,
    BreakerTimeout,
    UnknownBreaker,
)

from tests.resilience.breaker_helpers import emf_records, unique_breaker

WORKER = Path(__file__).with_name("breaker_worker.py")


class Boom(ConnectionError):
    pass


def failing():
    raise Boom("downstream refused the connection")


def fallback(*_args, circuit):
    return f"fallback:{circuit.state}"


def fail_n(registry, name, n):
    for _ in range(n):
        with pytest.raises(Boom):
            registry.call(name, failing, fallback=fallback)


def pass_recovery(registry, name, clock):
    """Move the clock to the end of the recovery window after the stored opened_at."""
    clock.advance_to(registry.status(name).opened_at + registry.config(name).recovery_timeout)


def test_opens_after_five_consecutive_failures(registry):
    name = unique_breaker(registry)
    fail_n(registry, name, 4)
    assert registry.status(name).state == "CLOSED"
    fail_n(registry, name, 1)
    assert registry.status(name).state == "OPEN"


def test_a_success_resets_the_consecutive_failure_count(registry):
    name = unique_breaker(registry)
    fail_n(registry, name, 4)
    assert registry.call(name, lambda: "ok") == "ok"
    fail_n(registry, name, 4)
    assert registry.status(name).state == "CLOSED"


def test_returns_the_fallback_when_open_without_calling_the_service(registry):
    name = unique_breaker(registry)
    fail_n(registry, name, 5)
    calls = []
    assert registry.call(name, lambda: calls.append(1), fallback=fallback) == "fallback:OPEN"
    assert calls == []


def test_raises_breaker_open_when_open_and_no_fallback_is_given(registry):
    name = unique_breaker(registry)
    fail_n(registry, name, 5)
    with pytest.raises(BreakerOpen, match=name):
        registry.call(name, lambda: "ok")


def test_half_opens_after_the_recovery_timeout_and_closes_after_three_successful_probes(registry, clock):
    name = unique_breaker(registry)
    fail_n(registry, name, 5)
    pass_recovery(registry, name, clock)
    assert registry.call(name, lambda: "probe 1", fallback=fallback) == "probe 1"
    assert registry.status(name).state == "HALF_OPEN"
    assert registry.call(name, lambda: "probe 2", fallback=fallback) == "probe 2"
    assert registry.status(name).state == "HALF_OPEN"
    assert registry.call(name, lambda: "probe 3", fallback=fallback) == "probe 3"
    assert registry.status(name).state == "CLOSED"


def test_a_failed_probe_reopens_the_circuit(registry, clock):
    name = unique_breaker(registry)
    fail_n(registry, name, 5)
    first_opened_at = registry.status(name).opened_at
    pass_recovery(registry, name, clock)
    with pytest.raises(Boom):
        registry.call(name, failing, fallback=fallback)
    status = registry.status(name)
    assert status.state == "OPEN"
    assert status.opened_at >= first_opened_at + 1
    assert registry.call(name, lambda: "not called", fallback=fallback) == "fallback:OPEN"


def test_thresholds_come_from_settings(breaker_settings, clock):
    registry = BreakerRegistry(settings=breaker_settings(breaker_failure_threshold=2, breaker_success_threshold=1))
    name = unique_breaker(registry)
    fail_n(registry, name, 2)
    assert registry.status(name).state == "OPEN"
    pass_recovery(registry, name, clock)
    registry.call(name, lambda: "ok")
    assert registry.status(name).state == "CLOSED"


def test_default_thresholds_are_five_failures_thirty_seconds_and_three_probes(breaker_settings):
    registry = BreakerRegistry(settings=breaker_settings(breaker_recovery_timeout_seconds=30))
    config = registry.config("nango_fetch")
    assert (config.failure_threshold, config.recovery_timeout, config.success_threshold) == (5, 30, 3)


def test_tracks_state_per_service(registry):
    broken, healthy = unique_breaker(registry, "broken"), unique_breaker(registry, "healthy")
    fail_n(registry, broken, 5)
    assert registry.status(broken).state == "OPEN"
    assert registry.status(healthy).state == "CLOSED"
    assert registry.call(healthy, lambda: "ok", fallback=fallback) == "ok"


def test_every_external_service_has_a_named_breaker(registry):
    assert set(registry.names) >= {"nango_fetch", "nango_remediate", "feed_urlhaus", "feed_openphish",
                                   "feed_phishtank", "redis_indicators", "s3_mail"}
    assert {s.name for s in registry.statuses()} == set(BREAKERS)
    with pytest.raises(UnknownBreaker, match="nango_fetch"):
        registry.status("nango")


def test_emits_metrics_and_a_log_line_on_state_change(registry, capfd, caplog):
    name = unique_breaker(registry)
    fail_n(registry, name, 5)
    out = capfd.readouterr().out
    metrics = [m for m in emf_records(out) if m.get(constants.CIRCUIT_DIMENSION) == name]
    by_name = {next(iter(m["_aws"]["CloudWatchMetrics"][0]["Metrics"]))["Name"]: m for m in metrics}
    assert by_name["CircuitStateChange"]["CircuitStateChange"] == [1.0]
    assert by_name[constants.METRIC_CIRCUIT_STATE][constants.METRIC_CIRCUIT_STATE] == [constants.CIRCUIT_STATE_OPEN]
    for blob in metrics:
        assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == constants.METRICS_NAMESPACE
        assert set(blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == {"service", constants.CIRCUIT_DIMENSION}
    logs = [r for r in caplog.records if getattr(r, "breaker", None) == name]
    assert [(r.from_state, r.to_state, r.levelname) for r in logs] == [("CLOSED", "OPEN", "WARNING")]


def test_no_metric_is_emitted_while_the_state_does_not_change(registry, capfd):
    name = unique_breaker(registry)
    fail_n(registry, name, 4)
    registry.call(name, lambda: "ok")
    assert [m for m in emf_records(capfd.readouterr().out) if m.get(constants.CIRCUIT_DIMENSION) == name] == []


def test_persists_state_across_restarts(registry):
    name = unique_breaker(registry)
    fail_n(registry, name, 5)
    restarted = BreakerRegistry(settings=registry.settings)  # new client, new cache, same table
    restarted.register(BreakerSpec(name, "a test dependency"))
    calls = []
    assert restarted.call(name, lambda: calls.append(1), fallback=fallback) == "fallback:OPEN"
    assert calls == []


def test_a_call_past_its_deadline_counts_as_a_failure(registry):
    name = unique_breaker(registry)
    for _ in range(5):
        with pytest.raises(BreakerTimeout, match="deadline"):
            registry.call(name, time.sleep, 2, timeout=0.05)  # the slow call under test, not a wait
    assert registry.status(name).state == "OPEN"


@pytest.fixture()
def hanging_server():
    """An HTTP server that accepts and then never answers in time."""
    release = threading.Event()

    class Hang(BaseHTTPRequestHandler):
        def do_GET(self):
            release.wait(5)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hang)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_client_timeout_against_a_hanging_service_counts_as_a_failure(registry, hanging_server):
    name = unique_breaker(registry)
    for _ in range(5):
        with pytest.raises(TimeoutError):
            registry.call(name, lambda: urllib.request.urlopen(hanging_server, timeout=0.1))
    assert registry.status(name).state == "OPEN"


def test_request_errors_that_say_nothing_about_the_service_do_not_open_it(registry):
    class NotFound(Exception):
        pass

    name = "test_ignored_" + os.urandom(4).hex()
    registry.register(BreakerSpec(name, "a test dependency", ignored=lambda: (NotFound,)))

    def missing():
        raise NotFound("message 42 no longer exists")

    for _ in range(6):
        with pytest.raises(NotFound):
            registry.call(name, missing)
    assert registry.status(name).state == "CLOSED"


def test_a_late_probe_result_after_its_lease_was_taken_over_does_not_overwrite_the_newer_state(breaker_settings, clock):
    """Powertools writes a probe's CLOSED unconditionally: without our owner check this closes the circuit."""
    registry = BreakerRegistry(settings=breaker_settings(breaker_failure_threshold=1, breaker_success_threshold=1))
    name = unique_breaker(registry)
    fail_n(registry, name, 1)
    pass_recovery(registry, name, clock)

    started, release, result = threading.Event(), threading.Event(), {}

    def slow_probe():
        started.set()
        release.wait(10)
        return "late success"

    worker_a = threading.Thread(target=lambda: result.update(a=registry.call(name, slow_probe, fallback=fallback)))
    worker_a.start()
    try:
        assert started.wait(5)
        clock.advance_to(registry.status(name).probe_lease_expiry)
        # Worker B (another thread: another probe owner) takes the expired lease over and fails.
        with pytest.raises(Boom):
            registry.call(name, failing, fallback=fallback)
        reopened = registry.status(name)
        assert reopened.state == "OPEN"
    finally:
        release.set()
        worker_a.join(10)
    assert result["a"] == "late success"  # the caller still gets its result
    after = registry.status(name)
    assert after.state == "OPEN"
    assert after.opened_at == reopened.opened_at


def test_forcing_open_pins_the_breaker_and_is_audited(registry, clock):
    name = unique_breaker(registry)
    entry = registry.force_open(name, actor="alice", reason="Nango incident INC-42")
    status = registry.status(name)
    assert (status.state, status.forced, status.forced_by, status.forced_reason) == (
        "OPEN", True, "alice", "Nango incident INC-42")
    clock.advance(registry.config(name).recovery_timeout * 10)  # long past any recovery window
    calls = []
    assert registry.call(name, lambda: calls.append(1), fallback=fallback) == "fallback:OPEN"
    assert calls == []  # a forced-open breaker never half-opens by itself
    assert registry.audit_log(name) == [entry]
    assert (entry.action, entry.actor, entry.previous_state) == ("force_open", "alice", "CLOSED")


def test_forcing_closed_releases_the_breaker_and_records_who_and_why(registry):
    name = unique_breaker(registry)
    fail_n(registry, name, 5)
    registry.force_close(name, actor="bob", reason="Nango confirmed recovered")
    assert registry.status(name).state == "CLOSED"
    assert registry.call(name, lambda: "ok", fallback=fallback) == "ok"
    [entry] = registry.audit_log(name)
    assert (entry.action, entry.actor, entry.reason, entry.previous_state) == (
        "force_close", "bob", "Nango confirmed recovered", "OPEN")


def test_a_worker_cannot_overwrite_a_forced_open_with_its_own_trip(registry):
    name = unique_breaker(registry)
    fail_n(registry, name, 4)
    registry.force_open(name, actor="alice", reason="maintenance")
    registry.persistence.invalidate(name)
    registry.persistence.save_open(name, failure_count=5, opened_at=int(time.time()))
    assert registry.status(name).forced is True


def test_forcing_needs_a_reason(registry):
    with pytest.raises(ValueError, match="reason"):
        registry.force_open("nango_fetch", actor="alice", reason="  ")


def test_an_unreachable_breaker_store_is_reported_and_calls_still_go_through(breaker_settings):
    settings = breaker_settings()
    from devstack.services import free_port

    registry = BreakerRegistry(settings=settings.model_copy(update={"aws_endpoint_url": f"http://127.0.0.1:{free_port()}"}))
    assert registry.status("nango_fetch").state == "UNKNOWN"
    assert registry.call("nango_fetch", lambda: "ok") == "ok"  # Powertools fails open on reads


# --- two processes sharing the moto table ---------------------------------------------------------


def run_worker(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ), **kwargs)


def finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def test_a_worker_started_after_the_circuit_opened_sees_it_open(breaker_settings):
    registry = BreakerRegistry(settings=breaker_settings(breaker_recovery_timeout_seconds=60))
    name = unique_breaker(registry)
    fail_n(registry, name, 5)
    assert finish(run_worker("once", name)) == {"result": "fallback"}


def test_a_worker_started_while_the_circuit_is_closed_calls_the_service(registry):
    name = unique_breaker(registry)
    assert finish(run_worker("once", name)) == {"result": "called"}


def test_two_workers_never_both_probe_a_half_open_circuit(breaker_settings, clock, tmp_path):
    # The workers are other processes on the real clock, so the circuit is tripped one recovery
    # window ago on ours: it is due to half-open as they start, and the 30 s probe lease stays far
    # longer than their 1 s run however loaded the machine. Many probes keep it half-open.
    registry = BreakerRegistry(settings=breaker_settings(
        breaker_failure_threshold=1, breaker_recovery_timeout_seconds=30, breaker_success_threshold=1000))
    name = unique_breaker(registry)
    clock.move_to(clock.now() - registry.config(name).recovery_timeout - 1)
    fail_n(registry, name, 1)
    workers = [run_worker("probe", name, str(tmp_path), stdin=subprocess.PIPE) for _ in range(2)]
    try:
        for w in workers:  # each says "ready" once its breaker is registered; the guard only catches a hang
            readable, _, _ = select.select([w.stdout], [], [], 45)
            assert readable and w.stdout.readline().strip() == "ready", w.communicate(timeout=5)
        for w in workers:
            w.stdin.write("go\n")
            w.stdin.flush()
        results = [finish(w) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.communicate()
    probes = [line.split() for line in (tmp_path / "probes.log").read_text().splitlines()]
    assert len({pid for pid, _, _ in probes}) == 1, probes
    prober = next(r for r in results if r["called"])
    other = next(r for r in results if r is not prober)
    assert prober["called"] >= 2
    assert other["called"] == 0 and other["fallback"] > 0
    assert registry.status(name).state == "HALF_OPEN"
