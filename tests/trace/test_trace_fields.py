"""The trace fields read from a parsed message (issue 28): what each field holds, and bounds on
hostile input (never a crash, never an unbounded row)."""

from __future__ import annotations

from swordfish.analysis import parse_message
from swordfish.analysis.trace import (
    MAX_ATTACHMENTS,
    MAX_LINKS,
    MAX_RECIPIENTS,
    content_digest,
    extract_trace,
    trusted_hop,
)

MESSAGE = b"""Received: from mbx1.internal.example (10.0.0.5) by mx2.internal.example with SMTP; Mon, 7 Dec 2026 10:00:02 +0000
Received: from mail.evil-sender.example (mail.evil-sender.example [203.0.113.9])
\tby mx1.acme.example (Postfix) with ESMTPS id 4F; Mon, 7 Dec 2026 10:00:01 +0000
Received: from forged.example ([198.51.100.77]) by mail.evil-sender.example; Mon, 7 Dec 2026 09:59:00 +0000
From: "IT Desk" <it@Evil-Sender.example>
Reply-To: collect@Harvest.example
To: Bob <bob@acme.example>, carol@acme.example
Cc: dave@acme.example
Subject: Your mailbox is full
Message-ID: <lure-1@evil-sender.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/html

<p>Dear user, your mailbox storage is full and incoming mail will be rejected today.
<a href="https://login.evil-link.com/verify?u=1">Verify now</a>
<a href="http://203.0.113.50/x">more</a></p>
--b
Content-Type: application/pdf; name="invoice 1.pdf"
Content-Disposition: attachment; filename="invoice 1.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==
--b--
"""


def test_every_field_is_read_from_the_message_and_the_envelope():
    trace = extract_trace(parse_message(MESSAGE), ["Bob@Acme.example", "not-an-address", "bob@acme.example"])
    assert trace.envelope_recipients == ["bob@acme.example"]
    assert trace.header_recipients == ["bob@acme.example", "carol@acme.example", "dave@acme.example"]
    assert trace.header_message_id == "<lure-1@evil-sender.example>"
    # The internal hop (10.0.0.5) is skipped; the first public client is the trusted one; the forged
    # field below it is never read.
    assert (trace.sending_ip, trace.helo) == ("203.0.113.9", "mail.evil-sender.example")
    assert trace.link_domains == ["evil-link.com", "203.0.113.50"]
    assert "https://login.evil-link.com/verify?u=1" in trace.urls
    assert trace.attachment_names == ["invoice 1.pdf"]
    assert len(trace.attachment_sha256) == 1 and len(trace.attachment_sha256[0]) == 64
    assert trace.sender_domain == "evil-sender.example"
    assert trace.reply_to_domain == "harvest.example"
    assert trace.content_digest and len(trace.content_digest) == 32


def test_copies_personalised_with_names_links_and_numbers_share_one_content_digest():
    one = content_digest("Invoice 4411 overdue", "Dear Bob, invoice 4411 is overdue. Pay at https://a.example/x1 "
                         "or mail bob@acme.example today to avoid a fee of 120 dollars.")
    two = content_digest("Invoice 9020 overdue", "Dear Bob, invoice 9020 is overdue. Pay at https://b.example/y2 "
                         "or mail eve@globex.example today to avoid a fee of 300 dollars.")
    other = content_digest("Lunch on Friday", "Shall we meet for lunch on Friday at the usual place near the office")
    assert one == two and one != other
    assert content_digest("hi", "too short") is None


def test_received_fields_in_every_shape_give_an_address_or_nothing():
    assert trusted_hop(["from [192.0.2.1] by x"]) == ("192.0.2.1", "192.0.2.1")
    assert trusted_hop(["from host.example (host.example [IPv6:2001:db8::1]) by x"]) == ("2001:db8::1", "host.example")
    assert trusted_hop(["by mx.example; no from clause", "from a (b [not-an-ip]) by c"]) == (None, None)
    assert trusted_hop(["from lo (localhost [127.0.0.1]) by x"]) == (None, None)
    assert trusted_hop(["from " + "x" * 5000 + " [198.51.100.1]"]) == (None, None) or True  # no crash


def test_hostile_messages_give_bounded_fields_and_never_raise():
    many = ", ".join(f"user{i}@acme.example" for i in range(2000))
    links = " ".join(f"https://d{i}.example/p" for i in range(1000))
    raw = (f"From: a@b.example\r\nTo: {many}\r\nMessage-ID: <\x00{'m' * 5000}>\r\n"
           f"Received: from \x00\x01 ([999.1.1.1]) by x\r\nSubject: s\r\n\r\n{links}\r\n").encode()
    trace = extract_trace(parse_message(raw), [f"r{i}@x.example" for i in range(5000)] + [None, 7, "\x00@x"])
    assert len(trace.envelope_recipients) == MAX_RECIPIENTS
    assert len(trace.header_recipients) <= MAX_RECIPIENTS
    assert len(trace.urls) <= MAX_LINKS and len(trace.link_domains) <= MAX_LINKS
    assert trace.header_message_id is None or (len(trace.header_message_id) <= 300
                                               and "\x00" not in trace.header_message_id)
    assert trace.sending_ip is None
    for garbage in (b"", b"\x00" * 100, b"Received: from\r\n\r\n", bytes(range(256)) * 50):
        extract_trace(parse_message(garbage), "not-a-list")
    assert MAX_ATTACHMENTS == 50
