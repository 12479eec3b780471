"""PostgreSQL access: a small connection pool (``swordfish.wiring`` keeps one per process, reused
across Lambda invocations).

Every tenant table has row-level security on the per-transaction setting ``app.tenant_id``;
``tenant_transaction`` is the only way the application reads or writes tenant rows, so a pooled
connection never carries one tenant's setting into another's transaction (``set_config(..., true)``
is reset at commit or rollback).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
from psycopg_pool import ConnectionPool

from swordfish.config import Settings


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached or the statement failed for a reason worth retrying."""


def database_url_from_secret(settings: Settings) -> str:
    """Build the DSN from the Secrets Manager secret RDS rotation maintains (AWS only).

    Powertools parameters caches the value for five minutes, so a rotated password is picked up
    without a cold start; ``force_fetch`` after an authentication failure picks it up at once.
    """
    from aws_lambda_powertools.utilities import parameters

    secret = parameters.get_secret(settings.db_app_secret_name, transform="json", max_age=300)
    user, password = quote(secret["username"], safe=""), quote(secret["password"], safe="")
    # Connect through RDS Proxy (db_host) when set: the security groups only allow that path.
    host, port = settings.db_host or secret["host"], secret.get("port", 5432)
    dbname = secret.get("dbname", "swordfish")
    return f"postgresql://{user}:{password}@{host}:{port}/{dbname}?sslmode=require"


class Database:
    """A small pool of connections for the application role."""

    def __init__(self, url: str, *, max_size: int = 4, connect_timeout: int = 5, statement_timeout_ms: int = 10_000,
                 reconnect_timeout: float = 6.0):
        self.url = url
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=connect_timeout * 2,
            # After an outage: give up a reconnect attempt within seconds (the next request starts a
            # new one at once) instead of doubling the wait for minutes; and test a pooled connection
            # before lending it, so the first batch after a restart does not get a dead one.
            reconnect_timeout=reconnect_timeout,
            check=ConnectionPool.check_connection,
            kwargs={
                "connect_timeout": connect_timeout,
                "options": f"-c statement_timeout={statement_timeout_ms} "
                           f"-c idle_in_transaction_session_timeout={statement_timeout_ms * 3}",
                "application_name": "swordfish",
            },
            open=False,
            name="swordfish",
        )
        self.pool.open(wait=False)

    @contextmanager
    def tenant_transaction(self, tenant_id: str) -> Iterator[psycopg.Connection]:
        """A transaction that sees and writes only ``tenant_id``'s rows."""
        with self.connection() as conn, conn.transaction():
            set_tenant(conn, tenant_id)
            yield conn

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        try:
            with self.pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg.errors.AdminShutdown) as exc:
            raise DatabaseUnavailable(f"PostgreSQL unavailable: {exc}") from exc

    def close(self) -> None:
        self.pool.close()


def set_tenant(conn: psycopg.Connection, tenant_id: str) -> None:
    """Scope the current transaction to one tenant (reset automatically at its end)."""
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
