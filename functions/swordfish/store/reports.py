"""A tenant's report for a period (issue 28): every figure is an SQL aggregate, read in one
transaction scoped to the tenant (row-level security holds it whatever a query says).

Days are UTC days (the transaction's TimeZone is set to UTC, so generate_series and ::date agree
with ``ReportPeriod``). What was remediated is counted in one place (``_REMEDIATION``): the
quarantine ledger today; bulk response jobs add their outcomes there.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
import psycopg.rows

from swordfish.reports.model import (
    THREAT_KINDS,
    DayVolume,
    KindTrend,
    Ranked,
    Remediation,
    ReportPeriod,
    TenantReport,
    change_percent,
)
from swordfish.store.database import Database

TOP = 10  # rows in each ranking

# Counted per day first (one range scan of the tenant's index), then laid on the calendar so a day
# without mail is a 0 (a join of each day to its range would rescan the index from that day on).
_VOLUME = """
WITH per_day AS (
  SELECT date_trunc('day', committed_at) AS d, count(*) AS total, count(*) FILTER (WHERE verdict <> 'clean') AS threats
  FROM verdicts
  WHERE tenant_id = %(tenant)s AND committed_at >= %(since)s AND committed_at < %(until)s
  GROUP BY 1
)
SELECT s::date AS day, coalesce(p.total, 0) AS total, coalesce(p.threats, 0) AS threats
FROM generate_series(%(since)s::timestamptz, %(until)s::timestamptz - interval '1 day', interval '1 day') AS s
LEFT JOIN per_day p ON p.d = s
ORDER BY s
"""

# This period and the one before it, in one pass over the (tenant, committed_at) index.
_KINDS = """
SELECT verdict, count(*) FILTER (WHERE committed_at >= %(since)s) AS count,
       count(*) FILTER (WHERE committed_at < %(since)s) AS previous
FROM verdicts
WHERE tenant_id = %(tenant)s AND committed_at >= %(previous_since)s AND committed_at < %(until)s
GROUP BY verdict
"""

# Whom the threats were addressed to: the envelope recipients (who it was delivered to), else the
# header's when the submission named none; each address once per message.
_RECIPIENTS = """
SELECT r AS name, count(*) AS messages
FROM verdict_traces t
CROSS JOIN LATERAL (SELECT DISTINCT x FROM unnest(CASE WHEN cardinality(t.envelope_recipients) > 0
                                                     THEN t.envelope_recipients ELSE t.header_recipients END) x) u(r)
WHERE t.tenant_id = %(tenant)s AND t.committed_at >= %(since)s AND t.committed_at < %(until)s
  AND t.verdict <> 'clean'
GROUP BY r ORDER BY messages DESC, r LIMIT %(top)s
"""

# Impersonated brands and VIPs, read from the reasons' evidence as analysis/scoring.py words it:
#   BRAND_IMPERSONATION    display name 'PayPal Support' names paypal but mail is from evil.example
#   BRAND_IN_SUBJECT       subject names paypal, mail is from evil.example
#   BRAND_CREDENTIAL_LURE  names paypal and asks for credentials, mail is from evil.example
#   VIP_IMPERSONATION      display name 'Jane Boss' from outside domain evil.example
# A brand is one token of analysis/data/brands.py; a display name is Python's repr (in quotes), and
# the domain after it holds no space, so a name is what lies between the quotes whatever it holds.
# String functions, not regular expressions: PostgreSQL's took 50 µs an evidence (1.9 s for a month
# of a busy tenant), these under 1 µs. Evidence cut at 300 characters mid-name matches no shape: left out.
_IMPERSONATED = """
SELECT kind, name, messages FROM (
  SELECT kind, name, count(DISTINCT message_id) AS messages,
         row_number() OVER (PARTITION BY kind ORDER BY count(DISTINCT message_id) DESC, name) AS rank
  FROM (
    SELECT v.message_id, CASE WHEN e.reason = 'VIP_IMPERSONATION' THEN 'vip' ELSE 'brand' END AS kind,
           CASE
             WHEN e.reason = 'VIP_IMPERSONATION' AND e.ev LIKE 'display name _%% from outside domain %%'
               THEN substr(e.ev, 15, length(e.ev) - 15
                                     - length(' from outside domain ' || split_part(e.ev, ' from outside domain ', -1)))
             WHEN e.reason = 'BRAND_IMPERSONATION' AND e.ev LIKE 'display name %% names %% but mail is from %%'
               THEN split_part(split_part(e.ev, ' but mail is from ', -2), ' ', -1)
             WHEN e.reason = 'BRAND_IN_SUBJECT' AND e.ev LIKE 'subject names %%, mail is from %%'
               THEN split_part(substr(e.ev, 15), ',', 1)
             WHEN e.reason = 'BRAND_CREDENTIAL_LURE' AND e.ev LIKE 'names %% and asks for credentials%%'
               THEN split_part(e.ev, ' ', 2)
           END AS name
    FROM verdicts v
    CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(v.reasons) = 'array'
                                                 THEN v.reasons ELSE '[]'::jsonb END) r
    CROSS JOIN LATERAL (SELECT r->>'name' AS reason, r->>'evidence' AS ev) e
    WHERE v.tenant_id = %(tenant)s AND v.committed_at >= %(since)s AND v.committed_at < %(until)s
      AND v.verdict <> 'clean'
      AND e.reason IN ('VIP_IMPERSONATION', 'BRAND_IMPERSONATION', 'BRAND_IN_SUBJECT', 'BRAND_CREDENTIAL_LURE')
  ) found
  WHERE name <> ''
  GROUP BY kind, name
) ranked WHERE rank <= %(top)s ORDER BY kind, rank
"""

# What was remediated. The one query to extend when bulk response jobs land (their per-mailbox
# outcomes: add their counts here, the report and its renderers take them from Remediation).
_REMEDIATION = """
SELECT count(*) FILTER (WHERE quarantined_at >= %(since)s AND quarantined_at < %(until)s) AS quarantined,
       count(*) FILTER (WHERE released_at >= %(since)s AND released_at < %(until)s) AS released,
       count(*) FILTER (WHERE quarantined_at < %(until)s AND (released_at IS NULL OR released_at >= %(until)s))
         AS held
FROM mailbox_quarantines WHERE tenant_id = %(tenant)s
"""


def tenant_report(database: Database, tenant_id: str, period: ReportPeriod, *, now: datetime) -> TenantReport | None:
    """The report of ``tenant_id`` for ``period``; None when there is no such tenant (for this caller)."""
    previous = period.previous()
    params = {"tenant": tenant_id, "since": period.since, "until": period.until,
              "previous_since": previous.since, "top": TOP}
    with database.tenant_transaction(tenant_id) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        conn.execute("SELECT set_config('TimeZone', 'UTC', true)")
        tenant = cur.execute("SELECT name FROM tenants WHERE tenant_id = %s", (tenant_id,)).fetchone()
        if tenant is None:
            return None
        volume = [DayVolume(**row) for row in cur.execute(_VOLUME, params).fetchall()]
        kinds = {row["verdict"]: row for row in cur.execute(_KINDS, params).fetchall()}
        recipients = [Ranked(**row) for row in cur.execute(_RECIPIENTS, params).fetchall()]
        impersonated = cur.execute(_IMPERSONATED, params).fetchall()
        remediation = Remediation(**cur.execute(_REMEDIATION, params).fetchone())
    trends = []
    for kind in THREAT_KINDS:
        row = kinds.get(kind) or {"count": 0, "previous": 0}
        trends.append(KindTrend(kind=kind, count=row["count"], previous=row["previous"],
                                change_percent=change_percent(row["count"], row["previous"])))
    return TenantReport(
        tenant_id=tenant_id, tenant_name=tenant["name"], period=period, previous_period=previous, generated_at=now,
        total=sum(v.total for v in volume), previous_total=sum(int(r["previous"]) for r in kinds.values()),
        threats=sum(v.threats for v in volume), volume=volume, kinds=trends, recipients=recipients,
        brands=[Ranked(name=r["name"], messages=r["messages"]) for r in impersonated if r["kind"] == "brand"],
        vips=[Ranked(name=r["name"], messages=r["messages"]) for r in impersonated if r["kind"] == "vip"],
        remediation=remediation)
