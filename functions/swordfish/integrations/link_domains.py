"""The deployment's memory of link domains in Redis: when each registered domain was first seen.

Keys (one hash tag, so a cluster keeps them in one slot and a batch's commands go to one node):

- ``swordfish:linkdomains:{linkdomains}:since``      first time this store was used (no TTL)
- ``swordfish:linkdomains:{linkdomains}:d:<domain>`` first-seen epoch seconds; TTL renewed on every
                                                     sighting, so only domains unseen for the whole
                                                     memory period are forgotten

One pipelined round trip per batch: SET NX (the first sighting wins, races included) then GETEX (the
value that stands, and a renewed TTL) for every domain.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from swordfish.pipeline.ports import LinkDomainSightings

PREFIX = "swordfish:linkdomains:{linkdomains}"
SINCE_KEY = f"{PREFIX}:since"
MAX_DOMAINS_PER_CALL = 500  # a batch of 10 messages with 30 domains each stays far below this


class LinkDomainHistoryUnavailable(RuntimeError):
    """Redis could not be reached or answered with an error."""


def domain_key(domain: str) -> str:
    return f"{PREFIX}:d:{domain}"


class RedisLinkDomainHistory:
    def __init__(self, client: redis.Redis, memory_seconds: int, clock: Callable[[], float] = time.time):
        self.client = client
        self.memory_seconds = int(memory_seconds)
        self.clock = clock

    @classmethod
    def from_url(cls, url: str, timeout_seconds: float, memory_days: int = 90) -> RedisLinkDomainHistory:
        client = redis.Redis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)
        return cls(client, memory_days * 86_400)

    def observe(self, domains: set[str]) -> LinkDomainSightings:
        now = self.clock()
        ordered = sorted(domains)[:MAX_DOMAINS_PER_CALL]
        stamp = f"{now:.3f}"
        pipe = self.client.pipeline(transaction=False)
        pipe.set(SINCE_KEY, stamp, nx=True)
        pipe.get(SINCE_KEY)
        for domain in ordered:
            key = domain_key(domain)
            pipe.set(key, stamp, nx=True, ex=self.memory_seconds)
            pipe.getex(key, ex=self.memory_seconds)
        try:
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise LinkDomainHistoryUnavailable(f"link-domain history: {type(exc).__name__}: {exc}") from exc
        since = _seconds(replies[1], now)
        first_seen = {domain: _seconds(replies[3 + 2 * i], now) for i, domain in enumerate(ordered)}
        return LinkDomainSightings(now=now, observing_since=since, first_seen=first_seen)


def _seconds(value: bytes | str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):  # a foreign value under our key: treat the sighting as now
        return default
