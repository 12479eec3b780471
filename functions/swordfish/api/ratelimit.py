"""Request limits of the API, shared by every API container through Redis: per API key, per tenant
(so one tenant's burst cannot starve the others), and failed authentications per source address
(so guessing keys quickly ends in 429s instead of an endless stream of 401s).

Fixed one-minute windows (INCRBY + EXPIRE in one pipeline): simple, and a burst at a window edge
can reach twice the limit for a moment, which is fine for fairness. If Redis cannot be reached the
API admits the request (availability first; WAF and API Gateway throttling still apply) and logs it.
On AWS, API Gateway usage plans and the WAF rule sit in front of this.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from swordfish.monitoring.observability import logger

PREFIX = "swordfish:api:limit"


class RateLimited(Exception):
    def __init__(self, scope: str, retry_after: int):
        super().__init__(f"too many requests for this {scope}; retry after {retry_after} s")
        self.scope, self.retry_after = scope, retry_after


@dataclass
class ApiRateLimiter:
    client: redis.Redis
    per_key: int = 600  # requests (messages, for batches) per minute
    per_tenant: int = 1200
    failed_auth_per_source: int = 20
    window_seconds: int = 60
    clock: Callable[[], float] = time.time

    def _window(self) -> tuple[int, int]:
        now = self.clock()
        start = int(now // self.window_seconds)
        return start, max(1, math.ceil((start + 1) * self.window_seconds - now))

    def _count(self, name: str, cost: int) -> tuple[int, int]:
        start, retry_after = self._window()
        key = f"{PREFIX}:{name}:{start}"
        pipe = self.client.pipeline()
        pipe.incrby(key, cost)
        pipe.expire(key, self.window_seconds * 2)
        return int(pipe.execute()[0]), retry_after

    def _peek(self, name: str) -> tuple[int, int]:
        start, retry_after = self._window()
        return int(self.client.get(f"{PREFIX}:{name}:{start}") or 0), retry_after

    def check_source(self, source: str) -> None:
        """Refuse a source that failed authentication too often this minute."""
        try:
            failures, retry_after = self._peek(f"auth-fail:{source}")
        except redis.RedisError as exc:
            logger.warning("rate limit unavailable, admitting", extra={"error": str(exc)})
            return
        if failures >= self.failed_auth_per_source:
            raise RateLimited("source address", retry_after)

    def failed_authentication(self, source: str) -> None:
        try:
            self._count(f"auth-fail:{source}", 1)
        except redis.RedisError as exc:
            logger.warning("rate limit unavailable", extra={"error": str(exc)})

    def admit(self, tenant_id: str, key_id: str, cost: int = 1) -> None:
        """Count ``cost`` requests for the key and its tenant; RateLimited past either limit."""
        try:
            key_count, retry_after = self._count(f"key:{key_id}", cost)
            if key_count > self.per_key:
                raise RateLimited("API key", retry_after)
            tenant_count, retry_after = self._count(f"tenant:{tenant_id}", cost)
        except redis.RedisError as exc:
            logger.warning("rate limit unavailable, admitting", extra={"error": str(exc)})
            return
        if tenant_count > self.per_tenant:
            raise RateLimited("tenant", retry_after)
