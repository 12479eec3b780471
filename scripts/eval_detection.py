"""`make eval`: how well the engine detects, measured so that anyone can rerun it.

Written as JSON and Markdown to results/eval/ (and printed; `--commit` also to corpus/eval.json and
corpus/eval.md, the committed report the docs quote):
1. the development corpus, four ways, side by side: every message scored by weights fitted without it,
   - with every signal (as shipped) or with our own signals only (the receiving server's opinions,
     RECEIVER_* and compauth, switched off: what Swordfish catches that Microsoft did not already say);
   - validated pooled (5-fold stratified: every source in every fold's training, the old, kinder yardstick)
     or leave-one-source-out (each source held out whole, fitted on the rest: the headline figure, and the
     one `make fit` chooses the thresholds on);
   per set the detection rate (phishing/spam/malware sets: any verdict but clean) or the false-positive
   rate (legit sets), a confusion matrix by verdict, and the signals that fire most on misses and on false
   positives;
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
import hashlib
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_features import FEATURES, RAW, read  # noqa: E402
from fit_weights import SELECTED_FALSE_POSITIVES, fit, own_signals_only, score_rows, with_content_reason  # noqa: E402
from fit_weights import _verdict as verdict_rule  # noqa: E402
from swordfish.analysis import TenantPolicy, analyze  # noqa: E402
from swordfish.analysis.commands import iter_messages  # noqa: E402
from swordfish.analysis.content import signal_for  # noqa: E402
from swordfish.analysis.weights import CATALOG, model  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
COMMITTED_JSON = REPO / "corpus" / "eval.json"
COMMITTED_MD = REPO / "corpus" / "eval.md"
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
    # a set kept because a filter once flagged it is reported on its own, not as part of the legitimate mail
    legit = [r for r in results if r["label"] == "legit" and r["set"] not in SELECTED_FALSE_POSITIVES]
    selected = [r for r in results if r["set"] in SELECTED_FALSE_POSITIVES]
    if selected:
        totals["false_positive_rate_selected_sets"] = round(sum(r["verdict"] != "clean" for r in selected)
                                                            / len(selected), 5)
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


MODES = {  # name -> (folds, own signals only)
    "loso_own": ("sources", True),
    "loso_all": ("sources", False),
    "pooled_own": ("pooled", True),
    "pooled_all": ("pooled", False),
}
MODE_TITLES = {
    "loso_own": "Leave-one-source-out, own signals only (the headline)",
    "loso_all": "Leave-one-source-out, every signal (as shipped)",
    "pooled_own": "Pooled 5-fold, own signals only",
    "pooled_all": "Pooled 5-fold, every signal (the figure quoted until issue 23)",
}


def evaluate_modes(rows: list[dict], modes: list[str], shipped_fit=None) -> dict:
    """Each mode's out-of-fold results on the same rows. `shipped_fit`: make fit's own fit of these rows
    (every signal, leave-one-source-out), whose out-of-fold results are the loso_all mode's."""
    out = {}
    for mode in modes:
        folds, own = MODES[mode]
        reuse = shipped_fit.oof if shipped_fit is not None and mode == "loso_all" else None
        out[mode] = cross_validated(own_signals_only(rows) if own else rows, folds, reuse)
        out[mode]["title"] = MODE_TITLES[mode]
    return out


def cross_validated(rows: list[dict], folds: str = "pooled", oof: dict | None = None) -> dict:
    oof = oof if oof is not None else fit(rows, folds).oof
    results = []
    for row, (score, by_cat), signals in zip(rows, oof["scored"], oof["signals"], strict=True):
        verdict = _verdict_of(score, by_cat, oof["thresholds"])
        # the signals as the message's own fold saw them (its content reason from a model that never saw it)
        results.append({"set": row["set"], "label": row["label"], "verdict": verdict, "score": score,
                        "signals": dict(signals)})
    out = summarise(results)
    out["thresholds"] = oof["thresholds"]
    return out


def held_out(rows: list[dict], held: str, folds: str = "sources") -> dict:
    """Fit on every row outside set `held`, then score that set's rows as the engine would with what was fitted
    (its content reason from the fitted content model, its weights and thresholds)."""
    train = [r for r in rows if r["set"] != held]
    test = [r for r in rows if r["set"] == held]
    if not test:
        raise ValueError(f"no set {held!r} in the features file")
    result = fit(train, folds)
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


def side_by_side(modes: dict) -> list[str]:
    """One row per set, one column per mode: each source's catch or flag rate in every mode."""
    names = list(modes)
    sets = sorted({s for data in modes.values() for s in data["sets"]})
    lines = ["## Every set in every mode", "",
             "| set | label | messages | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for set_name in sets:
        first = next(data["sets"][set_name] for data in modes.values() if set_name in data["sets"])
        cells = []
        for name in names:
            s = modes[name]["sets"].get(set_name)
            rate = s.get("detection_rate", s.get("false_positive_rate")) if s else None
            cells.append(f"{rate:.2%}" if rate is not None else "")
        kind = "flagged" if first["label"] == "legit" else "caught"
        lines.append(f"| {set_name} | {first['label']} ({kind}) | {first['messages']} | " + " | ".join(cells) + " |")
    lines += ["", "| totals | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key in ("false_positive_rate", "false_positive_rate_selected_sets", "detection_rate_phishing",
                "detection_rate_spam", "detection_rate_malware"):
        lines.append(f"| {key} | " + " | ".join(f"{modes[n]['totals'].get(key, 0):.3%}" for n in names) + " |")
    lines.append("| thresholds | " + " | ".join(str(modes[n]["thresholds"]) for n in names) + " |")
    return lines + [""]


def markdown(report: dict) -> str:
    lines = ["# Detection evaluation", ""]
    if report.get("modes"):
        lines += side_by_side(report["modes"])
    parts = [(f"modes.{m}", data["title"]) for m, data in report.get("modes", {}).items()]
    for part, title in (*parts, ("cross_validated", "Development corpus, 5-fold cross-validated"),
                        ("engine", "Shipped engine on raw mail")):
        data = report["modes"][part.split(".", 1)[1]] if part.startswith("modes.") else report.get(part)
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
    parser.add_argument("--mode", action="append", choices=sorted(MODES), default=[],
                        help="which validation modes to run (default: all four)")
    parser.add_argument("--fit", action="store_true",
                        help="also write the weights and content model from the loso_all fit (what make fit does; "
                             "saves one fit of several minutes)")
    parser.add_argument("--commit", action="store_true",
                        help="also write the report to corpus/eval.json and corpus/eval.md (the committed figures)")
    parser.add_argument("--hold-out", action="append", default=[], metavar="SET",
                        help="a corpus set left out of the fit and scored by what was fitted without it (repeatable)")
    args = parser.parse_args(argv)

    report: dict = {"signals_known": len(CATALOG), "selected_false_positive_sets": sorted(SELECTED_FALSE_POSITIVES)}
    if not args.no_cv or args.hold_out:
        _, rows = read(args.features)
    if not args.no_cv:
        report["features_sha256"] = hashlib.sha256(args.features.read_bytes()).hexdigest()
        shipped = None
        if args.fit:
            from fit_weights import MODEL_FILE, WEIGHTS_FILE, dumps, dumps_content

            shipped = fit(rows)
            WEIGHTS_FILE.write_text(dumps(shipped.weights))
            MODEL_FILE.write_text(dumps_content(shipped.content))
            print(f"written: {WEIGHTS_FILE}, {MODEL_FILE}")
        report["modes"] = evaluate_modes(rows, args.mode or list(MODES), shipped)
    model.cache_clear()  # the weights file may have just been written
    report["weights"] = {k: model().meta.get(k) for k in ("format", "corpus", "points_per_logodds")}
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
    if args.commit:
        committed = {k: v for k, v in report.items() if k != "cpu"}  # CPU figures are the machine's, not the data's
        COMMITTED_JSON.write_text(json.dumps(committed, indent=1) + "\n")
        COMMITTED_MD.write_text(markdown(committed))
        print(f"written: {COMMITTED_JSON}, {COMMITTED_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
