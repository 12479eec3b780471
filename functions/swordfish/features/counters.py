"""Flag evaluation counters (count, value mix, last evaluated) in Redis.

Why Redis and not a table: evaluation is on the hot path of every email, the counters are
commutative increments that tolerate loss, and a table would put a hot-row UPDATE on the primary
database for data that only ``swordfish flags stale`` reads. Evaluations are tallied in memory and
flushed in one pipelined round trip at most every ``flush_seconds``; a failed flush keeps the
tallies for the next one and never affects evaluation.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from swordfish.features.evaluator import canonical
from swordfish.monitoring.observability import logger

KEY_PREFIX = "swordfish:flags:evaluations"
NAMES_KEY = f"{KEY_PREFIX}:names"


def _flag_key(name: str) -> str:
    return f"{KEY_PREFIX}:{name}"


@dataclass
class FlagUsage:
    count: int = 0
    last_evaluated: datetime | None = None
    values: dict[str, int] = field(default_factory=dict)  # canonical JSON value -> count


class EvaluationCounter:
    def __init__(self, client: redis.Redis | None, flush_seconds: float = 10.0):
        self.client = client
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._tallies: Counter[tuple[str, str]] = Counter()
        self._last_seen: dict[str, float] = {}
        self._last_flush = time.monotonic()

    @classmethod
    def from_url(cls, url: str | None, timeout_seconds: float, flush_seconds: float) -> EvaluationCounter:
        client = (
            redis.Redis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)
            if url
            else None
        )
        return cls(client, flush_seconds)

    def record(self, name: str, value: Any) -> None:
        with self._lock:
            self._tallies[(name, canonical(value))] += 1
            self._last_seen[name] = time.time()

    def maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            tallies, seen = self._tallies, self._last_seen
            self._tallies, self._last_seen = Counter(), {}
            self._last_flush = time.monotonic()
        if not tallies or self.client is None:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for (name, value), n in tallies.items():
                pipe.hincrby(_flag_key(name), f"value:{value}", n)
                pipe.hincrby(_flag_key(name), "count", n)
            for name, ts in seen.items():
                pipe.hset(_flag_key(name), "last_evaluated", repr(ts))
                pipe.sadd(NAMES_KEY, name)
            pipe.execute()
        except redis.RedisError as exc:
            logger.warning(
                "could not flush flag evaluation counters; keeping them for the next flush",
                extra={"error": repr(exc)},
            )
            with self._lock:
                self._tallies.update(tallies)
                for name, ts in seen.items():
                    self._last_seen[name] = max(ts, self._last_seen.get(name, 0.0))


def read_usage(client: redis.Redis) -> dict[str, FlagUsage]:
    usage: dict[str, FlagUsage] = {}
    for raw_name in client.smembers(NAMES_KEY):
        name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
        fields = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in client.hgetall(_flag_key(name)).items()
        }
        last = fields.get("last_evaluated")
        usage[name] = FlagUsage(
            count=int(fields.get("count", 0)),
            last_evaluated=datetime.fromtimestamp(float(last), UTC) if last else None,
            values={k.removeprefix("value:"): int(v) for k, v in fields.items() if k.startswith("value:")},
        )
    return usage
