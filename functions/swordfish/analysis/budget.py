"""The per-message analysis budget: the last resort after the work limits.

What analysis skips is decided by limits fixed in advance (bytes parsed, attachment bytes opened,
archives and their entries, HTML characters, PDFs and their objects and pages, images and pixels
decoded: `mime_limits.py`, `parse.py`, `qr.py`), so a message gets the same verdict on a fast machine
and on a busy one, and the verdict names what the limits left out. They keep a message's analysis
within tens of milliseconds of CPU. The timer here only stops what they missed: once it is spent,
analysis stops where it is and the message is scored on what was found so far (and says so), so one
message cannot eat a batch's time limit. It is set well over twenty times above what the limits allow
(the heaviest bench-corpus message takes about 55 ms of CPU on a quiet machine, the heavy test messages
20-40 ms on a busy one), so that a machine twenty times slower still reaches the same verdict. At 1 s it
was not: with the budget's clock run twenty times fast, a heavy PDF message crossed it on a busy run of
the suite (session 10), and 20 x 55 ms is over 1 s. Ten messages a batch at 2 s each stay under the
processor's 30 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_ANALYSIS_BUDGET_SECONDS = 2.0

# CPU time of the analysing thread: analysis is pure CPU, and unlike wall time it does not run out
# because a neighbour on a busy machine took the core.
default_clock: Callable[[], float] = time.thread_time


class AnalysisBudget:
    """Checked between bounded steps (input chunks, MIME parts, links); once exceeded it stays so."""

    __slots__ = ("seconds", "clock", "started", "exceeded_at")

    def __init__(self, seconds: float = DEFAULT_ANALYSIS_BUDGET_SECONDS,
                 clock: Callable[[], float] | None = None):
        self.seconds = seconds
        self.clock = clock or default_clock
        self.started = self.clock()
        self.exceeded_at: str | None = None  # the step at which the budget ran out

    def spent(self) -> float:
        return self.clock() - self.started

    def exceeded(self, step: str, share: float = 1.0) -> bool:
        """True (from now on) when the budget is spent, or `share` of it for a step whose wind-down costs
        about as much again; `step` names where that was noticed."""
        if self.exceeded_at is not None:
            return True
        if self.clock() - self.started > self.seconds * share:
            self.exceeded_at = step
            return True
        return False
