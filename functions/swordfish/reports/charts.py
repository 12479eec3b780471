"""The report's charts as SVG, drawn here from the figures: the same document is inlined in the HTML
page and the console, and drawn into the PDF by fpdf2's SVG renderer.

Why not a charting library: matplotlib (with numpy) would take the Lambda package past its 250 MB
unzipped limit (it is 132 MB now; they add some 150), and pygal styles its charts through a
stylesheet with selectors fpdf2 does not apply, so its PDF bars come out black. Two bar charts
need rectangles, lines and text: presentation attributes only (no style attribute, nothing the
console's CSP refuses, nothing a PDF renderer must guess), and only our own text in them (dates,
kinds, figures), never a tenant's string.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from swordfish.reports.model import TenantReport

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 30, 36
FONT = 'font-family="Helvetica" fill="#333"'  # with a font-size of each text's own
CLEAN, THREAT, PREVIOUS, CURRENT = "#9db4d6", "#c0392b", "#c8c8c8", "#2c5aa0"


@dataclass(frozen=True)
class Series:
    name: str  # ours: "clean", "threats", "previous period"...
    values: list[int]
    colour: str


def _ticks(top: int) -> list[int]:
    """Gridline values: 0 and about four round steps up to the largest value (at least 1)."""
    top = max(top, 1)
    raw = top / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return list(range(0, int(math.ceil(top / step) * step) + 1, int(step)))


def bar_chart(chart_id: str, title: str, labels: list[str], series: list[Series], *, stacked: bool) -> str:
    """Bars per label: stacked (one column of every series) or grouped (side by side). Every data
    point is one ``rect.bar`` carrying its series and value (a zero is a bar of height 0)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(labels), 1)
    totals = [sum(s.values[i] for s in series) if stacked else max((s.values[i] for s in series), default=0)
              for i in range(len(labels))]
    ticks = _ticks(max(totals, default=0))
    scale = plot_h / ticks[-1]
    slot = plot_w / n
    bar_w = slot * 0.7 / (1 if stacked else len(series))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="chart" viewBox="0 0 {WIDTH} '
           f'{HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
           f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
           f'<text x="{LEFT}" y="18" {FONT} font-size="13" font-weight="bold">{escape(title)}</text>']
    for t in ticks:
        y = TOP + plot_h - t * scale
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e3e3e3" '
                   f'stroke-width="1"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" {FONT} font-size="11" text-anchor="end">{t}</text>')
    every = max(1, math.ceil(n / 14))  # at most 14 date labels under the bars
    for i, label in enumerate(labels):
        x0 = LEFT + i * slot + (slot - bar_w * (1 if stacked else len(series))) / 2
        base = TOP + plot_h
        for j, s in enumerate(series):
            value = s.values[i]
            h = value * scale
            x = x0 if stacked else x0 + j * bar_w
            y = base - h
            out.append(f'<rect class="bar" data-series="{escape(s.name)}" data-label="{escape(label)}" '
                       f'data-value="{value}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                       f'fill="{s.colour}"/>')
            if stacked:
                base = y
        if i % every == 0:
            out.append(f'<text x="{LEFT + i * slot + slot / 2:.1f}" y="{TOP + plot_h + 14}" {FONT} '
                       f'font-size="11" text-anchor="middle">{escape(label)}</text>')
    out.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#888" '
               f'stroke-width="1"/>')
    x = LEFT
    for s in series:  # the legend, under the axis labels
        out.append(f'<rect x="{x}" y="{HEIGHT - 13}" width="10" height="10" fill="{s.colour}"/>')
        out.append(f'<text x="{x + 14}" y="{HEIGHT - 4}" {FONT} font-size="11">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    out.append("</svg>")
    return "\n".join(out)


def volume_chart(report: TenantReport) -> str:
    labels = [v.day.strftime("%m-%d") for v in report.volume]
    return bar_chart("chart-volume", "Mail per day (UTC)", labels, [
        Series("clean", [v.total - v.threats for v in report.volume], CLEAN),
        Series("threats", [v.threats for v in report.volume], THREAT)], stacked=True)


def kinds_chart(report: TenantReport) -> str:
    return bar_chart("chart-kinds", "Threats by kind, against the previous period", [k.kind for k in report.kinds], [
        Series("previous period", [k.previous for k in report.kinds], PREVIOUS),
        Series("this period", [k.count for k in report.kinds], CURRENT)], stacked=False)
