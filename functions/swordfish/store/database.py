"""PostgreSQL access: a small connection pool (``swordfish.wiring`` keeps one per process, reused
across Lambda invocations).

Every tenant table has row-level security on the per-transaction setting ``app.tenant_id``;
``tenant_transaction`` is the only way the application reads or writes tenant rows, so a pooled
connection never carries one tenant's setting into another's transaction (``set_config(..., true)``
is reset at commit or rollback).

On AWS every connection goes through RDS Proxy (locally through PgBouncer in transaction pooling),
which refuses libpq startup ``options`` and pins a client to one database connection when it
leaves session state behind. So: no startup options (the roles carry their timeouts, a tenant
transaction sets its own with ``set_config(..., true)``), no session-level SET, and no prepared
statements (``prepare_threshold=None``: psycopg would prepare after 5 executions).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from swordfish.monitoring.observability import logger
from swordfish.monitoring.progress import waiting_on

# The keyword arguments of every connection that may go through the proxy.
PROXY_SAFE = {"prepare_threshold": None}


def proxy_connect(conninfo: str = "", **kwargs) -> psycopg.Connection:
    """A one-off connection fit for the proxy (operator tools, health checks, the flag admin)."""
    return psycopg.connect(conninfo, **{**kwargs, **PROXY_SAFE})


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached or the statement failed for a reason worth retrying."""


def is_authentication_failure(exc: BaseException) -> bool:
    """A login refused for its credentials (a rotated password), not a server that is down."""
    if getattr(exc, "sqlstate", None) in ("28P01", "28000"):
        return True
    text = str(exc)
    # A pooler in between refuses the login itself, in its own words (PgBouncer: SQLSTATE 08P01
    # "SASL authentication failed").
    return any(words in text for words in ("password authentication failed", "no password supplied",
                                           "SASL authentication failed"))


class SecretConninfo:
    """The pool's connection factory input: a DSN built from the current version of the database
    secret, resolved for every new connection (psycopg_pool accepts a callable conninfo).

    ``check()`` runs before each checkout: a refresh past the TTL that finds a new version drains the
    pool (listener registered by ``Database``); ``after_auth_failure()`` fetches AWSCURRENT at once.
    """

    def __init__(self, reader, secret_name: str, *, host: str | None = None, port: int | None = None,
                 sslmode: str | None = "require"):
        self.reader, self.secret_name, self.host, self.port, self.sslmode = reader, secret_name, host, port, sslmode
        self._last_good = None

    def __call__(self) -> str:
        return self._dsn(self._credentials(self.reader.get(self.secret_name)))

    def after_auth_failure(self) -> str:
        return self._dsn(self._credentials(self.reader.refresh(self.secret_name, reason="auth_failed")))

    def _credentials(self, version):
        """The version's credentials; a malformed version keeps the last good ones in use (loudly)."""
        from swordfish.security.secrets import MalformedSecret, database_credentials

        try:
            self._last_good = database_credentials(version)
        except MalformedSecret as exc:
            if self._last_good is None:
                raise
            logger.error("database secret malformed: keeping the last good credentials",
                         extra={"error": str(exc), "kept_version_id": self._last_good.version_id})
        return self._last_good

    def check(self) -> None:
        self.reader.get(self.secret_name)

    def version_id(self) -> str:
        return self.reader.get(self.secret_name).version_id

    def _dsn(self, creds) -> str:
        # Connect through RDS Proxy (host) when set: the security groups only allow that path.
        # (Locally the pooler listens on a port of its own.)
        params = {"host": self.host or creds.host, "port": self.port or creds.port, "dbname": creds.dbname,
                  "user": creds.username, "password": creds.password}
        if self.sslmode:
            params["sslmode"] = self.sslmode
        return make_conninfo("", **{k: v for k, v in params.items() if v not in (None, "")})


def _rotation_aware_connection_class(conninfo: SecretConninfo) -> type[psycopg.Connection]:
    class RotationAwareConnection(psycopg.Connection):
        """Retries a login refused for its credentials once, with AWSCURRENT fetched again: the
        password was rotated since the cached version was read."""

        @classmethod
        def connect(cls, conninfo_str: str = "", **kwargs):
            try:
                return super().connect(conninfo_str, **kwargs)
            except psycopg.OperationalError as exc:
                if not is_authentication_failure(exc):
                    raise
                logger.warning("database login refused: fetching the current credentials and retrying once",
                               extra={"secret": conninfo.secret_name})
                return super().connect(conninfo.after_auth_failure(), **kwargs)

    return RotationAwareConnection


class Database:
    """A small pool of connections for the application role.

    ``url`` is a fixed DSN (tests, tools) or a ``SecretConninfo``: then every new connection uses the
    current credentials, a rotation found at refresh drains the pool (connections in use finish
    their work and are closed when returned; new ones log in with the new version), and a login
    refused for its password is retried once with AWSCURRENT fetched again.
    """

    def __init__(self, url: str | SecretConninfo, *, max_size: int = 4, connect_timeout: int = 5,
                 statement_timeout_ms: int = 10_000, reconnect_timeout: float = 6.0):
        self.url = url
        self.statement_timeout = str(int(statement_timeout_ms))
        self.conninfo = url if isinstance(url, SecretConninfo) else None
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
            # No startup options (the proxy refuses them) and no prepared statements (they pin).
            kwargs={"connect_timeout": connect_timeout, "application_name": "swordfish", **PROXY_SAFE},
            connection_class=(_rotation_aware_connection_class(self.conninfo) if self.conninfo
                              else psycopg.Connection),
            open=False,
            name="swordfish",
        )
        if self.conninfo is not None:
            self.conninfo.reader.on_rotation(self.conninfo.secret_name, self._rotated)
        self.pool.open(wait=False)

    def _rotated(self, old, new) -> None:
        logger.info("database credentials rotated: draining the pool",
                    extra={"old_version_id": getattr(old, "version_id", None), "new_version_id": new.version_id})
        self.pool.drain()

    @contextmanager
    def tenant_transaction(self, tenant_id: str) -> Iterator[psycopg.Connection]:
        """A transaction that sees and writes only ``tenant_id``'s rows, under this pool's statement
        timeout (both transaction-local, set in the one round trip)."""
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true), set_config('statement_timeout', %s, true)",
                         (tenant_id, self.statement_timeout))
            yield conn

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        if self.conninfo is not None:
            try:
                self.conninfo.check()  # past the TTL: fetch, and drain the pool if the version changed
            except Exception as exc:  # the vault's trouble is not the database's: keep the pool going
                logger.warning("database secret refresh failed", extra={"error": str(exc)})
        try:
            with ExitStack() as stack:
                with waiting_on("postgresql"):  # health tells a worker blocked here from a dead one
                    conn = stack.enter_context(self.pool.connection())
                yield conn
        except (psycopg.OperationalError, psycopg.errors.AdminShutdown) as exc:
            raise DatabaseUnavailable(f"PostgreSQL unavailable: {exc}") from exc

    def close(self) -> None:
        self.pool.close()


def set_tenant(conn: psycopg.Connection, tenant_id: str) -> None:
    """Scope the current transaction to one tenant (reset automatically at its end)."""
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))


def like_literal(text: str) -> str:
    """`text` as a LIKE/ILIKE pattern that matches it literally (backslash is LIKE's default escape):
    a searched sender or actor holding % or _ matches those characters, not anything."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
