"""Brute-force protection for console logins, shared by every worker through Redis.

Four counters, each forgotten an hour after its last failure:

- account + source: after 5 failures a lock that doubles each time (30 s, 60 s, ... at most 15 min);
- source (any account): after 20 failures, the same from 60 s up to an hour, so one address cannot
  spray passwords across many accounts;
- account (any source): after 10 failures a short lock, at most 60 s, and a warning in the log (the
  pattern of many addresses guessing one account). It cannot be turned against the owner: it does
  not stop a user with TOTP (the password step then only leads to the code, whose guesses are
  counted per account), nor a sign-in from an address that completed one for this account in the
  last 30 days (``remember_source``); everyone else waits at most a minute;
- TOTP codes of an account (any source, any number of password steps): after 5 wrong codes a lock
  from 30 s doubling to 15 min; only a correct code clears it, never a correct password.

Written here (not a rate-limit library) because the lock must be audited and must follow the
injected clock in tests; the counters themselves are plain Redis INCR/EXPIRE.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from swordfish.monitoring.observability import logger

WINDOW_SECONDS = 3600
KNOWN_SOURCE_SECONDS = 30 * 86400


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
TOTP = Rule("totp", threshold=5, base_seconds=30, max_seconds=900)


class LoginThrottle:
    def __init__(self, client: redis.Redis, clock: Callable[[], float] = time.time,
                 prefix: str = "swordfish:console:login"):
        self.redis, self.clock, self.prefix = client, clock, prefix

    @staticmethod
    def _account(email: str) -> str:
        return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]  # no e-mails in Redis keys

    def _keys(self, email: str, source: str) -> dict[Rule, str]:
        account = self._account(email)
        return {PAIR: f"{self.prefix}:pair:{account}:{source}", SOURCE: f"{self.prefix}:source:{source}",
                ACCOUNT: f"{self.prefix}:account:{account}"}

    def _wait(self, keys: list[str]) -> int:
        values = self.redis.mget([f"{k}:until" for k in keys])
        now = self.clock()
        return max([0] + [int(float(v) - now) + 1 for v in values if v is not None and float(v) > now])

    def wait_seconds(self, email: str, source: str) -> int:
        """Seconds before this account may try again from this source, every lock counted."""
        return self._wait(list(self._keys(email, source).values()))

    def source_wait(self, email: str, source: str) -> int:
        """Seconds this source must wait: its own locks (for this account, or for spraying)."""
        keys = self._keys(email, source)
        return self._wait([keys[PAIR], keys[SOURCE]])

    def account_wait(self, email: str) -> int:
        """Seconds of the account's own lock (many sources failed); see the module for who passes it."""
        return self._wait([self._keys(email, "-")[ACCOUNT]])

    def _count(self, keys: dict[Rule, str]) -> tuple[int, list[str]]:
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

    def failure(self, email: str, source: str) -> tuple[int, list[str]]:
        """Count a failed password. Returns the wait it imposes and the rules that locked."""
        wait, locked = self._count(self._keys(email, source))
        if ACCOUNT.name in locked:
            logger.warning("many addresses are guessing one console account's password",
                           extra={"account": self._account(email), "source": source, "lock_seconds": wait})
        return wait, locked

    def success(self, email: str, source: str) -> None:
        """A correct password clears this account's counters from this source (not the source's,
        nor the account's TOTP count)."""
        keys = self._keys(email, source)
        self.redis.delete(keys[PAIR], f"{keys[PAIR]}:until", keys[ACCOUNT], f"{keys[ACCOUNT]}:until")

    # --- the second factor, and the addresses an account signed in from ---------------------------

    def _totp_key(self, email: str) -> str:
        return f"{self.prefix}:totp:{self._account(email)}"

    def totp_wait(self, email: str) -> int:
        return self._wait([self._totp_key(email)])

    def totp_failure(self, email: str) -> tuple[int, list[str]]:
        """Count a wrong code against the account, whichever address and password step it followed."""
        wait, locked = self._count({TOTP: self._totp_key(email)})
        if locked:
            logger.warning("wrong TOTP codes for one console account: its password is probably known",
                           extra={"account": self._account(email), "lock_seconds": wait})
        return wait, locked

    def totp_success(self, email: str) -> None:
        key = self._totp_key(email)
        self.redis.delete(key, f"{key}:until")

    def remember_source(self, email: str, source: str) -> None:
        """This address completed a sign-in for this account: the account's lock does not stop it."""
        key = f"{self.prefix}:known:{self._account(email)}:{hashlib.sha256(source.encode()).hexdigest()[:16]}"
        self.redis.set(key, 1, ex=KNOWN_SOURCE_SECONDS)

    def known_source(self, email: str, source: str) -> bool:
        key = f"{self.prefix}:known:{self._account(email)}:{hashlib.sha256(source.encode()).hexdigest()[:16]}"
        return bool(self.redis.exists(key))
