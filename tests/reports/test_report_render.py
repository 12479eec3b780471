"""The report as HTML and PDF: the figures where a reader looks for them, one bar per figure in each
chart, every tenant-controlled string escaped (HTML) or printed as written (PDF)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from html.parser import HTMLParser

from pypdf import PdfReader
from swordfish.reports.model import parse_period
from swordfish.reports.render import STYLE_HASH, report_body, report_html, report_pdf
from swordfish.store.reports import tenant_report

from tests.reports.conftest import HOSTILE_RECIPIENT, HOSTILE_TENANT_NAME, HOSTILE_VIP, PERIOD

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


class Elements(HTMLParser):
    """Every element with its attributes, and the text of the document."""

    def __init__(self):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parsed(html: str) -> Elements:
    p = Elements()
    p.feed(html)
    return p


def bars(doc: Elements, chart_id: str) -> list[dict]:
    out, inside = [], False
    for tag, attrs in doc.elements:
        if tag == "svg":
            inside = attrs.get("id") == chart_id
        elif inside and tag == "rect" and attrs.get("class") == "bar":
            out.append(attrs)
    return out


def test_the_html_page_shows_every_figure_and_escapes_every_tenant_string(report_db):
    report = tenant_report(report_db, "acme-corp", parse_period(*PERIOD, today=NOW.date()), now=NOW)
    html = report_html(report)
    doc = parsed(html)
    # nothing a tenant wrote became markup: no element but ours, the strings shown as text
    assert {tag for tag, _ in doc.elements} <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "section",
                                                "p", "div", "span", "figure", "svg", "rect", "line", "text", "table",
                                                "thead", "tbody", "tr", "th", "td"}
    assert not any(k.startswith("on") for _, attrs in doc.elements for k in attrs)
    text = "".join(doc.text)
    for hostile in (HOSTILE_RECIPIENT, HOSTILE_VIP, HOSTILE_TENANT_NAME):
        assert hostile in text
        assert hostile not in html  # only in its escaped form
    assert "&lt;script&gt;alert(2)&lt;/script&gt;@acme.example" in html
    # the figures
    figures = {a["id"]: None for t, a in doc.elements if a.get("class") == "figure"}
    assert set(figures) == {"figure-total", "figure-threats", "figure-quarantined", "figure-released", "figure-held"}
    assert re.search(r'id="figure-total">16<', html) and re.search(r'id="figure-threats">6<', html)
    # one bar per day and series, with the day's figures; one per kind and period
    volume = bars(doc, "chart-volume")
    assert len(volume) == 2 * 7
    threats = [int(b["data-value"]) for b in volume if b["data-series"] == "threats"]
    assert threats == [v.threats for v in report.volume] == [1, 0, 2, 0, 1, 1, 1]
    kinds = bars(doc, "chart-kinds")
    assert [(b["data-label"], b["data-series"], int(b["data-value"])) for b in kinds] == [
        ("spam", "previous period", 4), ("spam", "this period", 2),
        ("suspicious", "previous period", 1), ("suspicious", "this period", 0),
        ("phishing", "previous period", 2), ("phishing", "this period", 3),
        ("malware", "previous period", 0), ("malware", "this period", 1)]
    heights = {b["data-value"]: float(b["height"]) for b in kinds}
    assert heights["4"] == 2 * heights["2"] > 0 and heights["0"] == 0
    # the inline stylesheet is the one the API's CSP names by hash
    import base64
    import hashlib

    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    assert "sha256-" + base64.b64encode(hashlib.sha256(style.encode()).digest()).decode() == STYLE_HASH
    assert "style=" not in report_body(report)  # nothing the console's CSP (style-src 'self') would refuse


def test_the_pdf_holds_the_figures_and_the_strings_as_written(report_db):
    report = tenant_report(report_db, "acme-corp", parse_period(*PERIOD, today=NOW.date()), now=NOW)
    pdf = report_pdf(report)
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    flat = " ".join(text.split())
    assert f"Email security report: {HOSTILE_TENANT_NAME}" in flat
    assert "2026-11-23 to 2026-11-29" in flat
    for figure in ("16 messages analysed (7 before)", "6 threats stopped or flagged", "2 quarantined",
                   "2 released by an analyst", "1 held in quarantine at the end"):
        assert figure in flat, figure
    for row in ("phishing 3 2 +50%", "spam 2 4 -50%", "suspicious 0 1 -100%", "malware 1 0 new",
                "pat@acme.example 3", "cfo@acme.example 2", f"{HOSTILE_RECIPIENT} 1", "paypal 2", "microsoft 1",
                f"{HOSTILE_VIP} 1", "Jane Boss 1"):
        assert row in flat, row
    # the charts were drawn into the page (their axis text and legend), not dropped
    assert "Mail per day (UTC)" in flat and "previous period" in flat and "11-23" in flat


def test_a_name_in_any_script_prints_in_the_pdf(report_db):
    report = tenant_report(report_db, "acme-corp", parse_period(*PERIOD, today=NOW.date()), now=NOW)
    report.tenant_name = "Ácmé Ωmega Кофе"
    text = " ".join(PdfReader(io.BytesIO(report_pdf(report))).pages[0].extract_text().split())
    assert "Ácmé Ωmega Кофе" in text
