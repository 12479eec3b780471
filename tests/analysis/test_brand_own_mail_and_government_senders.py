"""Session 11 (issue 23): a brand's own signed mail is not judged on its words; a government domain's unsigned
mail linking elsewhere is a spoof; a list's rewritten From is no company diverting replies to free mail."""

from __future__ import annotations

import pytest
from swordfish.analysis import analyze

from scripts.fit_weights import with_content_reason  # the fit must leave the content reason out as the engine does

from .helpers import build


def names(verdict) -> set[str]:
    return {r.name for r in verdict.reasons}


RESET_TEXT = ("We received a request to reset the password of your account. Verify your account: click the link "
              "below to reset your password. If you did not request a password reset, secure your account now.")


def _reset(sender: str, link: str, auth: str | None) -> bytes:
    headers = {"Authentication-Results": auth} if auth else {}
    return build(sender=sender, subject="Password reset request", body=RESET_TEXT,
                 html=f"<p>{RESET_TEXT}</p><a href=\"{link}\">Reset password</a>", headers=headers)


X_SIGNED = "mx.google.com; dkim=pass header.i=@x.com header.s=dkim-202308; spf=pass smtp.mailfrom=bounce.x.com"


def test_a_password_reset_a_brand_signed_linking_to_itself_is_not_judged_on_its_words():
    verdict = analyze(_reset('"X" <info@x.com>', "https://x.com/i/reset?t=1", X_SIGNED))
    assert "BRAND_OWN_SIGNED_MAIL" in names(verdict)
    assert not names(verdict) & {"CREDENTIAL_PHISH_LANGUAGE", "CONTENT_UNWANTED", "BEC_PAYMENT_LANGUAGE"}
    assert verdict.verdict.value == "clean"


@pytest.mark.parametrize(("sender", "link", "auth"), [
    ('"X" <info@x.com>', "https://x-reset.example.net/i", X_SIGNED),  # a link off the brand
    ('"X" <info@x.com>', "https://x.com/i/reset", "mx.google.com; dkim=fail header.i=@x.com; spf=fail"),  # unsigned
    ('"X" <info@x.com>', "https://x.com/i/reset", "mx.google.com; dkim=pass header.i=@mailer.example.net"),  # not its
    ('"PayPal" <service@paypal.com>', "https://www.paypal.com/invoice/p/1",  # relays others' words (invoices)
     "mx.google.com; dkim=pass header.i=@paypal.com; dmarc=pass header.from=paypal.com"),
    ('"Sam" <sam.example@gmail.com>', "https://mail.google.com/x",  # free mail: anyone's signed mail
     "mx.google.com; dkim=pass header.i=@gmail.com; dmarc=pass header.from=gmail.com"),
    ('"X" <info@x-support.example>', "https://x-support.example/reset",  # a domain of its own, signed by itself
     "mx.google.com; dkim=pass header.i=@x-support.example; dmarc=pass header.from=x-support.example"),
])
def test_its_words_still_count_off_the_brand_unsigned_on_a_relay_or_on_free_mail(sender, link, auth):
    verdict = analyze(_reset(sender, link, auth))
    assert "BRAND_OWN_SIGNED_MAIL" not in names(verdict)
    assert "CREDENTIAL_PHISH_LANGUAGE" in names(verdict)


def test_the_fit_gives_a_brands_own_signed_mail_no_content_reason():
    rows = [{"signals": {"BRAND_OWN_SIGNED_MAIL": 1.0}}, {"signals": {"REPLYTO_MISMATCH": 1.0}}]
    reasons = {0: ("CONTENT_UNWANTED", 5.0), 1: ("CONTENT_UNWANTED", 5.0)}
    assert with_content_reason(rows, reasons) == [
        {"BRAND_OWN_SIGNED_MAIL": 1.0}, {"REPLYTO_MISMATCH": 1.0, "CONTENT_UNWANTED": 5.0}]


# --- government domains -----------------------------------------------------------------------------------

TAX_OFFICE = dict(sender="Administracion Tributaria <impuestos@hacienda.gob.es>",
                  subject="BLOQUEO JUDICIAL - cuenta bancaria suspendida",
                  html='<p>Hemos identificado que tiene pendiente un comprobante fiscal.</p>'
                       '<a href="http://comprobantefiscal.southcentralus.cloudapp.azure.com/">Descargar</a>')


@pytest.mark.parametrize("sender", ["Administracion Tributaria <impuestos@hacienda.gob.es>",
                                    "IRS <refunds@irs.gov>", "Receita Federal <aviso@receita.fazenda.gov.br>",
                                    "DGFiP <ne-pas-repondre@dgfip.finances.gouv.fr>", "Tribunal <mandado@tjsp.jus.br>"])
def test_a_government_domain_unsigned_linking_only_elsewhere_is_a_spoof(sender):
    verdict = analyze(build(**{**TAX_OFFICE, "sender": sender}))
    assert "azure.com" in next(r.evidence for r in verdict.reasons if r.name == "BRAND_SENDER_FOREIGN_LINKS")


def test_a_signed_government_mail_or_one_linking_to_itself_or_a_lookalike_gov_word_is_not():
    assert "a government body" in next(r.evidence for r in analyze(build(**TAX_OFFICE)).reasons
                                       if r.name == "BRAND_SENDER_FOREIGN_LINKS")
    signed = build(**TAX_OFFICE, headers={"Authentication-Results": "mx.example.net; dkim=pass header.d=hacienda.gob.es"})
    own = build(**{**TAX_OFFICE, "html": '<a href="https://sede.agenciatributaria.gob.es/x">Sede</a>'
                                         '<a href="https://www.hacienda.gob.es/x">Hacienda</a>'})
    # "gov" as a word of an ordinary domain is no government suffix
    company = build(**{**TAX_OFFICE, "sender": "Gov Supplies <info@govsupplies.com>"})
    # a civil servant posting under their own name, unsigned (the 2002 Irish Linux users' list)
    person = build(**{**TAX_OFFICE, "sender": '"Ryan, Shane" <Shane_Ryan@education.gov.ie>'})
    for raw in (signed, own, company, person):
        assert "BRAND_SENDER_FOREIGN_LINKS" not in names(analyze(raw))


# --- Reply-To behind a list's rewritten From --------------------------------------------------------------

LIST_HEADERS = {"List-Id": "<usrp-users.lists.ettus.com>", "List-Post": "<mailto:usrp-users@lists.ettus.com>",
                "Return-Path": "<usrp-users-bounces@lists.ettus.com>",
                "Received-SPF": "pass (lists.ettus.com: domain of usrp-users-bounces@lists.ettus.com)"}


def test_a_list_post_whose_author_uses_free_mail_is_no_reply_diversion_to_free_mail():
    raw = build(sender='"Marcus Leech via USRP-users" <usrp-users@lists.ettus.com>', html="<p>try the B210</p>",
                headers=LIST_HEADERS).replace(b"To: j.doe@example.com",
                                              b"To: usrp-users@lists.ettus.com\nReply-To: patchvonbraun@gmail.com")
    verdict = names(analyze(raw))
    assert "REPLYTO_FREEMAIL" not in verdict and "REPLYTO_MISMATCH" in verdict


def test_a_company_from_with_a_free_mail_reply_to_is_still_the_bec_pattern():
    raw = build(sender='"CFO" <cfo@partner-firm.com>', headers={"Reply-To": "cfo.partnerfirm@gmail.com"})
    assert "REPLYTO_FREEMAIL" in names(analyze(raw))


def test_a_forged_list_post_naming_the_lure_s_domain_does_not_hide_its_links():
    # Only a list that really delivered the message (its own envelope or signature) has links of its own to
    # leave out; a List-Post header anyone can write must not take the lure's domain out of the link targets.
    html = '<p>Your parcel is held.</p><a href="https://track.parcel-fee.net/pay">Pay the fee</a>'
    forged = {"List-Post": "<mailto:list@parcel-fee.net>", "List-Id": "<news.parcel-fee.net>"}
    for sender in ('"DHL Express" <noreply@dhl.com>', '"DHL Express" <wbm@shop.example.net>'):
        verdict = analyze(build(sender=sender, subject="Your parcel", body="Your parcel is held.", html=html,
                                headers=forged))
        assert names(verdict) & {"BRAND_SENDER_FOREIGN_LINKS", "BRAND_NAME_LINKS_ELSEWHERE"}, sender
