"""Fixtures for the flag tests: an AppConfig agent over the session's moto, a fresh flag store per test,
and ``flag_overrides`` (should move to tests/conftest.py once other features' tests need it)."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from swordfish.features.counters import EvaluationCounter
from swordfish.features.flags import FlagsClient, override_flags
from swordfish.features.repository import MotoRepository
from swordfish.features.store import AgentStoreProvider

from devstack.appconfig_agent import AppConfigAgent, seed_flags


@pytest.fixture()
def flag_overrides():
    """Force flag values for the rest of the test: ``flag_overrides(auto_quarantine=True)``."""
    with contextlib.ExitStack() as stack:
        yield lambda **values: stack.enter_context(override_flags(**values))


@pytest.fixture(scope="session")
def appconfig_agent(moto_server):
    with AppConfigAgent(moto_server.url, seed=False) as agent:
        yield agent


@dataclass
class FlagStore:
    application: str
    repository: MotoRepository
    agent: AppConfigAgent

    def publish(self, document: dict[str, Any]) -> str:
        return self.repository.publish(document, "test")

    def client(
        self,
        *,
        agent_url: str | None = None,
        cache_seconds: float = 0.0,
        bundled=None,
        counter: EvaluationCounter | None = None,
        **kwargs,
    ) -> FlagsClient:
        store = AgentStoreProvider(
            agent_url or self.agent.url, timeout_seconds=1.0, application=self.application
        )
        return FlagsClient(store, cache_seconds=cache_seconds, bundled=bundled, counter=counter, **kwargs)


@pytest.fixture()
def flag_store(moto_server, appconfig_agent):
    """A flag profile of its own (unique application name) seeded with an empty configuration."""
    application = f"swordfish-test-{uuid.uuid4().hex[:8]}"
    seed_flags(moto_server.url, {}, application=application)
    return FlagStore(application, MotoRepository(moto_server.url, application=application), appconfig_agent)
