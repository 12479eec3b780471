"""The console's search and campaign pages (issue 28): what each role sees (MSP admins every tenant,
analysts their own, whatever the filters say), bad input as a 400, the CSV export (audited), the
campaign page with its clean copies; and a person searching in Chromium, from the form to the
verdict and on to the campaign."""

from __future__ import annotations

import csv
import io

import psycopg
from swordfish.store.campaigns import CampaignGrouper, Hit
from swordfish.store.database import Database, proxy_connect
from swordfish.store.tenants import create_tenant
from swordfish.store.verdicts import save_verdicts

from tests.console.helpers import get
from tests.console.test_console_admin_browser import _by, _wait, sign_in
from tests.trace.conftest import record

ADMIN, ANALYST = "admin@msp.example", "analyst@acme.example"
LURE = dict(link_domains=["payroll-update.example"], sender_domain="payroll-update.example",
            urls=["https://payroll-update.example/login"])


def seed(console):
    """The lure in three tenants (globex's copy scored clean) and an unrelated acme message; grouped
    as the pipeline would after the commit."""
    with proxy_connect(console.owner_url) as conn:
        with conn.transaction():
            create_tenant(conn, "initech", "Initech", {})
        records = [record("acme-corp", "acme-lure", subject="Payroll update", envelope_recipients=["pat@acme.example"],
                          **LURE),
                   record("globex", "globex-lure", verdict="clean", score=1.5, reasons=(), subject="Payroll update",
                          envelope_recipients=["gus@globex.example"], **LURE),
                   record("initech", "initech-lure", subject="Payroll update",
                          envelope_recipients=["ivy@initech.example"], **LURE),
                   record("acme-corp", "acme-other", verdict="clean", reasons=(), subject="Lunch",
                          link_domains=["lunch.example"], envelope_recipients=["pat@acme.example"])]
        with conn.transaction():
            stored = save_verdicts(conn, records)
    pool = Database(console.owner_url, max_size=1)
    try:
        CampaignGrouper(pool).observe([Hit(s.tenant_id, s.committed_at, r.trace)
                                       for s, r in zip(stored, records, strict=True)])
    finally:
        pool.close()


def signed_in(console, email, role, tenants):
    console.add_user(email, role, tenants)
    client = console.client()
    assert console.login(client, email).status_code == 302
    return client


def test_an_analyst_finds_only_their_tenants_mail_and_an_admin_every_tenants(console):
    seed(console)
    analyst = signed_in(console, ANALYST, "analyst", ["acme-corp"])
    page = get(analyst, "/console/search?link_domain=payroll-update.example").get_data(as_text=True)
    assert "/console/tenants/acme-corp/verdicts/acme-lure" in page
    assert "globex-lure" not in page and "initech-lure" not in page
    page = get(analyst, "/console/search?link_domain=payroll-update.example&tenant=globex").get_data(as_text=True)
    assert "Nothing matches" in page
    response = get(analyst, "/console/search.csv?link_domain=payroll-update.example")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert response.status_code == 200 and [r[1] for r in rows[1:]] == ["acme-lure"]
    with psycopg.connect(console.superuser_url) as conn:
        assert conn.execute("SELECT actor FROM console_audit WHERE action = 'search.export'").fetchone()[0] == ANALYST
    assert get(analyst, "/console/campaigns").status_code == 403

    admin = signed_in(console, ADMIN, "msp_admin", [])
    page = get(admin, "/console/search?link_domain=payroll-update.example&verdict=clean&verdict=phishing"
                      ).get_data(as_text=True)
    assert all(m in page for m in ("acme-lure", "globex-lure", "initech-lure")) and "acme-other" not in page
    page = get(admin, "/console/search?recipient=ivy%40initech.example").get_data(as_text=True)
    assert "initech-lure" in page and "acme-lure" not in page


def test_bad_search_input_is_a_400_not_a_crash(console):
    admin = signed_in(console, ADMIN, "msp_admin", [])
    for query in ("sending_ip=1.2.3", "verdict=evil", "attachment_sha256=zz", "min_score=x", "cursor=%00",
                  "cursor=bm9uc2Vuc2U", "since=yesterday", "recipient=a%00b", "url=nope", "tenant=..%2F",
                  "min_score=5&max_score=1"):
        assert get(admin, f"/console/search?{query}").status_code == 400, query
    assert get(admin, "/console/campaigns/99999").status_code == 404
    assert get(admin, "/console/campaigns/99999999999999999999999").status_code == 404


def test_a_person_searches_opens_the_verdict_and_the_campaign(console, served, browser):
    seed(console)
    console.add_user(ADMIN, "msp_admin", [])
    driver = browser
    sign_in(driver, served, console, ADMIN)
    driver.find_element(_by("ID"), "nav-search").click()
    _wait(driver, lambda d: d.find_elements(_by("ID"), "search-form"))
    driver.find_element(_by("ID"), "s-recipient").send_keys("gus@globex.example")
    driver.find_element(_by("ID"), "search").click()
    _wait(driver, lambda d: d.find_elements(_by("ID"), "results"))
    results = driver.find_element(_by("ID"), "results")
    assert "globex" in results.text and "payroll-update.example" in results.text and "initech" not in results.text
    results.find_element(_by("CSS_SELECTOR"), "a.subject").click()
    _wait(driver, lambda d: "/console/tenants/globex/verdicts/globex-lure" in d.current_url)

    driver.find_element(_by("ID"), "nav-campaigns").click()
    _wait(driver, lambda d: d.find_elements(_by("ID"), "campaigns"))
    links = driver.find_elements(_by("CSS_SELECTOR"), "a.campaign")
    assert {a.text for a in links} == {"payroll-update.example"}
    links[0].click()
    _wait(driver, lambda d: d.find_elements(_by("ID"), "clean-copies"))
    assert driver.find_element(_by("ID"), "tenants").text == "acme-corp, globex, initech"
    clean = driver.find_element(_by("ID"), "clean-copies").text
    assert "globex" in clean and "gus@globex.example" in clean and "acme" not in clean
