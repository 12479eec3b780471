"""Whole folders of real mail: ordinary business mail comes out clean, the samples get their verdicts."""

from __future__ import annotations

import pytest
from swordfish.analysis import TenantPolicy, VerdictKind, analyze
from swordfish.analysis.commands import iter_messages

from .helpers import SA, SAMPLES


def test_nice_corpus_is_at_least_95_percent_clean():
    results = [(src["path"], analyze(raw)) for src, raw in iter_messages(SA / "nice")]
    flagged = [(path, v.verdict, v.score, [r.name for r in v.reasons]) for path, v in results
               if v.verdict != VerdictKind.CLEAN]
    for row in flagged:
        print("not clean:", *row)
    assert len(results) >= 60
    assert len(flagged) / len(results) <= 0.05, flagged


EXPECTED = {
    "sublime/amazon_phish_url_shortener.eml": VerdictKind.PHISHING,
    "sublime/bec_ceo_impersonation.eml": VerdictKind.PHISHING,
    "sublime/fedex_brand_impersonation.eml": VerdictKind.PHISHING,
    # suspicious (3.32) under the first leave-one-source-out thresholds, which shrank every learned weight
    # (issue 23); phishing again once the scale grew (session 8: its words 2.98 and the brand claim)
    "sublime/punycode_robinhood.eml": VerdictKind.PHISHING,
    "sublime/reported_phish.eml": VerdictKind.PHISHING,
    "sublime/twitter_phish.eml": VerdictKind.PHISHING,
    "spamassassin/spam/gtube.eml": VerdictKind.SPAM,
    # its spam phrases and an IP link, and its words (the content model) when they weigh enough: near the lines
    # (about 3.0 suspicious, 4.0 spam), so a refit moves it. Spam again (4.66: three spam phrases and an IP link)
    # on the 11,240-message corpus once X's own t.co links stopped counting as a shortener (session 6); suspicious
    # (3.09: spam phrases 2.0 and an IP link) with the leave-one-source-out thresholds on the 17,450-message corpus;
    # spam (4.33: spam phrases 2.82, the IP link 1.51) once three prior-weighted list attachments stopped taking
    # the 0.1% allowance (session 8: .sh and .o files are not executables) and the scale grew
    "spamassassin/spam/001.eml": VerdictKind.SPAM,
    "spamassassin/spam/olevbmacro-macro.eml": VerdictKind.MALWARE,
    "spamassassin/spam/olevbmacro-zippwmacro.eml": VerdictKind.MALWARE,
    "swordfish/m365-password-expiry-phish.eml": VerdictKind.PHISHING,
    "swordfish/qr-code-mfa-lure.eml": VerdictKind.PHISHING,
    "swordfish/html-smuggling-remittance.eml": VerdictKind.MALWARE,
    "swordfish/invoice-double-extension-zip.eml": VerdictKind.MALWARE,
    "swordfish/bec-gift-cards.eml": VerdictKind.PHISHING,
    "swordfish/vendor-bank-change-lookalike.eml": VerdictKind.PHISHING,
    "swordfish/clean-project-notes.eml": VerdictKind.CLEAN,
    "swordfish/clean-vendor-invoice.eml": VerdictKind.CLEAN,
    "swordfish/clean-newsletter.eml": VerdictKind.CLEAN,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_gets_its_verdict_under_the_demo_policy(name):
    policy = TenantPolicy.model_validate_json((SAMPLES / "demo-policy.json").read_bytes())
    v = analyze((SAMPLES / name).read_bytes(), policy, experimental=frozenset({"QR_CODE_LURE"}))
    assert v.verdict == EXPECTED[name], v.reasons


def test_every_sample_nice_message_is_clean():
    for src, raw in iter_messages(SAMPLES / "spamassassin" / "nice"):
        assert analyze(raw).verdict == VerdictKind.CLEAN, src


def test_samples_carry_their_licences():
    assert (SAMPLES / "spamassassin" / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert "MIT License" in (SAMPLES / "sublime" / "LICENSE").read_text()
    assert 25 <= sum(1 for _ in iter_messages(SAMPLES)) <= 45
