"""Brute-force protection for console logins, shared by every worker through Redis.

Three counters, each forgotten an hour after its last failure:

- account + source: after 5 failures a lock that doubles each time (30 s, 60 s, ... at most 15 min);
- source (any account): after 20 failures, the same from 60 s up to an hour, so one address cannot
  spray passwords across many accounts;
- account (any source): after 10 failures only a short delay, at most 60 s. Many addresses guessing
  one account slow it down, but can never lock its owner out for longer than a minute: there is no
  permanent lockout of a known user.

Written here (not a rate-limit library) because the lock must be audited and must follow the
injected clock in tests; the counters themselves are plain Redis INCR/EXPIRE.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

WINDOW_SECONDS = 3600


@dataclass(frozen=True)
class Rule:
    name: str
    threshold: int
    base_seconds: int
    max_seconds: int

    def lock_seconds(self, failures: int) -> int:
        if failures < self.threshold:
            return 0
        return min(self.max_seconds, self.base_seconds * 2 ** min(failures - self.threshold, 16))


PAIR = Rule("pair", threshold=5, base_seconds=30, max_seconds=900)
SOURCE = Rule("source", threshold=20, base_seconds=60, max_seconds=3600)
ACCOUNT = Rule("account", threshold=10, base_seconds=5, max_seconds=60)


class LoginThrottle:
    def __init__(self, client: redis.Redis, clock: Callable[[], float] = time.time,
                 prefix: str = "swordfish:console:login"):
        self.redis, self.clock, self.prefix = client, clock, prefix

    def _keys(self, email: str, source: str) -> dict[Rule, str]:
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]  # no e-mails in Redis keys
        return {PAIR: f"{self.prefix}:pair:{account}:{source}", SOURCE: f"{self.prefix}:source:{source}",
                ACCOUNT: f"{self.prefix}:account:{account}"}

    def wait_seconds(self, email: str, source: str) -> int:
        """Seconds before this account may try again from this source (0: go ahead)."""
        keys = self._keys(email, source)
        values = self.redis.mget([f"{k}:until" for k in keys.values()])
        now = self.clock()
        return max([0] + [int(float(v) - now) + 1 for v in values if v is not None and float(v) > now])

    def failure(self, email: str, source: str) -> tuple[int, list[str]]:
        """Count a failed login. Returns the wait it imposes and the rules that locked."""
        keys = self._keys(email, source)
        pipe = self.redis.pipeline()
        for key in keys.values():
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS)
        counts = pipe.execute()[::2]
        now, wait, locked = self.clock(), 0, []
        pipe = self.redis.pipeline()
        for (rule, key), count in zip(keys.items(), counts, strict=True):
            seconds = rule.lock_seconds(int(count))
            if seconds:
                locked.append(rule.name)
                wait = max(wait, seconds)
                pipe.set(f"{key}:until", now + seconds, ex=seconds + WINDOW_SECONDS)
        pipe.execute()
        return wait, locked

    def success(self, email: str, source: str) -> None:
        """A correct password clears this account's counters from this source (not the source's)."""
        keys = self._keys(email, source)
        self.redis.delete(keys[PAIR], f"{keys[PAIR]}:until", keys[ACCOUNT], f"{keys[ACCOUNT]}:until")
