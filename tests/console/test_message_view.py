"""The message as the console shows it: every header as text, the text, and HTML only sanitised;
bounded, and never raising on hostile bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from swordfish.console import message_view
from swordfish.console.message_view import render_message, sanitise_html

from tests.console.hostile_mail import HOSTILE_HEADER, hostile_message

PIXEL = "https://tracker.example/pixel.gif"


def test_the_html_body_loses_script_handlers_forms_links_and_remote_images_but_keeps_its_text():
    view = render_message(hostile_message(PIXEL))
    html = view.html.lower()
    for banned in ("<script", "onerror", "onload", "<form", "<input", "javascript:", "tracker.example", "<style",
                   "href=", "__pwned"):
        assert banned not in html, banned
    assert "your mailbox password expires today" in html
    assert "<img" in html  # the tags stay, without their remote source
    kept = sanitise_html('<p>logo <img src="data:image/png;base64,iVBORw0KGgo=" alt="logo"></p>')
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in kept


def test_every_header_is_kept_as_text_and_the_plain_part_is_the_text():
    view = render_message(hostile_message(PIXEL))
    names = [name for name, _ in view.headers]
    assert names[:3] == ["From", "Reply-To", "To"] and "X-Hostile" in names and "Authentication-Results" in names
    assert dict(view.headers)["X-Hostile"] == HOSTILE_HEADER  # as text: escaping is the template's job
    assert view.text.startswith("Your mailbox password expires today") and not view.text_from_html


def test_html_only_mail_gets_its_text_from_the_html_without_script_content():
    raw = (b"Subject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           b"<p>First line</p><script>var secret = 1;</script><div>Second &amp; last</div>")
    view = render_message(raw)
    assert view.text_from_html and view.text == "First line\nSecond & last"


def test_folded_headers_are_unfolded_and_body_line_ends_shown_as_lines():
    view = render_message(b"Subject: a long\r\n subject\r\nX: y\r\n\r\nline 1\r\nline 2\rline 3\n")
    assert view.headers == [("Subject", "a long subject"), ("X", "y")]  # one line per header (issue 26)
    assert view.text == "line 1\nline 2\nline 3\n"


def test_hostile_bytes_and_charsets_render_as_text():
    raw = (b"From: \xff\xfe <a@b.example>\r\nX-Nul: a\x00b\x1b[31m\r\nSubject: =?bogus?q?x?=\r\n"
           b"Content-Type: text/plain; charset=\"rot13\"\r\n\r\nhello \xe9\xff")
    view = render_message(raw)
    headers = dict(view.headers)
    assert headers["From"] == "\ufffd\ufffd <a@b.example>"
    assert headers["X-Nul"] == "a\\x00b\x1b[31m".replace("\x1b", "\\x1b")
    assert view.text == "hello \ufffd\ufffd"


def test_huge_messages_and_headers_are_cut_and_say_so(monkeypatch):
    monkeypatch.setattr(message_view, "MAX_PARSE_BYTES", 64 * 1024)
    body = b"A" * 200_000
    raw = b"Subject: big\r\nX-Long: " + b"v" * 10_000 + b"\r\n\r\n" + body
    view = render_message(raw)
    assert len(dict(view.headers)["X-Long"]) == message_view.MAX_HEADER_CHARS
    assert "the message is 210,026 bytes: only the first 65,536 are shown" in view.notes
    assert any("header value(s) longer than" in n for n in view.notes)
    assert len(view.text) < 64 * 1024


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=4000))
def test_any_bytes_render_without_raising(raw):
    view = render_message(b"Content-Type: text/html\r\n" + raw)
    assert all(isinstance(n, str) and isinstance(v, str) for n, v in view.headers)
    assert view.html is None or "<script" not in view.html.lower()


def test_encoded_words_are_shown_decoded_with_the_form_they_were_sent_in():
    raw = (b"From: =?utf-8?b?UGF5UGFsIFNlY3VyaXR5?= <alert@paypa1.example>\r\n"
           b"Subject: =?utf-8?q?Verify_your_account_=E2=80=94_<script>?=\r\n"
           b"X-Junk: =?x-no-such-charset?q?abc?= and =?utf-8?b?!!!?=\r\n"
           b"\r\nbody\r\n")
    headers = dict(render_message(raw).headers)
    assert headers["From"] == ("PayPal Security <alert@paypa1.example>  "
                               "[as sent: =?utf-8?b?UGF5UGFsIFNlY3VyaXR5?= <alert@paypa1.example>]")
    assert headers["Subject"].startswith("Verify your account \u2014 <script>  [as sent:")  # the template escapes it
    assert headers["X-Junk"].startswith("=?x-no-such-charset?q?abc?=")  # undecodable: left as it came
