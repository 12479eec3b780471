"""Login throttling (Redis, injected clock) and session timeouts (Flask test client, injected clock)."""

from __future__ import annotations

import redis
from swordfish.console.throttle import LoginThrottle

from tests.console.helpers import Clock, get


def test_lock_grows_with_failures_and_ends_on_its_own(redis_url):
    clock = Clock()
    throttle = LoginThrottle(redis.Redis.from_url(redis_url), clock=clock)
    waits = [throttle.failure("a@x.example", "10.0.0.1")[0] for _ in range(7)]
    assert waits == [0, 0, 0, 0, 30, 60, 120]
    assert 119 <= throttle.wait_seconds("a@x.example", "10.0.0.1") <= 121
    clock.advance(121)
    assert throttle.wait_seconds("a@x.example", "10.0.0.1") == 0


def test_many_sources_can_only_slow_an_account_down_never_lock_it_out(redis_url):
    clock = Clock()
    throttle = LoginThrottle(redis.Redis.from_url(redis_url), clock=clock)
    for i in range(300):  # a botnet: 300 addresses, one guess each
        throttle.failure("ceo@x.example", f"10.1.{i // 250}.{i % 250}")
    owner_wait = throttle.wait_seconds("ceo@x.example", "192.0.2.10")
    assert 0 < owner_wait <= 61
    clock.advance(61)
    assert throttle.wait_seconds("ceo@x.example", "192.0.2.10") == 0


def test_one_source_spraying_many_accounts_is_locked(redis_url):
    clock = Clock()
    throttle = LoginThrottle(redis.Redis.from_url(redis_url), clock=clock)
    for i in range(20):
        throttle.failure(f"user{i}@x.example", "10.9.9.9")
    assert throttle.wait_seconds("someone-else@x.example", "10.9.9.9") >= 59
    assert throttle.wait_seconds("someone-else@x.example", "10.9.9.8") == 0


def test_a_correct_password_clears_the_account_counters_from_that_source(redis_url):
    throttle = LoginThrottle(redis.Redis.from_url(redis_url), clock=Clock())
    for _ in range(4):
        throttle.failure("a@x.example", "10.0.0.1")
    throttle.success("a@x.example", "10.0.0.1")
    assert throttle.failure("a@x.example", "10.0.0.1") == (0, [])


def test_an_idle_session_ends_after_the_idle_timeout(console):
    console.add_user("analyst@acme.example", "analyst", ["acme-corp"])
    client = console.client()
    assert console.login(client, "analyst@acme.example").status_code == 302
    console.clock.advance(29 * 60)
    assert get(client, "/console/").status_code == 200  # activity keeps it alive
    console.clock.advance(31 * 60)
    response = get(client, "/console/")
    assert response.status_code == 302 and "/console/login" in response.headers["Location"]


def test_an_active_session_still_ends_at_the_absolute_timeout(console):
    console.add_user("analyst@acme.example", "analyst", ["acme-corp"])
    client = console.client()
    console.login(client, "analyst@acme.example")
    for _ in range(12 * 4 + 1):  # busy all day: a request every 15 minutes
        console.clock.advance(15 * 60)
        status = get(client, "/console/").status_code
        if status != 200:
            break
    assert status == 302
    assert console.clock.now - 1_800_000_000.0 >= 12 * 3600 - 1


def test_a_totp_code_is_accepted_once(console):
    console.add_user("admin@msp.example", "msp_admin", [])
    first = console.client()
    assert console.login(first, "admin@msp.example").status_code == 302
    second = console.client("198.51.100.8")
    assert console.login(second, "admin@msp.example").status_code == 401  # same code, same 30 s step
