"""`make eval`'s summary: rates per set, the confusion matrix and the signals on misses and false positives."""

from __future__ import annotations

import sys

from .helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))
import eval_detection  # noqa: E402


def row(set_name, label, verdict, signals):
    return {"set": set_name, "label": label, "verdict": verdict, "score": 0.0, "signals": signals}


def test_rates_confusion_and_signals_on_misses_and_false_positives():
    results = [
        row("ham", "legit", "clean", {"DKIM_FAIL": 0.0}),
        row("ham", "legit", "clean", {}),
        row("ham", "legit", "suspicious", {"SPAM_LANGUAGE": 3.1, "REPLYTO_MISMATCH": 0.0}),
        row("ham", "legit", "clean", {}),
        row("phish", "phishing", "phishing", {"DMARC_FAIL": 3.5}),
        row("phish", "phishing", "clean", {"FREE_FILE_HOST": 0.4, "URL_SHORTENER": 1.5}),
        row("phish", "phishing", "clean", {"FREE_FILE_HOST": 0.4}),
        row("phish", "phishing", "suspicious", {"CREDENTIAL_PHISH_LANGUAGE": 3.0}),
    ]
    report = eval_detection.summarise(results)
    assert report["sets"]["ham"]["false_positive_rate"] == 0.25
    assert report["sets"]["phish"]["detection_rate"] == 0.5 and report["sets"]["phish"]["as_its_own_kind"] == 0.25
    assert report["confusion"]["phishing"] == {"clean": 2, "suspicious": 1, "spam": 0, "phishing": 1, "malware": 0}
    assert report["top_signals_on_misses"][0] == ("FREE_FILE_HOST", 2)  # counted per message, not weighted
    assert report["top_signals_on_false_positives"] == [("SPAM_LANGUAGE", 1)]  # only what pushed it over
    text = eval_detection.markdown({"engine": report, "cpu": {"x": {"median_ms": 1.0}}})
    assert "| ham | legit | 4 | 1 | 25.00% false positives" in text and "FREE_FILE_HOST (2)" in text


def _synthetic_rows() -> list[dict]:
    rows = []
    for i in range(120):
        rows.append({"id": f"a{i}", "set": "ham-lists", "label": "legit", "signals": {},
                     "tokens": ["agenda", "meeting", "notes", "patch", "review"][: 3 + i % 3]})
    for i in range(40):  # newsletters: their words are the spam's words
        rows.append({"id": f"b{i}", "set": "ham-newsletters", "label": "legit", "signals": {},
                     "tokens": ["offer", "click", "newsletter", "agenda"][: 2 + i % 3]})
    for i in range(120):
        rows.append({"id": f"s{i}", "set": "lures", "label": "phishing", "signals": {"SPAM_LANGUAGE": 1.0},
                     "tokens": ["offer", "click", "free", "winner"][: 2 + i % 3]})
    return rows


def test_a_held_out_set_is_scored_by_a_fit_that_never_saw_it():
    rows = _synthetic_rows()
    held = eval_detection.held_out(rows, "ham-newsletters", "pooled")
    assert held["fitted_on"] == 240
    assert list(held["sets"]) == ["ham-newsletters"] and held["sets"]["ham-newsletters"]["messages"] == 40
    # cross-validated, the newsletters' own rows teach the model their words are legitimate; held out, nothing
    # does, and they read as the lures they share words with
    cv = eval_detection.cross_validated(rows)["sets"]["ham-newsletters"]["false_positive_rate"]
    assert held["sets"]["ham-newsletters"]["false_positive_rate"] > cv
    try:
        eval_detection.held_out(rows, "no-such-set")
    except ValueError as exc:
        assert "no-such-set" in str(exc)
    else:
        raise AssertionError("an unknown set must be an error")


def _source_rows() -> list[dict]:
    rows = []
    for r in _synthetic_rows():
        label = r["label"]
        rows.append({**r, "set": f"{label}-{r['set']}"})
    for i in range(40):  # phishing only the receiving server recognised: its opinion is the only signal
        rows.append({"id": f"m{i}", "set": "phishing-delivered", "label": "phishing",
                     "signals": {"RECEIVER_PHISH_VERDICT": 1.0}, "tokens": ["agenda"]})
    return rows


def test_each_source_is_held_out_whole_and_own_signals_drop_the_receivers_opinion(monkeypatch):
    import fit_weights

    rows = _source_rows()
    seen = []
    real = fit_weights.outer_folds

    def spy(rows_, y, folds):
        splits = real(rows_, y, folds)
        seen.append((folds, [{fit_weights.source_of(rows_[i]["set"]) for i in test} for _, test in splits]))
        return splits

    monkeypatch.setattr(fit_weights, "outer_folds", spy)
    modes = eval_detection.evaluate_modes(rows, ["loso_own", "loso_all", "pooled_all"])
    loso = [groups for folds, groups in seen if folds == "sources"]
    assert loso and all(len(g) == 1 for g in loso[0])  # every outer fold holds out exactly one source
    assert sorted(next(iter(g)) for g in loso[0]) == ["delivered", "ham-lists", "ham-newsletters", "lures"]
    # the newsletters' words are legitimate only in their own rows: held out whole, they read as lures, and the
    # threshold that keeps them under 0.1% costs catch
    assert (modes["loso_all"]["sets"]["phishing-lures"]["detection_rate"]
            < modes["pooled_all"]["sets"]["phishing-lures"]["detection_rate"])
    # with the receiver's opinion off, the mail only Microsoft recognised is missed
    assert modes["loso_all"]["sets"]["phishing-delivered"]["detection_rate"] > 0.9
    assert modes["loso_own"]["sets"]["phishing-delivered"]["detection_rate"] == 0.0
    text = eval_detection.markdown({"modes": modes})
    assert "| phishing-delivered | phishing (caught) | 40 | 0.00% | 100.00% |" in text



def test_a_filters_own_verdict_on_its_own_test_mail_is_not_a_receivers_opinion():
    import fit_weights

    rows = [{"id": "1", "set": "legit-inbox-foff", "label": "legit", "signals": {"RECEIVER_SPAM_VERDICT": 1.0,
                                                                                 "SPAM_LANGUAGE": 1.0}},
            {"id": "2", "set": "spam-list-osst", "label": "spam", "signals": {"RECEIVER_SPAM_VERDICT": 1.0}}]
    kept = fit_weights.without_receiver_under_test(rows)
    assert kept[0]["signals"] == {"SPAM_LANGUAGE": 1.0}  # selected for being that filter's false positives
    assert kept[1] == rows[1]
