"""`make eval`: how well the engine detects, measured so that anyone can rerun it.

Two parts, written as JSON and Markdown to results/eval/ (and printed):
1. the development corpus, cross-validated: every message scored by weights fitted without it
   (the folds of scripts/fit_weights.py, thresholds as chosen there); per set the detection rate
   (phishing/spam/malware sets: any verdict but clean) or the false-positive rate (legit sets), a
   confusion matrix by verdict, and the signals that fire most on misses and on false positives;
2. any folder of raw mail named with --set NAME=PATH:LABEL, run through the shipped engine exactly as
   the pipeline would (default tenant policy): the same figures, plus the CPU time per message.
   Without --set, the CPU time is measured on corpus/raw/ when it is there, else on samples/ and
   ../shared/corpus/.

3. with --hold-out SET (repeatable), each named set left out of the fit altogether and scored by the weights,
   content model and thresholds fitted without it: how the engine does on a source it never saw. Cross-validation
   spreads every source over all folds, so a source's own words (a list's lures, a newsletter's vocabulary) are
   always in training; held out, they are not.

Usage: python scripts/eval_detection.py [--set modern=/path/to/emls:phishing ...] [--hold-out SET ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_features import FEATURES, RAW, read  # noqa: E402
from fit_weights import _verdict as verdict_rule  # noqa: E402
from fit_weights import fit, score_rows, with_content_reason  # noqa: E402
from swordfish.analysis import TenantPolicy, analyze  # noqa: E402
from swordfish.analysis.commands import iter_messages  # noqa: E402
from swordfish.analysis.content import signal_for  # noqa: E402
from swordfish.analysis.weights import CATALOG, model  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
VERDICTS = ("clean", "suspicious", "spam", "phishing", "malware")
TOP = 10


def _verdict_of(score: float, by_cat: dict[str, float], thresholds: dict[str, float]) -> str:
    return verdict_rule(score, by_cat, thresholds)


def summarise(results: list[dict]) -> dict:
    """results: one dict per message with set, label, verdict, signals (name -> weight)."""
    sets: dict[str, dict] = {}
    confusion: dict[str, Counter] = defaultdict(Counter)
    misses: Counter = Counter()
    false_pos: Counter = Counter()
    by_set: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_set[r["set"]].append(r)
        confusion[r["label"]][r["verdict"]] += 1
        flagged = r["verdict"] != "clean"
        if r["label"] == "legit" and flagged:
            false_pos.update(n for n, w in r["signals"].items() if w > 0)  # what pushed them over
        elif r["label"] != "legit" and not flagged:
            misses.update(list(r["signals"]))  # how many misses carry each signal
    for name, rows in sorted(by_set.items()):
        label = rows[0]["label"]
        flagged = sum(1 for r in rows if r["verdict"] != "clean")
        entry = {"label": label, "messages": len(rows), "flagged": flagged,
                 "verdicts": dict(Counter(r["verdict"] for r in rows))}
        key = "false_positive_rate" if label == "legit" else "detection_rate"
        entry[key] = round(flagged / len(rows), 4) if rows else None
        if label != "legit":
            entry["as_its_own_kind"] = round(sum(1 for r in rows if r["verdict"] == label) / len(rows), 4)
        sets[name] = entry
    totals = {}
    legit = [r for r in results if r["label"] == "legit"]
    bad = [r for r in results if r["label"] != "legit"]
    if legit:
        totals["false_positive_rate"] = round(sum(r["verdict"] != "clean" for r in legit) / len(legit), 5)
    if bad:
        totals["detection_rate"] = round(sum(r["verdict"] != "clean" for r in bad) / len(bad), 4)
    for label in ("phishing", "spam", "malware"):
        rows = [r for r in results if r["label"] == label]
        if rows:
            totals[f"detection_rate_{label}"] = round(sum(r["verdict"] != "clean" for r in rows) / len(rows), 4)
    return {"totals": totals, "sets": sets,
            "confusion": {label: {v: confusion[label].get(v, 0) for v in VERDICTS} for label in sorted(confusion)},
            "top_signals_on_misses": misses.most_common(TOP),
            "top_signals_on_false_positives": false_pos.most_common(TOP)}


def cross_validated(rows: list[dict]) -> dict:
    oof = fit(rows).oof
    results = []
    for row, (score, by_cat), signals in zip(rows, oof["scored"], oof["signals"], strict=True):
        verdict = _verdict_of(score, by_cat, oof["thresholds"])
        # the signals as the message's own fold saw them (its content reason from a model that never saw it)
        results.append({"set": row["set"], "label": row["label"], "verdict": verdict, "score": score,
                        "signals": dict(signals)})
    out = summarise(results)
    out["thresholds"] = oof["thresholds"]
    return out


def held_out(rows: list[dict], held: str) -> dict:
    """Fit on every row outside set `held`, then score that set's rows as the engine would with what was fitted
    (its content reason from the fitted content model, its weights and thresholds)."""
    train = [r for r in rows if r["set"] != held]
    test = [r for r in rows if r["set"] == held]
    if not test:
        raise ValueError(f"no set {held!r} in the features file")
    result = fit(train)
    weights = {name: entry["weight"] for name, entry in result.weights["signals"].items()}
    thresholds = result.weights["thresholds"]
    token_weights = result.content["weights"]
    reasons = {i: found for i, row in enumerate(test)
               if (found := signal_for(sum(token_weights.get(t, 0.0) for t in row.get("tokens", ()))))}
    results = []
    for row, signals in zip(test, with_content_reason(test, reasons), strict=True):
        (score, by_cat), = score_rows([{"signals": signals}], weights)
        results.append({"set": row["set"], "label": row["label"], "verdict": _verdict_of(score, by_cat, thresholds),
                        "score": score, "signals": {n: round(weights.get(n, 0.0) * v, 2) for n, v in signals.items()}})
    out = summarise(results)
    out["thresholds"] = thresholds
    out["fitted_on"] = len(train)
    return out


def run_engine(name: str, path: Path, label: str, policy: TenantPolicy) -> tuple[list[dict], list[float], int]:
    results, cpu_ms, total_bytes = [], [], 0
    for _, raw in iter_messages(path):
        start = time.process_time()
        verdict = analyze(raw, policy)
        cpu_ms.append((time.process_time() - start) * 1000)
        total_bytes += len(raw)
        results.append({"set": name, "label": label, "verdict": verdict.verdict.value, "score": verdict.score,
                        "signals": {r.name: r.weight for r in verdict.reasons}})
    return results, cpu_ms, total_bytes


def cpu_figures(cpu_ms: list[float], total_bytes: int) -> dict:
    if not cpu_ms:
        return {}
    ordered = sorted(cpu_ms)
    return {"messages": len(ordered), "mean_kib": round(total_bytes / len(ordered) / 1024, 1),
            "median_ms": round(statistics.median(ordered), 3),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 3),
            "max_ms": round(ordered[-1], 3)}


def markdown(report: dict) -> str:
    lines = ["# Detection evaluation", ""]
    for part, title in (("cross_validated", "Development corpus, 5-fold cross-validated"),
                        ("engine", "Shipped engine on raw mail")):
        data = report.get(part)
        if not data or not data.get("sets"):
            continue
        lines += [f"## {title}", ""]
        if "thresholds" in data:
            lines += [f"Thresholds: {data['thresholds']}", ""]
        lines += [f"Totals: {data['totals']}", "", "| set | label | messages | flagged | rate | verdicts |",
                  "|---|---|---|---|---|---|"]
        for name, s in data["sets"].items():
            rate = s.get("detection_rate", s.get("false_positive_rate"))
            kind = "detected" if "detection_rate" in s else "false positives"
            lines.append(f"| {name} | {s['label']} | {s['messages']} | {s['flagged']} | {rate:.2%} {kind} | "
                         f"{s['verdicts']} |")
        lines += ["", "Confusion matrix (rows: label, columns: verdict)", "",
                  "| label | " + " | ".join(VERDICTS) + " |", "|---|" + "---|" * len(VERDICTS)]
        for label, counts in data["confusion"].items():
            lines.append(f"| {label} | " + " | ".join(str(counts[v]) for v in VERDICTS) + " |")
        lines += ["", "Signals most often present on misses: " + (", ".join(
            f"{n} ({c})" for n, c in data["top_signals_on_misses"]) or "none"),
            "", "Signals most often present on false positives: " + (", ".join(
                f"{n} ({c})" for n, c in data["top_signals_on_false_positives"]) or "none"), ""]
    if report.get("held_out"):
        lines += ["## Each set held out of the fit", "", "| set | label | messages | flagged | rate | verdicts | fitted on |",
                  "|---|---|---|---|---|---|---|"]
        for data in report["held_out"].values():
            for set_name, s in data["sets"].items():
                rate = s.get("detection_rate", s.get("false_positive_rate"))
                kind = "detected" if "detection_rate" in s else "false positives"
                lines.append(f"| {set_name} | {s['label']} | {s['messages']} | {s['flagged']} | {rate:.2%} {kind} | "
                             f"{s['verdicts']} | {data['fitted_on']} |")
        lines.append("")
    if report.get("cpu"):
        lines += ["## CPU per message (analysis only, one core)", ""]
        for name, c in report["cpu"].items():
            lines.append(f"- {name}: {c}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="NAME=PATH:LABEL",
                        help="a folder or mbox of raw mail and its label (legit|phishing|spam|malware)")
    parser.add_argument("--features", type=Path, default=FEATURES)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "eval")
    parser.add_argument("--no-cv", action="store_true", help="skip the cross-validated corpus part")
    parser.add_argument("--hold-out", action="append", default=[], metavar="SET",
                        help="a corpus set left out of the fit and scored by what was fitted without it (repeatable)")
    args = parser.parse_args(argv)

    report: dict = {"weights": {k: model().meta.get(k) for k in ("format", "corpus", "points_per_logodds")},
                    "signals_known": len(CATALOG)}
    if not args.no_cv or args.hold_out:
        _, rows = read(args.features)
    if not args.no_cv:
        report["cross_validated"] = cross_validated(rows)
    if args.hold_out:
        report["held_out"] = {name: held_out(rows, name) for name in args.hold_out}

    policy = TenantPolicy()
    engine_results: list[dict] = []
    report["cpu"] = {}
    for spec in args.set:
        name, _, rest = spec.partition("=")
        path, _, label = rest.rpartition(":")
        results, cpu_ms, nbytes = run_engine(name, Path(path), label, policy)
        engine_results += results
        report["cpu"][name] = cpu_figures(cpu_ms, nbytes)
    if not args.set:
        sources = [RAW] if RAW.exists() else [REPO / "samples", REPO.parent / "shared" / "corpus"]
        sources = [source for source in sources if source.exists()]
        cpu_ms, nbytes = [], 0
        for source in sources:
            _, ms, b = run_engine("timing", source, "unknown", policy)
            cpu_ms += ms
            nbytes += b
        report["cpu"][" + ".join(str(s.relative_to(REPO.parent)) for s in sources)] = cpu_figures(cpu_ms, nbytes)
    if engine_results:
        report["engine"] = summarise(engine_results)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    (args.out / "eval.md").write_text(text)
    print(text)
    print(f"written: {args.out / 'eval.json'}, {args.out / 'eval.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
