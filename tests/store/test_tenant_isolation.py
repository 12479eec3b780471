"""Row-level security: the application role sees and writes only the tenant its transaction names."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from swordfish.store.database import Database, proxy_connect
from swordfish.store.tenants import authenticate_api_key, create_api_key, create_tenant
from swordfish.store.verdicts import VerdictRecord, list_verdicts, save_verdicts


def record(tenant: str, message_id: str) -> VerdictRecord:
    return VerdictRecord(tenant_id=tenant, message_id=message_id, verdict="clean", score=0.0, reasons=[],
                         parse_problems=[], subject="s", sender="a@b.example", submitted_at=datetime.now(UTC),
                         sqs_sent_at=datetime.now(UTC))


@pytest.fixture()
def two_tenants(database):
    database.reset()
    with proxy_connect(database.owner_url) as conn:
        for tenant in ("tenant-a", "tenant-b"):
            with conn.transaction():
                create_tenant(conn, tenant, tenant.upper(), {})
    pool = Database(database.app_url, max_size=1)  # one connection: every transaction reuses it
    with pool.connection() as conn, conn.transaction():
        save_verdicts(conn, [record("tenant-a", "a1"), record("tenant-a", "a2"), record("tenant-b", "b1")])
    yield pool
    pool.close()


def test_a_transaction_without_a_tenant_sees_nothing(two_tenants):
    with two_tenants.connection() as conn, conn.transaction():
        assert conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM tenants").fetchone()[0] == 0


def test_a_pooled_connection_reused_across_tenants_sees_only_the_current_one(two_tenants):
    with two_tenants.tenant_transaction("tenant-a") as conn:
        assert sorted(r[0] for r in conn.execute("SELECT message_id FROM verdicts")) == ["a1", "a2"]
    with two_tenants.tenant_transaction("tenant-b") as conn:
        assert [r[0] for r in conn.execute("SELECT message_id FROM verdicts")] == ["b1"]
    # After the transactions, the same pooled connection carries no tenant at all.
    with two_tenants.connection() as conn, conn.transaction():
        assert conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 0


def test_a_tenant_cannot_write_rows_for_another_tenant(two_tenants):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with two_tenants.tenant_transaction("tenant-a") as conn:
            conn.execute("INSERT INTO verdicts (tenant_id, message_id, verdict, score, submitted_at) "
                         "VALUES ('tenant-b', 'forged', 'clean', 0, now())")


def test_a_tenant_cannot_move_its_rows_to_another_tenant(two_tenants):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with two_tenants.tenant_transaction("tenant-a") as conn:
            conn.execute("UPDATE verdicts SET tenant_id = 'tenant-b' WHERE message_id = 'a1'")


def test_the_application_role_neither_owns_tables_nor_bypasses_rls(database):
    with psycopg.connect(database.superuser_url) as conn:
        bypass, superuser = conn.execute(
            "SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = 'swordfish_app'").fetchone()
        owners = {r[0] for r in conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
        forced = conn.execute("SELECT bool_and(relforcerowsecurity) FROM pg_class WHERE relname IN "
                              "('tenants', 'tenant_policies', 'api_keys', 'verdicts')").fetchone()[0]
    assert not bypass and not superuser
    assert "swordfish_app" not in owners
    assert forced


def test_listing_verdicts_returns_only_the_named_tenant(two_tenants):
    with two_tenants.connection() as conn, conn.transaction():
        assert {r["message_id"] for r in list_verdicts(conn, "tenant-b")} == {"b1"}


def test_an_api_key_authenticates_only_its_own_tenant(database, two_tenants):
    with proxy_connect(database.owner_url) as conn, conn.transaction():
        key = create_api_key(conn, "tenant-a")
    with two_tenants.connection() as conn, conn.transaction():
        assert authenticate_api_key(conn, key.plaintext) == "tenant-a"
        forged = key.plaintext.replace("tenant-a", "tenant-b", 1)
        assert authenticate_api_key(conn, forged) is None
        assert authenticate_api_key(conn, key.plaintext[:-2] + "xx") is None
        assert authenticate_api_key(conn, "garbage") is None
