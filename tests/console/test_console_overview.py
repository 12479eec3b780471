"""The overview's numbers are what they say: each column names its period, "quarantined" counts what
Swordfish moved to Junk Email in that period (not every phishing verdict ever), "released" the
releases in that period."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg

from tests.console.helpers import add_verdict, get

ADMIN = "admin@msp.example"


def _quarantine(console, message_id: str, at: datetime, *, released_at: datetime | None = None) -> None:
    with psycopg.connect(console.superuser_url, autocommit=True) as conn:
        conn.execute("INSERT INTO mailbox_quarantines (tenant_id, message_id, connection_id, provider_config_key, "
                     "provider_message_id, state, quarantined_at, released_at, released_by) "
                     "VALUES ('acme-corp', %s, 'c', 'microsoft', 'p', %s, %s, %s, %s)",
                     (message_id, "released" if released_at else "quarantined", at, released_at,
                      "ana@msp.example" if released_at else None))
        if released_at:
            conn.execute("INSERT INTO verdict_releases (tenant_id, message_id, actor, created_at) "
                         "VALUES ('acme-corp', %s, 'ana@msp.example', %s)", (message_id, released_at))


def _cells(html: str, tenant: str) -> dict[str, str]:
    head = re.findall(r"<th[^>]*>([^<]+)</th>", re.search(r"<thead>(.*?)</thead>", html, re.S).group(1))
    row = re.search(rf'<tr>\s*<td><a[^>]*>[^<]*</a> <span class="muted">{tenant}</span>.*?</tr>', html, re.S).group(0)
    cells = re.findall(r'<td[^>]*>([^<]*)</td>', row)
    return dict(zip(head[1:], cells, strict=False))


def test_held_counts_what_was_quarantined_in_the_period_and_every_column_names_it(console):
    now = datetime.fromtimestamp(console.clock.now, UTC)
    for i in range(3):  # phishing verdicts that were never quarantined (no mailbox): nothing is held
        add_verdict(console.owner_url, "acme-corp", f"p-{i}", verdict="phishing")
    _quarantine(console, "q-new", now - timedelta(hours=2))
    _quarantine(console, "q-old", now - timedelta(hours=48))  # before the period
    _quarantine(console, "q-released", now - timedelta(hours=3), released_at=now - timedelta(hours=1))
    console.add_user(ADMIN, "msp_admin", [])
    client = console.client()
    console.login(client, ADMIN)
    html = get(client, "/console/").get_data(as_text=True)
    cells = _cells(html, "acme-corp")
    assert cells["quarantined (24 h)"] == "2" and cells["released (24 h)"] == "1"
    assert cells["held now"] == "2"  # q-new and q-old: in Junk Email today, whenever they were moved
    assert cells["phishing (24 h)"] == "0"  # the verdicts were stored at the database's now, a month before the clock
    headers = [h for h in re.findall(r"<th[^>]*>([^<]+)</th>", html) if h.strip()]
    assert all("24 h" in h or h in ("Tenant", "held now") for h in headers), headers
