"""A tenant report as HTML (a page of its own, or the body inside the console) and as PDF.

Every tenant-controlled string (the tenant's name, recipient addresses, brand and display names as
the evidence quoted them) reaches the HTML through Jinja's autoescape and the PDF as text cells in
fonts that hold any character; the charts carry only our own text (``charts``).

PDF through fpdf2 (pure Python; fontTools and defusedxml, no system library): the same SVG charts
drawn by its SVG renderer, in DejaVu Sans (bundled, its licence beside it), so an address in any
script prints as written instead of failing Latin-1.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from swordfish.reports.charts import kinds_chart, volume_chart
from swordfish.reports.model import TenantReport

HERE = Path(__file__).resolve().parent
CSS = (HERE / "templates" / "report.css").read_text()
# The page's one inline stylesheet, allowed by its hash: the API's HTML answer permits nothing else.
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
REPORT_CSP = (f"default-src 'none'; style-src '{STYLE_HASH}'; img-src 'none'; frame-ancestors 'none'; "
              "base-uri 'none'; form-action 'none'")

_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                   trim_blocks=False)


def change(trend) -> str:
    """A kind's change against the previous period: "+50%", "new" (none before), "–" (none either time)."""
    if trend.change_percent is None:
        return "new" if trend.count else "–"
    return f"{trend.change_percent:+.0f}%"


def charts(report: TenantReport) -> dict[str, Markup]:
    """The SVG documents, safe to inline (built from our own text and numbers only)."""
    return {"volume": Markup(volume_chart(report)), "kinds": Markup(kinds_chart(report))}


def report_body(report: TenantReport) -> Markup:
    """The report's section: the standalone page and the console's dashboard both show it."""
    return Markup(_env.get_template("report_body.html").render(r=report, charts=charts(report), change=change))


def report_html(report: TenantReport) -> str:
    return _env.get_template("report.html").render(r=report, body=report_body(report), css=CSS)


def filename(report: TenantReport, extension: str) -> str:
    return f"swordfish-report-{report.tenant_id}-{report.period.start}-{report.period.end}.{extension}"


# --- PDF ----------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _quiet_svg_logger() -> None:
    # fpdf2 logs each SVG element it does not draw; ours are all drawn, its warnings are noise.
    logging.getLogger("fpdf.svg").setLevel(logging.ERROR)


def report_pdf(report: TenantReport) -> bytes:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    _quiet_svg_logger()
    pdf = FPDF(format="A4")
    pdf.set_title(f"Email security report: {report.tenant_name}")
    pdf.set_creator("Swordfish")
    pdf.set_creation_date(report.generated_at)
    pdf.add_font("DejaVu", "", str(HERE / "fonts" / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(HERE / "fonts" / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.epw
    line = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}

    pdf.set_font("DejaVu", "B", 16)
    pdf.multi_cell(width, 8, f"Email security report: {report.tenant_name}", **line)
    pdf.set_font("DejaVu", "", 10)
    pdf.multi_cell(width, 5, f"{report.period.start} to {report.period.end} (UTC, {report.period.days} days), "
                             f"compared with {report.previous_period.start} to {report.previous_period.end}", **line)
    pdf.ln(3)
    figures = [(report.total, f"messages analysed ({report.previous_total} before)"),
               (report.threats, "threats stopped or flagged"),
               (report.remediation.quarantined, "quarantined"),
               (report.remediation.released, "released by an analyst"),
               (report.remediation.held, "held in quarantine at the end")]
    for value, label in figures:
        pdf.set_font("DejaVu", "B", 12)
        pdf.cell(25, 7, str(value), align="R")
        pdf.set_font("DejaVu", "", 10)
        pdf.cell(width - 25, 7, "  " + label, **line)
    pdf.ln(2)
    for svg in (volume_chart(report), kinds_chart(report)):
        pdf.image(io.BytesIO(svg.encode()), w=width)
        pdf.ln(2)

    def table(title: str, header: tuple[str, ...], rows: list[tuple], widths: tuple[float, ...]) -> None:
        if pdf.get_y() > pdf.page_break_trigger - 30:  # a heading never ends a page
            pdf.add_page()
        pdf.set_font("DejaVu", "B", 12)
        pdf.cell(width, 9, title, **line)
        if not rows:
            pdf.set_font("DejaVu", "", 10)
            pdf.cell(width, 6, "None in this period.", **line)
            return
        pdf.set_font("DejaVu", "", 10)
        with pdf.table(col_widths=widths, text_align=("LEFT",) + ("RIGHT",) * (len(header) - 1),
                       first_row_as_headings=True, line_height=5.5) as t:
            for row in [header, *rows]:
                cells = t.row()
                for value in row:
                    cells.cell(str(value))
        pdf.ln(2)

    table("Threats by kind", ("Kind", "This period", "Previous period", "Change"),
          [(k.kind, k.count, k.previous, change(k)) for k in report.kinds], (3, 2, 2, 2))
    table("Most targeted recipients", ("Recipient", "Messages"),
          [(r.name, r.messages) for r in report.recipients], (5, 1))
    table("Impersonated brands", ("Brand", "Messages"), [(b.name, b.messages) for b in report.brands], (5, 1))
    table("Impersonated executives (VIPs)", ("Display name", "Messages"),
          [(v.name, v.messages) for v in report.vips], (5, 1))
    pdf.set_font("DejaVu", "", 8)
    pdf.cell(width, 8, f"Generated {report.generated_at:%Y-%m-%d %H:%M} UTC by Swordfish.", **line)
    return bytes(pdf.output())
