"""Bulk response (issue 28): four tenants with mailbox mail in the Nango stand-in, the real breaker
registry (moto DynamoDB, a frozen wall clock) and the worker's own injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from swordfish.integrations.nango import NangoClient
from swordfish.pipeline.response import ResponseWorker
from swordfish.store.response_jobs import Bucket

from devstack.nango_standin import NangoStandin
from tests.resilience.conftest import breaker_settings, clock  # noqa: F401 - fixtures
from tests.trace.conftest import app_db, record, store  # noqa: F401 - fixtures and helpers

SECRET = "response-secret"
RAW = b"From: a@lure.example\r\nTo: b@a.example\r\nSubject: hi\r\n\r\nbody\r\n"


class Clock:
    """The worker's clock: leases, throttle and waits are read from it, and only the test moves it."""

    def __init__(self):
        self.now = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture()
def nango():
    with NangoStandin(secret_key=SECRET, hang_seconds=2) as server:
        yield server


@pytest.fixture()
def registry(breaker_settings):  # noqa: F811
    from swordfish.resilience.circuit_breaker import BreakerRegistry

    return BreakerRegistry(settings=breaker_settings())


@pytest.fixture()
def worker_clock():
    return Clock()


@pytest.fixture()
def make_worker(app_db, nango, registry, worker_clock):  # noqa: F811
    def make(rate: float = 100.0, burst: float = 100.0, **kwargs) -> ResponseWorker:
        return ResponseWorker(app_db, NangoClient(nango.url, SECRET, timeout=0.5), bucket=Bucket(rate, burst),
                              registry=registry, clock=worker_clock, **kwargs)

    return make


def mailbox_mail(pool, nango, tenant: str, message_id: str, **fields):
    """A verdict for a mailbox message (the mailbox reference stored with it, as the pipeline does)
    and the message in the stand-in's mailbox ``conn-<tenant>``."""
    connection = f"conn-{tenant}"
    nango.add_message(connection, f"graph-{message_id}", RAW)
    rec = record(tenant, message_id, **fields)
    rec.mailbox = (connection, "microsoft", f"graph-{message_id}")
    store(pool, rec)
    return rec
