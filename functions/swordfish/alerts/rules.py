"""Alert rules in PostgreSQL: which events go where, for one tenant or MSP-wide (tenant NULL).

A webhook rule gets a signing secret of its own, generated here, shown once when the rule is made
and stored sealed (the console's MultiFernet box, ``security.totp_keys``); the dispatcher opens it
to sign. Targets are checked before they are stored: a webhook is an https URL without
credentials (plain http only where the settings allow it: the embedded stack's local receivers),
an e-mail rule one address. Rules are never deleted: disabling marks who and when.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

import psycopg
import psycopg.rows

from swordfish.alerts.events import CAMPAIGN, EVENT_KINDS, AlertEvent
from swordfish.store.database import Database, set_tenant
from swordfish.store.storable import storable_text

CHANNELS = ("webhook", "email")
MAX_RULES_PER_SCOPE = 50
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


class RuleRefused(ValueError):
    """The rule cannot be stored; the message says why (safe to show)."""


@dataclass(frozen=True)
class AlertRule:
    rule_id: int
    tenant_id: str | None
    events: tuple[str, ...]
    channel: str
    target: str
    min_tenants: int
    label: str
    secret: str | None = None  # opened for signing; never listed

    def wants(self, event: AlertEvent) -> bool:
        if event.kind not in self.events:
            return False
        if event.kind == CAMPAIGN and len(event.tenant_ids) < self.min_tenants:
            return False
        return self.tenant_id is None or self.tenant_id in event.tenant_ids


def check_target(channel: str, target: str, *, allow_http: bool = False) -> str:
    target = (target or "").strip()
    if channel == "email":
        if len(target) > 254 or not _EMAIL.match(target):
            raise RuleRefused("an e-mail rule needs one e-mail address")
        return target.lower()
    if channel != "webhook":
        raise RuleRefused(f"channel is one of {', '.join(CHANNELS)}")
    if len(target) > 2000 or any(c.isspace() or ord(c) < 32 for c in target):
        raise RuleRefused("the webhook URL is too long or has spaces or control characters")
    try:
        parts = urlsplit(target)
        _ = parts.port  # a port that is not a number raises here
    except ValueError as exc:
        raise RuleRefused(f"the webhook URL does not parse: {exc}") from exc
    if parts.scheme not in (("https", "http") if allow_http else ("https",)):
        raise RuleRefused("the webhook URL must be https://")
    if not parts.hostname or parts.username or parts.password:
        raise RuleRefused("the webhook URL needs a host and no user name or password in it")
    if not allow_http:
        try:
            address = ip_address(parts.hostname)
        except ValueError:
            address = None
        if address is not None and (address.is_private or address.is_loopback or address.is_link_local):
            raise RuleRefused("the webhook URL points inside a private network")
    return target


def _check_events(events: Iterable[str]) -> list[str]:
    chosen = sorted({str(e) for e in events})
    if not chosen or any(e not in EVENT_KINDS for e in chosen):
        raise RuleRefused(f"events are one or more of {', '.join(EVENT_KINDS)}")
    return chosen


def add_rule(conn: psycopg.Connection, *, tenant_id: str | None, events: Iterable[str], channel: str, target: str,
             created_by: str, box, min_tenants: int = 3, label: str = "", allow_http: bool = False
             ) -> tuple[dict, str | None]:
    """Store a checked rule; returns (row without secrets, the webhook secret to show once)."""
    chosen = _check_events(events)
    target = check_target(channel, target, allow_http=allow_http)
    if not 1 <= int(min_tenants) <= 100_000:
        raise RuleRefused("min_tenants is 1 to 100000")
    if tenant_id:
        set_tenant(conn, tenant_id)
    count = conn.execute("SELECT count(*) FROM alert_rules WHERE tenant_id IS NOT DISTINCT FROM %s "
                         "AND disabled_at IS NULL", (tenant_id,)).fetchone()[0]
    if count >= MAX_RULES_PER_SCOPE:
        raise RuleRefused(f"this scope already has {count} rules, the limit")
    secret = secrets.token_urlsafe(32) if channel == "webhook" else None
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(
            "INSERT INTO alert_rules (tenant_id, events, channel, target, secret_sealed, min_tenants, label, "
            "created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (tenant_id, chosen, channel, target, box.seal(secret) if secret else None, int(min_tenants),
             storable_text(label or "", 200), storable_text(created_by, 254))).fetchone()
    return public(row), secret


def public(row: dict) -> dict:
    """A rule as listed: never its secret."""
    return {k: v for k, v in row.items() if k != "secret_sealed"}


def list_rules(conn: psycopg.Connection, tenant_id: str | None, *, include_msp: bool = True) -> list[dict]:
    """The active rules of one tenant (and the MSP-wide ones), or with ``tenant_id`` None the MSP-wide ones."""
    if tenant_id:
        set_tenant(conn, tenant_id)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM alert_rules WHERE disabled_at IS NULL AND (tenant_id = %s OR (%s AND tenant_id IS NULL)) "
            "ORDER BY tenant_id NULLS FIRST, rule_id", (tenant_id, include_msp or tenant_id is None)).fetchall()
    return [public(r) for r in rows]


def disable_rule(conn: psycopg.Connection, rule_id: int, disabled_by: str, tenant_id: str | None) -> dict | None:
    """Disable a rule of exactly this scope (a tenant's key cannot disable the MSP's rules)."""
    if tenant_id:
        set_tenant(conn, tenant_id)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("UPDATE alert_rules SET disabled_at = clock_timestamp(), disabled_by = %s "
                          "WHERE rule_id = %s AND disabled_at IS NULL AND tenant_id IS NOT DISTINCT FROM %s "
                          "RETURNING *", (storable_text(disabled_by, 254), rule_id, tenant_id)).fetchone()
    return public(row) if row else None


class AlertRuleStore:
    """What the dispatcher reads: the rules an event matches, a rule by id, secrets opened."""

    def __init__(self, database: Database, box):
        self.database, self.box = database, box

    def _rule(self, row: dict) -> AlertRule:
        return AlertRule(rule_id=row["rule_id"], tenant_id=row["tenant_id"], events=tuple(row["events"]),
                         channel=row["channel"], target=row["target"], min_tenants=row["min_tenants"],
                         label=row["label"], secret=self.box.open(row["secret_sealed"]) if row["secret_sealed"] else None)

    def _rows(self, tenant_id: str, kind: str) -> list[dict]:
        # tenant '' sees the MSP-wide rules only (the RLS policy's NULL branch).
        with self.database.tenant_transaction(tenant_id) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            return cur.execute("SELECT * FROM alert_rules WHERE disabled_at IS NULL AND %s = ANY (events) "
                               "AND (tenant_id IS NULL OR tenant_id = %s)", (kind, tenant_id)).fetchall()

    def matching(self, event: AlertEvent) -> list[AlertRule]:
        found: dict[int, dict] = {}
        for tenant_id in ("", *event.tenant_ids):
            for row in self._rows(tenant_id, event.kind):
                found[row["rule_id"]] = row
        rules = [self._rule(row) for _, row in sorted(found.items())]
        return [r for r in rules if r.wants(event)]

    def get(self, rule_id: int, tenant_id: str | None) -> AlertRule | None:
        with self.database.tenant_transaction(tenant_id or "") as conn, \
                conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            row = cur.execute("SELECT * FROM alert_rules WHERE rule_id = %s AND disabled_at IS NULL "
                              "AND tenant_id IS NOT DISTINCT FROM %s", (rule_id, tenant_id)).fetchone()
        return self._rule(row) if row else None


class AlertRulesAdmin:
    """Rule changes with their audit row in the same transaction (the API's and the CLI's path; the
    console audits through ``console.access.audit`` with the signed-in user)."""

    def __init__(self, database: Database, box, *, allow_http: bool = False):
        self.database, self.box, self.allow_http = database, box, allow_http

    def list(self, tenant_id: str | None) -> list[dict]:
        with self.database.connection() as conn, conn.transaction():
            return list_rules(conn, tenant_id)

    def add(self, *, tenant_id: str | None, actor: str, actor_role: str, source_ip: str | None = None,
            **rule) -> tuple[dict, str | None]:
        from swordfish.store import audit

        with self.database.connection() as conn, conn.transaction():
            row, secret = add_rule(conn, tenant_id=tenant_id, created_by=actor, box=self.box,
                                   allow_http=self.allow_http, **rule)
            audit.record(conn, actor=actor, actor_role=actor_role, action="alert_rule.add", tenant_id=tenant_id,
                         object_type="alert_rule", object_id=str(row["rule_id"]), after=_audited(row),
                         source_ip=source_ip)
        return row, secret

    def disable(self, rule_id: int, *, tenant_id: str | None, actor: str, actor_role: str,
                source_ip: str | None = None) -> dict | None:
        from swordfish.store import audit

        with self.database.connection() as conn, conn.transaction():
            row = disable_rule(conn, rule_id, actor, tenant_id)
            if row is not None:
                audit.record(conn, actor=actor, actor_role=actor_role, action="alert_rule.disable",
                             tenant_id=tenant_id, object_type="alert_rule", object_id=str(rule_id),
                             before=_audited(row), source_ip=source_ip)
        return row


def _audited(row: dict) -> dict:
    return {"events": list(row["events"]), "channel": row["channel"], "target": row["target"],
            "scope": row["tenant_id"] or "every tenant", "min_tenants": row["min_tenants"], "label": row["label"]}
