"""Four weeks of demo mail behind `make serve`'s dashboards (issue 28: the per-tenant report).

The sample mail under samples/ analysed by the real analyser with each demo tenant's policy, stored
as the pipeline stores it (verdicts and traces, ``save_verdicts``), then dated back over the last 28
days: some 20 to 60 messages a day per tenant, addressed to a few of the tenant's mailboxes. For
acme-corp (auto-quarantine on in the demo) the phishing and malware are in the quarantine ledger,
a few of them released. Once per database: a kept database that has the history keeps it.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from swordfish.analysis import TenantPolicy, analyze, parse_message
from swordfish.analysis.commands import iter_messages
from swordfish.analysis.trace import extract_trace
from swordfish.pipeline.ports import QuarantineEntry
from swordfish.store.database import proxy_connect, set_tenant
from swordfish.store.quarantines import record_quarantine
from swordfish.store.tenants import load_policy
from swordfish.store.verdicts import VerdictRecord, save_verdicts

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PREFIX = "demo-history:"
DAYS = 28
MAILBOXES = ("pat", "sam", "finance", "ceo", "it-help", "jo")


def demo_samples(root: Path = SAMPLES) -> list[tuple[str, bytes]]:
    """(file name, raw) of the sample mail (`make run`'s walk: no feeds, no mailbox stand-ins)."""
    return [(Path(source["path"]).name, raw) for source, raw in iter_messages(root)
            if not {"feeds", "mailboxes"} & set(Path(source["path"]).resolve().relative_to(root).parts)]


def _analysed(samples: list[tuple[str, bytes]], policy: TenantPolicy) -> list[tuple[str, object, object]]:
    return [(label, analyze(raw, policy), parse_message(raw, policy)) for label, raw in samples]


def seed_report_history(owner_url: str, tenants: dict[str, str], samples: list[tuple[str, bytes]], *,
                        now: datetime | None = None, days: int = DAYS, quarantine_tenant: str = "acme-corp") -> int:
    """Seed ``tenants`` (id -> mail domain) with ``days`` of analysed sample mail; returns how many
    verdicts it wrote (0 when the history is there already)."""
    now = now or datetime.now(UTC)
    rng = random.Random(28)  # the same history on every fresh database
    written = 0
    with proxy_connect(owner_url) as conn:
        for tenant_id, domain in tenants.items():
            with conn.transaction():
                set_tenant(conn, tenant_id)
                if conn.execute("SELECT 1 FROM verdicts WHERE tenant_id = %s AND message_id LIKE %s LIMIT 1",
                                (tenant_id, PREFIX + "%")).fetchone():
                    continue
                policy = TenantPolicy.model_validate(load_policy(conn, tenant_id))
            analysed = _analysed(samples, policy)
            records, when = [], []
            for day in range(days, 0, -1):
                start = (now - timedelta(days=day)).replace(hour=0, minute=0, second=0, microsecond=0)
                for n in range(rng.randint(20, 60)):
                    label, verdict, parsed = rng.choice(analysed)
                    recipient = f"{rng.choice(MAILBOXES)}@{domain}"
                    records.append(VerdictRecord(
                        tenant_id=tenant_id, message_id=f"{PREFIX}{start:%Y%m%d}:{n}:{label}"[:500],
                        verdict=str(getattr(verdict.verdict, "value", verdict.verdict)), score=verdict.score,
                        reasons=[r.model_dump() for r in verdict.reasons], parse_problems=[],
                        subject=verdict.subject, sender=verdict.sender, submitted_at=start, sqs_sent_at=None,
                        trace=extract_trace(parsed, [recipient])))
                    when.append(start + timedelta(seconds=rng.randint(0, 86_399)))
            with conn.transaction():
                save_verdicts(conn, records)
                set_tenant(conn, tenant_id)
                # dated back, as if each had come then (its trace and terms too)
                dated = ([r.message_id for r in records], when, tenant_id)
                conn.execute("UPDATE verdicts v SET committed_at = u.at FROM unnest(%s::text[], %s::timestamptz[]) "
                             "u(id, at) WHERE v.tenant_id = %s AND v.message_id = u.id", dated)
                conn.execute("UPDATE verdict_traces t SET expires_at = t.expires_at - (t.committed_at - u.at), "
                             "committed_at = u.at FROM unnest(%s::text[], %s::timestamptz[]) u(id, at) "
                             "WHERE t.tenant_id = %s AND t.message_id = u.id", dated)
                conn.execute("UPDATE verdict_trace_terms k SET committed_at = t.committed_at FROM verdict_traces t "
                             "WHERE k.trace_id = t.trace_id AND t.tenant_id = %s AND t.message_id LIKE %s",
                             (tenant_id, PREFIX + "%"))
                if tenant_id == quarantine_tenant:
                    flagged = [(r, at) for r, at in zip(records, when, strict=True)
                               if r.verdict in ("phishing", "malware")]
                    for i, (record, at) in enumerate(flagged):
                        record_quarantine(conn, QuarantineEntry(
                            tenant_id=tenant_id, message_id=record.message_id, connection_id="demo-mailbox",
                            provider_config_key="microsoft", provider_message_id=f"junk-{i}"))
                        released = at + timedelta(hours=3) if i % 9 == 4 else None
                        conn.execute("UPDATE mailbox_quarantines SET quarantined_at = %s, state = %s, "
                                     "released_at = %s, released_by = %s WHERE tenant_id = %s AND message_id = %s",
                                     (at + timedelta(minutes=1), "released" if released else "quarantined", released,
                                      "analyst@msp.example" if released else None, tenant_id, record.message_id))
            written += len(records)
    return written
