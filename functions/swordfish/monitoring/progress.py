"""Worker heartbeats and pipeline progress, kept in Redis (ElastiCache on AWS) for the deep health check.

Health measured at the gateway cannot see a dead worker or a stalled pipeline: the API answers while
nothing is processed. So the workers say, in Redis, that they are alive and how much they did:

- ``beat(name)``: a long-lived worker (the devstack poller) marks itself alive once per poll loop;
  on AWS every processor invocation beats too (its container name), so the freshest beat says when
  any processor last ran.
- ``record_processed(count)``: after each committed batch, the count goes into a 10-second bucket;
  ``processed_in_last(60)`` sums the buckets of the last minute.

Writes are one pipelined round trip, bounded by the client's socket timeout, and never raise: a
Redis outage must not fail a batch because its bookkeeping could not be written. Reads raise, so
the health check reports Redis being unreachable instead of pretending the pipeline is idle.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from swordfish.lazy import ProcessSingleton

HEARTBEATS_KEY = "swordfish:progress:heartbeats"  # hash: worker name -> epoch seconds of its last beat
PROCESSED_PREFIX = "swordfish:progress:processed:"  # + 10-second bucket number -> emails committed
BUCKET_SECONDS = 10
BUCKET_TTL_SECONDS = 600
HEARTBEAT_FORGET_SECONDS = 3600  # beats older than this are dropped (containers long gone)


@dataclass(frozen=True)
class Heartbeat:
    worker: str
    age_seconds: float


class ProgressRecorder:
    def __init__(self, redis_client, clock: Callable[[], float] = time.time):
        self.redis = redis_client
        self.clock = clock

    @classmethod
    def from_url(cls, url: str, timeout: float = 0.5) -> ProgressRecorder:
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout))

    # --- writes (never raise) ------------------------------------------------------------------------

    def beat(self, worker: str) -> bool:
        with contextlib.suppress(Exception):
            self.redis.hset(HEARTBEATS_KEY, worker, f"{self.clock():.3f}")
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
                age = max(0.0, now - float(value))
            except (TypeError, ValueError):
                stale.append(name)
                continue
            if age > HEARTBEAT_FORGET_SECONDS:
                stale.append(name)
            else:
                beats.append(Heartbeat(name, round(age, 2)))
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
