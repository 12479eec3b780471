"""The API's Redis rate limits on an injected clock."""

from __future__ import annotations

import pytest
import redis
from swordfish.api.ratelimit import ApiRateLimiter, RateLimited

from tests.console.helpers import Clock


def test_per_key_then_per_tenant_limits_with_retry_after(redis_url):
    clock = Clock(now=1_800_000_010.0)
    limiter = ApiRateLimiter(redis.Redis.from_url(redis_url), per_key=3, per_tenant=5, clock=clock)
    for _ in range(3):
        limiter.admit("acme", "key-1")
    with pytest.raises(RateLimited) as refused:
        limiter.admit("acme", "key-1")
    assert refused.value.scope == "API key" and refused.value.retry_after == 50
    limiter.admit("acme", "key-2")  # another key of the tenant still has room ...
    with pytest.raises(RateLimited) as refused:
        limiter.admit("acme", "key-2", cost=2)  # ... until the tenant's budget is spent
    assert refused.value.scope == "tenant"
    limiter.admit("globex", "key-9")  # other tenants are not starved
    clock.advance(50)  # the next window
    limiter.admit("acme", "key-1")


def test_failed_authentications_lock_the_source_for_the_rest_of_the_window(redis_url):
    clock = Clock(now=1_800_000_000.0)
    limiter = ApiRateLimiter(redis.Redis.from_url(redis_url), failed_auth_per_source=3, clock=clock)
    for _ in range(3):
        limiter.check_source("10.0.0.1")
        limiter.failed_authentication("10.0.0.1")
    with pytest.raises(RateLimited):
        limiter.check_source("10.0.0.1")
    limiter.check_source("10.0.0.2")
    clock.advance(60)
    limiter.check_source("10.0.0.1")


def test_an_unreachable_redis_admits_requests(redis_url):
    limiter = ApiRateLimiter(redis.Redis(unix_socket_path="/nonexistent/redis.sock", socket_timeout=0.2), per_key=0)
    limiter.check_source("10.0.0.1")
    limiter.admit("acme", "key-1")
