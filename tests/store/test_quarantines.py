"""The quarantine ledger under row-level security, as the application role: a release flips it only
after the releaser succeeded, and one tenant never sees or releases another's."""

from __future__ import annotations

import threading

import pytest
from swordfish.pipeline.ports import NotQuarantined, QuarantineEntry, ReleaseFailed
from swordfish.store.database import Database, proxy_connect
from swordfish.store.quarantines import PostgresQuarantineLedger, quarantine_state, release_from_quarantine
from swordfish.store.tenants import create_tenant

ENTRY = QuarantineEntry("tenant-a", "m-1", "conn-1", "microsoft", "junk-id-1")


class Releaser:
    def __init__(self, fail: ReleaseFailed | None = None, wait: threading.Event | None = None):
        self.calls, self.fail, self.wait = [], fail, wait
        self.called = threading.Event()

    def release(self, entry):
        self.calls.append(entry)
        self.called.set()
        if self.wait is not None:
            self.wait.wait(10)  # a hang guard: the test sets it
        if self.fail is not None:
            raise self.fail
        return "inbox-id-1"


@pytest.fixture()
def app_db(database):
    database.reset()
    with proxy_connect(database.owner_url) as conn:
        for tenant in ("tenant-a", "tenant-b"):
            with conn.transaction():
                create_tenant(conn, tenant, tenant.upper(), {})
    pool = Database(database.app_url, max_size=3)
    PostgresQuarantineLedger(pool).record_quarantine(ENTRY)
    yield pool
    pool.close()


def test_a_failed_release_marks_nothing_and_a_good_one_marks_once(app_db):
    failing = Releaser(fail=ReleaseFailed("Nango down; nothing was released", "unavailable"))
    with pytest.raises(ReleaseFailed), app_db.connection() as conn, conn.transaction():
        release_from_quarantine(conn, "tenant-a", "m-1", failing, actor="ann@msp.example")
    with app_db.connection() as conn, conn.transaction():
        assert quarantine_state(conn, "tenant-a", "m-1")["state"] == "quarantined"
        assert conn.execute("SELECT count(*) FROM verdict_releases").fetchone()[0] == 0
    releaser = Releaser()
    with app_db.connection() as conn, conn.transaction():
        released = release_from_quarantine(conn, "tenant-a", "m-1", releaser, actor="ann@msp.example", note="ok")
    assert releaser.calls == [ENTRY] and released.provider_message_id == "inbox-id-1"
    with pytest.raises(NotQuarantined, match="already released by ann@msp.example"), \
            app_db.connection() as conn, conn.transaction():
        release_from_quarantine(conn, "tenant-a", "m-1", releaser, actor="bob@msp.example")
    assert len(releaser.calls) == 1


def test_another_tenant_neither_sees_nor_releases_the_quarantine(app_db):
    releaser = Releaser()
    with app_db.connection() as conn, conn.transaction():
        assert quarantine_state(conn, "tenant-b", "m-1") is None
        with pytest.raises(NotQuarantined, match="never quarantined"):
            release_from_quarantine(conn, "tenant-b", "m-1", releaser, actor="eve@msp.example")
    assert releaser.calls == []


def test_two_analysts_releasing_at_once_call_the_mailbox_once(app_db):
    gate = threading.Event()
    first, second = Releaser(wait=gate), Releaser()
    outcomes = {}

    def release(name, releaser):
        try:
            with app_db.connection() as conn, conn.transaction():
                release_from_quarantine(conn, "tenant-a", "m-1", releaser, actor=f"{name}@msp.example")
            outcomes[name] = "released"
        except NotQuarantined:
            outcomes[name] = "refused"

    a = threading.Thread(target=release, args=("ann", first))
    a.start()
    assert first.called.wait(10)  # ann holds the row lock inside the mailbox call (a hang guard)
    b = threading.Thread(target=release, args=("bob", second))
    b.start()
    b.join(0.3)
    assert b.is_alive()  # bob waits on the row lock (were it not held, he would be done and refused)
    gate.set()
    a.join(10)
    b.join(10)
    assert outcomes == {"ann": "released", "bob": "refused"} and second.calls == []
