"""The roadmap's throughput tests, sized to run in a minute or two on the embedded stack.

The targets themselves (10,000/min, p95 < 500 ms, 150% overload) are measured by `make loadtest`,
which prints its figures; here latency is only checked against a generous hang guard.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from devstack.poller import WorkerPool
from tests.pipeline.helpers import send_bodies, verdict_rows

# A hang guard, not a target: a 1,000-email burst waits behind itself (p95 ~0.9 s on a quiet
# machine, 8 s seen with the 2 cores shared by eight test runs); a stuck pipeline never finishes.
HANG_GUARD_MS = 60_000


# 500 and 1,000 are the long runs (make test-all); 100 keeps the path in make test's ten minutes
@pytest.mark.parametrize("emails", [100, pytest.param(500, marks=pytest.mark.slow),
                                    pytest.param(1000, marks=pytest.mark.slow)])
def test_concurrent_emails_all_get_a_verdict(load_run, emails):
    run = load_run()
    phase = run.burst(emails)
    print(f"\n{emails} concurrent: {phase.throughput_per_s}/s, p50 {phase.latency_p50_ms} ms, "
          f"p95 {phase.latency_p95_ms} ms")
    assert phase.processed == emails
    assert run.processed_or_dead() == emails  # nothing lost, nothing dead-lettered or duplicated
    assert phase.latency_p95_ms < HANG_GUARD_MS


@pytest.mark.slow  # a sustained rate for half a minute (make test-all)
def test_p95_latency_at_a_sustained_rate_stays_far_from_the_hang_guard(load_run):
    run = load_run()
    phase = run.sustained("sustained-short", per_minute=6000, seconds=15)
    print(f"\nsustained 6,000/min for 15 s: submitted {phase.submitted}, p50 {phase.latency_p50_ms} ms, "
          f"p95 {phase.latency_p95_ms} ms, locust CPU {phase.locust_cpu_percent_avg}%")
    assert phase.submitted > 0 and phase.processed == phase.submitted
    assert phase.latency_p95_ms < HANG_GUARD_MS


@pytest.mark.slow  # 15-40 s of load on two cores (make test-all): make test stays under 10 minutes
def test_no_connection_leak_after_repeated_batches(load_run):
    run = load_run()
    for _ in range(3):
        run.burst(300)
    time.sleep(1)
    end = run._pg_connections()
    assert end.get("idle in transaction", 0) == 0
    # Each worker holds a small pool (at most 4) and the collector one connection: nothing more.
    assert sum(end.values()) <= 3 * 4 + 2, end


@pytest.mark.slow  # 15-40 s of load on two cores (make test-all): make test stays under 10 minutes
def test_graceful_degradation_switches_on_with_a_backlog_and_off_when_it_clears(stack_env):
    env = {**stack_env.info.env, "SWORDFISH_DEGRADED_BACKLOG_SECONDS": "1"}
    send_bodies(stack_env, [_body(f"backlog-{i}") for i in range(200)])
    time.sleep(1.5)  # the backlog is older than the threshold before any worker starts
    with WorkerPool(env, workers=2):
        _wait_for(stack_env, 200)
        send_bodies(stack_env, [_body(f"fresh-{i}") for i in range(20)])
        _wait_for(stack_env, 220)
    rows = {r["message_id"]: r for r in verdict_rows(stack_env)}
    assert len(rows) == 220  # nothing lost while shedding
    assert any(rows[f"backlog-{i}"]["degraded"] for i in range(200))
    assert not any(rows[f"fresh-{i}"]["degraded"] for i in range(20))


@pytest.mark.slow  # 15-40 s of load on two cores (make test-all): make test stays under 10 minutes
def test_the_kill_switch_keeps_degraded_mode_off(stack_env):
    env = {**stack_env.info.env, "SWORDFISH_DEGRADED_BACKLOG_SECONDS": "1",
           "SWORDFISH_FLAG_OVERRIDES": '{"degraded_mode_kill_switch": true}'}
    send_bodies(stack_env, [_body(f"backlog-{i}") for i in range(50)])
    time.sleep(1.5)
    with WorkerPool(env, workers=1):
        _wait_for(stack_env, 50)
    assert not any(r["degraded"] for r in verdict_rows(stack_env))


@pytest.mark.slow
def test_sustained_ten_thousand_per_minute_for_two_minutes(load_run):
    run = load_run()
    phase = run.sustained("sustained-long", per_minute=10_000, seconds=120)
    print(f"\n10,000/min for 120 s: p50 {phase.latency_p50_ms} ms, p95 {phase.latency_p95_ms} ms")
    assert phase.processed == phase.submitted
    assert phase.latency_p95_ms < HANG_GUARD_MS


def _body(message_id: str) -> str:
    from swordfish.pipeline.submission import inline_submission

    raw = (b"From: a@globex.com\r\nTo: b@globex.com\r\nSubject: load\r\n\r\nquarterly numbers attached\r\n")
    return inline_submission("globex", message_id, raw).model_dump_json()


def _wait_for(stack, count: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(stack.info.superuser_url, autocommit=True) as conn:
            if conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] >= count:
                return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} verdicts after {timeout}s")
