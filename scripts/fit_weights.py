"""`make fit`: learn the signal weights and the verdict thresholds from corpus/features.jsonl.gz and write
functions/swordfish/analysis/data/weights.json (reviewed like code; the engine only reads it).

The idea of SpamAssassin's perceptron-generated scores, done with an L2-regularised logistic regression
(scikit-learn, a dev dependency only):
- every learnable signal with enough support in the corpus gets a learned weight; the weights are kept
  non-negative (a signal is evidence against a message or nothing: a sender must not be able to buy a
  lower score by adding a header), by refitting without any signal whose weight comes out negative;
- the thresholds are chosen on out-of-fold scores (stratified k-fold): `suspicious` is the lowest score
  at which at most 0.1% of the held-out legitimate mail is flagged, and each of phishing/spam/malware
  the lowest at which at most 0.05% gets that verdict;
- scores are in points: log-odds times the scale that puts `suspicious` at 3.0, so stored tenant
  policies keep their meaning and the priors of the signals the corpus cannot weigh fit in;
- deterministic: same features file, same weights (fixed fold seed, exact solver, rounding).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_features import FEATURES, read  # noqa: E402
from swordfish.analysis.weights import CATALOG, MALWARE, PHISHING, SPAM, WEIGHTS_FILE  # noqa: E402

MIN_SUPPORT = 5  # messages carrying a signal before its weight is learned rather than taken from the prior
C = 1.0  # inverse L2 strength
FOLDS = 5
SEED = 16
SUSPICIOUS_POINTS = 3.0
MAX_FPR_FLAGGED = 0.001  # any verdict but clean
MAX_FPR_VERDICT = 0.0005  # each of phishing / spam / malware (all three together stay under MAX_FPR_FLAGGED)


def _fit_nonneg(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Logistic regression whose coefficients are all >= 0: refit without the most negative one until
    none is left (an active-set loop; scikit-learn's solvers take no bounds)."""
    active = list(range(x.shape[1]))
    coef = np.zeros(x.shape[1])
    intercept = 0.0
    while active:
        model = LogisticRegression(C=C, solver="lbfgs", max_iter=10_000, tol=1e-10, class_weight="balanced")
        model.fit(x[:, active], y)
        w = model.coef_[0]
        worst = int(np.argmin(w))
        if w[worst] >= 0:
            coef[:] = 0.0
            coef[active] = w
            intercept = float(model.intercept_[0])
            break
        del active[worst]
    return coef, intercept


def _threshold(legit_scores: list[float], max_rate: float, floor: float) -> float:
    """Lowest threshold (>= floor, on a 0.01 grid) at which at most max_rate of legit_scores reach it."""
    allowed = math.floor(max_rate * len(legit_scores))
    ordered = sorted(legit_scores, reverse=True)
    t = ordered[allowed] + 0.01 if len(ordered) > allowed else floor
    return round(max(floor, math.ceil(t * 100) / 100), 2)


def _verdict(score: float, by_cat: dict[str, float], thresholds: dict[str, float]) -> str:
    """The scorer's rule (scoring._verdict) on points, without tenant lists."""
    if by_cat[MALWARE] >= thresholds["malware"]:
        return "malware"
    dominant = PHISHING if by_cat[PHISHING] >= by_cat[SPAM] else SPAM
    if by_cat[MALWARE] > by_cat[dominant] and score >= thresholds["malware"]:
        return "malware"
    if score >= thresholds[dominant]:
        return dominant
    if score >= thresholds["suspicious"]:
        return "suspicious"
    return "clean"


def score_rows(rows: list[dict], weights: dict[str, float]) -> list[tuple[float, dict[str, float]]]:
    out = []
    for row in rows:
        by_cat = {PHISHING: 0.0, MALWARE: 0.0, SPAM: 0.0}
        total = 0.0
        for name, value in row["signals"].items():
            w = round(weights.get(name, 0.0) * value, 2)  # rounded per reason, as the engine does
            total += w
            cat = CATALOG[name].category if name in CATALOG else "neutral"
            if cat in by_cat:
                by_cat[cat] += w
        out.append((round(total, 2), by_cat))
    return out


def choose_thresholds(scored: list[tuple[float, dict[str, float]]], labels: list[str]) -> dict[str, float]:
    legit = [s for (s, _), label in zip(scored, labels, strict=True) if label == "legit"]
    suspicious = _threshold(legit, MAX_FPR_FLAGGED, SUSPICIOUS_POINTS)
    thresholds = {"suspicious": suspicious}
    for kind in (PHISHING, SPAM, MALWARE):
        # the legitimate messages that would get this verdict kind if their score were high enough
        kind_scores = []
        for (s, by_cat), label in zip(scored, labels, strict=True):
            if label != "legit":
                continue
            dominant = MALWARE if by_cat[MALWARE] > max(by_cat[PHISHING], by_cat[SPAM]) else (
                PHISHING if by_cat[PHISHING] >= by_cat[SPAM] else SPAM)
            kind_scores.append(s if dominant == kind else -1e9)
        thresholds[kind] = max(_threshold(kind_scores, MAX_FPR_VERDICT, suspicious), suspicious + 1.0)
    return thresholds


def fit(rows: list[dict]) -> tuple[dict, dict]:
    """(weights.json content, out-of-fold results for `make eval`)."""
    labels = [r["label"] for r in rows]
    y = np.array([label != "legit" for label in labels], dtype=int)
    support: dict[str, Counter] = {}
    for row in rows:
        for name in row["signals"]:
            support.setdefault(name, Counter())["legit" if row["label"] == "legit" else "bad"] += 1
    learned = sorted(n for n, spec in CATALOG.items()
                     if spec.learned and sum(support.get(n, Counter()).values()) >= MIN_SUPPORT)
    index = {n: i for i, n in enumerate(learned)}
    x = np.zeros((len(rows), len(learned)))
    for i, row in enumerate(rows):
        for name, value in row["signals"].items():
            if name in index:
                x[i, index[name]] = value

    coef, intercept = _fit_nonneg(x, y)

    # out-of-fold: the raw learned score of each message from a model that never saw it
    oof_coef = np.zeros((len(rows), len(learned)))
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    fold_of = np.zeros(len(rows), dtype=int)
    for k, (train, test) in enumerate(folds.split(x, y)):
        c, _ = _fit_nonneg(x[train], y[train])
        oof_coef[test] = c
        fold_of[test] = k
    oof_raw = (x * oof_coef).sum(axis=1)
    legit_raw = [s for s, label in zip(oof_raw, labels, strict=True) if label == "legit"]
    raw_suspicious = _threshold(legit_raw, MAX_FPR_FLAGGED, 1e-6)
    scale = SUSPICIOUS_POINTS / raw_suspicious

    def points(c: np.ndarray) -> dict[str, float]:
        weights = {n: spec.prior for n, spec in CATALOG.items()}
        weights.update({n: round(float(c[index[n]]) * scale, 3) for n in learned})
        return weights

    final = points(coef)
    oof_scored = []
    fold_weights = {}
    for i, row in enumerate(rows):
        k = int(fold_of[i])
        if k not in fold_weights:
            fold_weights[k] = points(oof_coef[i])
        oof_scored.append(score_rows([row], fold_weights[k])[0])
    thresholds = choose_thresholds(oof_scored, labels)

    signals = {}
    for name, spec in sorted(CATALOG.items()):
        sup = support.get(name, Counter())
        entry = {"weight": final[name], "category": spec.category,
                 "support": {"legit": sup.get("legit", 0), "bad": sup.get("bad", 0)}}
        if name in index:
            entry["source"] = "fit" if coef[index[name]] > 0 else "fit: zero (no evidence once the others are known)"
        elif not spec.learned:
            entry["source"] = "prior: tenant policy, threat feed or malware signal, not learned from a public corpus"
        else:
            entry["source"] = f"prior: fewer than {MIN_SUPPORT} corpus messages carry it"
        signals[name] = entry
    features_bytes = FEATURES.read_bytes() if FEATURES.exists() else b""
    weights_doc = {
        "format": "swordfish-weights/1",
        "fitted_by": "scripts/fit_weights.py (make fit)",
        "scikit_learn": sklearn.__version__,
        "model": {"kind": "logistic regression, L2, non-negative weights", "C": C, "class_weight": "balanced",
                  "folds": FOLDS, "seed": SEED, "min_support": MIN_SUPPORT},
        "corpus": {"messages": len(rows), "by_set": dict(sorted(Counter(r["set"] for r in rows).items())),
                   "features_sha256": hashlib.sha256(features_bytes).hexdigest()},
        "points_per_logodds": round(scale, 4),
        "intercept_logodds": round(intercept, 4),
        "thresholds": thresholds,
        "signals": signals,
    }
    oof = {"scored": oof_scored, "labels": labels, "thresholds": thresholds, "fold_weights": fold_weights}
    return weights_doc, oof


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, default=FEATURES)
    parser.add_argument("--out", type=Path, default=WEIGHTS_FILE)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from a fresh fit")
    parser.add_argument("--extra", type=Path, action="append", default=[], metavar="JSON",
                        help="more labelled rows: the body of GET /v1/tenants/<t>/feedback/examples (repeatable)")
    args = parser.parse_args(argv)
    _, rows = read(args.features)
    for extra in args.extra:
        examples = json.loads(extra.read_text())["examples"]
        rows += [{"id": e["id"], "set": e["set"], "label": e["label"], "signals": e["signals"]} for e in examples
                 if e.get("label") in ("legit", "phishing", "spam", "malware")]
    doc, oof = fit(rows)
    text = dumps(doc)
    if args.check:
        same = args.out.exists() and args.out.read_text() == text
        print(f"{args.out}: {'matches the fit' if same else 'DIFFERS from the fit: run make fit'}")
        return 0 if same else 1
    args.out.write_text(text)
    learned = sum(1 for s in doc["signals"].values() if s["source"] == "fit")
    print(f"{len(rows)} messages, {learned} weights learned, thresholds {doc['thresholds']} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
