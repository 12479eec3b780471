"""Response in bulk in the console (issue 28): an MSP admin quarantines a campaign's copies in every
mailbox and blocks its indicators; an analyst releases from their tenant's quarantine list and acts
on searches of their own tenant only; progress per tenant; refusals as 400/403/404; and a person
doing it in Chromium, from the campaign to the job's progress and back through the quarantine list."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from swordfish.integrations.nango import NangoClient
from swordfish.pipeline.response import ResponseWorker
from swordfish.resilience.circuit_breaker import BreakerRegistry, create_breaker_table, dynamodb_client_from_settings
from swordfish.store.campaigns import CampaignGrouper, Hit
from swordfish.store.database import Database, proxy_connect
from swordfish.store.response_jobs import Bucket
from swordfish.store.tenants import create_tenant
from swordfish.store.verdicts import save_verdicts

from devstack.nango_standin import NangoStandin
from tests.console.helpers import get, post_form
from tests.console.test_console_admin_browser import _by, _wait, sign_in
from tests.trace.conftest import record

ADMIN, ANALYST = "admin@msp.example", "analyst@acme.example"
LURE = dict(link_domains=["invoice-portal.example"], sender_domain="invoice-portal.example")
SECRET = "console-response-secret"
RAW = b"From: a@invoice-portal.example\r\nSubject: Invoice\r\n\r\nPay\r\n"


@pytest.fixture()
def nango():
    with NangoStandin(secret_key=SECRET) as server:
        yield server


@pytest.fixture()
def worker(console, nango, moto_server, settings_env):
    """The job worker on the console's database, the stand-in and a breaker table of its own."""
    table = f"breakers-{uuid.uuid4().hex[:10]}"
    settings = settings_env(aws_endpoint_url=moto_server.url, breaker_table_name=table)
    create_breaker_table(dynamodb_client_from_settings(settings), table)
    pool = Database(console.owner_url, max_size=1)
    yield ResponseWorker(pool, NangoClient(nango.url, SECRET, timeout=1), bucket=Bucket(100, 100),
                         registry=BreakerRegistry(settings=settings))
    pool.close()


def seed(console, nango):
    """The lure in three tenants' mailboxes, grouped into a campaign as the pipeline would."""
    with proxy_connect(console.owner_url) as conn:
        with conn.transaction():
            create_tenant(conn, "initech", "Initech", {})
        records = []
        for tenant in ("acme-corp", "globex", "initech"):
            message = f"{tenant}-invoice"
            nango.add_message(f"conn-{tenant}", f"graph-{message}", RAW)
            rec = record(tenant, message, subject="Invoice overdue", envelope_recipients=[f"ap@{tenant}.example"],
                         **LURE)
            rec.submitted_at = datetime.now(UTC)
            rec.mailbox = (f"conn-{tenant}", "microsoft", f"graph-{message}")
            records.append(rec)
        with conn.transaction():
            stored = save_verdicts(conn, records)
    pool = Database(console.owner_url, max_size=1)
    try:
        grouped = CampaignGrouper(pool).observe([Hit(s.tenant_id, s.committed_at, r.trace)
                                                 for s, r in zip(stored, records, strict=True)])
    finally:
        pool.close()
    with psycopg.connect(console.superuser_url) as conn:
        return conn.execute("SELECT campaign_id FROM campaigns WHERE kind = 'link_domain' AND campaign_id = ANY(%s)",
                            (list(grouped),)).fetchone()[0]


def signed_in(console, email, role, tenants):
    console.add_user(email, role, tenants)
    client = console.client()
    assert console.login(client, email).status_code == 302
    return client


def job_id_of(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def test_an_admin_quarantines_a_campaign_everywhere_and_blocks_its_indicators(console, nango, worker):
    campaign = seed(console, nango)
    admin = signed_in(console, ADMIN, "msp_admin", [])
    page = f"/console/campaigns/{campaign}"
    assert "respond-form" in get(admin, page).get_data(as_text=True)
    refused = post_form(admin, page, "/console/responses", {"source": "campaign", "campaign_id": campaign,
                                                            "action": "delete"})
    assert refused.status_code == 400 and "confirmation" in refused.get_data(as_text=True)
    job = job_id_of(post_form(admin, page, "/console/responses",
                              {"source": "campaign", "campaign_id": campaign, "action": "quarantine", "note": "lure"}))
    assert "0/3" in get(admin, f"/console/responses/{job}").get_data(as_text=True)
    assert sum(worker.run().counts.values()) == 3
    view = get(admin, f"/console/responses/{job}").get_data(as_text=True)
    assert 'id="progress">3/3' in view and "ap@globex.example" in view
    assert sorted(q.connection_id for q in nango.quarantined) == ["conn-acme-corp", "conn-globex", "conn-initech"]
    assert f"#{job}" in get(admin, "/console/responses").get_data(as_text=True)

    blocked = post_form(admin, page, "/console/blocks", {"campaign_id": campaign, "tenant": "globex",
                                                         "i": "link_domain|invoice-portal.example"})
    assert blocked.status_code == 302
    listing = get(admin, "/console/blocks").get_data(as_text=True)
    assert "invoice-portal.example" in listing and "globex" in listing
    assert post_form(admin, page, "/console/blocks", {"campaign_id": campaign, "i": "link_domain|other.example"}
                     ).status_code == 400
    with psycopg.connect(console.superuser_url) as conn:
        block_id, = conn.execute("SELECT block_id FROM indicator_blocks").fetchone()
        actions = [r[0] for r in conn.execute("SELECT action FROM console_audit WHERE action LIKE 'response%%' "
                                              "OR action LIKE 'indicator_block%%' ORDER BY audit_id")]
    assert actions == ["response_job.start", *["response.quarantine"] * 3, "indicator_block.add"]
    assert post_form(admin, "/console/blocks", f"/console/blocks/{block_id}/remove", {}).status_code == 302
    assert "invoice-portal.example" not in get(admin, "/console/blocks").get_data(as_text=True)


def test_an_analyst_works_their_tenants_quarantine_and_nothing_else(console, nango, worker):
    campaign = seed(console, nango)
    admin = signed_in(console, ADMIN, "msp_admin", [])
    job_id_of(post_form(admin, f"/console/campaigns/{campaign}", "/console/responses",
                        {"source": "campaign", "campaign_id": campaign, "action": "quarantine"}))
    worker.run()
    analyst = signed_in(console, ANALYST, "analyst", ["acme-corp"])
    page = get(analyst, "/console/quarantine").get_data(as_text=True)
    assert "acme-corp|acme-corp-invoice" in page and "globex-invoice" not in page and "initech" not in page
    assert get(analyst, "/console/quarantine?tenant=globex").status_code == 404
    # another tenant's message slipped into the form is dropped: nothing to act on
    sneaky = post_form(analyst, "/console/quarantine", "/console/responses",
                       {"source": "quarantine", "action": "release", "tenant": "acme-corp",
                        "m": "globex|globex-invoice"})
    assert sneaky.status_code == 400 and "nothing to act on" in sneaky.get_data(as_text=True)
    job = job_id_of(post_form(analyst, "/console/quarantine", "/console/responses",
                              {"source": "quarantine", "action": "release", "tenant": "acme-corp",
                               "m": "acme-corp|acme-corp-invoice"}))
    assert worker.run().counts["done"] == 1 and nango.folder_of("conn-acme-corp", "graph-acme-corp-invoice") == "inbox"
    assert 'id="progress">1/1' in get(analyst, f"/console/responses/{job}").get_data(as_text=True)
    assert "Nothing here" in get(analyst, "/console/quarantine").get_data(as_text=True)
    assert "acme-corp-invoice" in get(analyst, "/console/quarantine?state=released").get_data(as_text=True)

    # the admin's cross-tenant job is not the analyst's to see; a campaign is not theirs to act on
    assert get(analyst, f"/console/responses/{job - 1}").status_code == 404
    assert post_form(analyst, "/console/quarantine", "/console/responses",
                     {"source": "campaign", "campaign_id": campaign, "action": "quarantine",
                      "tenant": "acme-corp"}).status_code == 403
    search = "/console/search?link_domain=invoice-portal.example"
    assert post_form(analyst, search, "/console/responses", {"source": "search", "action": "quarantine",
                                                             "f_link_domain": "invoice-portal.example"}
                     ).status_code == 400  # which tenant?
    assert post_form(analyst, search, "/console/responses", {"source": "search", "action": "quarantine",
                                                             "tenant": "globex",
                                                             "f_link_domain": "invoice-portal.example"}
                     ).status_code == 404
    mine = job_id_of(post_form(analyst, search, "/console/responses",
                               {"source": "search", "action": "quarantine", "tenant": "acme-corp",
                                "f_link_domain": "invoice-portal.example"}))
    assert worker.run().counts["done"] == 1
    assert 'id="progress">1/1' in get(analyst, f"/console/responses/{mine}").get_data(as_text=True)
    auditor = signed_in(console, "audit@msp.example", "auditor", ["acme-corp"])
    assert post_form(auditor, "/console/quarantine", "/console/responses",
                     {"source": "quarantine", "action": "release", "tenant": "acme-corp",
                      "m": "acme-corp|acme-corp-invoice"}).status_code == 403


@pytest.mark.parametrize("form", [
    {"source": "nowhere", "action": "quarantine"},
    {"source": "quarantine", "action": "release", "m": "no-separator"},
    {"source": "quarantine", "action": "release"},
    {"source": "search", "action": "quarantine"},
    {"source": "search", "action": "quarantine", "f_sending_ip": "1.2.3"},
    {"source": "search", "action": "explode", "f_link_domain": "invoice-portal.example"},
    {"source": "campaign", "action": "quarantine", "campaign_id": "9" * 30},
    {"source": "search", "action": "quarantine", "f_link_domain": "invoice-portal.example", "note": "a\x00b"},
])
def test_hostile_forms_are_a_400(console, form):
    admin = signed_in(console, ADMIN, "msp_admin", [])
    assert post_form(admin, "/console/quarantine", "/console/responses", form).status_code == 400, form
    for path in ("/console/quarantine?cursor=%00", "/console/quarantine?state=burnt",
                 "/console/quarantine?since=yesterday", "/console/quarantine?sender=a%00b"):
        assert get(admin, path).status_code == 400, path
    assert get(admin, "/console/responses/99999999").status_code == 404
    assert post_form(admin, "/console/blocks", "/console/blocks",
                     {"kind": "link_domain", "indicator": "https://x.example/"}).status_code == 400


def test_a_person_quarantines_a_campaign_watches_it_finish_and_releases_one(console, nango, worker, served, browser):
    campaign = seed(console, nango)
    console.add_user(ADMIN, "msp_admin", [])
    driver = browser
    sign_in(driver, served, console, ADMIN)
    driver.get(f"{served}/console/campaigns/{campaign}")
    _wait(driver, lambda d: d.find_elements(_by("ID"), "respond-form"))
    driver.find_element(_by("ID"), "respond").click()
    _wait(driver, lambda d: d.find_elements(_by("ID"), "progress"))
    assert driver.find_element(_by("ID"), "progress").text.startswith("0/3")
    worker.run()
    driver.refresh()
    _wait(driver, lambda d: d.find_element(_by("ID"), "progress").text.startswith("3/3"))
    assert "done 3" in driver.find_element(_by("ID"), "counts").text

    driver.find_element(_by("ID"), "nav-quarantine").click()
    _wait(driver, lambda d: d.find_elements(_by("ID"), "quarantined"))
    driver.find_element(_by("CSS_SELECTOR"), "input[value='globex|globex-invoice']").click()
    driver.find_element(_by("ID"), "release-selected").click()
    _wait(driver, lambda d: d.find_elements(_by("ID"), "progress"))
    worker.run()
    driver.refresh()
    _wait(driver, lambda d: d.find_element(_by("ID"), "progress").text.startswith("1/1"))
    assert nango.folder_of("conn-globex", "graph-globex-invoice") == "inbox"
    assert nango.folder_of("conn-acme-corp", "graph-acme-corp-invoice") == "junkemail"
