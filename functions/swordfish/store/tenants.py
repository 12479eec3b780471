"""Tenants, their policies and their API keys."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from swordfish import constants
from swordfish.store.database import set_tenant
from swordfish.store.storable import storable_json, storable_text

TENANT_ID_PATTERN = re.compile(constants.TENANT_ID_REGEX)
API_KEY_PREFIX = "sfk"


class UnknownTenant(LookupError):
    def __init__(self, tenant_id: str):
        super().__init__(f"unknown tenant {tenant_id!r}: create it with `swordfish tenants create`")
        self.tenant_id = tenant_id


def validate_tenant_id(tenant_id: str) -> str:
    if not TENANT_ID_PATTERN.match(tenant_id or ""):
        raise ValueError(f"invalid tenant id {tenant_id!r}: use 2-63 lowercase letters, digits and '-'")
    return tenant_id


def create_tenant(conn: psycopg.Connection, tenant_id: str, name: str, policy: dict) -> None:
    """Create or update a tenant and its policy (run by an operator in one transaction)."""
    validate_tenant_id(tenant_id)
    set_tenant(conn, tenant_id)
    conn.execute("INSERT INTO tenants (tenant_id, name) VALUES (%s, %s) "
                 "ON CONFLICT (tenant_id) DO UPDATE SET name = EXCLUDED.name", (tenant_id, storable_text(name, 200)))
    conn.execute("INSERT INTO tenant_policies (tenant_id, policy) VALUES (%s, %s) "
                 "ON CONFLICT (tenant_id) DO UPDATE SET policy = EXCLUDED.policy, updated_at = now()",
                 (tenant_id, Jsonb(storable_json(policy))))


def load_policy(conn: psycopg.Connection, tenant_id: str) -> dict:
    """The tenant's policy document, with the senders its analysts judged (verdict feedback) on its
    allow and block lists; raises UnknownTenant. The caller's transaction is tenant-scoped."""
    from swordfish.store.feedback import feedback_lists, merge_into_policy

    row = conn.execute("SELECT policy FROM tenant_policies WHERE tenant_id = %s", (tenant_id,)).fetchone()
    if row is None:
        raise UnknownTenant(tenant_id)
    allow, block = feedback_lists(conn, tenant_id)
    return merge_into_policy(row[0], allow, block) if allow or block else row[0]


# --- API keys ---------------------------------------------------------------
# A key reads `sfk.<tenant>.<key id>.<secret>`. The tenant is in the key so authentication runs
# under that tenant's row-level security like everything else: no definer function needed.


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    tenant_id: str
    plaintext: str  # shown once at creation, never stored


def _digest(secret_part: str, pepper: bytes | None = None) -> bytes:
    # Keys are 256-bit random, so a plain SHA-256 (no slow KDF) is enough to make a leaked table useless;
    # with the pepper (a secret outside the database) it is HMAC-SHA256, useless even with the table.
    if pepper:
        return hmac.new(pepper, secret_part.encode(), hashlib.sha256).digest()
    return hashlib.sha256(secret_part.encode()).digest()


def create_api_key(conn: psycopg.Connection, tenant_id: str, label: str = "", *,
                   pepper: bytes | None = None) -> ApiKey:
    """``pepper``: the current API-key pepper (``security.secrets.api_key_peppers(...)[0][1]``)."""
    set_tenant(conn, tenant_id)
    if conn.execute("SELECT 1 FROM tenants WHERE tenant_id = %s", (tenant_id,)).fetchone() is None:
        raise UnknownTenant(tenant_id)
    key_id, secret_part = secrets.token_hex(6), secrets.token_urlsafe(32)
    conn.execute("INSERT INTO api_keys (key_id, tenant_id, key_sha256, label) VALUES (%s, %s, %s, %s)",
                 (key_id, tenant_id, _digest(secret_part, pepper), label))
    return ApiKey(key_id, tenant_id, f"{API_KEY_PREFIX}.{tenant_id}.{key_id}.{secret_part}")


def parse_api_key(presented: str) -> tuple[str, str, str] | None:
    parts = (presented or "").split(".")
    if len(parts) != 4 or parts[0] != API_KEY_PREFIX or not TENANT_ID_PATTERN.match(parts[1]):
        return None
    return parts[1], parts[2], parts[3]


def authenticate_api_key(conn: psycopg.Connection, presented: str, peppers: Sequence[bytes] = ()) -> str | None:
    """The tenant the key belongs to, or None. Compares digests in constant time.

    ``peppers``: every pepper accepted now (the current one and, after a rotation, the previous
    one), so keys hashed before the rotation keep working; keys made before peppering (plain
    SHA-256) are accepted too."""
    parsed = parse_api_key(presented)
    if parsed is None:
        return None
    tenant_id, key_id, secret_part = parsed
    set_tenant(conn, tenant_id)
    row = conn.execute("SELECT key_sha256 FROM api_keys WHERE key_id = %s AND tenant_id = %s "
                       "AND revoked_at IS NULL", (key_id, tenant_id)).fetchone()
    expected = bytes(row[0]) if row else b"\0" * 32  # compare anyway: no timing hint that the id exists
    ok = False
    for pepper in (None, *peppers):  # every candidate is compared: no timing hint which one matched
        ok |= hmac.compare_digest(expected, _digest(secret_part, pepper))
    return tenant_id if (row and ok) else None
