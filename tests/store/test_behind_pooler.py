"""PostgreSQL through a pooler, as on AWS: the session database is behind PgBouncer in transaction
pooling (tests/conftest.py), which, like RDS Proxy, refuses libpq startup ``options`` and hands each
transaction whichever server connection is free. Session state that outlives a transaction (a
session-level SET or set_config, a prepared statement, a session advisory lock) therefore shows up
here as it would on AWS: on another client's transaction, or missing from this client's next one.
"""

from __future__ import annotations

import contextlib

import psycopg
import pytest
from swordfish import constants
from swordfish.api.health_deep import check_postgresql
from swordfish.store.database import Database, DatabaseUnavailable
from swordfish.store.migrate import migrate
from swordfish.store.tenants import create_tenant


def pooled(database, user: str = "app") -> str:
    url = database.app_url if user == "app" else database.owner_url
    assert f"127.0.0.1:{database.pooler.port}" in url  # these tests mean nothing on a direct connection
    return url


@contextlib.contextmanager
def busy_server_connections(url: str, count: int):
    """``count`` client connections, each holding a server connection in an open transaction: the
    pooler must open that many server connections, and hands them out in turn afterwards."""
    conns = [psycopg.connect(url) for _ in range(count)]
    try:
        for conn in conns:
            conn.execute("SELECT 1")  # opens the transaction: the server connection is held
        yield
    finally:
        for conn in conns:
            conn.rollback()  # a client closed inside a transaction would take its server connection along
            conn.close()


@pytest.fixture()
def tenant(database):
    with psycopg.connect(database.owner_url) as conn, conn.transaction():
        create_tenant(conn, "pooler-tenant", "Pooler", {})
    return "pooler-tenant"


# --- the local pooler is as strict as RDS Proxy ------------------------------------------------------

def test_a_connection_with_startup_options_is_refused_by_the_pooler(database):
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter: options"):
        psycopg.connect(pooled(database), options="-c statement_timeout=1000", connect_timeout=5)


def test_the_superuser_is_not_served_by_the_pooler(database):
    """RDS Proxy serves only the admin and application secrets; the master user goes direct."""
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(database.pooler.url_for("postgres", "anything", constants.DATABASE_NAME), connect_timeout=5)


def test_session_state_follows_the_server_connection_not_the_client(database):
    """Transaction pooling: a session-level setting made by one client is seen by another client's
    transaction (and lost by the first): the reason the code may set only transaction-local state."""
    url = pooled(database)
    with busy_server_connections(url, 2):
        pass
    with psycopg.connect(url, autocommit=True) as a, psycopg.connect(url, autocommit=True) as b:
        a.execute("SELECT set_config('swordfish.probe', 'leaked', false)")  # session-level: the bug class
        seen = {b.execute("SELECT current_setting('swordfish.probe', true)").fetchone()[0] for _ in range(4)}
        seen |= {a.execute("SELECT current_setting('swordfish.probe', true)").fetchone()[0] for _ in range(4)}
    with psycopg.connect(database.superuser_url, autocommit=True) as su:  # the pooled server connections stay
        su.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE usename = %s AND pid <> pg_backend_pid()", (constants.APP_DB_ROLE,))
    assert "leaked" in seen and seen - {"leaked"}, seen  # it leaked to some transactions, not to all


# --- the application's connections work behind it ---------------------------------------------------

def test_the_pool_connects_through_the_pooler_without_startup_options(database):
    db = Database(pooled(database), max_size=2)
    try:
        with db.connection() as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == constants.APP_DB_ROLE
            assert conn.prepare_threshold is None
    finally:
        db.close()


def test_the_tenant_context_does_not_leak_into_the_next_transaction(database, tenant):
    url = pooled(database)
    with busy_server_connections(url, 3):
        pass
    db = Database(url, max_size=1)  # one client connection, its transactions on any server connection
    try:
        for _ in range(6):
            with db.tenant_transaction(tenant) as conn:
                assert conn.execute("SELECT count(*) FROM tenants").fetchone()[0] == 1
            with db.connection() as conn, conn.transaction():
                assert conn.execute("SELECT current_setting('app.tenant_id', true)").fetchone()[0] in (None, "")
                assert conn.execute("SELECT count(*) FROM tenants").fetchone()[0] == 0
    finally:
        db.close()


def test_prepared_statements_are_off_behind_the_pooler(database, tenant):
    """psycopg prepares a statement after 5 executions, on one server connection; behind transaction
    pooling the 6th runs on another, which does not know it (RDS Proxy pins the session instead)."""
    url = pooled(database)
    with busy_server_connections(url, 3):
        pass
    db = Database(url, max_size=1)
    try:
        for _ in range(12):
            with db.tenant_transaction(tenant) as conn:
                assert conn.execute("SELECT name FROM tenants WHERE tenant_id = %s", (tenant,)).fetchone()
        with db.connection() as conn:
            assert conn.prepare_threshold is None
            assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0
    finally:
        db.close()


def test_a_statement_over_the_timeout_is_cancelled_behind_the_pooler(database, tenant):
    db = Database(pooled(database), max_size=1, statement_timeout_ms=200)
    try:
        with pytest.raises((psycopg.errors.QueryCanceled, DatabaseUnavailable), match="statement timeout"):
            with db.tenant_transaction(tenant) as conn:
                conn.execute("SELECT pg_sleep(2)")
        with db.tenant_transaction(tenant) as conn:  # the timeout was the transaction's, not the session's
            assert conn.execute("SELECT current_setting('statement_timeout')").fetchone()[0] == "200ms"
        with db.connection() as conn, conn.transaction():
            assert conn.execute("SHOW statement_timeout").fetchone()[0] == constants.DB_STATEMENT_TIMEOUT
    finally:
        db.close()


@pytest.mark.parametrize("role", ["app", "owner"])
def test_every_login_through_the_pooler_has_the_role_timeouts(database, role):
    """Set on the roles (ALTER ROLE ... SET, in bootstrap), so that no connection needs startup options."""
    with psycopg.connect(pooled(database, role), autocommit=True) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == constants.DB_STATEMENT_TIMEOUT
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()[0] == \
            constants.DB_IDLE_IN_TRANSACTION_TIMEOUT


def test_the_rotation_clone_has_the_role_timeouts_too(database):
    """Role settings are not inherited through membership: the clone needs its own."""
    with psycopg.connect(database.superuser_url, autocommit=True) as conn:
        settings = conn.execute(
            "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
            "WHERE r.rolname = ANY(%s)",
            ([constants.APP_DB_ROLE, constants.APP_DB_CLONE_ROLE, constants.ADMIN_DB_ROLE],)).fetchall()
    by_role = {name: set(config) for name, config in settings}
    for role in (constants.APP_DB_ROLE, constants.APP_DB_CLONE_ROLE, constants.ADMIN_DB_ROLE):
        assert f"statement_timeout={constants.DB_STATEMENT_TIMEOUT}" in by_role.get(role, set()), by_role


def test_the_deep_health_check_connects_through_the_pooler(database):
    from swordfish.api.health_deep import HealthDependencies

    result = check_postgresql(HealthDependencies(database_url=pooled(database)))
    assert [m.name for m in result.measurements] == ["connectTime", "responseTime"]


def test_migrations_through_the_pooler_leave_no_advisory_lock_behind(database):
    """A session advisory lock taken and released in separate transactions lands on two server
    connections behind a transaction pooler: the unlock misses and the lock stays forever."""
    url = pooled(database, "owner")
    with busy_server_connections(url, 3):
        pass
    migrate(url)
    with psycopg.connect(database.superuser_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0] == 0
