"""Authentication read the way a receiving MTA reads it (issue 23): DMARC by the published policy, list
delivery, trusted ARC sealers, forged results. The headers follow what Google, Microsoft 365 and rspamd
really write (the formats of the corpus's list mail and of Microsoft's documentation)."""

from __future__ import annotations

import pytest
from swordfish.analysis import TenantPolicy, analyze, parse_message
from swordfish.analysis.authentication import dmarc_policy, properties

from .helpers import build

BODY = "Hi all,\n\nthe build fails on the new board with the attached log; any idea what changed?\n\nJane\n"

# A Mailman list that tags the subject and adds a footer without rewriting From, received by Google.
LIST_HEADERS = {
    "Authentication-Results": (
        "mx.google.com; dkim=fail header.i=@gmail.com header.s=20230601 header.b=abc; "
        "spf=pass (google.com: domain of foo-bounces@lists.example.org designates 192.0.2.7 as permitted sender) "
        "smtp.mailfrom=foo-bounces@lists.example.org; "
        "dmarc=fail (p=NONE sp=QUARANTINE dis=NONE) header.from=gmail.com"),
    "Return-Path": "<foo-bounces@lists.example.org>",
    "List-Id": "Foo users <foo.lists.example.org>",
    "List-Post": "<mailto:foo@lists.example.org>",
}


def _names(raw: bytes, policy: TenantPolicy | None = None) -> dict[str, float]:
    return {r.name: r.weight for r in analyze(raw, policy).reasons}


def _list_mail(policy_text: str = "p=NONE sp=QUARANTINE dis=NONE", **changes: str | None) -> bytes:
    headers = dict(LIST_HEADERS)
    headers["Authentication-Results"] = headers["Authentication-Results"].replace(
        "p=NONE sp=QUARANTINE dis=NONE", policy_text)
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return build(sender='"Jane Roe" <jane.roe@gmail.com>', subject="[Foo] build fails on the new board",
                 body=BODY, headers=headers)


def test_a_list_message_that_failed_dkim_under_p_none_carries_no_authentication_sign():
    reasons = _names(_list_mail())
    assert not {"DMARC_FAIL", "DMARC_FAIL_POLICY_NONE", "DKIM_FAIL", "RETURNPATH_MISMATCH"} & set(reasons)
    verdict = analyze(_list_mail())
    assert verdict.verdict.value == "clean"
    explanation = next(r for r in verdict.reasons if r.name == "LIST_DELIVERY")
    assert explanation.weight == 0 and "DMARC_FAIL" in explanation.evidence and "none" in explanation.evidence


@pytest.mark.parametrize("policy_text", ["p=REJECT sp=REJECT dis=NONE", "p=QUARANTINE sp=QUARANTINE dis=QUARANTINE"])
def test_a_list_message_failing_under_an_enforcing_policy_still_counts(policy_text):
    reasons = _names(_list_mail(policy_text))
    assert reasons["DMARC_FAIL"] >= 3.0
    assert analyze(_list_mail(policy_text)).verdict.value != "clean"


def test_naming_a_list_without_coming_from_its_server_explains_nothing():
    # the envelope is the attacker's own, not the list's: a forged List-Id buys nothing
    raw = _list_mail(Return_Path="<bounce@attacker.example>")
    raw = raw.replace(b"smtp.mailfrom=foo-bounces@lists.example.org", b"smtp.mailfrom=bounce@attacker.example")
    reasons = _names(raw)
    assert "LIST_DELIVERY" not in reasons
    assert "DMARC_FAIL_POLICY_NONE" in reasons


def test_a_list_envelope_failing_spf_is_not_list_delivery():
    raw = _list_mail().replace(b"spf=pass", b"spf=fail")
    assert "LIST_DELIVERY" not in _names(raw)


def test_outside_a_list_a_p_none_failure_is_a_weak_sign_and_an_enforced_one_a_strong_one():
    weak = _names(_list_mail(List_Id=None, List_Post=None))
    strong = _names(_list_mail("p=REJECT sp=REJECT dis=REJECT", List_Id=None, List_Post=None))
    assert "DMARC_FAIL_POLICY_NONE" in weak and "DMARC_FAIL" not in weak
    assert strong["DMARC_FAIL"] > weak["DMARC_FAIL_POLICY_NONE"]


def test_a_list_setting_reply_to_to_itself_diverts_nothing():
    reasons = _names(_list_mail(Reply_To="foo@lists.example.org"))
    assert "REPLYTO_MISMATCH" not in reasons


def _forwarded(sealer: str, receiver_arc: str = "pass", aar_dmarc: str = "pass") -> bytes:
    headers = {
        "Authentication-Results": (
            f"mx.example.net; arc={receiver_arc} (i=1 spf=pass dkim=pass); dkim=fail header.d=partner.example; "
            "spf=fail smtp.mailfrom=partner.example; dmarc=fail (p=REJECT sp=REJECT dis=NONE) header.from=partner.example"),
        "ARC-Seal": f"i=1; a=rsa-sha256; t=1772007447; cv=none; d={sealer}; s=arc-20240605; b=AAAA",
        "ARC-Message-Signature": f"i=1; a=rsa-sha256; c=relaxed/relaxed; d={sealer}; s=arc; h=from:to; bh=x; b=y",
        "ARC-Authentication-Results": (
            f"i=1; mx.{sealer}; dkim={aar_dmarc} header.i=@partner.example header.s=s1 header.b=Sdlt; "
            f"spf=pass smtp.mailfrom=ann@partner.example; dmarc={aar_dmarc} (p=REJECT sp=REJECT dis=NONE) "
            "header.from=partner.example"),
    }
    return build(sender='"Ann Lee" <ann@partner.example>', subject="Re: quarterly figures", body=BODY,
                 headers=headers)


def test_an_arc_chain_from_a_trusted_sealer_restores_the_pass():
    verdict = analyze(_forwarded("google.com"))
    names = {r.name for r in verdict.reasons}
    assert "ARC_TRUSTED_PASS" in names
    assert not {"DMARC_FAIL", "DKIM_FAIL", "SPF_FAIL"} & names
    assert verdict.verdict.value == "clean"


def test_an_arc_chain_from_an_untrusted_sealer_does_not():
    names = _names(_forwarded("sealer.attacker.example"))
    assert "ARC_TRUSTED_PASS" not in names and names["DMARC_FAIL"] >= 3.0


def test_a_tenant_can_trust_its_own_forwarder():
    policy = TenantPolicy(trusted_arc_sealers=["sealer.attacker.example"])
    assert "ARC_TRUSTED_PASS" in _names(_forwarded("sealer.attacker.example"), policy)


@pytest.mark.parametrize("receiver_arc, aar_dmarc", [("fail", "pass"), ("none", "pass"), ("pass", "fail")])
def test_a_chain_the_receiver_did_not_validate_or_that_never_passed_restores_nothing(receiver_arc, aar_dmarc):
    names = _names(_forwarded("google.com", receiver_arc, aar_dmarc))
    assert "ARC_TRUSTED_PASS" not in names and "DMARC_FAIL" in names


def test_a_forged_authentication_results_above_the_trusted_one_is_ignored():
    raw = build(sender='"Bank" <alerts@bank.example>', subject="Verify your account", body=BODY)
    # the tenant's MX wrote the second header; the first, on top, claims a pass under another authserv-id
    raw = (b"Authentication-Results: mx.forger.example; spf=pass smtp.mailfrom=bank.example; "
           b"dkim=pass header.d=bank.example; dmarc=pass header.from=bank.example\n"
           b"Authentication-Results: mx.tenant.example; spf=fail smtp.mailfrom=bank.example; dkim=none; "
           b"dmarc=fail (p=REJECT sp=REJECT dis=REJECT) header.from=bank.example\n") + raw
    policy = TenantPolicy(trusted_authserv_ids=["mx.tenant.example"])
    assert parse_message(raw, policy).auth["dmarc"].result == "fail"
    assert _names(raw, policy)["DMARC_FAIL"] >= 3.0
    assert parse_message(raw).auth["dmarc"].result == "pass"  # without the setting the topmost wins


@pytest.mark.parametrize("clause, from_domain, expected", [
    ("dmarc=fail (p=NONE sp=QUARANTINE dis=NONE) header.from=gmail.com", "gmail.com", "none"),
    ("dmarc=fail (p=NONE sp=QUARANTINE dis=NONE) header.from=mail.example.org", "mail.example.org", "quarantine"),
    ("dmarc=fail action=oreject header.from=contoso.com", "contoso.com", "reject"),
    ("dmarc=fail action=none header.from=contoso.com", "contoso.com", "none"),
    ('dmarc=fail reason="No valid SPF, No valid DKIM" header.from=example.com (policy=reject)', "example.com", "reject"),
    ("dmarc=fail header.from=example.com", "example.com", "unknown"),
])
def test_the_published_policy_is_read_from_every_receivers_format(clause, from_domain, expected):
    assert dmarc_policy(properties(clause), from_domain) == expected


def test_microsofts_implicit_compauth_failure_weighs_half_an_explicit_one():
    def raw(reason: str) -> bytes:
        ar = (f"spf=none (sender IP is 192.0.2.1) smtp.mailfrom=x.example; dkim=none (message not signed) "
              f"header.d=none;dmarc=none action=none header.from=x.example;compauth=fail reason={reason}")
        return build(sender="<a@x.example>", body=BODY, headers={"Authentication-Results": ar})
    assert _names(raw("001"))["COMPAUTH_FAIL"] == pytest.approx(_names(raw("000"))["COMPAUTH_FAIL"] / 2, abs=0.01)


# --- own signals that need no receiver's opinion -----------------------------------------------------------

@pytest.mark.parametrize("subject, headers, fires", [
    ("RE: Outstanding invoice 4471", {}, True),
    ("AW: Zahlung", {}, True),
    ("Re: Outstanding invoice 4471", {"In-Reply-To": "<abc@partner.example>"}, False),
    ("RE: Outstanding invoice 4471", {"Thread-Index": "AdlQmJ2kP1Xx"}, False),
    ("Fwd: Outstanding invoice 4471", {}, False),
    ("Remittance advice", {}, False),
])
def test_a_reply_that_replies_to_nothing(subject, headers, fires):
    raw = build(subject=subject, body=BODY, headers=headers)
    assert ("FAKE_REPLY" in _names(raw)) is fires


def test_text_hidden_in_several_places_but_not_a_preheader_or_empty_cells():
    hidden = ('<p>Your mail<span style="font-size:0px">xq7</span>box is<span style="font-size:0">zz9</span> full'
              '<span style="display:none">k3 k3</span>, verify now</p>')
    preheader = ('<div style="display:none;max-height:0">Our spring sale starts today</div>'
                 '<table><tr><td style="font-size:0;line-height:0"><img src="x.png"></td></tr></table><p>Hello</p>')
    assert "HIDDEN_TEXT" in _names(build(body="Your mailbox is full", html=hidden))
    assert "HIDDEN_TEXT" not in _names(build(body="Hello", html=preheader))
