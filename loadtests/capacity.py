"""The capacity search: find the knee (the highest rate the stack sustains with p95 under the target
and throughput keeping up), however fast the machine is.

No fixed ceiling: from the start rate, each passing step multiplies the rate by ``growth`` until a
step fails; then the gap between the best pass and the first failure above it is halved until it is
within ``resolution`` (10 %). ``max_steps`` bounds the time. The overload is defined from the knee,
or from the highest throughput any step reached if that is higher (p95 can cross its target well
before the workers saturate), so an overload at 150 % of it is always more than the stack processes.
``next_rate`` and ``knee`` are pure functions of the step outcomes so far, tested on synthetic results.
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


@dataclass(frozen=True)
class Knee:
    rate_per_minute: float | None  # highest passing rate (None: even the lowest step failed)
    first_failing_per_minute: float | None  # lowest failing rate above it (None: not found within the steps)
    steps: int
    # The most the workers processed in any step (emails/min): a step that fell behind shows the
    # processing capacity, which can sit well above the latency knee on a busy machine.
    max_throughput_per_minute: float | None = None

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
    throughputs = [s.throughput_per_s * 60 for s in steps if s.throughput_per_s]
    return Knee(low, min(above, default=None), len(steps), round(max(throughputs)) if throughputs else None)


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
