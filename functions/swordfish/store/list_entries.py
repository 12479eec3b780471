"""Allow and block entries with a comment and an expiry: MSP-wide (every tenant) or for one tenant.

They join the tenant's policy lists when its policy loads (``tenants.load_policy``), like the
entries analysts' feedback makes; an expired or removed entry no longer counts. Entries are checked
by ``analysis.list_entries`` before they are stored.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import psycopg.rows

from swordfish.analysis.list_entries import MAX_LIST_ENTRIES, check_entry
from swordfish.store.database import set_tenant
from swordfish.store.storable import storable_text

LISTS = ("allow", "block")


def add_entry(conn: psycopg.Connection, *, tenant_id: str | None, list_name: str, entry: str, created_by: str,
              comment: str = "", valid_for: timedelta | None = None) -> dict:
    """Store a checked entry; raises ValueError naming why it is refused."""
    if list_name not in LISTS:
        raise ValueError("list is allow or block")
    stored, why = check_entry(entry)
    if stored is None:
        raise ValueError(f"{entry.strip()}: {why}")
    if tenant_id:
        set_tenant(conn, tenant_id)
    count = conn.execute("SELECT count(*) FROM list_entries WHERE tenant_id IS NOT DISTINCT FROM %s AND list = %s "
                         "AND removed_at IS NULL", (tenant_id, list_name)).fetchone()[0]
    if count >= MAX_LIST_ENTRIES:
        raise ValueError(f"the list already has {count:,} entries, the limit")
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "INSERT INTO list_entries (tenant_id, list, entry, comment, expires_at, created_by) "
            "VALUES (%s, %s, %s, %s, now() + %s, %s) RETURNING *",
            (tenant_id, list_name, stored, storable_text(comment or "", 2000), valid_for,
             storable_text(created_by, 254))).fetchone()


def active_entries(conn: psycopg.Connection, tenant_id: str | None) -> list[dict]:
    """The entries in force: MSP-wide ones and (with a tenant) that tenant's, newest first."""
    if tenant_id:
        set_tenant(conn, tenant_id)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "SELECT * FROM list_entries WHERE removed_at IS NULL AND (expires_at IS NULL OR expires_at > now()) "
            "AND (tenant_id IS NULL OR tenant_id = %s) ORDER BY tenant_id NULLS FIRST, list, entry",
            (tenant_id,)).fetchall()


def remove_entry(conn: psycopg.Connection, entry_id: int, removed_by: str, tenant_id: str | None = None) -> dict | None:
    if tenant_id:
        set_tenant(conn, tenant_id)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("UPDATE list_entries SET removed_at = now(), removed_by = %s WHERE entry_id = %s "
                           "AND removed_at IS NULL AND tenant_id IS NOT DISTINCT FROM %s RETURNING *",
                           (storable_text(removed_by, 254), entry_id, tenant_id)).fetchone()


def lists_for(conn: psycopg.Connection, tenant_id: str) -> tuple[list[str], list[str]]:
    """(allow, block) from the entries in force for this tenant (the policy load's transaction)."""
    rows = conn.execute("SELECT list, entry FROM list_entries WHERE removed_at IS NULL "
                        "AND (expires_at IS NULL OR expires_at > now()) AND (tenant_id IS NULL OR tenant_id = %s)",
                        (tenant_id,)).fetchall()
    return sorted({e for lst, e in rows if lst == "allow"}), sorted({e for lst, e in rows if lst == "block"})
