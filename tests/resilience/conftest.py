"""Breakers against moto DynamoDB: a fresh table per test, short timeouts through settings, a frozen clock."""

from __future__ import annotations

import math
import time
import uuid

import pytest
import time_machine
from swordfish.resilience.circuit_breaker import (
    BreakerRegistry,
    create_breaker_table,
    dynamodb_client_from_settings,
)


class FrozenClock:
    """This process's wall clock, frozen on a whole second; only the test moves it.

    Powertools' circuit breaker reads the wall clock itself (``datetime.now()`` in the handler's
    ``_now`` and inline in five persistence methods) and takes no clock parameter, so a clock cannot
    be injected through the breaker without overriding its private methods. time-machine moves the
    real ``time.time``/``datetime.now`` of this process instead (``time.monotonic`` keeps running, so
    socket and future timeouts still work): recovery windows and probe leases pass when the test
    says so, never because a loaded machine was slow. Whole seconds, because Powertools truncates.
    """

    def __init__(self, traveller: time_machine.Traveller):
        self._traveller = traveller

    def now(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> None:
        self._traveller.shift(math.ceil(seconds))

    def advance_to(self, timestamp: float) -> None:
        """Move forward to ``timestamp`` (rounded up to a whole second); never backwards."""
        self.advance(max(0.0, timestamp - time.time()))

    def move_to(self, timestamp: float) -> None:
        """Jump anywhere, also back (e.g. to trip a breaker "a while ago" for worker processes)."""
        self._traveller.move_to(math.ceil(timestamp), tick=False)


@pytest.fixture()
def clock():
    with time_machine.travel(math.ceil(time.time()), tick=False) as traveller:
        yield FrozenClock(traveller)


@pytest.fixture()
def breaker_settings(moto_server, settings_env, clock):
    """Apply breaker settings (recovery 1 s unless overridden) with this test's own table.

    Every breaker test runs on the frozen ``clock``: a breaker opened in a test stays open until the
    test advances the clock, however long the machine takes between the trip and the assertion.
    """
    table = f"breakers-{uuid.uuid4().hex[:10]}"

    def apply(**overrides):
        values = {
            "aws_endpoint_url": moto_server.url,
            "breaker_table_name": table,
            "breaker_failure_threshold": 5,
            "breaker_recovery_timeout_seconds": 1,
            "breaker_success_threshold": 3,
            **overrides,
        }
        settings = settings_env(**values)
        create_breaker_table(dynamodb_client_from_settings(settings), table)
        return settings

    return apply


@pytest.fixture()
def registry(breaker_settings):
    return BreakerRegistry(settings=breaker_settings())
