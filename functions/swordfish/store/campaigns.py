"""Campaigns: one lure reaching several tenants, grouped by what their copies share.

After each batch's verdicts are committed, ``observe`` takes the batch's indicators (link domains,
attachment SHA-256s, sender domains other than free mail, the digest of the normalised subject and
body) and counts, per indicator, the distinct tenants whose traces hold it within ``WINDOW``. An
indicator seen by ``MIN_TENANTS`` tenants, with at least one flagged copy among them and flagged
copies making at least ``MIN_FLAGGED_SHARE`` of them (so a domain every mail links to, like a
mailbox provider's, is not a campaign), becomes a campaign row at once: the batch that brings the
third tenant groups it, within its own invocation. Each batch counts after its own commit, so of
two batches racing with the third and fourth tenants, the later committer sees both.

Who is in a campaign is read from the traces when it is shown (``members``), so it is always
current: tenants, mailboxes, first and last seen, verdict mix, reasons, and the copies that scored
clean. Campaign rows are MSP data (readable in an MSP-wide scope only).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import psycopg.rows

from swordfish.analysis.data.hosts import FREEMAIL_DOMAINS
from swordfish.analysis.trace import ATTACHMENT_SHA256, LINK_DOMAIN, TraceFields, term_key
from swordfish.store.traces import ALL_TENANTS, set_scope

WINDOW = timedelta(days=7)
MIN_TENANTS = 3
MIN_FLAGGED_SHARE = 0.1
SAMPLE = 300  # the newest copies per indicator that are counted: a ubiquitous indicator costs no more
COMMON_TTL = timedelta(minutes=10)  # an everywhere-and-clean indicator is not counted again for this long
MAX_COMMON = 100_000
FLAGGED = ("suspicious", "phishing", "malware")
MAX_INDICATORS_PER_MESSAGE = 30
MAX_MEMBERS = 1000

KINDS = ("link_domain", "attachment_sha256", "sender_domain", "content")


@dataclass(frozen=True)
class Hit:
    """A stored verdict's part in grouping."""

    tenant_id: str
    committed_at: datetime
    trace: TraceFields


def indicators(trace: TraceFields) -> set[tuple[str, str]]:
    out = {("link_domain", d) for d in trace.link_domains[:MAX_INDICATORS_PER_MESSAGE]}
    out |= {("attachment_sha256", h) for h in trace.attachment_sha256[:MAX_INDICATORS_PER_MESSAGE]}
    if trace.sender_domain and trace.sender_domain not in FREEMAIL_DOMAINS:
        out.add(("sender_domain", trace.sender_domain))
    if trace.content_digest:
        out.add(("content", trace.content_digest))
    return out


def _sample(kind: str, indicator: str) -> tuple[str, list]:
    """FROM/WHERE of the traces holding one indicator, from ``%s`` (time) on, newest first."""
    if kind in ("link_domain", "attachment_sha256"):
        column = "link_domains" if kind == "link_domain" else "attachment_sha256"
        term = term_key(LINK_DOMAIN if kind == "link_domain" else ATTACHMENT_SHA256, indicator)
        return (f"FROM verdict_trace_terms k JOIN verdict_traces t ON t.trace_id = k.trace_id "
                f"WHERE k.term = %s AND %s = ANY(t.{column}) AND k.committed_at >= %s "
                f"ORDER BY k.committed_at DESC"), [term, indicator]
    column = "sender_domain" if kind == "sender_domain" else "content_digest"
    return (f"FROM verdict_traces t WHERE t.{column} = %s AND t.committed_at >= %s "
            f"ORDER BY t.committed_at DESC"), [indicator]


# One statement per kind of index for a whole batch: each indicator's newest SAMPLE copies counted
# in a LATERAL subquery (an index probe each), so a batch costs three round trips, not one per indicator.
_COUNT = """
SELECT u.ord, count(DISTINCT s.tenant_id), count(*) FILTER (WHERE s.verdict = ANY(%s)), count(*),
       min(s.committed_at), max(s.committed_at)
FROM unnest(%s::{type}[], %s::timestamptz[]) WITH ORDINALITY AS u(key, since, ord)
CROSS JOIN LATERAL ({inner} LIMIT %s) s
GROUP BY u.ord
"""
_INNER = {
    "term": "SELECT t.tenant_id, t.verdict, t.committed_at FROM verdict_trace_terms k JOIN verdict_traces t "
            "ON t.trace_id = k.trace_id WHERE k.term = u.key AND k.committed_at >= u.since ORDER BY k.committed_at DESC",
    "sender_domain": "SELECT t.tenant_id, t.verdict, t.committed_at FROM verdict_traces t WHERE t.sender_domain = u.key "
                     "AND t.committed_at >= u.since ORDER BY t.committed_at DESC",
    "content": "SELECT t.tenant_id, t.verdict, t.committed_at FROM verdict_traces t WHERE t.content_digest = u.key "
               "AND t.committed_at >= u.since ORDER BY t.committed_at DESC",
}


def _counts(conn: psycopg.Connection, wanted: list[tuple[str, str, datetime]]) -> dict[tuple[str, str], dict]:
    """(kind, indicator, since) -> tenants, flagged, copies, first, last (of the newest SAMPLE copies)."""
    out: dict[tuple[str, str], dict] = {}
    groups: dict[str, list[tuple[str, str, datetime]]] = {}
    for kind, indicator, since in wanted:
        groups.setdefault("term" if kind in ("link_domain", "attachment_sha256") else kind, []).append(
            (kind, indicator, since))
    for group, items in groups.items():
        if group == "term":
            keys = [term_key(LINK_DOMAIN if k == "link_domain" else ATTACHMENT_SHA256, i) for k, i, _ in items]
        else:
            keys = [i for _, i, _ in items]
        sql = _COUNT.format(type="bigint" if group == "term" else "text", inner=_INNER[group])
        for ord_, tenants, flagged, copies, first, last in conn.execute(
                sql, (list(FLAGGED), keys, [since for _, _, since in items], SAMPLE)):
            kind, indicator, _ = items[ord_ - 1]
            out[(kind, indicator)] = {"tenants": tenants, "flagged": flagged, "copies": copies, "first": first,
                                      "last": last}
    return out


class Grouped(list):
    """The ids of the campaigns created or brought up to date (a list), and ``grown``: the ids of
    those whose tenant count rose (a new campaign, or a lure reaching one more client): what the MSP
    is alerted about, once per count."""

    def __init__(self, touched: Iterable[int] = (), grown: Iterable[int] = ()):
        super().__init__(touched)
        self.grown = list(grown)


def observe(conn: psycopg.Connection, hits: Iterable[Hit], now: datetime,
            common: dict[tuple[str, str], datetime] | None = None) -> Grouped:
    """Group what these stored verdicts share with other tenants' (in the caller's transaction,
    after the verdicts committed). Returns the ids of campaigns created or brought up to date.

    ``common``: indicators known to be everywhere and mostly clean (their sample was full and
    hardly flagged), with the time until which they are not counted again: a CDN or a mailbox
    provider's domain in every message would otherwise be counted for every batch. Updated here."""
    latest: dict[tuple[str, str], datetime] = {}
    for hit in hits:
        for key in indicators(hit.trace):
            latest[key] = max(latest.get(key, hit.committed_at), hit.committed_at)
    if common is not None:
        latest = {k: v for k, v in latest.items() if common.get(k, now) <= now}
    if not latest:
        return Grouped()
    set_scope(conn, ALL_TENANTS)
    counted = _counts(conn, [(kind, indicator, at - WINDOW) for (kind, indicator), at in sorted(latest.items())])
    touched, grown = [], []
    for (kind, indicator), counts in sorted(counted.items()):
        if counts["flagged"] < MIN_FLAGGED_SHARE * counts["copies"] and common is not None:
            if counts["copies"] >= SAMPLE and len(common) < MAX_COMMON:
                common[(kind, indicator)] = now + COMMON_TTL
        if (counts["tenants"] < MIN_TENANTS or counts["flagged"] == 0
                or counts["flagged"] < MIN_FLAGGED_SHARE * counts["copies"]):
            continue
        before = conn.execute("SELECT tenant_count FROM campaigns WHERE kind = %s AND indicator = %s",
                              (kind, indicator[:300])).fetchone()
        row = conn.execute(
            "INSERT INTO campaigns (kind, indicator, first_seen, last_seen, tenant_count, grouped_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (kind, indicator) DO UPDATE SET "
            "first_seen = least(campaigns.first_seen, excluded.first_seen), "
            "last_seen = greatest(campaigns.last_seen, excluded.last_seen), "
            "tenant_count = greatest(campaigns.tenant_count, excluded.tenant_count), updated_at = excluded.updated_at "
            "RETURNING campaign_id",
            (kind, indicator[:300], counts["first"], counts["last"], counts["tenants"], now, now)).fetchone()
        touched.append(row[0])
        if before is None or counts["tenants"] > before[0]:
            grown.append(row[0])
    return Grouped(touched, grown)


def list_campaigns(conn: psycopg.Connection, *, limit: int = 50, before_id: int | None = None) -> list[dict]:
    """Newest activity first (MSP-wide scope)."""
    set_scope(conn, ALL_TENANTS)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "SELECT * FROM campaigns WHERE (%s::bigint IS NULL OR campaign_id < %s) "
            "ORDER BY last_seen DESC, campaign_id DESC LIMIT %s", (before_id, before_id, limit)).fetchall()


def get_campaign(conn: psycopg.Connection, campaign_id: int) -> dict | None:
    set_scope(conn, ALL_TENANTS)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("SELECT * FROM campaigns WHERE campaign_id = %s", (campaign_id,)).fetchone()


def members(conn: psycopg.Connection, campaign: dict) -> list[dict]:
    """The copies of a campaign (newest first, at most ``MAX_MEMBERS``) within its window."""
    set_scope(conn, ALL_TENANTS)
    body, params = _sample(campaign["kind"], campaign["indicator"])
    since = campaign["first_seen"] - WINDOW
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            f"SELECT t.tenant_id, t.message_id, t.committed_at, t.verdict, t.score, t.reasons, t.subject, t.sender, "
            f"t.envelope_recipients, t.header_recipients {body} LIMIT %s", [*params, since, MAX_MEMBERS]).fetchall()


def summary(campaign: dict, copies: list[dict]) -> dict:
    """What an analyst needs first: tenants, mailboxes, first and last seen, verdict mix, the
    reasons that caught it, and the copies that scored clean (the ones that were delivered)."""
    mailboxes = sorted({(c["tenant_id"], a) for c in copies
                        for a in (c["envelope_recipients"] or c["header_recipients"] or [])})
    reasons = Counter(r for c in copies if c["verdict"] != "clean" for r in (c["reasons"] or []))
    return {
        "campaign_id": campaign["campaign_id"], "kind": campaign["kind"], "indicator": campaign["indicator"],
        "grouped_at": campaign["grouped_at"],
        "tenants": sorted({c["tenant_id"] for c in copies}),
        "mailboxes": [{"tenant_id": t, "address": a} for t, a in mailboxes[:MAX_MEMBERS]],
        "first_seen": min((c["committed_at"] for c in copies), default=campaign["first_seen"]),
        "last_seen": max((c["committed_at"] for c in copies), default=campaign["last_seen"]),
        "copies": len(copies),
        "verdict_mix": dict(Counter(c["verdict"] for c in copies)),
        "reasons": dict(reasons.most_common(20)),
        "clean_copies": [{k: c[k] for k in ("tenant_id", "message_id", "committed_at", "score", "subject")}
                         | {"recipients": c["envelope_recipients"] or c["header_recipients"]}
                         for c in copies if c["verdict"] == "clean"],
    }


def utc_now() -> datetime:
    return datetime.now(UTC)


class CampaignGrouper:
    """The pipeline's ``CampaignObserver`` on PostgreSQL: its own short transaction after a batch
    committed (a failure costs the grouping of this batch, never its verdicts; the next copy of the
    lure groups it)."""

    def __init__(self, database, clock: Callable[[], datetime] = utc_now):
        self.database, self.clock = database, clock
        self.common: dict[tuple[str, str], datetime] = {}  # per process: see ``observe``

    def observe(self, hits: list[Hit]) -> Grouped:
        now = self.clock()
        if len(self.common) >= MAX_COMMON:
            self.common = {k: until for k, until in self.common.items() if until > now}
        with self.database.connection() as conn, conn.transaction():
            return observe(conn, hits, now, self.common)

    def summaries(self, campaign_ids: Iterable[int]) -> list[dict]:
        """What the campaign alert says of each (``summary``), read in one transaction."""
        out = []
        with self.database.connection() as conn, conn.transaction():
            for campaign_id in campaign_ids:
                campaign = get_campaign(conn, campaign_id)
                if campaign is not None:
                    out.append(summary(campaign, members(conn, campaign)))
        return out
