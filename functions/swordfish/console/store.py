"""SQL for the console: users and their tenants, the audit log, verdict pages, feedback, policies.

Tenant rows are read under that tenant's row-level security (``set_tenant``) like everywhere else;
which tenants a user may see is decided in ``access.py`` before any of these run.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import psycopg.rows
from psycopg.types.json import Jsonb

from swordfish.security.totp_keys import TotpSecretBox, TotpSecretUnreadable
from swordfish.store.audit import record as record_audit
from swordfish.store.database import like_literal, set_tenant
from swordfish.store.feedback import record_feedback
from swordfish.store.quarantines import quarantine_state
from swordfish.store.storable import storable_json, storable_text
from swordfish.store.verdicts import verdict_filters

ROLES = ("msp_admin", "analyst", "auditor")
RELEASE_ROLES = ("msp_admin", "analyst")  # can release mail from quarantine: a second factor is required
FEEDBACK_ACTIONS = ("release", "confirm_phishing", "mark_legitimate")
VERDICT_KINDS = ("clean", "spam", "suspicious", "phishing", "malware")


@dataclass(frozen=True)
class User:
    user_id: int
    email: str
    display_name: str
    role: str
    password_hash: str | None
    session_epoch: int
    totp_secret: str | None  # as stored: sealed by security.totp_keys (open it with the console's box)
    totp_enabled: bool
    disabled: bool
    tenants: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return self.role == "msp_admin"


_USER_COLUMNS = ("user_id, email, display_name, role, password_hash, session_epoch, totp_secret, totp_enabled, "
                 "disabled_at IS NOT NULL AS disabled")


def _user(conn: psycopg.Connection, row: dict | None) -> User | None:
    if row is None:
        return None
    tenants = tuple(r[0] for r in conn.execute(
        "SELECT tenant_id FROM console_user_tenants WHERE user_id = %s ORDER BY tenant_id", (row["user_id"],)))
    return User(**row, tenants=tenants)


def get_user(conn: psycopg.Connection, user_id: int) -> User | None:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(f"SELECT {_USER_COLUMNS} FROM console_users WHERE user_id = %s", (user_id,)).fetchone()
    return _user(conn, row)


def find_user(conn: psycopg.Connection, email: str) -> User | None:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(f"SELECT {_USER_COLUMNS} FROM console_users WHERE email = %s",
                          (email.strip().lower(),)).fetchone()
    return _user(conn, row)


def list_users(conn: psycopg.Connection) -> list[User]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(f"SELECT {_USER_COLUMNS} FROM console_users ORDER BY email").fetchall()
    return [_user(conn, r) for r in rows]


def _token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()  # 256-bit random tokens: a plain hash suffices


def create_user(conn: psycopg.Connection, email: str, role: str, tenants: list[str], *,
                display_name: str = "", password_hash: str | None = None,
                invite_valid: timedelta = timedelta(days=3)) -> tuple[int, str]:
    """A new user and a one-time invite token (the link to choose a password)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = secrets.token_urlsafe(32)
    user_id = conn.execute(
        "INSERT INTO console_users (email, display_name, role, password_hash, password_changed_at, "
        "invite_token_sha256, invite_expires_at) VALUES (%s, %s, %s, %s, CASE WHEN %s THEN now() END, %s, "
        "now() + %s) RETURNING user_id",
        (email.strip().lower(), storable_text(display_name, 200) or "", role, password_hash,
         password_hash is not None, _token_digest(token), invite_valid)).fetchone()[0]
    set_user_tenants(conn, user_id, tenants)
    return user_id, token


def set_user_tenants(conn: psycopg.Connection, user_id: int, tenants: list[str]) -> None:
    conn.execute("DELETE FROM console_user_tenants WHERE user_id = %s", (user_id,))
    for tenant_id in sorted(set(tenants)):
        conn.execute("INSERT INTO console_user_tenants (user_id, tenant_id) VALUES (%s, %s)", (user_id, tenant_id))


def set_role(conn: psycopg.Connection, user_id: int, role: str) -> None:
    """A new role; every session of the user ends (epoch), so no page runs with the old rights."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    conn.execute("UPDATE console_users SET role = %s, session_epoch = session_epoch + 1 WHERE user_id = %s",
                 (role, user_id))


def issue_reset(conn: psycopg.Connection, user_id: int, valid: timedelta = timedelta(hours=24)) -> str:
    """A one-time reset link; the old password and every session stop working at once."""
    token = secrets.token_urlsafe(32)
    conn.execute("UPDATE console_users SET invite_token_sha256 = %s, invite_expires_at = now() + %s, "
                 "password_hash = NULL, session_epoch = session_epoch + 1 WHERE user_id = %s",
                 (_token_digest(token), valid, user_id))
    return token


def user_for_token(conn: psycopg.Connection, token: str) -> User | None:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(f"SELECT {_USER_COLUMNS} FROM console_users WHERE invite_token_sha256 = %s "
                          "AND invite_expires_at > now() AND disabled_at IS NULL",
                          (_token_digest(token or ""),)).fetchone()
    return _user(conn, row)


def set_password(conn: psycopg.Connection, user_id: int, password_hash: str) -> None:
    """New password: the invite token is spent and every existing session dies (epoch bump)."""
    conn.execute("UPDATE console_users SET password_hash = %s, password_changed_at = now(), "
                 "invite_token_sha256 = NULL, invite_expires_at = NULL, session_epoch = session_epoch + 1 "
                 "WHERE user_id = %s", (password_hash, user_id))


def set_disabled(conn: psycopg.Connection, user_id: int, disabled: bool) -> None:
    conn.execute("UPDATE console_users SET disabled_at = CASE WHEN %s THEN now() END, "
                 "session_epoch = session_epoch + 1 WHERE user_id = %s", (disabled, user_id))


def set_totp(conn: psycopg.Connection, user_id: int, secret: str | None, enabled: bool, *,
             box: TotpSecretBox | None = None) -> None:
    """Store the user's TOTP secret encrypted (``box``), or clear it (``secret`` None)."""
    if secret is not None and box is None:
        raise ValueError("TOTP secrets are stored encrypted: pass the console's TotpSecretBox")
    conn.execute("UPDATE console_users SET totp_secret = %s, totp_enabled = %s WHERE user_id = %s",
                 (box.seal(secret) if secret is not None else None, enabled, user_id))


def reencrypt_totp(conn: psycopg.Connection, box: TotpSecretBox) -> dict[str, int]:
    """Every stored TOTP secret under the newest key, those still in clear encrypted: the one-shot
    after deploying encryption and the last step of a key rotation. Rows locked while rewritten;
    a value no key decrypts is left as it is and counted (that user's TOTP needs a reset)."""
    counts = {"encrypted": 0, "reencrypted": 0, "unreadable": 0}
    rows = conn.execute("SELECT user_id, totp_secret FROM console_users WHERE totp_secret IS NOT NULL "
                        "ORDER BY user_id FOR UPDATE").fetchall()
    for user_id, stored in rows:
        try:
            resealed = box.reseal(stored)
        except TotpSecretUnreadable:
            counts["unreadable"] += 1
            continue
        counts["reencrypted" if box.is_sealed(stored) else "encrypted"] += 1
        conn.execute("UPDATE console_users SET totp_secret = %s WHERE user_id = %s", (resealed, user_id))
    return counts


def record_login(conn: psycopg.Connection, user_id: int) -> None:
    conn.execute("UPDATE console_users SET last_login_at = now() WHERE user_id = %s", (user_id,))


# --- audit ------------------------------------------------------------------------------------


def audit(conn: psycopg.Connection, *, actor: str, actor_role: str | None, action: str,
          tenant_id: str | None = None, object_type: str | None = None, object_id: str | None = None,
          outcome: str = "ok", before: Any = None, after: Any = None, source_ip: str | None = None,
          request_id: str | None = None) -> None:
    """One row of the one audit trail (``store.audit``, which the CLI writes too)."""
    record_audit(conn, actor=actor, actor_role=actor_role, action=action, tenant_id=tenant_id,
                 object_type=object_type, object_id=object_id, outcome=outcome, before=before, after=after,
                 source_ip=source_ip, request_id=request_id)


# The one trail: console and CLI rows (console_audit) and flag changes (flag_audit), in one shape.
_TRAIL = (
    "SELECT 'c' || lpad(audit_id::text, 19, '0') AS key, at, actor, actor_role, action, tenant_id, object_type, "
    "object_id, outcome, before, after, source_ip FROM console_audit")
_FLAG_TRAIL = (
    "SELECT 'f' || lpad(audit_id::text, 19, '0'), changed_at, actor, 'flags (' || source || ')', 'flag.' || action, "
    "NULL, 'flag', flag_name, 'ok', before, after, NULL FROM flag_audit")


def audit_page(conn: psycopg.Connection, tenants: list[str] | None, *, limit: int,
               before: tuple[datetime, str] | None = None, actor: str | None = None, tenant: str | None = None,
               action: str | None = None, outcome: str | None = None, since: datetime | None = None,
               until: datetime | None = None) -> list[dict]:
    """Newest first, keyset paging on (at, key). ``tenants`` None: every row, flag changes included
    (MSP admins); else only those tenants' rows. ``actor`` is a substring, ``action`` a prefix
    (``policy`` finds ``policy.update``); bound parameters with LIKE's wildcards escaped."""
    source = _TRAIL if tenants is not None else f"{_TRAIL} UNION ALL {_FLAG_TRAIL}"
    clauses, params = [], []
    if tenants is not None:
        clauses.append("tenant_id = ANY(%s)")
        params.append(tenants)
    if actor:
        clauses.append("actor ILIKE %s ESCAPE '\\'")
        params.append("%" + like_literal(actor) + "%")
    if tenant:
        clauses.append("tenant_id = %s")
        params.append(tenant)
    if action:
        clauses.append("action LIKE %s ESCAPE '\\'")
        params.append(like_literal(action) + "%")
    if outcome:
        clauses.append("outcome = %s")
        params.append(outcome)
    if since:
        clauses.append("at >= %s")
        params.append(since)
    if until:
        clauses.append("at < %s")
        params.append(until)
    if before:
        clauses.append("(at, key) < (%s, %s)")
        params.extend(before)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(f"SELECT * FROM ({source}) AS trail {where} ORDER BY at DESC, key DESC LIMIT %s",
                           [*params, limit]).fetchall()


def short_diff(before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """(field, before, after) for each field that differs; a non-object is one unnamed field."""
    if isinstance(before, dict) or isinstance(after, dict):
        b, a = before if isinstance(before, dict) else {}, after if isinstance(after, dict) else {}
        return [(key, b.get(key), a.get(key)) for key in sorted(set(b) | set(a), key=str)
                if key not in b or key not in a or b[key] != a[key]]
    return [] if before == after else [("", before, after)]


# --- tenants and verdicts ------------------------------------------------------------------------


def all_tenants(conn: psycopg.Connection) -> list[dict]:
    """Every tenant's id and name (the directory policy; no tenant data)."""
    conn.execute("SELECT set_config('app.tenant_directory', 'on', true)")
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute("SELECT tenant_id, name, disabled_at FROM tenants ORDER BY tenant_id").fetchall()
    conn.execute("SELECT set_config('app.tenant_directory', 'off', true)")
    return rows


def tenant_summary(conn: psycopg.Connection, tenant_id: str, since: datetime) -> dict:
    """The overview's numbers, each for the period it names: verdicts, quarantines (what Swordfish
    moved to Junk Email, from its ledger) and releases since ``since``; "held now" is everything
    still in Junk Email whenever it was moved there."""
    set_tenant(conn, tenant_id)
    counts = dict(conn.execute("SELECT verdict, count(*) FROM verdicts WHERE tenant_id = %s AND committed_at >= %s "
                               "GROUP BY verdict", (tenant_id, since)).fetchall())
    quarantined, held = conn.execute(
        "SELECT count(*) FILTER (WHERE quarantined_at >= %s), count(*) FILTER (WHERE state = 'quarantined') "
        "FROM mailbox_quarantines WHERE tenant_id = %s", (since, tenant_id)).fetchone()
    released = conn.execute("SELECT count(DISTINCT message_id) FROM verdict_releases WHERE tenant_id = %s "
                            "AND created_at >= %s", (tenant_id, since)).fetchone()[0]
    degraded = conn.execute("SELECT count(*) FROM verdicts WHERE tenant_id = %s AND committed_at >= %s AND degraded",
                            (tenant_id, since)).fetchone()[0]
    return {"counts": {k: counts.get(k, 0) for k in VERDICT_KINDS}, "quarantined": quarantined, "held": held,
            "released": released, "degraded": degraded}


def verdict_page(conn: psycopg.Connection, tenant_id: str, *, verdict: str | None, since: datetime | None,
                 until: datetime | None, sender: str | None, subject: str | None, limit: int,
                 before: tuple[datetime, str] | None) -> list[dict]:
    """Newest first, keyset paging on (committed_at, message_id). Filters are bound parameters; the
    text searches are substring matches with LIKE's wildcards escaped."""
    set_tenant(conn, tenant_id)
    clauses, params = verdict_filters(tenant_id, verdict=verdict, since=since, until=until, sender=sender,
                                      subject=subject)
    if before:
        clauses.append("(committed_at, message_id) < (%s, %s)")
        params.extend(before)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(
            "SELECT message_id, verdict, score, subject, sender, committed_at, degraded FROM verdicts "
            f"WHERE {' AND '.join(clauses)} ORDER BY committed_at DESC, message_id DESC LIMIT %s",
            [*params, limit]).fetchall()
        judged = {r["message_id"]: r["label"] for r in cur.execute(
            "SELECT DISTINCT ON (message_id) message_id, label FROM verdict_feedback WHERE tenant_id = %s "
            "AND message_id = ANY(%s) ORDER BY message_id, feedback_id DESC",
            (tenant_id, [r["message_id"] for r in rows])).fetchall()}
    for row in rows:
        row["overridden_as"] = overridden_as(row["verdict"], judged.get(row["message_id"]))
    return rows


def overridden_as(verdict: str, label: str | None) -> str | None:
    """An analyst's latest judgement that contradicts the verdict: 'legitimate' on anything not clean,
    'phishing' on anything not phishing or malware; None when there is none or it agrees."""
    if label == "legitimate" and verdict != "clean":
        return "legitimate"
    if label == "phishing" and verdict not in ("phishing", "malware"):
        return "phishing"
    return None


def verdict_detail(conn: psycopg.Connection, tenant_id: str, message_id: str) -> dict | None:
    set_tenant(conn, tenant_id)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM verdicts WHERE tenant_id = %s AND message_id = %s",
                          (tenant_id, message_id)).fetchone()
        if row is None:
            return None
        row["feedback"] = cur.execute(
            "SELECT * FROM (SELECT CASE label WHEN 'phishing' THEN 'confirm_phishing' ELSE 'mark_legitimate' END "
            "AS action, analyst AS actor, comment AS note, created_at FROM verdict_feedback "
            "WHERE tenant_id = %s AND message_id = %s UNION ALL SELECT 'release', actor, note, created_at "
            "FROM verdict_releases WHERE tenant_id = %s AND message_id = %s) AS f ORDER BY created_at DESC",
            (tenant_id, message_id, tenant_id, message_id)).fetchall()
    row["quarantine"] = quarantine_state(conn, tenant_id, message_id)
    judgements = [f for f in row["feedback"] if f["action"] != "release"]
    latest = judgements[0] if judgements else None
    label = None if latest is None else ("phishing" if latest["action"] == "confirm_phishing" else "legitimate")
    overridden = overridden_as(row["verdict"], label)
    row["override"] = {"as": overridden, **latest} if overridden else None
    return row


def add_feedback(conn: psycopg.Connection, tenant_id: str, message_id: str, action: str, actor: str,
                 note: str | None) -> None:
    """"Confirm phishing" and "mark legitimate" are the analyst judgements the detection work learns
    from (``store.feedback``, which also feeds the lists). A release is not feedback: it moves mail,
    through ``store.quarantines.release_from_quarantine``."""
    if action not in FEEDBACK_ACTIONS or action == "release":
        raise ValueError("feedback is confirm_phishing or mark_legitimate; a release goes through "
                         "store.quarantines.release_from_quarantine")
    note = storable_text(note, 2000) or ""
    record_feedback(conn, tenant_id, message_id, "phishing" if action == "confirm_phishing" else "legitimate",
                    actor[:200], note)


def get_policy(conn: psycopg.Connection, tenant_id: str) -> dict | None:
    set_tenant(conn, tenant_id)
    row = conn.execute("SELECT policy FROM tenant_policies WHERE tenant_id = %s", (tenant_id,)).fetchone()
    return row[0] if row else None


def save_policy(conn: psycopg.Connection, tenant_id: str, policy: dict) -> None:
    set_tenant(conn, tenant_id)
    conn.execute("UPDATE tenant_policies SET policy = %s, updated_at = now() WHERE tenant_id = %s",
                 (Jsonb(storable_json(policy)), tenant_id))


# --- the second factor's recovery codes and resets -------------------------------------------------


def replace_recovery_codes(conn: psycopg.Connection, user_id: int, hashed: list[tuple[str, str]]) -> None:
    """The user's new set of codes (id, hash); every earlier code stops working."""
    conn.execute("DELETE FROM console_recovery_codes WHERE user_id = %s", (user_id,))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO console_recovery_codes (user_id, code_id, code_hash) VALUES (%s, %s, %s)",
                        [(user_id, code_id, code_hash) for code_id, code_hash in hashed])


def unused_recovery_code(conn: psycopg.Connection, user_id: int, code_id: str) -> str | None:
    """The stored hash of the user's unused code ``code_id``, or None."""
    row = conn.execute("SELECT code_hash FROM console_recovery_codes WHERE user_id = %s AND code_id = %s "
                       "AND used_at IS NULL", (user_id, code_id)).fetchone()
    return row[0] if row else None


def spend_recovery_code(conn: psycopg.Connection, user_id: int, code_id: str) -> bool:
    """Mark the code used; False when another request spent it first (the row is the arbiter)."""
    return conn.execute("UPDATE console_recovery_codes SET used_at = clock_timestamp() WHERE user_id = %s "
                        "AND code_id = %s AND used_at IS NULL", (user_id, code_id)).rowcount == 1


def recovery_codes_left(conn: psycopg.Connection, user_id: int) -> int:
    return conn.execute("SELECT count(*) FROM console_recovery_codes WHERE user_id = %s AND used_at IS NULL",
                        (user_id,)).fetchone()[0]


def clear_mfa(conn: psycopg.Connection, user_id: int) -> dict:
    """Forget every second factor of the user (an admin's or the CLI's reset): the TOTP secret, the
    recovery codes and the passkeys. What was cleared, for the audit row."""
    codes = conn.execute("DELETE FROM console_recovery_codes WHERE user_id = %s", (user_id,)).rowcount
    keys = conn.execute("DELETE FROM console_passkeys WHERE user_id = %s", (user_id,)).rowcount
    set_totp(conn, user_id, None, False)
    return {"totp": "cleared", "recovery_codes": f"{codes} deleted", "passkeys": f"{keys} deleted"}


# --- passkeys (WebAuthn) ---------------------------------------------------------------------------


def add_passkey(conn: psycopg.Connection, user_id: int, credential_id: bytes, public_key: bytes, sign_count: int,
                name: str) -> None:
    conn.execute("INSERT INTO console_passkeys (credential_id, user_id, public_key, sign_count, name) "
                 "VALUES (%s, %s, %s, %s, %s)", (credential_id, user_id, public_key, sign_count, name[:100]))


def passkeys(conn: psycopg.Connection, user_id: int) -> list[dict]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("SELECT credential_id, name, created_at, last_used_at FROM console_passkeys "
                           "WHERE user_id = %s ORDER BY created_at", (user_id,)).fetchall()


def passkey(conn: psycopg.Connection, credential_id: bytes) -> dict | None:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("SELECT * FROM console_passkeys WHERE credential_id = %s FOR UPDATE",
                           (credential_id,)).fetchone()


def passkey_used(conn: psycopg.Connection, credential_id: bytes, sign_count: int) -> None:
    conn.execute("UPDATE console_passkeys SET sign_count = %s, last_used_at = clock_timestamp() "
                 "WHERE credential_id = %s", (sign_count, credential_id))


def remove_passkey(conn: psycopg.Connection, user_id: int, credential_id: bytes) -> bool:
    return conn.execute("DELETE FROM console_passkeys WHERE user_id = %s AND credential_id = %s",
                        (user_id, credential_id)).rowcount == 1
