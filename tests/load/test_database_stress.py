"""The verdict store under concurrent batch writes and reads: no deadlock, no lost or duplicated rows,
no tenant seeing another's rows."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import psycopg
import pytest
from swordfish.store.database import Database, proxy_connect
from swordfish.store.tenants import create_tenant
from swordfish.store.verdicts import VerdictRecord, list_verdicts, save_verdicts

TENANTS = ["stress-a", "stress-b", "stress-c"]


@pytest.fixture()
def store(database):
    database.reset()
    with proxy_connect(database.owner_url) as conn:
        for tenant in TENANTS:
            with conn.transaction():
                create_tenant(conn, tenant, tenant, {})
    db = Database(database.app_url, max_size=8)
    yield db
    db.close()


def record(tenant: str, message_id: str) -> VerdictRecord:
    now = datetime.now(UTC)
    return VerdictRecord(tenant_id=tenant, message_id=message_id, verdict="clean", score=0.0, reasons=[],
                         parse_problems=[], subject="s", sender="x@y.example", submitted_at=now, sqs_sent_at=now)


def test_concurrent_batches_with_overlapping_messages_neither_deadlock_nor_lose_rows(store, database):
    # 8 writers, 40 batches each of 25 records drawn from a shared pool of ids: the same message
    # arrives in several concurrent batches (redeliveries racing their originals), in random order.
    universe = [(t, f"m-{i}") for t in TENANTS for i in range(400)]
    errors: list[BaseException] = []
    stop_reading = threading.Event()

    def writer(seed: int) -> int:
        rng = random.Random(seed)
        inserted = 0
        for _ in range(40):
            batch = [record(t, m) for t, m in rng.sample(universe, 25)]
            with store.connection() as conn, conn.transaction():
                inserted += sum(s.inserted for s in save_verdicts(conn, batch))
        return inserted

    def reader() -> None:
        while not stop_reading.is_set():
            tenant = random.choice(TENANTS)
            with store.connection() as conn, conn.transaction():
                rows = list_verdicts(conn, tenant, limit=100)
            if any(r["tenant_id"] != tenant for r in rows):
                errors.append(AssertionError(f"{tenant} saw another tenant's rows"))

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for thread in readers:
        thread.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            inserted = sum(pool.map(writer, range(8)))
    finally:
        stop_reading.set()
        for thread in readers:
            thread.join(10)
    assert not errors
    with psycopg.connect(database.superuser_url) as conn:
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (tenant_id, message_id)) FROM verdicts").fetchone()
        idle_in_tx = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
                                  ).fetchone()[0]
    assert total == distinct == inserted  # every insert reported as new is there exactly once
    assert idle_in_tx == 0
