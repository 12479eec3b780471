"""The processor's ``VerdictStore`` and ``PolicySource`` ports, and the API's ``ApiStore``, on PostgreSQL.

The processor asks for "save these verdicts" and "this tenant's policy"; how that maps to
connections, transactions and row-level security stays here, so the pipeline can be tested with an
in-memory store (tests/unit) and against PostgreSQL (tests/pipeline) with the same code.
"""

from __future__ import annotations

from datetime import datetime

from swordfish.pipeline.ports import NotQuarantined, ReleaseFailed, Releaser
from swordfish.store.campaigns import get_campaign, list_campaigns, members
from swordfish.store.campaigns import summary as campaign_summary
from swordfish.store.database import Database
from swordfish.store.feedback import export_examples, list_feedback, record_feedback
from swordfish.store.quarantines import audit_release, release_from_quarantine
from swordfish.store.tenants import authenticate_api_key, load_policy, usage_key_for
from swordfish.store.traces import search
from swordfish.store.verdicts import (
    StoredVerdict,
    VerdictRecord,
    get_verdict,
    is_row_error,
    list_verdicts,
    save_verdicts,
    save_verdicts_each,
)


class PostgresVerdictStore:
    def __init__(self, database: Database):
        self.database = database

    def save(self, records: list[VerdictRecord]) -> list[StoredVerdict]:
        """Every record in one transaction: all stored, or an exception and none."""
        with self.database.connection() as conn, conn.transaction():
            return save_verdicts(conn, records)

    def save_each(self, records: list[VerdictRecord]) -> list[StoredVerdict | Exception]:
        """One transaction, a savepoint per row: a refused row comes back as its error."""
        with self.database.connection() as conn, conn.transaction():
            return save_verdicts_each(conn, records)

    @staticmethod
    def is_row_error(exc: BaseException) -> bool:
        return is_row_error(exc)

    def load_policy(self, tenant_id: str) -> dict:
        """Raises ``UnknownTenant``."""
        with self.database.tenant_transaction(tenant_id) as conn:
            return load_policy(conn, tenant_id)


class PostgresApiStore:
    """The API's ``ApiStore`` port: key checks and verdict reads, each in its own short transaction.
    Raises ``DatabaseUnavailable`` when PostgreSQL cannot be reached (the API answers 503)."""

    def __init__(self, database: Database):
        self.database = database

    def authenticate(self, presented_key: str) -> str | None:
        with self.database.connection() as conn, conn.transaction():
            return authenticate_api_key(conn, presented_key)

    def usage_key_for(self, presented_key: str) -> tuple[str, str, str | None] | None:
        """(tenant, key id, usage-plan key) for a valid key: API Gateway's authorizer asks this."""
        with self.database.connection() as conn, conn.transaction():
            return usage_key_for(conn, presented_key)

    def list_verdicts(self, tenant_id: str, *, limit: int, verdict: str | None, before: datetime | None) -> list[dict]:
        with self.database.connection() as conn, conn.transaction():
            return list_verdicts(conn, tenant_id, limit=limit, verdict=verdict, before=before)

    def get_verdict(self, tenant_id: str, message_id: str) -> dict | None:
        with self.database.connection() as conn, conn.transaction():
            return get_verdict(conn, tenant_id, message_id)

    def record_feedback(self, tenant_id: str, message_id: str, label: str, analyst: str, comment: str, *,
                        api_key_id: str | None = None, stated_analyst: str | None = None) -> dict:
        with self.database.connection() as conn, conn.transaction():
            return record_feedback(conn, tenant_id, message_id, label, analyst, comment, api_key_id=api_key_id,
                                   stated_analyst=stated_analyst)

    def list_feedback(self, tenant_id: str, *, limit: int, after_id: int) -> list[dict]:
        with self.database.connection() as conn, conn.transaction():
            return list_feedback(conn, tenant_id, limit=limit, after_id=after_id)

    def feedback_examples(self, tenant_id: str) -> list[dict]:
        with self.database.connection() as conn, conn.transaction():
            return export_examples(conn, tenant_id)

    def search(self, query, scope: list[str] | None, *, limit: int, cursor: str | None):
        """A page of traces in ``scope`` (None: every tenant); raises ``traces.InvalidSearch``."""
        with self.database.connection() as conn, conn.transaction():
            return search(conn, query, scope, limit=limit, cursor=cursor,
                          statement_timeout_ms=int(self.database.statement_timeout))

    def campaigns(self, *, limit: int, before: int | None) -> list[dict]:
        with self.database.connection() as conn, conn.transaction():
            return list_campaigns(conn, limit=limit, before_id=before)

    def campaign(self, campaign_id: int) -> dict | None:
        with self.database.connection() as conn, conn.transaction():
            found = get_campaign(conn, campaign_id)
            return campaign_summary(found, members(conn, found)) if found else None

    def report(self, tenant_id: str, period, *, now: datetime):
        """The tenant's report (``store.reports``), or None when there is no such tenant."""
        from swordfish.store.reports import tenant_report

        return tenant_report(self.database, tenant_id, period, now=now)

    def release(self, tenant_id: str, message_id: str, releaser: Releaser, *, actor: str, note: str) -> dict:
        """Release from quarantine (``store.quarantines``), audited with its outcome like the console's.
        Raises NotQuarantined or ReleaseFailed after auditing them; nothing is marked released then."""
        where = dict(actor=actor, actor_role="api", tenant_id=tenant_id, message_id=message_id)
        try:
            with self.database.connection() as conn, conn.transaction():
                released = release_from_quarantine(conn, tenant_id, message_id, releaser, actor=actor, note=note)
                audit_release(conn, outcome="ok", after={"state": "released",
                                                         "provider_message_id": released.provider_message_id},
                              **where)
        except (NotQuarantined, ReleaseFailed) as exc:
            refused = isinstance(exc, NotQuarantined)
            with self.database.connection() as conn, conn.transaction():
                audit_release(conn, outcome="refused" if refused else "failed",
                              after={"reason": str(exc)[:500], "kind": getattr(exc, "kind", "not_quarantined")},
                              **where)
            raise
        return {"tenant_id": tenant_id, "message_id": message_id, "state": "released", "released_by": actor,
                "released_at": released.released_at}
