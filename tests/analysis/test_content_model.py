"""The content model (swordfish.analysis.content): which words it reads, the reason it gives, and that
it never breaks a verdict."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from swordfish.analysis import analyze, parse_message
from swordfish.analysis import content as content_module
from swordfish.analysis.commands import iter_messages
from swordfish.analysis.content import ContentModel, content_model, content_tokens, parse_content_model
from swordfish.analysis.scoring import message_tokens
from swordfish.analysis.weights import model

from .helpers import CORPUS, REPO, SA, SAMPLES, build, mail

MAILMAN_FOOTER = ("\n_______________________________________________\nosst-users mailing list\n"
                  "osst-users@lists.sourceforge.net\nhttps://lists.sourceforge.net/lists/listinfo/osst-users\n")


def test_tokens_are_words_of_the_subject_and_body_not_digits_footers_list_tags_or_recipients():
    body = "dear jane, your invoice 2024 is overdue. pay now at acme payments" + MAILMAN_FOOTER
    tokens = content_tokens("[Osst-users] Re: Invoice overdue", body, '"Jane Roe" <jane.roe@contoso.com>')
    assert {"your", "invoice", "overdue", "pay", "now", "payments", "pay_now", "invoice_overdue", "your_invoice"} <= tokens
    assert {"s:invoice", "s:overdue"} <= tokens
    assert "2024" not in tokens and not any(t.isdigit() for t in tokens)
    # the list's footer and subject tag name where the mail was collected, not what it says
    assert not {"mailing", "listinfo", "sourceforge", "s:osst", "s:users", "s:re"} & tokens
    # the recipient's name and address say who it went to
    assert not {"jane", "roe", "contoso", "s:jane", "dear_jane", "jane_your"} & tokens
    assert "dear_your" in tokens  # the pair closes over the name left out


def test_google_groups_and_sourceforge_2002_footers_are_cut_too():
    google = "please review the patch\n\n-- \nyou received this message because you are subscribed to the google groups"
    sf2002 = "the rule misfires\n\n-------------------------------------------------------\nthis sf.net email is sponsored by"
    assert "subscribed" not in content_tokens(None, google) and "review" in content_tokens(None, google)
    assert "sponsored" not in content_tokens(None, sf2002) and "misfires" in content_tokens(None, sf2002)


def test_a_real_lure_gets_the_content_reason_with_the_words_that_weighed_most():
    v = analyze((SAMPLES / "swordfish" / "m365-password-expiry-phish.eml").read_bytes())
    reason = next(r for r in v.reasons if r.name == "CONTENT_UNWANTED")
    assert reason.value > 0 and "most:" in reason.evidence
    assert reason.weight == pytest.approx(round(model().weight("CONTENT_UNWANTED") * reason.value, 2))
    words = reason.evidence.split("most: ", 1)[1].split(", ")
    weights = content_model().weights
    assert words and all(weights[w] > 0 for w in words)
    assert [weights[w] for w in words] == sorted((weights[w] for w in words), reverse=True)


@pytest.mark.parametrize("path", [SAMPLES / "swordfish" / "clean-project-notes.eml",
                                  SAMPLES / "swordfish" / "clean-vendor-invoice.eml"])
def test_ordinary_business_mail_does_not_read_as_unwanted(path):
    assert "CONTENT_UNWANTED" not in {r.name for r in analyze(path.read_bytes()).reasons}


def test_an_operator_can_switch_the_content_model_off():
    from swordfish.analysis import CONTENT_MODEL, parse_message, score_message
    from swordfish.analysis.models import TenantPolicy

    parsed = parse_message((SAMPLES / "swordfish" / "m365-password-expiry-phish.eml").read_bytes())
    on = score_message(parsed, TenantPolicy())
    off = score_message(parsed, TenantPolicy(), disabled=frozenset({CONTENT_MODEL}))
    assert "CONTENT_UNWANTED" in {r.name for r in on.reasons}
    assert {r.name for r in off.reasons} == {r.name for r in on.reasons} - {"CONTENT_UNWANTED"}


def test_a_short_note_gets_no_content_reason_from_the_corpus_base_rate():
    """The model's intercept (2 log-odds: this corpus's share of unwanted mail) is left out: two lines have
    next to no words to weigh, and whatever they weigh is all the reason says."""
    raw = build(body="Hi,\n\nsee you tomorrow.\n")
    model_now = content_model()
    assert model_now.intercept > 1.0  # the base rate the reason must not carry
    words = sum(model_now.weights.get(t, 0.0) for t in message_tokens(parse_message(raw)))
    verdict = analyze(raw)
    reason = next((r for r in verdict.reasons if r.name == "CONTENT_UNWANTED"), None)
    assert words < 1.0
    assert reason is None or f"words weigh {words:+.1f}" in reason.evidence
    assert verdict.score < 1.0


def test_what_the_words_weigh_is_the_sum_of_their_weights():
    m = ContentModel.of(-3.0, {"free": 1.5, "money": 1.0, "kernel": -2.0})
    assert m.reason({"free", "money", "unknown"})[:2] == ("CONTENT_UNWANTED", 2.5)
    assert m.reason({"free", "kernel"}) is None  # -0.5: the words do not read as unwanted
    assert m.reason({"free"} | {f"w{i}" for i in range(50)})[1] == 1.5
    capped = ContentModel.of(0.0, {"x": 40.0})
    assert capped.reason({"x"})[1] == content_module.MAX_VALUE


def test_evidence_order_is_fixed_whatever_the_set_order():
    m = ContentModel.of(0.0, {"b": 1.0, "a": 1.0, "c": 2.0, "d": -1.0})
    evidence = {m.reason(set(order))[2] for order in (["a", "b", "c", "d"], ["d", "c", "b", "a"], ["c", "a", "d", "b"])}
    assert evidence == {"words weigh +3.0 (p=0.9526); most: c, a, b"}


def test_a_missing_or_broken_model_file_means_no_content_reason_and_still_a_verdict(monkeypatch, tmp_path):
    broken = tmp_path / "content_model.json"
    broken.write_text("{not json")
    monkeypatch.setattr(content_module, "MODEL_FILE", broken)
    content_module.content_model.cache_clear()
    try:
        v = analyze(mail(SA / "spam" / "001"))
        assert v.verdict and "CONTENT_UNWANTED" not in {r.name for r in v.reasons}
    finally:
        content_module.content_model.cache_clear()
    assert parse_content_model({"intercept": 1, "weights": {"a": "2.5"}}).weights == {"a": 2.5}


def test_the_features_file_stores_tokens_and_never_the_shipped_models_own_reason():
    """The shipped model was fitted on the corpus: a reason it gave a corpus message would leak that
    message's label into the fit. The fit makes each message's reason from its tokens, out of fold."""
    with gzip.open(REPO / "corpus" / "features.jsonl.gz", "rt") as fh:
        fh.readline()
        rows = [json.loads(line) for _, line in zip(range(500), fh, strict=False)]
    assert rows and all("CONTENT_UNWANTED" not in r["signals"] for r in rows)
    assert sum(1 for r in rows if r["tokens"]) > 0.9 * len(rows)


def test_the_engine_and_make_features_read_the_same_tokens():
    raw = (SAMPLES / "swordfish" / "m365-password-expiry-phish.eml").read_bytes()
    parsed = parse_message(raw)
    assert message_tokens(parsed) == message_tokens(parsed, parsed.text[:20_000].casefold())


@pytest.mark.parametrize("text", ["hello wörld, ab abc 123abc_def xyz", "a" * 30 + " bbb ccc", "naïve café x1y2zzz",
                                  "tab\tnew\nline—dash…okay", "日本語のテキスト abc", "under_score and-hyphen"])
def test_the_ascii_fast_path_reads_the_same_words_as_the_regex(text):
    """Whole runs of 3-24 letters, any script; a longer run (base64, a CJK sentence) is no word."""
    import re
    whole_runs = re.compile(r"(?<![^\W\d_])[^\W\d_]{3,24}(?![^\W\d_])")
    assert content_module.words_of(text) == whole_runs.findall(text)
    # and the other path on the same words: a non-ASCII space keeps the text off the fast path
    assert content_module.words_of(text + "\u00a0") == whole_runs.findall(text)


_WHOLE_RUNS = re.compile(r"(?<![^\W\d_])[^\W\d_]{3,24}(?![^\W\d_])")


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(max_codepoint=127), max_size=80))
def test_the_ascii_fast_path_reads_any_ascii_text_as_the_regex(text):
    assert content_module.words_of(text) == _WHOLE_RUNS.findall(text)


def test_the_ascii_fast_path_on_real_mail_text():
    checked = 0
    for folder in (SAMPLES, CORPUS):
        for _, raw in iter_messages(folder):
            text = parse_message(raw).text[:20_000].casefold()
            if text.isascii():
                assert content_module.words_of(text) == _WHOLE_RUNS.findall(text)
                checked += 1
    assert checked > 50
