"""The learned weights: `make fit` is deterministic and reproduces the shipped file, every reason keeps
its name, weight and evidence, and a verdict's reasons add up to its score."""

from __future__ import annotations

import hashlib
import json
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from swordfish.analysis import TenantPolicy, Thresholds, analyze
from swordfish.analysis.commands import iter_messages
from swordfish.analysis.content import MODEL_FILE, content_model
from swordfish.analysis.weights import CATALOG, WEIGHTS_FILE, model, parse_model

from .helpers import REPO, SA, SAMPLES, SUBLIME

sys.path.insert(0, str(REPO / "scripts"))
import corpus_features  # noqa: E402
import fit_weights  # noqa: E402

REAL = [raw for folder in (SA / "spam", SA / "nice", SUBLIME, SAMPLES / "swordfish")
        for _, raw in iter_messages(folder)]
POLICY = TenantPolicy(domains=["example.com"], vip_names=["Dana Whitfield"], allow_list=["gmail.com"],
                      block_list=["fast-invoices.biz"])


@pytest.fixture(scope="module")
def rows():
    header, rows = corpus_features.read()
    return header, rows


def test_the_shipped_weights_were_fitted_on_these_features_with_this_catalogue_and_fit():
    """The quick guard (the full refit below takes minutes, leave-one-source-out): a changed features file,
    signal catalogue or fit script without `make fit` fails here."""
    doc = json.loads(WEIGHTS_FILE.read_text())
    assert doc["corpus"]["features_sha256"] == hashlib.sha256(corpus_features.FEATURES.read_bytes()).hexdigest(), \
        "features.jsonl.gz changed since the fit: run `make fit`"
    assert doc["inputs"]["catalog_sha256"] == fit_weights.catalog_digest(), "the catalogue changed: run `make fit`"
    assert doc["inputs"]["fit_code_sha256"] == fit_weights.fit_code_digest(), "fit_weights.py changed: run `make fit`"


@pytest.mark.slow  # about 4 minutes of CPU: leave-one-source-out over every source (make test-all, make fit --check)
def test_the_shipped_weights_and_content_model_are_what_make_fit_produces(rows):
    _, data = rows
    result = fit_weights.fit(data)
    assert fit_weights.dumps(result.weights) == WEIGHTS_FILE.read_text(), "weights.json is stale: run `make fit`"
    assert fit_weights.dumps_content(result.content) == MODEL_FILE.read_text(), \
        "content_model.json is stale: run `make fit`"
    # and the engine reads back exactly what was fitted
    shipped = content_model()
    assert shipped.intercept == result.content["intercept"] and shipped.weights == result.content["weights"]


@pytest.mark.slow  # three fits, about 40 s (make test-all); test_eval_report runs the folds on small data
def test_the_fit_is_deterministic(rows):
    _, data = rows
    subset = [r for i, r in enumerate(data) if i % 8 == 0 or r["label"] != "legit"]
    first = fit_weights.fit(subset, "pooled")  # the mechanism; the fold kind is tested in test_eval_report
    second = fit_weights.fit(list(subset), "pooled")
    assert fit_weights.dumps(first.weights) == fit_weights.dumps(second.weights)
    assert fit_weights.dumps_content(first.content) == fit_weights.dumps_content(second.content)
    # and it is a real fit: different data gives different weights and a different content model
    other = fit_weights.fit([r for r in subset if r["set"] != "spam-sa-2003"], "pooled")
    assert other.weights["signals"] != first.weights["signals"]
    assert other.content["weights"] != first.content["weights"]


def test_cross_validation_never_scores_a_message_with_a_content_model_that_saw_it(rows, monkeypatch):
    """Nested folds: every content model that gives a held-out message its reason was fitted without it."""
    _, data = rows
    subset = [r for i, r in enumerate(data) if i % 6 == 0]
    scored_by: list[tuple[set[int], set[int]]] = []
    real_fit, real_reasons = fit_weights._fit_content, fit_weights._content_reasons
    fitted_on: dict[int, set[int]] = {}

    def spy_fit(tokens, y, idx):
        model = real_fit(tokens, y, idx)
        fitted_on[id(model)] = {int(i) for i in idx}
        return model

    def spy_reasons(tokens, idx, model):
        scored_by.append(({int(i) for i in idx}, fitted_on[id(model)]))
        return real_reasons(tokens, idx, model)

    monkeypatch.setattr(fit_weights, "_fit_content", spy_fit)
    monkeypatch.setattr(fit_weights, "_content_reasons", spy_reasons)
    fit_weights.fit([r for i, r in enumerate(subset) if i % 4 == 0])  # leave-one-source-out, as shipped
    assert len(scored_by) >= 5 * 6  # the outer folds, each with its inner folds
    for scored, trained in scored_by:
        assert scored and trained and not scored & trained


def test_a_signal_no_legitimate_message_carries_keeps_at_least_its_prior_and_one_that_does_may_shrink():
    doc = json.loads(WEIGHTS_FILE.read_text())  # what the fit gives (the test above)
    signals = doc["signals"]
    learned = {n: e for n, e in signals.items() if not e["source"].startswith("prior: not learned")
               and not e["source"].startswith("prior: fewer")}
    uncontradicted = {n: e for n, e in learned.items() if e["support"]["legit"] == 0}
    assert uncontradicted and all(e["weight"] >= CATALOG[n].prior for n, e in uncontradicted.items())
    # the floor is doing something: the scale shrank some of them below their prior
    assert any(e["source"].startswith("prior: a floor") for e in uncontradicted.values())
    # and signals legitimate mail does carry are learned, free to fall below their prior
    assert any(e["weight"] < CATALOG[n].prior for n, e in learned.items() if e["support"]["legit"] > 0)


def test_the_features_file_was_made_with_the_current_signal_catalogue(rows):
    header, data = rows
    assert header["learnable_signals"] == sorted(n for n, s in CATALOG.items() if s.learned), \
        "a signal was added or removed: rebuild corpus/features.jsonl.gz with `make features`"
    assert {name for r in data for name in r["signals"]} <= set(CATALOG)


def test_every_signal_has_a_weight_a_source_and_learned_weights_are_never_negative():
    doc = json.loads(WEIGHTS_FILE.read_text())
    assert set(doc["signals"]) == set(CATALOG)
    for name, entry in doc["signals"].items():
        assert entry["source"], name
        if entry["source"].startswith("fit"):
            assert entry["weight"] >= 0, name
    assert sum(1 for e in doc["signals"].values() if e["source"] == "fit") >= 8
    t = doc["thresholds"]
    # the scale puts the learned signals' suspicious threshold at 3.0; prior-weighted signals that fire on
    # legitimate mail can only push the chosen threshold up from there, never below
    assert t["suspicious"] >= fit_weights.SUSPICIOUS_POINTS
    assert min(t["phishing"], t["spam"], t["malware"]) >= round(t["suspicious"] + 1.0, 2)


def test_default_thresholds_are_the_learned_ones():
    assert Thresholds().model_dump() == model().thresholds
    assert Thresholds(phishing=9.5).phishing == 9.5  # a tenant may still set its own


def test_a_missing_or_broken_weights_file_falls_back_to_the_priors():
    broken = parse_model({"signals": {}, "thresholds": {}})
    assert broken.weight("DMARC_FAIL") == CATALOG["DMARC_FAIL"].prior
    assert broken.thresholds["suspicious"] == 3.0


def _sums_up(verdict) -> None:
    assert verdict.score == pytest.approx(sum(r.weight for r in verdict.reasons), abs=0.011)
    for r in verdict.reasons:
        assert r.name in CATALOG and r.evidence
        if r.name != "ALLOWLISTED":
            assert r.weight == pytest.approx(round(model().weight(r.name) * r.value, 2), abs=0.001)


def test_reasons_add_up_to_the_score_on_real_mail():
    for raw in REAL:
        _sums_up(analyze(raw, POLICY, lambda c: {x: "openphish" for x in sorted(c)[:1]}))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(REAL) - 1), cut=st.integers(0, 4000), junk=st.binary(max_size=200))
def test_reasons_add_up_to_the_score_on_damaged_mail(index, cut, junk):
    raw = REAL[index]
    _sums_up(analyze(raw[:cut] + junk + raw[cut:], POLICY))


def test_feedback_rows_without_tokens_train_the_rules_but_bring_no_content_reason(rows):
    """An analyst's judgement exported by the API carries the verdict's stored reasons, no words (message
    content is not stored). Its stored CONTENT_UNWANTED came from the shipped model: it is dropped, not
    learned from, and the row still weighs in the rule fit."""
    _, data = rows
    subset = [r for i, r in enumerate(data) if i % 8 == 0 or r["label"] != "legit"]
    feedback = [{"id": f"fb{i}", "set": "feedback-acme", "label": "phishing",
                 "signals": {"CONTENT_UNWANTED": 9.0, "FREEMAIL_SENDER": 1.0}} for i in range(40)]
    result = fit_weights.fit(subset + feedback, "pooled")
    assert all("CONTENT_UNWANTED" not in s for s in result.oof["signals"][len(subset):])
    assert result.weights["signals"]["FREEMAIL_SENDER"]["support"]["bad"] >= 40


def test_a_kind_threshold_ignores_legitimate_mail_that_could_never_get_that_kind():
    """The verdict rule gives a kind only to a message with evidence of that kind: legitimate mail
    scored by neutral reasons alone (its words) is at most suspicious, so it must not push the
    phishing threshold up (it once put phishing at 7.39 while suspicious was 3.07)."""
    none = {"phishing": 0.0, "spam": 0.0, "malware": 0.0}
    legit = [(15.0, dict(none)), (9.0, dict(none)), (7.4, dict(none))] + [(0.0, dict(none))] * 3000
    labels = ["legit"] * len(legit)
    thresholds = fit_weights.choose_thresholds(legit, labels)
    assert thresholds["phishing"] == round(thresholds["suspicious"] + 1.0, 2)
    # while legitimate mail with phishing evidence does count
    phishy = [(9.0, {**none, "phishing": 2.0}), (8.0, {**none, "phishing": 2.0})] + legit
    assert fit_weights.choose_thresholds(phishy, ["legit"] * len(phishy))["phishing"] > 8.0


def test_lures_and_spam_each_weigh_a_quarter_of_the_loss_whatever_their_counts():
    labels = ["legit"] * 6 + ["phishing", "malware"] + ["spam"] * 12
    weights = fit_weights.class_weights(labels)
    share = {kind: float(sum(w for w, label in zip(weights, labels, strict=True) if label in kinds)) / len(labels)
             for kind, kinds in (("legit", {"legit"}), ("lures", {"phishing", "malware"}), ("spam", {"spam"}))}
    assert share == pytest.approx({"legit": 0.5, "lures": 0.25, "spam": 0.25})
    # a fold without spam gives the lures the whole unwanted half
    no_spam = fit_weights.class_weights(["legit", "legit", "phishing"])
    assert float(no_spam[2]) == pytest.approx(1.5) and float(no_spam[0]) == pytest.approx(0.75)
