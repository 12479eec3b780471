"""The capacity search: find the knee (the highest rate the stack sustains with p95 under the target
and throughput keeping up), however fast the machine is.

No fixed ceiling: from the start rate, each passing step multiplies the rate by ``growth`` until a
step fails; then the gap between the best pass and the first failure above it is halved until it is
within ``resolution`` (10 %). ``max_steps`` bounds the time. The overload is defined from the knee,
or from the highest throughput any step reached if that is higher (p95 can cross its target well
before the workers saturate), so an overload at 150 % of it is always more than the stack processes.
``next_rate`` and ``knee`` are pure functions of the step outcomes so far, tested on synthetic results.

The overload's verdict accounts for the load generator's CPU (``overload_goodput_verdict``): the
generator shares the machine's cores with the stack and takes more of them at 150 % load than in
the step that set the capacity, so goodput is compared per core left to the stack (the machine's
cores minus the generator's measured CPU in each), not as raw emails per second.
"""

from __future__ import annotations

from dataclasses import dataclass

ROUND_TO = 500  # per minute: steps at readable rates


@dataclass(frozen=True)
class StepOutcome:
    rate_per_minute: float
    passed: bool
    p95_ms: float | None = None
    throughput_per_s: float | None = None
    reason: str | None = None  # why it failed
    generator_cpu_percent: float | None = None  # the load generator's CPU during the step (100 = one core)


@dataclass(frozen=True)
class Knee:
    rate_per_minute: float | None  # highest passing rate (None: even the lowest step failed)
    first_failing_per_minute: float | None  # lowest failing rate above it (None: not found within the steps)
    steps: int
    # The most the workers processed in any step (emails/min): a step that fell behind shows the
    # processing capacity, which can sit well above the latency knee on a busy machine.
    max_throughput_per_minute: float | None = None
    # The generator's CPU in the step the overload base came from (the knee's, or the busiest step's).
    base_generator_cpu_percent: float | None = None

    @property
    def overload_base_per_minute(self) -> float | None:
        """What an overload must exceed: the knee, or more if the workers were seen processing more,
        so that 150 % of it really is more than the stack can process."""
        rates = [r for r in (self.rate_per_minute, self.max_throughput_per_minute) if r is not None]
        return max(rates, default=None)

    @property
    def bracketed(self) -> bool:
        return self.rate_per_minute is not None and self.first_failing_per_minute is not None


GENERATOR_MIN_SHARE = 0.85  # locust's start-up eats a few seconds of a short step on a busy machine
KEEP_UP_SHARE = 0.95


def step_passes(*, p95_ms: float | None, p95_target_ms: float, offered_per_s: float, seconds: float,
                submitted: int, throughput_per_s: float | None) -> tuple[bool, str | None]:
    """A step passes when p95 is under the target, the generator offered (nearly) the rate, and the
    workers kept up with what it sent: the step's own emails were processed at their sending rate
    (``throughput_per_s`` = emails / (last commit − first send), which falls when a backlog builds)."""
    if p95_ms is None or p95_ms >= p95_target_ms:
        return False, f"p95 {p95_ms} ms not under {p95_target_ms:.0f} ms"
    if submitted < GENERATOR_MIN_SHARE * offered_per_s * seconds:
        return False, f"the load generator sent {submitted} of {offered_per_s * seconds:.0f}"
    sent_per_s = submitted / seconds
    if (throughput_per_s or 0) < KEEP_UP_SHARE * sent_per_s:
        return False, f"throughput {throughput_per_s}/s fell behind the {sent_per_s:.0f}/s sent"
    return True, None


def knee(steps: list[StepOutcome]) -> Knee:
    passed = [s.rate_per_minute for s in steps if s.passed]
    low = max(passed, default=None)
    above = [s.rate_per_minute for s in steps if not s.passed and (low is None or s.rate_per_minute > low)]
    busiest = max((s for s in steps if s.throughput_per_s), key=lambda s: s.throughput_per_s, default=None)
    max_per_minute = round(busiest.throughput_per_s * 60) if busiest else None
    if max_per_minute is not None and (low is None or max_per_minute > low):
        base_cpu = busiest.generator_cpu_percent
    else:
        base_cpu = next((s.generator_cpu_percent for s in steps if s.passed and s.rate_per_minute == low), None)
    return Knee(low, min(above, default=None), len(steps), max_per_minute, base_cpu)


def stack_cores(generator_cpu_percent: float | None, cores: int) -> float:
    """Cores left to the stack while the generator used ``generator_cpu_percent`` (100 = one core);
    at least a tenth of the machine, so a generator reported above the machine is no division by zero."""
    return max(cores - (generator_cpu_percent or 0.0) / 100, cores / 10)


@dataclass(frozen=True)
class OverloadVerdict:
    passed: bool
    overload_per_s: float
    capacity_per_s: float
    expected_per_s: float  # the capacity scaled to the cores the stack had during the overload
    capacity_stack_cores: float
    overload_stack_cores: float
    method: str
    reason: str | None = None


OVERLOAD_SHARE = 0.95


def overload_goodput_verdict(*, capacity_per_s: float, capacity_generator_cpu_percent: float | None,
                             overload_per_s: float | None, overload_generator_cpu_percent: float | None,
                             cores: int, share: float = OVERLOAD_SHARE) -> OverloadVerdict:
    """Under overload the stack must keep processing at ``share`` of its capacity, per core it had:
    the capacity is scaled by (cores - generator CPU during the overload) / (cores - generator CPU
    when the capacity was measured), so a generator working harder under overload does not decide
    the verdict, while a stack that processes less per core does."""
    capacity_cores = stack_cores(capacity_generator_cpu_percent, cores)
    overload_cores = stack_cores(overload_generator_cpu_percent, cores)
    expected = capacity_per_s * overload_cores / capacity_cores
    got = overload_per_s or 0.0
    method = (f"goodput per core left to the stack: {cores} cores minus the load generator's measured CPU "
              f"({capacity_cores:.2f} cores when the capacity was measured, {overload_cores:.2f} under overload)")
    passed = got >= share * expected
    reason = None if passed else (
        f"overload throughput {got:.1f}/s is under {share:.0%} of the capacity {capacity_per_s:.0f}/s scaled to "
        f"the cores the stack had ({expected:.0f}/s: {capacity_per_s / capacity_cores:.0f}/s per core then, "
        f"{got / overload_cores:.0f}/s per core under overload)")
    return OverloadVerdict(passed, got, capacity_per_s, round(expected, 1), round(capacity_cores, 3),
                           round(overload_cores, 3), method, reason)


def _round(rate: float) -> float:
    return max(ROUND_TO, round(rate / ROUND_TO) * ROUND_TO)


def next_rate(steps: list[StepOutcome], *, start: float, growth: float = 1.5, resolution: float = 0.1,
              max_steps: int = 8) -> float | None:
    """The next rate to try, or None when the knee is found (or the steps are spent)."""
    if not steps:
        return _round(start)
    if len(steps) >= max_steps:
        return None
    k = knee(steps)
    tried = {s.rate_per_minute for s in steps}
    if k.rate_per_minute is None:  # even the lowest failed: go down
        candidate = _round(min(tried) / growth)
        return None if candidate in tried else candidate
    if k.first_failing_per_minute is None:  # every step so far passed: go up
        return _round(k.rate_per_minute * growth)
    low, high = k.rate_per_minute, k.first_failing_per_minute
    if (high - low) / low <= resolution:
        return None
    candidate = _round((low + high) / 2)
    return candidate if low < candidate < high and candidate not in tried else None
