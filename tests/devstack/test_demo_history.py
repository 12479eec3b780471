"""`make serve`'s dashboards are not empty: four weeks of the sample mail, analysed with each demo
tenant's policy and dated back, give every section of a tenant's report something to show; seeded
once per database."""

from __future__ import annotations

from datetime import UTC, datetime

from swordfish.reports.model import parse_period
from swordfish.store.database import Database, proxy_connect
from swordfish.store.reports import tenant_report
from swordfish.store.tenants import ensure_tenant

from devstack.demo_history import demo_samples, seed_report_history
from devstack.stack import DEMO_TENANTS

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_the_demo_tenants_reports_have_something_in_every_section(database):
    database.reset()
    with proxy_connect(database.owner_url) as conn:
        for tenant_id, spec in DEMO_TENANTS.items():
            with conn.transaction():
                ensure_tenant(conn, tenant_id, spec["name"], spec["policy"])
    tenants = {"acme-corp": "acme-corp.com", "globex": "globex.com"}
    written = seed_report_history(database.owner_url, tenants, demo_samples(), now=NOW)
    assert written > 2 * 28 * 20
    assert seed_report_history(database.owner_url, tenants, demo_samples(), now=NOW) == 0  # once
    pool = Database(database.app_url, max_size=1)
    try:
        acme = tenant_report(pool, "acme-corp", parse_period(None, None, today=NOW.date()), now=NOW)
        month = tenant_report(pool, "acme-corp", parse_period("2026-11-09", "2026-12-06", today=NOW.date()), now=NOW)
    finally:
        pool.close()
    assert acme.total > 7 * 20 and acme.threats > 0 and acme.previous_total > 0
    assert len([v for v in acme.volume if v.total]) == 6  # today has none yet: the history ends yesterday
    assert acme.recipients and all(r.name.endswith("@acme-corp.com") for r in acme.recipients)
    assert sum(k.count for k in acme.kinds) == acme.threats
    assert month.brands and month.vips, (month.brands, month.vips)
    assert month.remediation.quarantined > 0 and month.remediation.released > 0
