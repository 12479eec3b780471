"""A tenant's dashboard and report in the console (issue 28): each role sees the tenants it may see,
a period that means nothing is a 400, the downloads are audited and hold the figures; and in
Chromium, from the tenants page to the dashboard, a period picked, the charts drawn bar by bar
and the PDF downloaded."""

from __future__ import annotations

import io
from pathlib import Path

import psycopg
from pypdf import PdfReader

from tests.console.helpers import get
from tests.console.test_console_admin_browser import _by, _wait, sign_in
from tests.reports.conftest import HOSTILE_RECIPIENT, PERIOD, seed_mail, week_of_mail

ADMIN, ANALYST = "admin@msp.example", "analyst@acme.example"
WEEK = f"from={PERIOD[0]}&to={PERIOD[1]}"


def signed_in(console, email, role, tenants):
    console.add_user(email, role, tenants)
    client = console.client()
    assert console.login(client, email).status_code == 302
    return client


def test_an_analyst_sees_their_tenants_report_only(console):
    seed_mail(console, week_of_mail())
    analyst = signed_in(console, ANALYST, "analyst", ["acme-corp"])
    page = get(analyst, f"/console/tenants/acme-corp/reports?{WEEK}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="figure-total">16<' in html and 'id="figure-threats">6<' in html
    assert HOSTILE_RECIPIENT not in html and "&lt;script&gt;alert(2)&lt;/script&gt;@acme.example" in html
    assert html.count('<rect class="bar"') == 14 + 8
    assert get(analyst, f"/console/tenants/globex/reports?{WEEK}").status_code == 404
    assert get(analyst, f"/console/tenants/globex/reports.pdf?{WEEK}").status_code == 404
    assert "/console/tenants/acme-corp/reports" in get(analyst, "/console/").get_data(as_text=True)
    admin = signed_in(console, ADMIN, "msp_admin", [])
    page = get(admin, f"/console/tenants/globex/reports?{WEEK}").get_data(as_text=True)
    assert 'id="figure-total">5<' in page


def test_a_bad_period_is_a_400(console):
    analyst = signed_in(console, ANALYST, "analyst", ["acme-corp"])
    for query in ("from=2026-11-30&to=2026-11-01", "from=yesterday", "to=2026-02-30", "from=2020-01-01&to=2026-01-01",
                  "from=%00", "to=" + "9" * 500):
        assert get(analyst, f"/console/tenants/acme-corp/reports?{query}").status_code == 400, query
    assert get(analyst, "/console/tenants/acme-corp/reports.exe").status_code == 404


def test_the_downloads_hold_the_figures_and_are_audited(console):
    seed_mail(console, week_of_mail())
    analyst = signed_in(console, ANALYST, "analyst", ["acme-corp"])
    response = get(analyst, f"/console/tenants/acme-corp/reports.pdf?{WEEK}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    text = " ".join(PdfReader(io.BytesIO(response.data)).pages[0].extract_text().split())
    assert "16 messages analysed (7 before)" in text and f"{HOSTILE_RECIPIENT} 1" in text
    response = get(analyst, f"/console/tenants/acme-corp/reports.html?{WEEK}")
    assert response.status_code == 200 and "<style>" in response.get_data(as_text=True)
    with psycopg.connect(console.superuser_url) as conn:
        rows = conn.execute("SELECT actor, tenant_id, after->>'format' FROM console_audit "
                            "WHERE action = 'report.export' ORDER BY audit_id").fetchall()
    assert rows == [(ANALYST, "acme-corp", "pdf"), (ANALYST, "acme-corp", "html")]


def test_a_person_opens_the_dashboard_picks_a_week_sees_the_charts_and_downloads_the_pdf(console, served, browser,
                                                                                         tmp_path):
    seed_mail(console, week_of_mail())
    console.add_user(ANALYST, "analyst", ["acme-corp"])
    driver = browser
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    sign_in(driver, served, console, ANALYST)
    driver.find_element(_by("CSS_SELECTOR"), "a.report-link").click()
    _wait(driver, lambda d: d.find_elements(_by("ID"), "period-form"))
    # the default period (the last seven days to the console's clock) holds no mail: every bar is 0
    assert driver.find_element(_by("ID"), "figure-total").text == "0"
    driver.execute_script("document.getElementById('p-from').value = arguments[0];"
                          "document.getElementById('p-to').value = arguments[1];",
                          PERIOD[0].isoformat(), PERIOD[1].isoformat())
    driver.find_element(_by("ID"), "p-show").click()
    _wait(driver, lambda d: f"from={PERIOD[0]}" in d.current_url and d.find_elements(_by("ID"), "chart-volume"))
    assert driver.find_element(_by("ID"), "figure-total").text == "16"

    def drawn(chart_id: str) -> list[dict]:
        """Each bar as the browser laid it out: its data and its drawn height in pixels."""
        return driver.execute_script(
            "return Array.from(document.querySelectorAll('#' + arguments[0] + ' rect.bar')).map(r => ({"
            "series: r.dataset.series, label: r.dataset.label, value: Number(r.dataset.value),"
            "height: r.getBoundingClientRect().height, width: r.getBoundingClientRect().width}))", chart_id)

    volume = drawn("chart-volume")
    assert len(volume) == 14  # seven days, two series
    assert [b["value"] for b in volume if b["series"] == "threats"] == [1, 0, 2, 0, 1, 1, 1]
    assert all(b["width"] > 0 for b in volume)
    assert all((b["height"] > 0) == (b["value"] > 0) for b in volume)
    kinds = {(b["label"], b["series"]): b for b in drawn("chart-kinds")}
    assert len(kinds) == 8
    spam_before, spam_now = kinds[("spam", "previous period")], kinds[("spam", "this period")]
    assert abs(spam_before["height"] - 2 * spam_now["height"]) < 1.5  # 4 against 2, on one scale
    assert driver.find_element(_by("ID"), "report-recipients").text.count("@acme.example") == 4
    assert not [e for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]

    driver.find_element(_by("ID"), "download-pdf").click()
    name = f"swordfish-report-acme-corp-{PERIOD[0]}-{PERIOD[1]}.pdf"
    target = Path(tmp_path) / name
    # the file appears when Chromium finished writing it: the driver's own wait, as for the page
    _wait(driver, lambda d: target.exists())
    assert target.exists(), sorted(p.name for p in Path(tmp_path).iterdir())
    text = " ".join(PdfReader(io.BytesIO(target.read_bytes())).pages[0].extract_text().split())
    assert "16 messages analysed (7 before)" in text
    # fetched by the console's script with 'Accept: application/pdf' (what API Gateway needs to pass
    # it as binary), not by navigating the link
    fetched = driver.execute_script("return performance.getEntriesByType('resource')"
                                    ".filter(e => e.name.includes('/reports.pdf')).map(e => e.initiatorType)")
    assert fetched == ["fetch"]
