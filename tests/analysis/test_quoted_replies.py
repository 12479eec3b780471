"""Session 12 (issue 23): a reply that quotes the earlier message ("> " lines) is a reply, and the links it
quotes are the earlier author's. Eleven kasan-dev replies quoting a syzbot report (syzkaller.appspot.com,
goo.gl) and 124 list replies written by 2002 clients that set no In-Reply-To were flagged for it; no phishing or
spam message of the corpus quotes that way."""

from __future__ import annotations

from swordfish.analysis import analyze, parse_message

from .helpers import build


def names(verdict) -> set[str]:
    return {r.name for r in verdict.reasons}


SYZBOT_REPLY = """On Fri, Nov 29, 2019 at 11:38 AM syzbot wrote:
> Hello,
>
> syzbot found the following crash on:
>
> dashboard link: https://syzkaller.appspot.com/bug?extid=4925d60532bf4c399608
> kernel config:  https://syzkaller.appspot.com/x/.config?x=7c04b0959e75c206
>
> See https://goo.gl/tpsmEJ for more information about syzbot.

This looks like a false positive in the stack unwinder. I will send a patch.
"""


def test_links_in_quoted_lines_are_marked_quoted_and_the_reply_s_own_links_are_not():
    body = SYZBOT_REPLY + "\nThe fix: https://lore.kernel.org/r/1234\n"
    parsed = parse_message(build(subject="Re: KASAN: stack-out-of-bounds", body=body,
                                 headers={"In-Reply-To": "<000000000000c280ba05988b6242@google.com>"}))
    sources = {link.host: link.source for link in parsed.links}
    assert sources == {"syzkaller.appspot.com": "quoted", "goo.gl": "quoted", "lore.kernel.org": "text"}


def test_a_link_written_both_quoted_and_in_the_reply_is_the_reply_s():
    body = "> see https://bit.ly/abc\n\nyes, https://bit.ly/abc is the one\n"
    parsed = parse_message(build(subject="Re: the link", body=body))
    assert [link.source for link in parsed.links] == ["text"]


def test_a_reply_quoting_shortened_and_free_site_links_is_not_flagged_for_them():
    verdict = analyze(build(subject="Re: KASAN: stack-out-of-bounds", body=SYZBOT_REPLY,
                            headers={"In-Reply-To": "<000000000000c280ba05988b6242@google.com>"}))
    assert not names(verdict) & {"URL_SHORTENER", "FREE_SITE_HOST"}


def test_the_same_links_written_by_the_sender_still_count():
    body = ("Hello,\n\nsyzbot found the following crash:\n"
            "dashboard link: https://syzkaller.appspot.com/bug?extid=4925d60532bf4c399608\n"
            "See https://goo.gl/tpsmEJ for more information.\n")
    verdict = analyze(build(subject="KASAN: stack-out-of-bounds", body=body))
    assert {"URL_SHORTENER", "FREE_SITE_HOST"} <= names(verdict)


def test_quoted_links_in_a_message_that_is_no_reply_still_count():
    # a "quote" in a fresh message is only formatting: the attacker wrote it
    body = "Your mailbox is full. Open the notice below:\n> https://bit.ly/mbx-quota\n> https://x.pages.dev/q\n"
    verdict = analyze(build(subject="Mailbox quota", body=body))
    assert {"URL_SHORTENER", "FREE_SITE_HOST"} <= names(verdict)


def test_a_reply_quoting_the_earlier_message_is_no_fake_reply_even_without_in_reply_to():
    body = ("Gary Murphy:\n>How do you intend to take legal action against people a\n>world away?\n\n"
            "Spammers fall into two categories.\n")
    verdict = analyze(build(subject="Re: Mail Me the Money!", body=body))
    assert "FAKE_REPLY" not in names(verdict)


def test_a_re_subject_with_no_thread_and_nothing_quoted_is_still_a_fake_reply():
    verdict = analyze(build(subject="RE: Outstanding invoice", body="Please see the attached invoice and pay today.\n"))
    assert "FAKE_REPLY" in names(verdict)


def test_one_quoted_line_does_not_make_a_reply():
    body = "> Your invoice is ready\nPlease see the attached invoice and pay today.\n"
    verdict = analyze(build(subject="RE: Outstanding invoice", body=body))
    assert "FAKE_REPLY" in names(verdict)
