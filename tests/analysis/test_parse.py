"""MIME parsing on hostile and unusual input: every case yields facts or a recorded problem, never an error."""

from __future__ import annotations

from swordfish.analysis import VerdictKind, analyze, normalize_url, parse_message, registered_domain

from .helpers import SA, build, mail


def _nested(depth: int) -> bytes:
    head = b"From: a@deep.example.org\r\nSubject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    body = b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i - 1, i)
                    for i in range(1, depth))
    return head + body + b"--b%d\r\nContent-Type: text/plain\r\n\r\nhi\r\n" % (depth - 1)


def test_cjk_subjects_and_bodies_decode_in_their_charsets():
    jp = parse_message(mail(SA / "nice" / "cjk" / "iso-2022-jp.1"))
    assert "Shinichiro HIDA" == jp.from_name and jp.parse_problems == []
    gb = parse_message(mail(SA / "nice" / "cjk" / "gb2312.2"))
    assert gb.subject == "RE: 装硬碟问题"


def test_raw_8bit_headers_use_the_declared_body_charset():
    parsed = parse_message(mail(SA / "nice" / "cjk" / "gb2312.1"))
    assert parsed.subject.startswith("全新原装进口")
    latin = parse_message(b"From: \xe9l\xe8ve <e@x.fr>\r\nSubject: caf\xc3\xa9\r\n\r\nhi")
    assert (latin.from_name, latin.subject) == ("élève", "café")


def test_unknown_charset_is_a_parse_problem_and_text_still_decodes():
    raw = (b"From: a@b.example.com\r\nContent-Type: text/plain; charset=x-nonsense\r\n\r\n"
           b"please visit https://ok.example.com/")
    parsed = parse_message(raw)
    assert "unknown charset 'x-nonsense'" in parsed.parse_problems
    assert parsed.links[0].url == "https://ok.example.com/"


def test_malformed_mime_gets_a_verdict_with_a_parse_problem_reason():
    v = analyze(mail(SA / "spam" / "badmime2.txt"))
    assert any(r.name == "MIME_PARSE_PROBLEM" for r in v.reasons)
    assert v.parse_problems


def test_zero_byte_and_headerless_input_yield_clean_verdicts_with_problems():
    assert analyze(b"").parse_problems == ["empty message"]
    v = analyze(b"\x00" * 10)
    assert "no From header" in v.parse_problems and v.verdict == VerdictKind.CLEAN


def test_zero_byte_body_and_attachment():
    parsed = parse_message(build(body="", attachments=[("empty.bin", b"", "application/octet-stream")]))
    assert parsed.attachments[0].size == 0 and parsed.attachments[0].sniffed_type == "application/x-empty"


def test_deep_nesting_is_cut_off_and_reported():
    parsed = parse_message(_nested(60))
    assert any("nesting deeper" in p for p in parsed.parse_problems)
    assert parsed.from_address == "a@deep.example.org"


def test_nesting_that_defeats_the_parser_still_keeps_the_headers():
    parsed = parse_message(_nested(2500))
    assert parsed.from_address == "a@deep.example.org" and parsed.subject == "deep"
    assert parsed.parse_problems


def test_huge_header_block_is_parsed():
    raw = b"From: a@b.example.com\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 50) for i in range(20000))
    parsed = parse_message(raw + b"\r\nbody https://x.example.com/")
    assert parsed.from_address == "a@b.example.com" and parsed.links[0].host == "x.example.com"


def test_html_hrefs_and_form_actions_are_links_with_their_text():
    raw = build(html='<p><a class="btn" href="https://a.example.com/x?y=1&amp;z=2">Open <b>it</b></a>'
                     '<form action="https://post.example.net/submit"></form></p>')
    links = {link.url: link for link in parse_message(raw).links}
    assert links["https://a.example.com/x?y=1&z=2"].text == "Open it"
    assert "https://post.example.net/submit" in links


def test_text_urls_lose_sentence_punctuation():
    parsed = parse_message(build(body="See https://example.org/page. Or (www.example.net/a)."))
    assert {link.url for link in parsed.links} == {"https://example.org/page", "http://www.example.net/a"}


def test_normalize_url_forms():
    assert normalize_url("HTTPS://WWW.Example.COM:443/a?b=1#frag") == "https://www.example.com/a?b=1"
    assert normalize_url("http://example.com") == "http://example.com/"
    assert normalize_url("http://example.com:8080/x") == "http://example.com:8080/x"
    assert normalize_url("https://robínhood.com/contact") == "https://xn--robnhood-e2a.com/contact"
    assert normalize_url("javascript:alert(1)") is None
    assert normalize_url("http://[::1/") is None


def test_registered_domain_uses_the_public_suffix_list():
    assert registered_domain("mail.paypal.co.uk") == "paypal.co.uk"
    assert registered_domain("a.b.example.com") == "example.com"
    assert registered_domain("192.0.2.7") == "192.0.2.7"


# --- which text the language detectors read when a message has HTML and little plain text ----------------

LURE_HTML = ("<html><head><style>p { font-family: Arial; }</style></head><body><p>Greetings!</p>"
             "<p>Your Email account is set to be deactivated. To keep your account, verify your account below.</p>"
             '<a href="https://keep-mailbox.example/verify">Keep my account</a></body></html>')
LIST_FOOTER = ("_______________________________________________\nIndustrypack-devel mailing list\n"
               "Industrypack-devel@lists.sourceforge.net\nhttps://lists.sourceforge.net/lists/listinfo/industrypack-devel\n")


def _html_with_footer_part(html_body: str, plain: str) -> bytes:
    """What Mailman makes of an HTML-only post: multipart/mixed, the HTML, then its footer as a text part."""
    from email.message import EmailMessage
    msg = EmailMessage()
    msg["From"] = "Admin <admin@mailbox-service.example>"
    msg["To"] = "someone@example.com"
    msg["Subject"] = "Important notification"
    msg.make_mixed()
    html_part = EmailMessage()
    html_part.set_content(html_body, subtype="html")
    footer = EmailMessage()
    footer.set_content(plain)
    msg.attach(html_part)
    msg.attach(footer)
    return bytes(msg)


def test_the_html_is_read_first_when_the_plain_text_beside_it_is_only_a_footer():
    parsed = parse_message(_html_with_footer_part(LURE_HTML, LIST_FOOTER))
    assert parsed.text.index("verify your account") < parsed.text.index("mailing list")
    assert "font-family" not in parsed.text  # the style sheet is not text
    # the lure's language is now seen (it was not while only the footer was read)
    assert "CREDENTIAL_PHISH_LANGUAGE" in {r.name for r in analyze(_html_with_footer_part(LURE_HTML, LIST_FOOTER)).reasons}


def test_a_decoy_plain_alternative_does_not_hide_the_html_lure():
    raw = build(body="Please view this message in an HTML-capable mail client.", html=LURE_HTML)
    assert "verify your account" in parse_message(raw).text


def test_a_real_plain_alternative_is_read_alone():
    plain = "Hi all,\n\n" + "The board revision C fixes the clock distribution on the daughterboard. " * 12
    raw = build(body=plain, html="<p>" + plain + "</p><p>unrelated html-only words</p>")
    text = parse_message(raw).text
    assert "clock distribution" in text and "html-only" not in text
