"""Issue 26, items 11 and 12: a flag value cannot break out of its HTML attribute, and a header
that decodes to CR/LF cannot forge a line in the verdict page's header list."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

from swordfish.console.message_view import render_message

from tests.security.owasp.conftest import ADMIN

BREAKOUT = '" autofocus onfocus="document.title=1" x="'


class _Inputs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.inputs: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "input":
            self.inputs.append(dict(attrs))


def test_a_flag_value_stays_inside_its_attribute(site):
    from swordfish import wiring

    flag_admin = wiring.build_console_dependencies().flag_admin("test")
    flag_admin.set_default("probe_attribute", BREAKOUT, create=True)
    try:
        page = site.login(ADMIN).get("/console/flags").text
    finally:
        flag_admin.remove("probe_attribute")
    parser = _Inputs()
    parser.feed(page)
    values = [i for i in parser.inputs if i.get("name") == "value"]
    assert values and not any("onfocus" in i or "autofocus" in i for i in parser.inputs)
    import json

    assert json.dumps(BREAKOUT) in [i["value"] for i in values]  # the value is shown whole, as JSON


def _word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def test_a_header_that_decodes_to_a_line_break_stays_on_its_line():
    forged = _word("Invoice\r\nAuthentication-Results: mx.example; dmarc=pass\r\n")
    raw = (f"From: a@evil.example\r\nSubject: {forged}\r\nX-Folded: first\r\n second\r\n"
           f"X-Tab: a\tb\x1bc\r\n\r\nbody\r\n").encode()
    view = render_message(raw)
    for name, value in view.headers:
        assert "\n" not in value and "\r" not in value and "\x1b" not in value, (name, value)
    subject = dict(view.headers)["Subject"]
    assert subject.startswith("Invoice\\r\\nAuthentication-Results: mx.example; dmarc=pass") and "[as sent:" in subject
    assert dict(view.headers)["X-Folded"] == "first second"  # folding is not a line of its own
    assert "\\x1b" in dict(view.headers)["X-Tab"]
    lines = "\n".join(f"{n}: {v}" for n, v in view.headers).splitlines()
    assert not any(line.startswith("Authentication-Results") for line in lines)
