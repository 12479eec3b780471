"""The signals issue 16's review found missing: link text vs target in plain text ("label <url>"), the
brand × deceptive-link interaction, and NEW_LINK_DOMAIN as the engine sees it (the history itself is
the pipeline's: tests/unit/test_new_link_domains.py). Each both ways."""

from __future__ import annotations

import sys

from swordfish.analysis import TenantPolicy, parse_message, score_message
from swordfish.analysis.scoring import EXPERIMENTAL_DETECTORS, collect_signals, signal_values

from .helpers import REPO, build


def names(verdict) -> set[str]:
    return {r.name for r in verdict.reasons}


def analysed(raw: bytes, **kwargs):
    return score_message(parse_message(raw), TenantPolicy(), {}, **kwargs)


# --- link text vs target in plain text -------------------------------------------------------------


def test_a_plain_text_link_labelled_with_one_domain_and_pointing_at_another_is_a_mismatch():
    lure = analysed(build(body="Sign in to review the payment:\nwww.paypal.com/signin <https://paypa1-review.example/s>\n"))
    assert "LINK_TEXT_MISMATCH" in names(lure)
    assert "text paypal.com -> paypa1-review.example" in next(
        r.evidence for r in lure.reasons if r.name == "LINK_TEXT_MISMATCH")
    link = next(link for link in parse_message(build(body="www.paypal.com <https://evil.example/x>")).links
                if link.domain == "evil.example")
    assert link.text == "www.paypal.com"


def test_a_plain_text_label_matching_its_target_or_a_wording_label_is_not_a_mismatch():
    same = analysed(build(body="Docs: https://docs.python.org/3/ <https://docs.python.org/3/library/>\n"))
    words = analysed(build(body="Read the full story <https://click.fabrikam.com/t/1>\n"))
    bare = analysed(build(body="See https://evil.example/x and www.paypal.com\n"))
    assert "LINK_TEXT_MISMATCH" not in names(same) | names(words) | names(bare)


# --- brand x deceptive link -----------------------------------------------------------------------


BRAND_SENDER = "PayPal Service <service@member-alerts.example>"


def test_a_brand_named_from_an_unrelated_domain_with_a_mismatched_link_is_an_interaction():
    html = '<p>Review your account.</p><a href="https://review-center.example/s">https://www.paypal.com/signin</a>'
    both = analysed(build(sender=BRAND_SENDER, html=html))
    assert {"BRAND_IMPERSONATION", "LINK_TEXT_MISMATCH", "BRAND_WITH_DECEPTIVE_LINK"} <= names(both)
    evidence = next(r.evidence for r in both.reasons if r.name == "BRAND_WITH_DECEPTIVE_LINK")
    assert "BRAND_IMPERSONATION" in evidence and "LINK_TEXT_MISMATCH" in evidence


def test_a_brand_alone_or_a_mismatched_link_alone_is_not_the_interaction():
    honest_link = '<a href="https://www.paypal.com/signin">https://www.paypal.com/signin</a>'
    brand_only = analysed(build(sender=BRAND_SENDER, html=honest_link))
    mismatch_only = analysed(build(html='<a href="https://review-center.example/s">https://www.paypal.com/</a>'))
    real_brand = analysed(build(sender="PayPal <service@paypal.com>",
                                html='<a href="https://review-center.example/s">https://www.paypal.com/</a>'))
    assert "BRAND_IMPERSONATION" in names(brand_only) and "LINK_TEXT_MISMATCH" in names(mismatch_only)
    for v in (brand_only, mismatch_only, real_brand):
        assert "BRAND_WITH_DECEPTIVE_LINK" not in names(v)


# --- NEW_LINK_DOMAIN in the engine ----------------------------------------------------------------


FRESH = build(body="Your mailbox is full. Verify your account: https://mailbox-upgrade.example/verify")


def test_new_link_domain_fires_for_the_domains_the_history_calls_new_and_joins_the_interactions():
    v = analysed(FRESH, new_link_domains={"mailbox-upgrade.example": 3.25})
    assert "NEW_LINK_DOMAIN" in names(v)
    assert "mailbox-upgrade.example first seen 3.2 h ago" in next(
        r.evidence for r in v.reasons if r.name == "NEW_LINK_DOMAIN")
    assert "CREDENTIAL_ASK_WITH_DECEPTIVE_LINK" in names(v)  # a credential ask linking to a day-old domain
    assert round(sum(r.weight for r in v.reasons), 2) == v.score


def test_new_link_domain_is_absent_without_a_history_or_for_other_domains():
    assert "NEW_LINK_DOMAIN" not in names(analysed(FRESH))
    assert "NEW_LINK_DOMAIN" not in names(analysed(FRESH, new_link_domains={"other.example": 1.0}))


def test_the_offline_corpus_path_is_deterministic_and_never_sees_new_link_domain():
    sys.path.insert(0, str(REPO / "scripts"))
    import corpus_features

    parsed = parse_message(FRESH)
    hits, _ = collect_signals(parsed, TenantPolicy(), None, experimental=EXPERIMENTAL_DETECTORS)
    assert "NEW_LINK_DOMAIN" not in signal_values(hits)
    header, rows = corpus_features.read()
    assert not any("NEW_LINK_DOMAIN" in row["signals"] for row in rows)
    assert "NEW_LINK_DOMAIN" not in header["learnable_signals"]  # a prior: the corpus has no history


# --- look-alikes of the tenant's domain in Reply-To -------------------------------------------------


def test_a_reply_to_on_a_lookalike_of_the_tenants_domain_is_a_sender_strength_lookalike():
    policy = TenantPolicy(domains=["contoso.com"])
    raw = build(sender='"Dana Whitfield" <dana.whitfield@gmail.com>', headers={"Reply-To": "dana@c0ntoso.com"},
                body="Are you at your desk? I need a quick favour.")
    v = score_message(parse_message(raw), policy, {})
    look = next(r for r in v.reasons if r.name == "TENANT_LOOKALIKE_DOMAIN")
    assert look.value == 2.0 and "reply-to c0ntoso.com imitates contoso.com" in look.evidence
    assert "LOOKALIKE_DOMAIN" not in names(v)  # the brand look-alike signal is a different one


def test_a_reply_to_on_the_tenants_own_or_an_unrelated_domain_is_no_lookalike():
    policy = TenantPolicy(domains=["contoso.com"])
    for reply_to in ("dana@contoso.com", "orders@fabrikam.com"):
        raw = build(headers={"Reply-To": reply_to}, body="See you at the review.")
        found = names(score_message(parse_message(raw), policy, {}))
        assert not {"LOOKALIKE_DOMAIN", "TENANT_LOOKALIKE_DOMAIN"} & found, reply_to


def test_a_reply_to_on_a_free_mail_domain_resembling_a_brand_is_not_a_lookalike():
    raw = build(headers={"Reply-To": "hex98@email.de"}, body="Thanks, that fixed it.")  # email.de vs ymail
    assert "LOOKALIKE_DOMAIN" not in names(analysed(raw))


# --- more receiving servers' verdict headers --------------------------------------------------------


def test_barracuda_and_proofpoint_verdicts_count_only_when_they_say_spam():
    spam = [{"X-Barracuda-Spam-Status": "Yes, SCORE=7.10 using global scores of TAG_LEVEL=3.5 KILL_LEVEL=5.0"},
            {"X-Barracuda-Spam-Flag": "YES"},
            {"X-Proofpoint-Spam-Details": "rule=spam policy=default score=92 spamscore=92"}]
    ham = [{"X-Barracuda-Spam-Status": "No, SCORE=0.00 using global scores of TAG_LEVEL=3.5"},
           {"X-Proofpoint-Spam-Details": "rule=notspam policy=default score=0 spamscore=0 adultscore=0"},
           {"X-Proofpoint-Spam-Details": "rule=outbound_notspam policy=outbound score=0"}]
    for headers in spam:
        v = analysed(build(headers=headers))
        assert "RECEIVER_SPAM_VERDICT" in names(v), headers
    for headers in ham:
        assert "RECEIVER_SPAM_VERDICT" not in names(analysed(build(headers=headers))), headers
    evidence = next(r.evidence for r in analysed(build(headers=spam[2])).reasons if r.name == "RECEIVER_SPAM_VERDICT")
    assert "rule=spam" in evidence
