"""Restarts what the embedded stack started when it dies, with backoff, and says so in the log.

On AWS nobody restarts anything by hand: Lambda starts a new container when one dies, ElastiCache
replaces a failed node, RDS fails over or restarts the instance. The embedded stack does the same
for its own processes (workers, PostgreSQL, Redis, fauxqs, moto), so a fault drill on one machine
shows what production would do. Written here because the supervisors on PyPI (supervisor, circus)
run their own daemon and configuration files; we need a thread watching objects we already hold.

Each watched item is a name, an ``alive()`` check and a ``restart()``. Restarts back off
exponentially (``Backoff``) while an item keeps dying, and the count resets after it stays up for
``reset_after`` seconds. The clock is injected, so the backoff can be tested without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.5
    factor: float = 2.0
    cap: float = 15.0
    reset_after: float = 60.0  # up this long: the next death is a first failure again

    def delay(self, failures: int) -> float:
        """Seconds to wait before restart attempt number ``failures`` (1 = the first)."""
        return min(self.cap, self.initial * self.factor ** max(0, failures - 1))


@dataclass
class RestartEvent:
    name: str
    at: str  # ISO time the restart succeeded (or failed)
    down_seconds: float
    attempt: int
    ok: bool
    error: str | None = None


@dataclass
class _Watched:
    name: str
    alive: Callable[[], bool]
    restart: Callable[[], None]
    up_since: float
    failures: int = 0
    down_since: float | None = None
    next_attempt: float = 0.0
    held: bool = False


@dataclass
class Supervisor:
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic
    log: Callable[[str], None] = lambda line: print(line, flush=True)
    interval: float = 0.25
    events: list[RestartEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._items: list[_Watched] = []
        self._lock = threading.Lock()
        self._recorded = threading.Condition()  # notified at each restart event
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, name: str, alive: Callable[[], bool], restart: Callable[[], None]) -> None:
        with self._lock:
            self._items.append(_Watched(name, alive, restart, up_since=self.clock()))

    def hold(self, name: str) -> None:
        """Leave ``name`` down until ``release``: a fault drill that keeps a dependency away for a while."""
        self._find(name).held = True

    def release(self, name: str) -> None:
        item = self._find(name)
        item.held = False
        if item.down_since is not None:
            item.next_attempt = min(item.next_attempt, self.clock())  # back at once, as the drill intends

    def _find(self, name: str) -> _Watched:
        with self._lock:
            for item in self._items:
                if item.name == name:
                    return item
        raise KeyError(name)

    def names(self) -> list[str]:
        with self._lock:
            return [item.name for item in self._items]

    def tick(self) -> list[RestartEvent]:
        """One pass over every watched item: note deaths, restart those whose backoff is over."""
        with self._lock:
            items = list(self._items)
        done = []
        for item in items:
            if self._stop.is_set():
                break
            now = self.clock()
            if item.down_since is None:
                if item.alive():
                    if item.failures and now - item.up_since >= self.backoff.reset_after:
                        item.failures = 0
                    continue
                item.down_since = now
                item.failures += 1
                item.next_attempt = now + self.backoff.delay(item.failures)
                self.log(f"supervisor: {item.name} is down; restart #{item.failures} in "
                         f"{self.backoff.delay(item.failures):.1f} s")
            if now < item.next_attempt or item.held:
                continue
            if item.alive():  # brought back by hand while held: a restart would start a second one on its port
                item.down_since, item.up_since = None, now
                self.log(f"supervisor: {item.name} is back without a restart")
                continue
            try:
                item.restart()
            except Exception as exc:  # noqa: BLE001 - a failed restart is retried after a longer backoff
                item.failures += 1
                item.next_attempt = self.clock() + self.backoff.delay(item.failures)
                event = RestartEvent(item.name, _iso_now(), round(self.clock() - item.down_since, 2),
                                     item.failures - 1, False, f"{type(exc).__name__}: {exc}")
                self.log(f"supervisor: restarting {item.name} failed ({event.error}); next try in "
                         f"{self.backoff.delay(item.failures):.1f} s")
            else:
                up = self.clock()
                event = RestartEvent(item.name, _iso_now(), round(up - item.down_since, 2), item.failures, True)
                item.down_since, item.up_since = None, up
                self.log(f"supervisor: restarted {item.name} after {event.down_seconds:.1f} s down "
                         f"(restart #{event.attempt})")
            with self._recorded:
                self.events.append(event)
                self._recorded.notify_all()
            done.append(event)
        return done

    def wait_for_event(self, predicate: Callable[[list[RestartEvent]], bool], timeout: float) -> bool:
        """Block until ``predicate(events)`` holds (False after ``timeout``): a caller learns of a
        restart when it is recorded, not by polling."""
        with self._recorded:
            return self._recorded.wait_for(lambda: predicate(self.events), timeout)

    def start(self) -> Supervisor:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="devstack-supervisor", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - the supervisor itself must not die
                self.log(f"supervisor: pass failed: {type(exc).__name__}: {exc}")

    def stop(self, timeout: float = 15) -> None:
        """Stop watching first: what the owner stops next must not be restarted."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> Supervisor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def file_logger(path) -> Callable[[str], None]:
    """Print a supervisor line and append it, timestamped, to ``path``."""

    def log(line: str) -> None:
        stamped = f"{_iso_now()} {line}"
        print(stamped, flush=True)
        with open(path, "a") as f:
            f.write(stamped + "\n")

    return log
