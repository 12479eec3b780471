"""The capacity search finds the knee whatever the machine's speed; the fault phase counts what a fault cost.
Pure functions on synthetic step results and samples: no stack needed."""

from __future__ import annotations

from loadtests.capacity import StepOutcome, knee, next_rate, step_passes
from loadtests.faults import DEFAULT_FAULTS, FAULT_COMPONENT, KILLED_SERVICE, account, recovery
from loadtests.load_runner import fault_failures, restorable_failures


def search(capacity_per_minute: float, *, start: float = 10_000, max_steps: int = 8) -> tuple[list[float], object]:
    """Run the search against a synthetic machine that passes every rate up to its capacity."""
    steps: list[StepOutcome] = []
    while (rate := next_rate(steps, start=start, max_steps=max_steps)) is not None:
        steps.append(StepOutcome(rate, rate <= capacity_per_minute))
    return [s.rate_per_minute for s in steps], knee(steps)


def test_a_fast_machine_is_searched_past_the_old_40000_ceiling():
    rates, found = search(75_000)
    assert max(rates) > 40_000
    assert found.bracketed and found.rate_per_minute <= 75_000 < found.first_failing_per_minute
    assert (found.first_failing_per_minute - found.rate_per_minute) / found.rate_per_minute <= 0.1
    assert len(rates) <= 8


def test_a_slow_machine_finds_a_knee_below_the_start_rate():
    rates, found = search(6_200)
    assert rates[0] == 10_000 and min(rates) < 10_000
    assert found.bracketed and found.rate_per_minute <= 6_200 < found.first_failing_per_minute


def test_the_search_is_bounded_and_says_when_the_knee_was_not_reached():
    rates, found = search(10_000_000, max_steps=4)
    assert len(rates) == 4
    assert not found.bracketed and found.first_failing_per_minute is None
    assert found.rate_per_minute == max(rates)


def test_noise_below_the_best_pass_does_not_move_the_knee():
    steps = [StepOutcome(10_000, True), StepOutcome(15_000, True), StepOutcome(22_500, False),
             StepOutcome(19_000, False), StepOutcome(12_000, False)]
    found = knee(steps)
    assert (found.rate_per_minute, found.first_failing_per_minute) == (15_000, 19_000)


def test_the_overload_is_based_on_the_most_the_workers_processed_when_that_is_above_the_knee():
    # a busy machine: p95 crosses 500 ms at 3,500/min, but the workers kept up until about 7,000/min
    steps = [StepOutcome(10_000, False, 11_480, 118.0), StepOutcome(6_500, False, 1_818, 108.0),
             StepOutcome(4_500, False, 534, 75.5), StepOutcome(3_000, True, 474, 50.5),
             StepOutcome(3_500, False, 509, 59.0)]
    found = knee(steps)
    assert (found.rate_per_minute, found.first_failing_per_minute) == (3_000, 3_500)
    assert found.max_throughput_per_minute == 7_080
    assert found.overload_base_per_minute == 7_080  # 150 % of it: 10,620/min, more than was ever processed
    quiet = knee([StepOutcome(10_000, True, 90, 166.0), StepOutcome(15_000, False, 900, 240.0)])
    assert quiet.overload_base_per_minute == 14_400


def test_a_step_fails_on_latency_on_the_generator_or_on_falling_behind():
    base = {"p95_target_ms": 500, "offered_per_s": 200, "seconds": 30}
    assert step_passes(p95_ms=120, submitted=6000, throughput_per_s=199, **base) == (True, None)
    assert step_passes(p95_ms=120, submitted=5400, throughput_per_s=178, **base) == (True, None)  # a slow start
    assert not step_passes(p95_ms=600, submitted=6000, throughput_per_s=200, **base)[0]
    assert "load generator" in step_passes(p95_ms=100, submitted=4500, throughput_per_s=150, **base)[1]
    assert "fell behind" in step_passes(p95_ms=100, submitted=6000, throughput_per_s=150, **base)[1]


def test_fault_accounting_counts_lost_duplicates_and_dlq():
    assert account(5, ["a", "b", "c", "d", "e"], []) == {"sent": 5, "verdicts": 5, "dlq": 0, "duplicates": 0,
                                                         "lost": 0}
    result = account(6, ["a", "b", "b", "c"], ["c", "d"])
    assert result == {"sent": 6, "verdicts": 3, "dlq": 2, "duplicates": 2, "lost": 2}


def sample(t, processed, backlog):
    return {"t": t, "processed_in_interval": processed, "queue_visible": backlog, "queue_in_flight": 0}


def test_recovery_times_and_what_health_said_during_and_after():
    samples = [sample(0, 160, 50), sample(10, 0, 900), sample(20, 0, 2500), sample(30, 0, 3000),
               sample(31, 0, 3100), sample(33, 400, 2000), sample(40, 500, 600), sample(45, 300, 120)]
    health = [{"t": 1, "status": "pass", "not_passing": []},
              {"t": 12, "status": "fail", "not_passing": ["postgresql"]},
              {"t": 32, "status": "fail", "not_passing": ["postgresql"]},
              {"t": 34, "status": "warn", "not_passing": ["pipeline"]},
              {"t": 46, "status": "warn", "not_passing": ["pipeline"]},
              {"t": 60, "status": "pass", "not_passing": []}]
    r = recovery(samples, health, injected_at=10, back_at=31, baseline_backlog=50, component="postgresql")
    assert r["down_seconds"] == 21
    assert r["resumed_after_back_seconds"] == 2  # first verdict at t=33, 2 s after PostgreSQL was back
    assert r["recovered_seconds"] == 35  # PostgreSQL passing from 34, backlog normal at 45: 45 - 10
    assert r["health_pass_seconds"] == 50  # the aged backlog keeps a warn until t=60
    assert r["health_during"] == ["fail", "warn"]
    assert r["components_not_passing_during"] == ["pipeline", "postgresql"]
    assert (r["health_after"], r["not_passing_after"]) == ("warn", ["pipeline"])
    assert r["peak_backlog"] == 3100


def test_a_dependency_still_failing_is_not_recovered_even_with_an_empty_queue():
    samples = [sample(0, 100, 0), sample(20, 0, 0), sample(40, 0, 0)]
    health = [{"t": 25, "status": "fail", "not_passing": ["postgresql"]},
              {"t": 41, "status": "warn", "not_passing": ["postgresql"]}]
    r = recovery(samples, health, injected_at=10, back_at=20, baseline_backlog=0, component="postgresql")
    assert r["recovered_seconds"] is None and r["health_during"] == ["fail", "warn"]


def test_a_fault_that_never_recovers_or_hides_from_health_is_a_missed_target():
    healthy = {"fault": "postgresql-stop", "lost": 0, "duplicates": 0, "recovered_seconds": 30,
               "down_seconds": 20, "health_during": ["fail", "warn"]}
    assert fault_failures(healthy) == []
    assert fault_failures({**healthy, "lost": 3})[0] == "postgresql-stop: 3 email(s) lost"
    assert "never recovered" in fault_failures({**healthy, "recovered_seconds": None})[0]
    assert "said pass throughout" in fault_failures({**healthy, "health_during": ["pass"]})[0]
    # a worker restarted within a second need not show in the health check
    assert fault_failures({**healthy, "fault": "worker-kill", "down_seconds": 0.5, "health_during": ["pass"]}) == []


def test_the_fault_drill_has_the_supervisor_archive_moto_and_queue_faults():
    names = [spec.name for spec in DEFAULT_FAULTS]
    for wanted in ("postmaster-restart-kill", "archive-stall", "moto-kill", "fauxqs-kill"):
        assert wanted in names
    # each is injected somewhere: a killed service the supervisor brings back, or the archive's writer
    assert all(name in KILLED_SERVICE or name in ("worker-kill", "archive-stall") for name in names)
    # the worker's batch waits out the visibility timeout: it stays last
    assert names[-1] == "worker-kill"
    # each names a component deep health really has (a misspelt one is never "not passing")
    from swordfish.api.health_deep import COMPONENTS

    assert set(FAULT_COMPONENT.values()) <= set(COMPONENTS)
    # the archive stall outlasts half the 60 s RPO, so the health check must show it
    assert next(s for s in DEFAULT_FAULTS if s.name == "archive-stall").outage_seconds > 30


def test_backups_that_do_not_verify_or_restore_the_live_verdicts_are_a_missed_target():
    good = {"verify_ok": True, "verify_problems": [], "live_verdicts": 900, "restored_verdicts": 900,
            "same_verdicts": True}
    assert restorable_failures(good) == []
    assert "verify failed: wal/x: chunk 3" in restorable_failures(
        {**good, "verify_ok": False, "verify_problems": ["wal/x: chunk 3"]})[0]
    assert "has 899 verdicts, the live database 900" in restorable_failures(
        {**good, "restored_verdicts": 899, "same_verdicts": False})[0]


def test_a_fauxqs_kill_recovers_once_the_queue_answers_and_the_backlog_is_back_though_its_age_still_warns():
    # the first make loadtest-faults run: fail while fauxqs was down, warn (the queue's oldest
    # message is old: the journal keeps sent times) from 2 s after its restart to the end
    samples = [sample(0, 100, 1200), sample(10, 0, 2700), sample(45, 100, 1250), sample(60, 100, 1100)]
    health = [{"t": 12, "status": "fail", "not_passing": ["queue", "workers"]},
              {"t": 38, "status": "warn", "not_passing": ["queue"]},
              {"t": 62, "status": "warn", "not_passing": ["queue"]}]
    r = recovery(samples, health, injected_at=5, back_at=36, baseline_backlog=1236,
                 component=FAULT_COMPONENT.get("fauxqs-kill"))
    assert r["recovered_seconds"] == 40 and r["health_during"] == ["fail", "warn"]
    # held to the queue component's pass, it never recovered within the run
    assert recovery(samples, health, injected_at=5, back_at=36, baseline_backlog=1236,
                    component="queue")["recovered_seconds"] is None
