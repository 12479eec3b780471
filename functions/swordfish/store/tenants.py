"""Tenants, their policies and their API keys."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
import psycopg.rows
from psycopg.types.json import Jsonb

from swordfish import constants
from swordfish.security.pepper import api_key_pepper_version, api_key_peppers
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


def tenant_ids(conn: psycopg.Connection) -> list[str]:
    """Every tenant's id (the directory policy of 0030_console.sql: ids and names, no tenant data)."""
    conn.execute("SELECT set_config('app.tenant_directory', 'on', true)")
    ids = [row[0] for row in conn.execute("SELECT tenant_id FROM tenants ORDER BY tenant_id")]
    conn.execute("SELECT set_config('app.tenant_directory', 'off', true)")
    return ids


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
# Stored as HMAC-SHA256(pepper, secret): keys are 256-bit random, so no slow KDF is needed, and a
# leaked table without the pepper (Secrets Manager) cannot even confirm a guessed key.


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    tenant_id: str
    plaintext: str  # shown once at creation, never stored
    expires_at: datetime | None = None


def _sha256(secret_part: str) -> bytes:  # keys made before the pepper: verified, never created
    return hashlib.sha256(secret_part.encode()).digest()


def _hmac(pepper: bytes, secret_part: str) -> bytes:
    return hmac.new(pepper, secret_part.encode(), hashlib.sha256).digest()


def create_api_key(conn: psycopg.Connection, tenant_id: str, label: str = "", *,
                   expires_at: datetime | None = None, replaces_key_id: str | None = None) -> ApiKey:
    set_tenant(conn, tenant_id)
    if conn.execute("SELECT 1 FROM tenants WHERE tenant_id = %s", (tenant_id,)).fetchone() is None:
        raise UnknownTenant(tenant_id)
    pepper = api_key_peppers()[0]
    key_id, secret_part = secrets.token_hex(6), secrets.token_urlsafe(32)
    conn.execute("INSERT INTO api_keys (key_id, tenant_id, key_hmac, pepper_version, label, expires_at, "
                 "replaces_key_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                 (key_id, tenant_id, _hmac(pepper.value, secret_part), pepper.version,
                  storable_text(label, 200) or "", expires_at, replaces_key_id))
    return ApiKey(key_id, tenant_id, f"{API_KEY_PREFIX}.{tenant_id}.{key_id}.{secret_part}", expires_at)


def parse_api_key(presented: str) -> tuple[str, str, str] | None:
    parts = (presented or "").split(".")
    if len(parts) != 4 or parts[0] != API_KEY_PREFIX or not TENANT_ID_PATTERN.match(parts[1]) \
            or not API_KEY_ID_PATTERN.match(parts[2]):
        return None
    return parts[1], parts[2], parts[3]


API_KEY_ID_PATTERN = re.compile(r"^[0-9a-f]{12}$")


def authenticate_api_key(conn: psycopg.Connection, presented: str) -> str | None:
    """The tenant the key belongs to, or None (unknown, revoked or expired). Constant-time compare."""
    parsed = parse_api_key(presented)
    if parsed is None:
        return None
    tenant_id, key_id, secret_part = parsed
    set_tenant(conn, tenant_id)
    row = conn.execute("SELECT key_hmac, pepper_version, key_sha256 FROM api_keys WHERE key_id = %s "
                       "AND tenant_id = %s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
                       (key_id, tenant_id)).fetchone()
    peppers = api_key_peppers()
    if row and row[0] is not None:
        pepper = next((p for p in peppers if p.version == row[1]), None) or (
            api_key_pepper_version(row[1]) if row[1] else None)  # a pepper kept for live keys
        expected, actual = bytes(row[0]), _hmac(pepper.value if pepper else b"", secret_part)
        ok = pepper is not None and hmac.compare_digest(expected, actual)
        if ok and pepper.version != peppers[0].version:
            # Re-hashed under the current pepper on this successful use: the old pepper empties,
            # and the next rotation retires it instead of locking this key out.
            conn.execute("UPDATE api_keys SET key_hmac = %s, pepper_version = %s WHERE key_id = %s AND tenant_id = %s",
                         (_hmac(peppers[0].value, secret_part), peppers[0].version, key_id, tenant_id))
    elif row:
        ok = hmac.compare_digest(bytes(row[2]), _sha256(secret_part))
    else:  # compare anyway: no timing hint that the id exists
        hmac.compare_digest(b"\0" * 32, _hmac(b"", secret_part))
        ok = False
    return tenant_id if ok else None


def usage_key_for(conn: psycopg.Connection, presented: str) -> tuple[str, str, str | None] | None:
    """(tenant, key id, the tenant's usage-plan key or None) for a key ``authenticate_api_key``
    accepts, else None: what API Gateway's authorizer answers with (``api.authorizer``)."""
    tenant_id = authenticate_api_key(conn, presented)
    if tenant_id is None:
        return None
    row = conn.execute("SELECT usage_key_value FROM tenants WHERE tenant_id = %s", (tenant_id,)).fetchone()
    return tenant_id, parse_api_key(presented)[1], row[0] if row else None


def set_usage_key(conn: psycopg.Connection, tenant_id: str, key_id: str, value: str) -> None:
    """Record the tenant's API Gateway usage-plan key (``api.usage_plans`` creates it)."""
    set_tenant(conn, tenant_id)
    if conn.execute("UPDATE tenants SET usage_key_id = %s, usage_key_value = %s WHERE tenant_id = %s",
                    (key_id, value, tenant_id)).rowcount != 1:
        raise UnknownTenant(tenant_id)


def list_api_keys(conn: psycopg.Connection, tenant_id: str) -> list[dict]:
    set_tenant(conn, tenant_id)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT key_id, tenant_id, label, created_at, expires_at, revoked_at, replaces_key_id, "
                    "pepper_version, (key_hmac IS NULL) AS legacy_digest, "
                    "(revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS active "
                    "FROM api_keys WHERE tenant_id = %s ORDER BY created_at DESC", (tenant_id,))
        return cur.fetchall()


def revoke_api_key(conn: psycopg.Connection, tenant_id: str, key_id: str) -> bool:
    """Revoke at once. False when the tenant has no such active key."""
    set_tenant(conn, tenant_id)
    return conn.execute("UPDATE api_keys SET revoked_at = now() WHERE tenant_id = %s AND key_id = %s "
                        "AND revoked_at IS NULL", (tenant_id, key_id)).rowcount == 1


def rotate_api_key(conn: psycopg.Connection, tenant_id: str, key_id: str, *,
                   overlap: timedelta = timedelta(hours=24)) -> ApiKey | None:
    """A new key replacing ``key_id``; the old one keeps working for ``overlap`` (or until its own
    earlier expiry), so clients can switch without an outage. None when there is no such active key."""
    set_tenant(conn, tenant_id)
    row = conn.execute("SELECT label, expires_at FROM api_keys WHERE tenant_id = %s AND key_id = %s "
                       "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) FOR UPDATE",
                       (tenant_id, key_id)).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE api_keys SET expires_at = LEAST(COALESCE(expires_at, 'infinity'), now() + %s) "
                 "WHERE tenant_id = %s AND key_id = %s", (overlap, tenant_id, key_id))
    return create_api_key(conn, tenant_id, row[0], replaces_key_id=key_id)
