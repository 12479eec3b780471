"""Worker heartbeats and pipeline progress, kept in Redis (ElastiCache on AWS) for the deep health check.

Health measured at the gateway cannot see a dead worker or a stalled pipeline: the API answers while
nothing is processed. So the workers say, in Redis, that they are alive and how much they did:

- ``beat(name)``: a long-lived worker (the devstack poller) marks itself alive once per poll loop;
  on AWS every processor invocation beats too (its container name), so the freshest beat says when
  any processor last ran.
- ``record_processed(count)``: after each committed batch, the count goes into a 10-second bucket;
  ``processed_in_last(60)`` sums the buckets of the last minute.
- ``WorkerHeartbeat``: a long-lived worker beats from a thread of its own, with how long ago its
  poll loop last went round and the dependency it is blocked on (``waiting_on``, marked by the
  database pool while it waits for a connection). So health tells a worker waiting out a database
  outage (alive, blocked) from a dead one (no beat) and from a stuck one (beating, loop not moving,
  waiting on nothing).

Writes are one pipelined round trip, bounded by the client's socket timeout, and never raise: a
Redis outage must not fail a batch because its bookkeeping could not be written. Reads raise, so
the health check reports Redis being unreachable instead of pretending the pipeline is idle.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from swordfish.lazy import ProcessSingleton

HEARTBEATS_KEY = "swordfish:progress:heartbeats"  # hash: worker name -> epoch seconds of its last beat
PROCESSED_PREFIX = "swordfish:progress:processed:"  # + 10-second bucket number -> emails committed
BUCKET_SECONDS = 10
BUCKET_TTL_SECONDS = 600
HEARTBEAT_FORGET_SECONDS = 3600  # beats older than this are dropped (containers long gone)
EMPTY_RETURNS_KEY = "swordfish:progress:came_back_empty"  # hash: dependency -> "epoch what it lost"
EMPTY_RETURN_MEMORY_SECONDS = 900  # health reports a dependency that came back empty this long


@dataclass(frozen=True)
class Heartbeat:
    worker: str
    age_seconds: float
    loop_age_seconds: float | None = None  # since its poll loop last went round (long-lived workers)
    waiting_on: str | None = None  # the dependency it was blocked on at its last beat


# --- what this process is blocked on ------------------------------------------------------------------

_waits: dict[int, tuple[str, float]] = {}  # thread id -> (dependency, monotonic time the wait began)
_waits_changed = threading.Condition()


@contextlib.contextmanager
def waiting_on(dependency: str) -> Iterator[None]:
    """Mark this thread as blocked on ``dependency`` (the database pool, waiting for a connection)."""
    key = threading.get_ident()
    with _waits_changed:
        _waits[key] = (dependency, time.monotonic())
        _waits_changed.notify_all()
    try:
        yield
    finally:
        with _waits_changed:
            _waits.pop(key, None)
            _waits_changed.notify_all()


def current_wait() -> str | None:
    """The dependency this process's longest-waiting thread is blocked on, or None."""
    with _waits_changed:
        return _longest_wait()


def _longest_wait() -> str | None:
    return min(_waits.values(), key=lambda w: w[1])[0] if _waits else None


def until_waiting_on(dependency: str, timeout: float) -> bool:
    """Block until some thread of this process waits on ``dependency`` (False after ``timeout``):
    lets a caller act at the moment a worker blocks, without polling."""
    with _waits_changed:
        return _waits_changed.wait_for(lambda: _longest_wait() == dependency, timeout)


def _encode(now: float, loop_age: float | None, waiting: str | None) -> str:
    value = f"{now:.3f}"
    if loop_age is not None:
        value += f" loop={loop_age:.1f}"
    if waiting:
        value += f" waiting={waiting}"
    return value


def _decode(value) -> tuple[float, float | None, str | None]:
    text = value.decode() if isinstance(value, bytes) else str(value)
    first, *rest = text.split()
    fields = dict(part.split("=", 1) for part in rest if "=" in part)
    loop = fields.get("loop")
    return float(first), float(loop) if loop is not None else None, fields.get("waiting") or None


class ProgressRecorder:
    def __init__(self, redis_client, clock: Callable[[], float] = time.time):
        self.redis = redis_client
        self.clock = clock

    @classmethod
    def from_url(cls, url: str, timeout: float = 0.5) -> ProgressRecorder:
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout))

    # --- writes (never raise) ------------------------------------------------------------------------

    def beat(self, worker: str, loop_age: float | None = None, waiting: str | None = None) -> bool:
        with contextlib.suppress(Exception):
            self.redis.hset(HEARTBEATS_KEY, worker, _encode(self.clock(), loop_age, waiting))
            return True
        return False

    def record_processed(self, count: int, worker: str | None = None) -> bool:
        now = self.clock()
        key = f"{PROCESSED_PREFIX}{int(now // BUCKET_SECONDS)}"
        with contextlib.suppress(Exception):
            pipe = self.redis.pipeline(transaction=False)
            if count:
                pipe.incrby(key, count)
                pipe.expire(key, BUCKET_TTL_SECONDS)
            if worker:
                pipe.hset(HEARTBEATS_KEY, worker, f"{now:.3f}")
            pipe.execute()
            return True
        return False

    def came_back_empty(self, dependency: str, lost: str) -> bool:
        """A dependency was restarted without its state (the embedded stack's moto, fauxqs, Redis):
        deep health says so, with what it lost, for EMPTY_RETURN_MEMORY_SECONDS."""
        with contextlib.suppress(Exception):
            self.redis.hset(EMPTY_RETURNS_KEY, dependency, f"{self.clock():.3f} {lost}")
            return True
        return False

    def empty_returns(self) -> list[tuple[str, float, str]]:
        """(dependency, seconds ago, what it lost) of recent empty returns; raises when Redis cannot be read."""
        now, found = self.clock(), []
        for name, value in self.redis.hgetall(EMPTY_RETURNS_KEY).items():
            name = name.decode() if isinstance(name, bytes) else str(name)
            text = value.decode() if isinstance(value, bytes) else str(value)
            at, _, lost = text.partition(" ")
            try:
                age = max(0.0, now - float(at))
            except ValueError:
                continue
            if age <= EMPTY_RETURN_MEMORY_SECONDS:
                found.append((name, round(age, 1), lost))
        return sorted(found)

    def forget(self, worker: str) -> None:
        """A worker stopped on purpose: its last beat must not read as a dead worker."""
        with contextlib.suppress(Exception):
            self.redis.hdel(HEARTBEATS_KEY, worker)

    # --- reads (raise when Redis cannot be read) --------------------------------------------------------

    def heartbeats(self) -> list[Heartbeat]:
        now = self.clock()
        raw = self.redis.hgetall(HEARTBEATS_KEY)
        beats, stale = [], []
        for name, value in raw.items():
            name = name.decode() if isinstance(name, bytes) else str(name)
            try:
                at, loop_age, waiting = _decode(value)
                age = max(0.0, now - at)
            except (TypeError, ValueError):
                stale.append(name)
                continue
            if age > HEARTBEAT_FORGET_SECONDS:
                stale.append(name)
            else:
                beats.append(Heartbeat(name, round(age, 2), None if loop_age is None else round(loop_age + age, 2),
                                       waiting))
        if stale:
            with contextlib.suppress(Exception):
                self.redis.hdel(HEARTBEATS_KEY, *stale)
        return sorted(beats, key=lambda b: b.worker)

    def processed_in_last(self, seconds: float = 60) -> int:
        """Emails committed in the last ``seconds``, in whole 10-second buckets (so over the last 50-60 s)."""
        now = self.clock()
        newest = int(now // BUCKET_SECONDS)
        oldest = int((now - seconds) // BUCKET_SECONDS)
        keys = [f"{PROCESSED_PREFIX}{b}" for b in range(oldest + 1, newest + 1)]
        return sum(int(v) for v in self.redis.mget(keys) if v is not None)


class WorkerHeartbeat:
    """A long-lived worker's heartbeat, beaten from its own thread (``start``) so that a worker
    blocked in a batch still says it lives, and what it waits for. ``loop()`` marks each turn of the
    poll loop. Writes never raise."""

    def __init__(self, recorder: ProgressRecorder, name: str, clock: Callable[[], float] = time.monotonic):
        self.recorder, self.name, self.clock = recorder, name, clock
        self._loop_at = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def loop(self) -> None:
        self._loop_at = self.clock()

    def beat(self) -> bool:
        return self.recorder.beat(self.name, loop_age=max(0.0, self.clock() - self._loop_at), waiting=current_wait())

    def start(self, interval: float = 1.0) -> WorkerHeartbeat:
        def run() -> None:
            while not self._stop.is_set():
                self.beat()
                self._stop.wait(interval)

        self._thread = threading.Thread(target=run, name=f"heartbeat-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stopped on purpose: the beat is removed, so it does not read as a dead worker."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self.recorder.forget(self.name)


def worker_name() -> str:
    """This process's name in the heartbeats: the devstack poller's (set before the handler is
    imported), else the Lambda container's log stream, else the pid."""
    import os

    return (os.environ.get("SWORDFISH_WORKER_NAME") or os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
            or f"pid-{os.getpid()}")


def _recorder_from_settings() -> ProgressRecorder | None:
    from swordfish.config import get_settings

    settings = get_settings()
    if not settings.redis_url:
        return None
    return ProgressRecorder.from_url(settings.redis_url, settings.redis_timeout_seconds)


def record_batch(count: int) -> None:
    """After a batch's verdicts are committed: count them and beat (one Redis round trip; never raises)."""
    recorder = _shared.get()
    if recorder is not None:
        recorder.record_processed(count, worker_name())


_shared = ProcessSingleton(_recorder_from_settings)
reset_recorder = _shared.reset
