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
    reason = "unknown_tenant"  # the dead-letter reason when the pipeline meets it

    def __init__(self, tenant_id: str, message: str | None = None):
        super().__init__(message or f"unknown tenant {tenant_id!r}: create it with `swordfish tenants create`")
        self.tenant_id = tenant_id


class TenantDisabled(UnknownTenant):
    """The MSP disabled the tenant: its keys are refused and its new mail is dead-lettered with this."""

    reason = "tenant_disabled"

    def __init__(self, tenant_id: str):
        super().__init__(tenant_id, f"tenant {tenant_id!r} is disabled: `swordfish tenants enable {tenant_id}` "
                                    "(or the console) turns it back on")


class TenantExists(ValueError):
    def __init__(self, tenant_id: str):
        super().__init__(f"tenant {tenant_id} exists: change it with `swordfish tenants update {tenant_id}` "
                         "(creating never overwrites a tenant)")
        self.tenant_id = tenant_id


def validate_tenant_id(tenant_id: str) -> str:
    if not TENANT_ID_PATTERN.match(tenant_id or ""):
        raise ValueError(f"invalid tenant id {tenant_id!r}: use 2-63 lowercase letters, digits and '-'")
    return tenant_id


def create_tenant(conn: psycopg.Connection, tenant_id: str, name: str, policy: dict) -> None:
    """A new tenant and its policy; raises ``TenantExists`` (creating is never updating)."""
    validate_tenant_id(tenant_id)
    set_tenant(conn, tenant_id)
    if conn.execute("INSERT INTO tenants (tenant_id, name) VALUES (%s, %s) ON CONFLICT (tenant_id) DO NOTHING "
                    "RETURNING tenant_id", (tenant_id, storable_text(name, 200))).fetchone() is None:
        raise TenantExists(tenant_id)
    conn.execute("INSERT INTO tenant_policies (tenant_id, policy) VALUES (%s, %s)",
                 (tenant_id, Jsonb(storable_json(policy))))


def ensure_tenant(conn: psycopg.Connection, tenant_id: str, name: str, policy: dict) -> bool:
    """Create the tenant unless it exists (the demo seed of a kept database); True when created. An
    existing tenant is left as it is: its policy may have been edited since."""
    try:
        with conn.transaction():
            create_tenant(conn, tenant_id, name, policy)
        return True
    except TenantExists:
        return False


def get_tenant(conn: psycopg.Connection, tenant_id: str) -> dict | None:
    """The tenant's row and policy (``policy_updated_at`` too), under its row-level security."""
    set_tenant(conn, tenant_id)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("SELECT t.tenant_id, t.name, t.created_at, t.disabled_at, p.policy, "
                           "p.updated_at AS policy_updated_at FROM tenants t "
                           "LEFT JOIN tenant_policies p USING (tenant_id) WHERE t.tenant_id = %s",
                           (tenant_id,)).fetchone()


def list_tenants(conn: psycopg.Connection) -> list[dict]:
    """Every tenant's id, name, creation and state (the directory policy: no tenant data)."""
    conn.execute("SELECT set_config('app.tenant_directory', 'on', true)")
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute("SELECT tenant_id, name, created_at, disabled_at FROM tenants ORDER BY tenant_id").fetchall()
    conn.execute("SELECT set_config('app.tenant_directory', 'off', true)")
    return rows


def update_tenant(conn: psycopg.Connection, tenant_id: str, *, name: str | None = None,
                  policy: dict | None = None) -> tuple[dict, dict]:
    """Change the name and/or the policy document (whole, as given: callers merge). Returns (before,
    after) of what changed only, for the audit row; raises ``UnknownTenant``."""
    current = get_tenant(conn, tenant_id)
    if current is None:
        raise UnknownTenant(tenant_id)
    before, after = {}, {}
    if name is not None and storable_text(name, 200) != current["name"]:
        before["name"], after["name"] = current["name"], storable_text(name, 200)
        conn.execute("UPDATE tenants SET name = %s WHERE tenant_id = %s", (after["name"], tenant_id))
    if policy is not None:
        stored = storable_json(policy)
        old = _as_the_engine_reads_it(current["policy"] or {})
        for key in sorted(set(old) | set(stored)):
            if key not in old or key not in stored or old[key] != stored[key]:
                before[key], after[key] = old.get(key), stored.get(key)
        if stored != old:
            conn.execute("UPDATE tenant_policies SET policy = %s, updated_at = now() WHERE tenant_id = %s",
                         (Jsonb(stored), tenant_id))
    return before, after


def _as_the_engine_reads_it(policy: dict) -> dict:
    """A stored policy with the engine's defaults filled in, so a diff names real changes only (a
    policy stored before a field existed did not "change" that field to its default)."""
    from pydantic import ValidationError

    from swordfish.analysis import TenantPolicy

    try:
        return {**policy, **TenantPolicy.model_validate(policy).model_dump(mode="json")}
    except ValidationError:
        return policy


def set_tenant_disabled(conn: psycopg.Connection, tenant_id: str, disabled: bool) -> bool:
    """Disable or enable; False when it already was. Raises ``UnknownTenant``."""
    current = get_tenant(conn, tenant_id)
    if current is None:
        raise UnknownTenant(tenant_id)
    if (current["disabled_at"] is not None) == disabled:
        return False
    conn.execute("UPDATE tenants SET disabled_at = CASE WHEN %s THEN now() END WHERE tenant_id = %s",
                 (disabled, tenant_id))
    return True


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
    from swordfish.store.indicator_blocks import blocks_for
    from swordfish.store.list_entries import lists_for

    row = conn.execute("SELECT p.policy, t.disabled_at FROM tenant_policies p JOIN tenants t USING (tenant_id) "
                       "WHERE p.tenant_id = %s", (tenant_id,)).fetchone()
    if row is None:
        raise UnknownTenant(tenant_id)
    if row[1] is not None:
        raise TenantDisabled(tenant_id)
    allow, block = feedback_lists(conn, tenant_id)
    policy = merge_into_policy(row[0], allow, block) if allow or block else row[0]
    allow, block = lists_for(conn, tenant_id)  # entries with a comment and an expiry, MSP-wide ones too
    if allow or block:
        policy = {**policy, "allow_list": [*policy.get("allow_list", []), *(e for e in allow if e not in block)],
                  "block_list": [*policy.get("block_list", []), *block]}
    blocks = blocks_for(conn, tenant_id)  # a campaign's indicators, blocked for this tenant or MSP-wide
    if blocks:
        policy = {**policy, "indicator_blocks": blocks}
    return policy


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
                   expires_at: datetime | None = None, valid_for: timedelta | None = None,
                   replaces_key_id: str | None = None) -> ApiKey:
    """A new key, valid for ``valid_for`` (or until ``expires_at``: its lifetime is kept as the key's
    expiry policy, which a rotation gives the replacement); neither: it never expires."""
    set_tenant(conn, tenant_id)
    if conn.execute("SELECT 1 FROM tenants WHERE tenant_id = %s", (tenant_id,)).fetchone() is None:
        raise UnknownTenant(tenant_id)
    pepper = api_key_peppers()[0]
    key_id, secret_part = secrets.token_hex(6), secrets.token_urlsafe(32)
    # A lifetime given as a date is rounded to the minute: "90 days", not 89 days 23:59:59.98.
    expires_at = conn.execute(
        "INSERT INTO api_keys (key_id, tenant_id, key_hmac, pepper_version, label, valid_for, expires_at, "
        "replaces_key_id) VALUES (%(id)s, %(t)s, %(h)s, %(pv)s, %(l)s, "
        "COALESCE(%(vf)s::interval, CASE WHEN %(exp)s::timestamptz - now() >= interval '1 minute' "
        "THEN date_trunc('minute', %(exp)s::timestamptz - now() + interval '30 seconds') END), "
        "COALESCE(%(exp)s::timestamptz, now() + %(vf)s::interval), %(r)s) RETURNING expires_at",
        {"id": key_id, "t": tenant_id, "h": _hmac(pepper.value, secret_part), "pv": pepper.version,
         "l": storable_text(label, 200) or "", "vf": valid_for, "exp": expires_at,
         "r": replaces_key_id}).fetchone()[0]
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
    row = conn.execute("SELECT k.key_hmac, k.pepper_version, k.key_sha256 FROM api_keys k "
                       "JOIN tenants t USING (tenant_id) WHERE k.key_id = %s AND k.tenant_id = %s "
                       "AND t.disabled_at IS NULL AND k.revoked_at IS NULL "
                       "AND (k.expires_at IS NULL OR k.expires_at > now())", (key_id, tenant_id)).fetchone()
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
    if ok:  # "last used", to the few minutes: not a write per request
        conn.execute("UPDATE api_keys SET last_used_at = now() WHERE key_id = %s AND tenant_id = %s "
                     "AND (last_used_at IS NULL OR last_used_at < now() - %s)", (key_id, tenant_id, LAST_USE_RESOLUTION))
    return tenant_id if ok else None


LAST_USE_RESOLUTION = timedelta(minutes=5)


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
        cur.execute("SELECT key_id, tenant_id, label, created_at, expires_at, valid_for, revoked_at, last_used_at, "
                    "replaces_key_id, (SELECT n.key_id FROM api_keys n WHERE n.tenant_id = k.tenant_id "
                    "AND n.replaces_key_id = k.key_id ORDER BY n.created_at DESC LIMIT 1) AS replaced_by_key_id, "
                    "pepper_version, (key_hmac IS NULL) AS legacy_digest, "
                    "(revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS active "
                    "FROM api_keys k WHERE tenant_id = %s ORDER BY created_at DESC", (tenant_id,))
        return cur.fetchall()


def revoke_api_key(conn: psycopg.Connection, tenant_id: str, key_id: str) -> bool:
    """Revoke at once. False when the tenant has no such active key."""
    set_tenant(conn, tenant_id)
    return conn.execute("UPDATE api_keys SET revoked_at = now() WHERE tenant_id = %s AND key_id = %s "
                        "AND revoked_at IS NULL", (tenant_id, key_id)).rowcount == 1


def rotate_api_key(conn: psycopg.Connection, tenant_id: str, key_id: str, *,
                   overlap: timedelta = timedelta(hours=24)) -> ApiKey | None:
    """A new key replacing ``key_id`` with the same expiry policy (a 90-day key's replacement expires 90
    days from now; a key that never expired, never); the old one keeps working for ``overlap`` (or
    until its own earlier expiry), so clients can switch without an outage. None when there is no
    such active key."""
    set_tenant(conn, tenant_id)
    row = conn.execute("SELECT label, COALESCE(valid_for, expires_at - created_at) FROM api_keys "
                       "WHERE tenant_id = %s AND key_id = %s AND revoked_at IS NULL "
                       "AND (expires_at IS NULL OR expires_at > now()) FOR UPDATE",
                       (tenant_id, key_id)).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE api_keys SET expires_at = LEAST(COALESCE(expires_at, 'infinity'), now() + %s) "
                 "WHERE tenant_id = %s AND key_id = %s", (overlap, tenant_id, key_id))
    return create_api_key(conn, tenant_id, row[0], valid_for=row[1], replaces_key_id=key_id)
