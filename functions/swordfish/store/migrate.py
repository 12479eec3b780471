"""Plain-SQL migrations, applied in file-name order and recorded in ``schema_migrations``.

``bootstrap`` runs once per database server as a superuser (the RDS master user on AWS): it creates
the owner role that runs migrations and the application role the functions use, which owns nothing
and cannot bypass row-level security, and sets their timeouts on the roles (the proxy refuses
startup options). ``migrate`` runs as the owner role, through the proxy, and is idempotent.
"""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql

from swordfish import constants

MIGRATIONS_PACKAGE = "swordfish.store.migrations"


def migration_files() -> list[tuple[str, str]]:
    files = resources.files(MIGRATIONS_PACKAGE)
    return sorted((f.name, f.read_text()) for f in files.iterdir() if f.name.endswith(".sql"))


def bootstrap(superuser_url: str, admin_password: str, app_password: str,
              database: str = constants.DATABASE_NAME) -> None:
    """Create the two roles and the database (idempotent). Passwords come from Secrets Manager."""
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        for role, password, extra in (
            (constants.ADMIN_DB_ROLE, admin_password, sql.SQL("")),
            (constants.APP_DB_ROLE, app_password, sql.SQL(" NOBYPASSRLS NOSUPERUSER")),
        ):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
            conn.execute(sql.SQL("{} ROLE {} LOGIN PASSWORD {}{}").format(
                verb, sql.Identifier(role), sql.Literal(password), extra))
        # The alternating-users rotation's second login: a member of the application role, so it has
        # exactly its grants (present and future) and, like it, no BYPASSRLS. No password until the
        # first rotation sets one (a role without a password cannot log in).
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (constants.APP_DB_CLONE_ROLE,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOBYPASSRLS NOSUPERUSER INHERIT").format(
                sql.Identifier(constants.APP_DB_CLONE_ROLE)))
        conn.execute(sql.SQL("GRANT {} TO {}").format(
            sql.Identifier(constants.APP_DB_ROLE), sql.Identifier(constants.APP_DB_CLONE_ROLE)))
        for role in (constants.ADMIN_DB_ROLE, constants.APP_DB_ROLE, constants.APP_DB_CLONE_ROLE):
            set_role_timeouts(conn, role)
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(constants.ADMIN_DB_ROLE)))
    db_url = _with_database(superuser_url, database)
    with psycopg.connect(db_url, autocommit=True) as conn:
        # PostgreSQL 15+ no longer lets every role create in public; the owner role needs it.
        conn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(sql.Identifier(constants.ADMIN_DB_ROLE)))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(constants.APP_DB_ROLE)))


def set_role_timeouts(conn: psycopg.Connection, role: str) -> None:
    """Every session of ``role`` starts with these (role settings are not inherited through
    membership: the clone needs its own)."""
    for setting, value in (("statement_timeout", constants.DB_STATEMENT_TIMEOUT),
                           ("idle_in_transaction_session_timeout", constants.DB_IDLE_IN_TRANSACTION_TIMEOUT)):
        conn.execute(sql.SQL("ALTER ROLE {} SET {} = {}").format(
            sql.Identifier(role), sql.Identifier(setting), sql.Literal(value)))


def migrate(owner_url: str) -> list[str]:
    """Apply pending migrations, each in its own transaction. Returns the names applied.

    Through RDS Proxy (or PgBouncer) each transaction may run on another server connection, so the
    lock that keeps two racing deploys apart is a transaction lock taken in each migration's own
    transaction, which then checks again whether the other deploy applied it meanwhile."""
    applied: list[str] = []
    with psycopg.connect(owner_url, autocommit=True, prepare_threshold=None) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('swordfish-migrations'))")
            conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                                name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())""")
        done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
        for name, text in migration_files():
            if name in done:
                continue
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('swordfish-migrations'))")
                if conn.execute("SELECT 1 FROM schema_migrations WHERE name = %s", (name,)).fetchone():
                    continue  # a racing deploy applied it while this one waited
                conn.execute(text)
                conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
            applied.append(name)
    return applied


def _with_database(url: str, database: str) -> str:
    """Swap the database name in a postgresql:// URL (pgserver URLs carry the socket in the query)."""
    head, _, query = url.partition("?")
    scheme_and_auth, _, _ = head.rpartition("/")
    return f"{scheme_and_auth}/{database}" + (f"?{query}" if query else "")
