from __future__ import annotations

from datetime import UTC, datetime

import pytest
from swordfish.analysis.trace import TraceFields
from swordfish.store.database import Database, proxy_connect
from swordfish.store.tenants import create_tenant
from swordfish.store.verdicts import VerdictRecord, save_verdicts

TENANTS = ("tenant-a", "tenant-b", "tenant-c", "tenant-d")


def trace(**fields) -> TraceFields:
    base = dict(envelope_recipients=["bob@a.example"], header_recipients=["bob@a.example"],
                header_message_id="<m@x.example>", sending_ip="203.0.113.9", helo="mail.x.example",
                link_domains=["x.example"], urls=["https://x.example/"], attachment_names=[],
                attachment_sha256=[], sender_domain="x.example", reply_to_domain=None, content_digest=None)
    base.update(fields)
    return TraceFields(**base)


def record(tenant: str, message_id: str, *, verdict: str = "phishing", score: float = 9.0,
           reasons: tuple[str, ...] = ("CREDENTIAL_PHISHING_LANGUAGE",), subject: str = "hello",
           sender: str = "it@x.example", **fields) -> VerdictRecord:
    return VerdictRecord(tenant_id=tenant, message_id=message_id, verdict=verdict, score=score,
                         reasons=[{"name": r, "weight": 1.0, "evidence": "e"} for r in reasons], parse_problems=[],
                         subject=subject, sender=sender, submitted_at=datetime.now(UTC), sqs_sent_at=None,
                         trace=trace(**fields))


@pytest.fixture()
def app_db(database):
    """Four tenants, no verdicts; the application role's pool through the pooler (as on AWS)."""
    database.reset()
    with proxy_connect(database.owner_url) as conn:
        for tenant in TENANTS:
            with conn.transaction():
                create_tenant(conn, tenant, tenant.upper(), {})
    pool = Database(database.app_url, max_size=1)  # one connection: every transaction reuses it
    yield pool
    pool.close()


def store(pool: Database, *records: VerdictRecord):
    with pool.connection() as conn, conn.transaction():
        return save_verdicts(conn, list(records))
