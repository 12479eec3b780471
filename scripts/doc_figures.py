"""The figures the docs quote, generated from the committed reports (never typed into prose).

    .venv/bin/python scripts/doc_figures.py           # print every block
    .venv/bin/python scripts/doc_figures.py --write   # refresh the blocks in docs/

A block is ``<!-- figures:NAME -->`` ... ``<!-- /figures -->`` in a page under docs/; its body is
what ``render(NAME)`` makes of the report it names (``SOURCES``). ``tests/docs/test_doc_figures.py``
fails when a block and its report disagree, so a new report means ``--write`` and a commit.
Figures with no committed report (``make bench``, ``make drill``, ``make fuzz``,
``make loadtest-rotation``, ``make loadtest-knee``) are not quoted: the docs name the command.
(The cost and reserved-concurrency blocks are ``scripts/cost_estimate.py``'s.)
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
SOURCES = {
    "load-standard": "loadtests/example-summary.md",
    "load-soak": "loadtests/example-soak-summary.md",
    "load-faults": "loadtests/example-faults-summary.md",
    "detection-corpus": "functions/swordfish/analysis/data/weights.json",
    # The cross-validated part of `make eval`'s results/eval/eval.json, committed for the weights above.
    "detection-eval": "corpus/eval.json",
    # A tenant's report on the demo history (`make example-report`: scripts/example_report.py).
    "report-example": "docs/examples/example-report.json",
}
# An empty block is "open\nclose"; the lazy optional body keeps it from reaching the next block's close.
BLOCK = re.compile(r"(?P<open><!-- figures:(?P<name>[a-z-]+) -->\n)(?:(?P<body>.*?)\n)??(?P<close><!-- /figures -->)",
                   re.S)


# --- the load runner's summary.md (loadtests/report.py writes it) --------------------------------


def _table(lines: list[str], first_header: str) -> dict[str, dict[str, str]]:
    """Rows of the Markdown table whose first header cell is ``first_header``, keyed by that cell."""
    rows: dict[str, dict[str, str]] = {}
    header: list[str] | None = None
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            header = None if header is not None and rows else header
            continue
        if header is None:
            if cells[0] == first_header:
                header = cells
            continue
        if set(cells[0]) <= {"-"}:
            continue
        rows[cells[0]] = dict(zip(header, cells, strict=False))
    return rows


def parse_summary(path: Path) -> dict:
    text = path.read_text()
    lines = text.splitlines()
    title = re.match(r"# Load test: (\S+) \((\d{4}-\d\d-\d\d)", lines[0])
    counts = re.search(r"submitted (\d+), accounted for (\d+) \(verdict or DLQ\), lost (\d+)", text)
    memory = re.search(r"worker memory over the 2nd half of the sustained phase: (\{.*\})", text)
    connections = re.search(r"PostgreSQL connections: baseline \{(.*?)\}, end \{(.*?)\}, peak (\d+)", text)
    locust = re.search(r"locust CPU \(highest phase average, % of one core\): ([\d.]+)", text)
    if not (title and counts):
        raise SystemExit(f"{path} is not a load-test summary (loadtests/report.py's format)")
    return {
        "profile": title.group(1), "date": title.group(2),
        "result": re.search(r"result: \*\*(\w+)\*\*", text).group(1),
        "submitted": int(counts.group(1)), "accounted": int(counts.group(2)), "lost": int(counts.group(3)),
        "memory": json.loads(memory.group(1).replace("'", '"').replace("None", "null")) if memory else None,
        "connections_end": connections.group(2) if connections else None,
        "connections_peak": int(connections.group(3)) if connections else None,
        "locust_cpu": float(locust.group(1)) if locust else None,
        "phases": _table(lines, "phase"),
        "faults": _table(lines, "fault"),
    }


def _n(value) -> str:
    return f"{int(float(value)):,}"


def _per_minute(per_second: str) -> str:
    return f"{round(float(per_second) * 60, -3):,.0f}/min"


def _latency(phase: dict[str, str]) -> str:
    return f"p50 {phase['p50 ms']} ms, p95 {phase['p95 ms']} ms, p99 {phase['p99 ms']} ms"


def _counts(s: dict) -> str:
    return (f"**{s['result']}** ({s['date']}): {_n(s['submitted'])} emails submitted, {_n(s['accounted'])} "
            f"accounted for (a verdict or a DLQ entry with its reason), {_n(s['lost'])} lost.")


def _resources(s: dict) -> str:
    parts = []
    memory = s["memory"]
    if memory and memory.get("growth_mb_per_10min") is not None:
        growth = memory["growth_mb_per_10min"] + 0.0  # -0.0 reads +0
        parts.append(f"Worker memory over the second half of the sustained phase {memory['start_mb']} -> "
                     f"{memory['end_mb']} MB ({growth:+g} MB per 10 min)")
    if s["connections_peak"] is not None:
        end = ", ".join(f"{n} {state}" for state, n in re.findall(r"'([\w ]+)': (\d+)", s["connections_end"] or ""))
        parts.append(f"PostgreSQL connections: peak {s['connections_peak']}, at the end {end or 'none'}")
    if s["locust_cpu"] is not None:
        parts.append(f"locust at most {s['locust_cpu']:g}% of one core")
    return ("; ".join(parts) + ".") if parts else ""


def render_load_standard(s: dict) -> str:
    phases = s["phases"]
    sustained = phases["sustained"]
    steps = [(name, row) for name, row in phases.items() if name.startswith("capacity-")]
    passing = steps[-1] if steps else None
    out = [_counts(s),
           f"Sustained {_per_minute(sustained['offered/s'])}: {_latency(sustained)}."]
    if passing:
        out.append(f"Capacity search: the highest step, {_n(passing[0].split('-', 1)[1])}/min, at "
                   f"p95 {passing[1]['p95 ms']} ms.")
    if "overload" in phases:
        over = phases["overload"]
        out.append(f"Overload at {_per_minute(over['offered/s'])} offered: {over['throughput/s']} emails/s "
                   f"processed, {_n(over['degraded'])} verdicts marked degraded while the backlog drained.")
    out.append(_resources(s))
    return "\n".join(f"- {line}" for line in out if line)


def render_load_soak(s: dict) -> str:
    sustained = s["phases"]["sustained"]
    return "\n".join(f"- {line}" for line in (
        _counts(s),
        f"{_per_minute(sustained['offered/s'])} held: {_n(sustained['processed'])} emails with a verdict, "
        f"{_latency(sustained)}.",
        _resources(s)) if line)


def render_load_faults(s: dict) -> str:
    out = [_counts(s), "", "| fault | down | resumed after its return | recovered | lost | duplicates | DLQ "
           "| `/health/deep` during | after |", "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for name, f in s["faults"].items():
        out.append(f"| {name} | {f['down s']} s | {f['resumed s after back']} s | {f['recovered s']} s | "
                   f"{f['lost']} | {f['duplicates']} | {f['DLQ']} | {f['/health/deep during']} | {f['after']} |")
    out += ["", "*Recovered*: seconds from the fault until the backlog is back to its level before it and "
            "`/health/deep` passes the broken component."]
    return "\n".join(out)


def render_detection_corpus(weights: dict) -> str:
    corpus = weights["corpus"]
    by_label: dict[str, int] = {}
    for name, count in corpus["by_set"].items():
        by_label[name.split("-", 1)[0]] = by_label.get(name.split("-", 1)[0], 0) + count
    names = {"phishing": "phishing", "malware": "malware", "spam": "spam", "legit": "legitimate"}
    kinds = ", ".join(f"{_n(by_label[k])} {name}" for k, name in names.items() if k in by_label)
    thresholds = ", ".join(f"{k} {v:g}" for k, v in weights["thresholds"].items())
    return (f"The committed weights (`analysis/data/weights.json`) were fitted on {_n(corpus['messages'])} messages "
            f"({kinds}) from {len({_source(n) for n in corpus['by_set']})} sources; the score thresholds, chosen on "
            f"{weights['model']['thresholds_chosen_on']} scores: {thresholds}.")


def _source(set_name: str) -> str:
    return set_name.split("-", 1)[1] if "-" in set_name else set_name


def _percent(rate: float) -> str:
    percent = 100 * rate
    text = f"{percent:.3f}" if 0 < percent < 1 else f"{percent:.2f}"  # 0.089%, not 0.09%, near the 0.1% mark
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"


MODE_ORDER = ("loso_own", "loso_all", "pooled_own", "pooled_all")
MODE_HEADERS = {"loso_own": "leave-one-source-out, own signals", "loso_all": "leave-one-source-out, all signals",
                "pooled_own": "pooled 5-fold, own signals", "pooled_all": "pooled 5-fold, all signals"}


def render_detection_eval(report: dict) -> str:
    modes = report["modes"]
    order = [m for m in MODE_ORDER if m in modes]
    head = modes[order[0]]

    selected = set(report.get("selected_false_positive_sets", ()))

    def count(data: dict, label: str) -> tuple[int, int]:
        chosen = [v for n, v in data["sets"].items() if v["label"] == label and n not in selected]
        return sum(v["flagged"] for v in chosen), sum(v["messages"] for v in chosen)

    caught, phishing = count(head, "phishing")
    flagged, legit = count(head, "legit")
    totals = head["totals"]
    out = [f"{MODE_HEADERS[order[0]].capitalize()} (`make eval`; `corpus/eval.json`): "
           f"**{_percent(totals['detection_rate_phishing'])} of phishing caught ({_n(caught)} of {_n(phishing)}) at "
           f"{_percent(totals['false_positive_rate'])} of legitimate mail flagged ({_n(flagged)} of {_n(legit)})**; "
           f"malware {_percent(totals['detection_rate_malware'])}, spam {_percent(totals['detection_rate_spam'])}."
           + (f" Not counted in that rate: {', '.join(f'`{n}`' for n in sorted(selected))}, mail kept because a filter "
              f"once flagged it ({_percent(totals['false_positive_rate_selected_sets'])} flagged)." if selected else ""),
           "", "| set | label | messages | " + " | ".join(MODE_HEADERS[m] for m in order) + " |",
           "|---|---|---:|" + "---:|" * len(order)]
    for name, v in head["sets"].items():
        cells = []
        for m in order:
            s_ = modes[m]["sets"][name]
            cells.append(f"{_n(s_['flagged'])} ({_percent(s_.get('false_positive_rate', s_.get('detection_rate')))})")
        kind = "flagged" if v["label"] == "legit" else "caught"
        out.append(f"| `{name}` | {v['label']} ({kind}) | {_n(v['messages'])} | " + " | ".join(cells) + " |")
    out.append("| **phishing caught** | | | " + " | ".join(
        _percent(modes[m]["totals"]["detection_rate_phishing"]) for m in order) + " |")
    out.append("| **legitimate flagged** | | | " + " | ".join(
        _percent(modes[m]["totals"]["false_positive_rate"]) for m in order) + " |")
    return "\n".join(out)


def render_report_example(report: dict) -> str:
    """The example report's headline figures, its trend table and its two charts (the SVG the
    report itself draws, from the committed figures)."""
    import sys

    sys.path.insert(0, str(REPO / "functions"))  # this checkout's code, whatever the venv points at
    from swordfish.reports.charts import kinds_chart, volume_chart
    from swordfish.reports.model import TenantReport
    from swordfish.reports.render import change

    r = TenantReport.model_validate(report)
    rem = r.remediation
    out = [f"- {r.tenant_name}, {r.period.start} to {r.period.end} ({r.period.days} days): {_n(r.total)} messages "
           f"analysed ({_n(r.previous_total)} the {r.period.days} days before), {_n(r.threats)} threats.",
           f"- Quarantined {_n(rem.quarantined)}, released {_n(rem.released)}, held at the end {_n(rem.held)}.",
           f"- Most targeted: {', '.join(f'{x.name} ({x.messages})' for x in r.recipients[:3])}.",
           f"- Brands impersonated: {', '.join(f'{x.name} ({x.messages})' for x in r.brands[:5]) or 'none'}; "
           f"executives: {', '.join(f'{x.name} ({x.messages})' for x in r.vips[:3]) or 'none'}.",
           "", "| kind | this period | previous period | change |", "|---|---:|---:|---:|"]
    for k in r.kinds:
        out.append(f"| {k.kind} | {_n(k.count)} | {_n(k.previous)} | {change(k)} |")
    out += ["", '<div class="report-charts">', volume_chart(r), kinds_chart(r), "</div>"]
    return "\n".join(out)


def render(name: str) -> str:
    source = REPO / SOURCES[name]
    if name == "report-example":
        return render_report_example(json.loads(source.read_text()))
    if name == "detection-corpus":
        return render_detection_corpus(json.loads(source.read_text()))
    if name == "detection-eval":
        return render_detection_eval(json.loads(source.read_text()))
    summary = parse_summary(source)
    return {"load-standard": render_load_standard, "load-soak": render_load_soak,
            "load-faults": render_load_faults}[name](summary)


def refresh(text: str) -> str:
    def body(match: re.Match) -> str:
        if match.group("name") not in SOURCES:
            raise SystemExit(f"unknown figures block {match.group('name')!r}: known {sorted(SOURCES)}")
        # Blank lines around the body: Markdown would read lines right after the comment as raw HTML.
        return match.group("open") + "\n" + render(match.group("name")) + "\n\n" + match.group("close")

    return BLOCK.sub(body, text)


def pages() -> dict[Path, str]:
    """Every page under docs/ that holds a figures block, with its text."""
    found = {}
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text()
        if BLOCK.search(text):
            found[page] = text
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="refresh the blocks in the docs pages")
    args = parser.parse_args(argv)
    if args.write:
        for page, text in pages().items():
            page.write_text(refresh(text))
    for name in SOURCES:
        print(f"<!-- figures:{name} --> ({SOURCES[name]})\n{render(name)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
