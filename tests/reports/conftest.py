"""Two tenants with a known fortnight of mail: verdicts (reasons as the analyser words them), traces
and quarantines, each at a chosen time (moved there as the superuser after the real insert)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from swordfish.pipeline.ports import QuarantineEntry
from swordfish.store.database import Database, proxy_connect
from swordfish.store.quarantines import record_quarantine
from swordfish.store.tenants import create_tenant
from swordfish.store.verdicts import save_verdicts

from tests.trace.conftest import record

HOSTILE_VIP = "<img src=x onerror=alert(1)>"
HOSTILE_RECIPIENT = "<script>alert(2)</script>@acme.example"
HOSTILE_TENANT_NAME = "Acme <b>&</b> \"Co\""
PERIOD = (date(2026, 11, 23), date(2026, 11, 29))  # the report's week; the previous week 16-22


def brand_reason(brand: str, sender: str = "evil.example") -> dict:
    return {"name": "BRAND_IMPERSONATION", "weight": 4.0, "value": 1.0,
            "evidence": f"display name {brand.title() + ' Support'!r} names {brand} but mail is from {sender}"}


def subject_brand_reason(brand: str) -> dict:
    return {"name": "BRAND_IN_SUBJECT", "weight": 1.0, "value": 1.0,
            "evidence": f"subject names {brand}, mail is from evil.example"}


def vip_reason(name: str) -> dict:
    return {"name": "VIP_IMPERSONATION", "weight": 5.0, "value": 1.0,
            "evidence": f"display name {name!r} from outside domain evil.example"}


@dataclass
class Mail:
    tenant: str
    message_id: str
    at: datetime
    verdict: str = "clean"
    reasons: tuple = ()
    recipients: tuple = ("pat@acme.example",)


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def week_of_mail() -> list[Mail]:
    """acme-corp: in the week, 10 clean, 3 phishing, 2 spam, 1 malware (16); the week before, 2
    phishing, 4 spam, 1 suspicious (7). globex: 5 phishing in the week, which acme must never see."""
    d = [PERIOD[0] + timedelta(days=i) for i in range(7)]
    prev = [PERIOD[0] - timedelta(days=7 - i) for i in range(7)]
    mail = [Mail("acme-corp", f"clean-{i}", at(d[i % 7], 8 + i % 10)) for i in range(10)]
    mail += [
        Mail("acme-corp", "phish-1", at(d[0]), "phishing", (brand_reason("paypal"),),
             ("pat@acme.example", HOSTILE_RECIPIENT)),
        Mail("acme-corp", "phish-2", at(d[2]), "phishing", (brand_reason("paypal"), vip_reason("Jane Boss")),
             ("pat@acme.example",)),
        Mail("acme-corp", "phish-3", at(d[2], 23), "phishing", (subject_brand_reason("microsoft"),
                                                                vip_reason(HOSTILE_VIP)), ("cfo@acme.example",)),
        Mail("acme-corp", "spam-1", at(d[4]), "spam", (), ("pat@acme.example",)),
        Mail("acme-corp", "spam-2", at(d[6], 23), "spam", (), ("ops@acme.example",)),
        Mail("acme-corp", "malware-1", at(d[5]), "malware", (), ("cfo@acme.example",)),
        # just outside the week on either side: in no count of it
        Mail("acme-corp", "late", at(PERIOD[1] + timedelta(days=1), 0), "phishing", (brand_reason("dhl"),)),
        Mail("acme-corp", "old-1", at(prev[0]), "phishing"), Mail("acme-corp", "old-2", at(prev[6], 23), "phishing"),
        Mail("acme-corp", "old-3", at(prev[1]), "spam"), Mail("acme-corp", "old-4", at(prev[2]), "spam"),
        Mail("acme-corp", "old-5", at(prev[3]), "spam"), Mail("acme-corp", "old-6", at(prev[4]), "spam"),
        Mail("acme-corp", "old-7", at(prev[5]), "suspicious"),
    ]
    mail += [Mail("globex", f"gx-{i}", at(d[1]), "phishing", (brand_reason("globexbank"), vip_reason("Hank")),
                  ("gus@globex.example",)) for i in range(5)]
    return mail


def seed_mail(database, mail: list[Mail]) -> None:
    records = [record(m.tenant, m.message_id, verdict=m.verdict, reasons=(), envelope_recipients=list(m.recipients),
                      header_recipients=["all-staff@acme.example"]) for m in mail]
    for r, m in zip(records, mail, strict=True):
        r.reasons = list(m.reasons)
        r.score = 0.5 if m.verdict == "clean" else 9.0
    with proxy_connect(database.owner_url) as conn, conn.transaction():
        save_verdicts(conn, records)
    with psycopg.connect(database.superuser_url) as conn, conn.transaction():
        for m in mail:
            for table in ("verdicts", "verdict_traces"):
                conn.execute(f"UPDATE {table} SET committed_at = %s WHERE tenant_id = %s AND message_id = %s",
                             (m.at, m.tenant, m.message_id))


def quarantine(database, tenant: str, message_id: str, when: datetime, released: datetime | None = None) -> None:
    with proxy_connect(database.owner_url) as conn, conn.transaction():
        record_quarantine(conn, QuarantineEntry(tenant_id=tenant, message_id=message_id, connection_id="c1",
                                                provider_config_key="microsoft", provider_message_id="p-" + message_id))
    with psycopg.connect(database.superuser_url) as conn, conn.transaction():
        conn.execute("UPDATE mailbox_quarantines SET quarantined_at = %s, released_at = %s, state = %s, "
                     "released_by = %s WHERE tenant_id = %s AND message_id = %s",
                     (when, released, "released" if released else "quarantined", "ann@msp.example" if released
                      else None, tenant, message_id))


@pytest.fixture()
def report_db(database):
    """acme-corp and globex with the fortnight above; the application role's pool, as on AWS."""
    database.reset()
    with proxy_connect(database.owner_url) as conn:
        with conn.transaction():
            create_tenant(conn, "acme-corp", HOSTILE_TENANT_NAME, {"domains": ["acme.example"]})
        with conn.transaction():
            create_tenant(conn, "globex", "Globex", {"domains": ["globex.example"]})
    seed_mail(database, week_of_mail())
    d0 = PERIOD[0]
    quarantine(database, "acme-corp", "phish-1", at(d0, 11))  # in the week, still held
    quarantine(database, "acme-corp", "phish-2", at(d0 + timedelta(days=2), 11), at(d0 + timedelta(days=3), 9))
    quarantine(database, "acme-corp", "old-1", at(d0 - timedelta(days=7), 11), at(d0 + timedelta(days=1), 9))
    quarantine(database, "globex", "gx-0", at(d0 + timedelta(days=1), 11))
    pool = Database(database.app_url, max_size=1)
    yield pool
    pool.close()
