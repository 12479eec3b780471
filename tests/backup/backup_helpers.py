"""Steps shared by the backup tests: write rows, read the server's clock, archive what was written."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
from swordfish.backup.database import WalArchiver
from swordfish.store.database import proxy_connect

from devstack.services import PostgresServer


@dataclass
class LiveDatabase:
    server: PostgresServer
    superuser_url: str  # postgres database: for pg_basebackup / pg_receivewal
    url: str  # the swordfish database as superuser
    owner_url: str
    app_url: str


def insert_verdicts(db: LiveDatabase, prefix: str, count: int, tenant: str = "acme-corp", subject: str = "s") -> None:
    with proxy_connect(db.owner_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant,))
        conn.execute(
            "INSERT INTO verdicts (tenant_id, message_id, verdict, score, subject, submitted_at) "
            "SELECT %s, %s || '-' || g, 'clean', 0, %s, now() FROM generate_series(1, %s) g",
            (tenant, prefix, subject, count))


def server_time(db: LiveDatabase):
    with psycopg.connect(db.url, autocommit=True) as conn:
        return conn.execute("SELECT clock_timestamp()").fetchone()[0]


def archive_now(db: LiveDatabase, archiver: WalArchiver, timeout: float = 30.0) -> None:
    """Wait (hang guard only) until pg_receivewal has flushed everything written so far, then encrypt it."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db.superuser_url, autocommit=True) as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        while True:
            row = conn.execute("SELECT flush_lsn >= %s::pg_lsn FROM pg_stat_replication", (target,)).fetchone()
            if row and row[0]:
                break
            assert time.monotonic() < deadline, "pg_receivewal did not catch up"
            time.sleep(0.05)
    archiver.sync()


def message_ids(url: str, prefix: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT message_id FROM verdicts WHERE message_id LIKE %s",
                                           (prefix + "-%",)).fetchall()}
