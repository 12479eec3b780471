"""`make fit`: learn the signal weights and the verdict thresholds from corpus/features.jsonl.gz and write
functions/swordfish/analysis/data/weights.json (reviewed like code; the engine only reads it).

The idea of SpamAssassin's perceptron-generated scores, done as a regularised logistic regression
(scikit-learn for the folds, scipy's L-BFGS-B for the optimisation; dev dependencies only):
- every learnable signal with enough support in the corpus gets a learned weight; the L2 penalty pulls
  each weight towards its reviewed prior (weights.CATALOG) rather than towards zero, so a signal the
  corpus has little to say about keeps roughly its prior, and one the corpus contradicts moves (a
  maximum a posteriori fit under a Gaussian prior centred on the hand-set weights);
- the weights are bounded at zero from below: a signal is evidence against a message or nothing, so
  a sender cannot buy a lower score by adding a header;
- the thresholds are chosen on out-of-fold scores (stratified k-fold): `suspicious` is the lowest score
  at which at most 0.1% of the held-out legitimate mail is flagged, and each of phishing/spam/malware
  the lowest at which at most 0.05% gets that verdict;
- scores are in points: log-odds times the scale that puts `suspicious` at 3.0, so stored tenant
  policies keep their meaning and the priors of the signals the corpus cannot weigh fit in;
- a learned signal that no legitimate message carries keeps at least its prior in points: the scale,
  set by the legitimate mail, shrinks every weight, and for such a signal the shrinkage buys back no
  false positive, it only loses catch (decided per fold from the fold's training rows);
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
import scipy
import sklearn
from scipy.optimize import minimize
from scipy.special import expit
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


def _fit_nonneg(x: np.ndarray, y: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, float]:
    """Class-balanced logistic regression with an L2 penalty that pulls each weight towards its reviewed
    prior (not towards zero) and keeps it >= 0: the maximum a posteriori fit under a Gaussian prior
    centred on the hand-set weights. With little evidence a weight stays near its prior; evidence moves
    it (DKIM failing on list mail every day takes DKIM_FAIL to zero). scikit-learn's solvers shrink
    towards zero and take no bounds, so this is scipy's L-BFGS-B (a scikit-learn dependency) on the
    same objective as `LogisticRegression(C=C, class_weight="balanced")` with the penalty re-centred."""
    n_pos = max(1, int(y.sum()))
    n_neg = max(1, len(y) - n_pos)
    sample = np.where(y == 1, len(y) / (2 * n_pos), len(y) / (2 * n_neg))
    sign = np.where(y == 1, 1.0, -1.0)
    k = x.shape[1]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:k], theta[k]
        margin = sign * (x @ w + b)
        loss = np.logaddexp(0.0, -margin)  # log(1 + e^-m), stable
        grad_margin = -sample * sign * expit(-margin)
        diff = w - prior
        value = C * float(sample @ loss) + 0.5 * float(diff @ diff)
        grad = np.empty(k + 1)
        grad[:k] = C * (x.T @ grad_margin) + diff
        grad[k] = C * float(grad_margin.sum())
        return value, grad

    start = np.append(prior, 0.0)
    bounds = [(0.0, None)] * k + [(None, None)]
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": 10_000, "ftol": 1e-13, "gtol": 1e-9})
    return result.x[:k], float(result.x[k])


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
    if score >= thresholds[dominant] and by_cat[dominant] > 0:
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
        thresholds[kind] = max(_threshold(kind_scores, MAX_FPR_VERDICT, suspicious), round(suspicious + 1.0, 2))
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

    prior = np.array([CATALOG[n].prior for n in learned])
    coef, intercept = _fit_nonneg(x, y, prior)

    # out-of-fold: the raw learned score of each message from a model that never saw it
    oof_coef = np.zeros((len(rows), len(learned)))
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    fold_of = np.zeros(len(rows), dtype=int)
    for k, (train, test) in enumerate(folds.split(x, y)):
        c, _ = _fit_nonneg(x[train], y[train], prior)
        oof_coef[test] = c
        fold_of[test] = k
    oof_raw = (x * oof_coef).sum(axis=1)
    legit_raw = [s for s, label in zip(oof_raw, labels, strict=True) if label == "legit"]
    raw_suspicious = _threshold(legit_raw, MAX_FPR_FLAGGED, 1e-6)
    scale = SUSPICIOUS_POINTS / raw_suspicious

    legit = y == 0

    def uncontradicted(rows_mask: np.ndarray) -> set[str]:
        """Learned signals that no legitimate message (of these rows) carries."""
        fired_on_legit = (x[rows_mask & legit] > 0).any(axis=0)
        return {n for n in learned if not fired_on_legit[index[n]]}

    def points(c: np.ndarray, floor_at_prior: set[str]) -> dict[str, float]:
        weights = {n: spec.prior for n, spec in CATALOG.items()}
        weights.update({n: round(float(c[index[n]]) * scale, 3) for n in learned})
        # Evidence the corpus never contradicted keeps at least its reviewed prior. The scale is set by
        # the legitimate mail (mostly mailing lists, and 2002 mail without authentication headers), so
        # scaling shrinks every weight; a signal that never fires on legitimate mail is the one whose
        # shrinkage buys no false positive back, only lost catch (compauth, receiver phish verdicts).
        for n in floor_at_prior:
            weights[n] = max(weights[n], CATALOG[n].prior)
        return weights

    all_rows = np.ones(len(rows), dtype=bool)
    floored = uncontradicted(all_rows)
    final = points(coef, floored)
    oof_scored = []
    fold_weights = {}
    for i, row in enumerate(rows):
        k = int(fold_of[i])
        if k not in fold_weights:
            # within the fold, only its own training rows say what was contradicted
            fold_weights[k] = points(oof_coef[i], uncontradicted(fold_of != k))
        oof_scored.append(score_rows([row], fold_weights[k])[0])
    thresholds = choose_thresholds(oof_scored, labels)

    signals = {}
    for name, spec in sorted(CATALOG.items()):
        sup = support.get(name, Counter())
        entry = {"weight": final[name], "category": spec.category,
                 "support": {"legit": sup.get("legit", 0), "bad": sup.get("bad", 0)}}
        if name in floored and final[name] == spec.prior and round(float(coef[index[name]]) * scale, 3) < spec.prior:
            entry["source"] = "prior: a floor (the fit shrank it, but no legitimate corpus message carries it)"
        elif name in index:
            entry["source"] = "fit" if coef[index[name]] > 0 else "fit: zero (no evidence once the others are known)"
        elif not spec.learned:
            entry["source"] = "prior: not learned (tenant policy, threat feed, malware or parser-evasion signal)"
        else:
            entry["source"] = f"prior: fewer than {MIN_SUPPORT} corpus messages carry it"
        signals[name] = entry
    features_bytes = FEATURES.read_bytes() if FEATURES.exists() else b""
    weights_doc = {
        "format": "swordfish-weights/1",
        "fitted_by": "scripts/fit_weights.py (make fit)",
        "scikit_learn": sklearn.__version__,
        "scipy": scipy.__version__,
        "model": {"kind": "logistic regression, L2 towards the prior weights, non-negative weights", "C": C,
                  "class_weight": "balanced",
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
