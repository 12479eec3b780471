"""The analysis's fast paths give exactly what the plain way gives: the single-part body taken whole
(mime_limits) against the feed parser's line loop, the line buffer's body chunks, boundary matcher and
line-end search against the standard library's, the cached content types and parameters against
Message's, and phrase matching at literal prefixes (phrases) against a regex search over the whole
text."""

from __future__ import annotations

import email
import email.feedparser
import email.utils
import random
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from swordfish.analysis import html_links, mime_limits, parse, scoring
from swordfish.analysis.budget import AnalysisBudget
from swordfish.analysis.commands import iter_messages
from swordfish.analysis.phrases import (
    MAX_OCCURRENCES,
    PhrasePattern,
    TriggerSet,
    literal_prefixes,
    triggers_present,
)

from .helpers import CORPUS, SAMPLES

REAL = [raw for folder in (SAMPLES, CORPUS) for _, raw in iter_messages(folder)]

# Edge cases of the header/body split: a missing separator, lone CR and CRLF line ends, no header at
# all, a Unix From line, no body, message/* and multipart without a boundary (not fast-pathed), 8-bit.
EDGE = [
    b"From: a@b.example\nSubject: hi\n\nbody\nmore\n",
    b"From: a@b.example\r\nSubject: hi\r\n\r\nbody\r\nmore",
    b"From: a@b.example\rSubject: hi\r\rbody\rmore\r\n\r\ntail",
    b"From: a@b.example\nnot a header line\nSubject: x\n\nbody\n",
    b"\nbody only\n",
    b"\r\n\r\nbody\n",
    b"From someone Mon Jan  1 00:00:00 2024\nFrom: a@b.example\n\nbody\n\nFrom here\n",
    b"From: a@b.example\nSubject: no body\n\n",
    b"From: a@b.example\nContent-Type: message/rfc822\n\nFrom: c@d.example\nSubject: inner\n\ninner body\n",
    b"From: a@b.example\nContent-Type: multipart/mixed\n\n--x\n\nno boundary given\n--x--\n",
    b"From: a@b.example\nContent-Type: text/plain; charset=latin-1\n\ncaf\xe9 \xff\xfe\x00 end\n",
    b"From: a@b.example\nContent-Type: text/html\nContent-Transfer-Encoding: base64\n\nPGI+aGk8L2I+\n",
    b"Subject: x\n" + b"X-Long: " + b"a" * 70_000 + b"\n\nbody after a long header\n",
    b"From: a@b.example\n\n" + b"line of a big body\n" * 60_000,
]


def _shape(msg) -> tuple:
    payload = msg.get_payload()
    inner = [_shape(p) for p in payload] if isinstance(payload, list) else payload
    return (msg.items(), msg.get_unixfrom(), [type(d).__name__ for d in msg.defects], msg.preamble, msg.epilogue,
            inner)


def _parse(raw: bytes, *, fast: bool, monkeypatch) -> tuple:
    if not fast:
        monkeypatch.setattr(mime_limits, "_in_single_part_body", lambda parser: False)
    try:
        msg, limits = mime_limits.parse_bounded(raw, AnalysisBudget(seconds=1000))
        return _shape(msg), limits.findings, limits.unparsed_bytes
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("raw", EDGE + REAL, ids=lambda raw: str(len(raw)))
def test_single_part_fast_path_parses_exactly_as_the_feed_parser(raw, monkeypatch):
    assert _parse(raw, fast=True, monkeypatch=monkeypatch) == _parse(raw, fast=False, monkeypatch=monkeypatch)


def test_single_part_fast_path_is_taken_for_plain_mail_only(monkeypatch):
    taken = []
    real = mime_limits._in_single_part_body
    monkeypatch.setattr(mime_limits, "_in_single_part_body", lambda parser: taken.append(real(parser)) or taken[-1])
    mime_limits.parse_bounded(EDGE[0], AnalysisBudget())
    mime_limits.parse_bounded(EDGE[8], AnalysisBudget())  # message/rfc822
    mime_limits.parse_bounded(EDGE[9], AnalysisBudget())  # multipart
    assert taken == [True, False, False]


def _plain_found(pattern: PhrasePattern, text: str) -> bool:
    return any(t in text for t in pattern.triggers) and pattern.regex.search(text) is not None


ALL_PATTERNS = [p for family in (scoring._CREDENTIAL, scoring._BEC, scoring._DELIVERY, scoring._SPAMMY, scoring._QR,
                                 scoring._MFA)
                for p in family]
# Words from the patterns themselves, so that random texts hit their triggers, prefixes and matches.
VOCABULARY = sorted({w for p in ALL_PATTERNS for w in re.findall(r"[a-z0-9$%'-]+", p.regex.pattern)} |
                    {"your", "the", "account", "is", "has", "been", "here", "to", "info", "now", "xx"})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(st.sampled_from(VOCABULARY), max_size=60),
       seps=st.lists(st.sampled_from([" ", "  ", "\n", "-", "", ". ", "é"]), min_size=1, max_size=60))
def test_phrase_patterns_find_exactly_what_a_search_finds(words, seps):
    text = "".join(w + seps[i % len(seps)] for i, w in enumerate(words))
    present = triggers_present(text, scoring._TRIGGERS)
    # with the prefixes found in the same pass as the triggers (as the scorer does): absent ones are skipped
    searched = scoring._ALL_SEARCHED
    present_all = scoring._LANGUAGE_TRIGGERS.present(text) | scoring._QR_MFA_TRIGGERS.present(text)
    for pattern in ALL_PATTERNS:
        expected = _plain_found(pattern, text)
        assert pattern.found(text, present) == expected, (pattern.label, text)
        assert pattern.found(text, present_all, searched) == expected, (pattern.label, text)


def test_phrase_patterns_on_real_mail_text():
    rng = random.Random(7)
    for raw in REAL:
        text = raw.decode("utf-8", "replace").casefold()
        start = rng.randrange(max(1, len(text) - 20_000))
        text = text[start:start + 20_000]
        present = triggers_present(text, scoring._TRIGGERS)
        expected = [_plain_found(p, text) for p in ALL_PATTERNS]
        assert [p.found(text, present) for p in ALL_PATTERNS] == expected
        present_all = triggers_present(text, scoring._ALL_SEARCHED)
        assert [p.found(text, present_all, scoring._ALL_SEARCHED) for p in ALL_PATTERNS] == expected
        language = scoring._LANGUAGE_TRIGGERS.present(text)  # what the scorer's language checks get
        for family in (scoring._CREDENTIAL, scoring._BEC, scoring._DELIVERY, scoring._SPAMMY):
            assert scoring._phrases(family, text, language) == [p.label for p in family if _plain_found(p, text)]


def test_a_prefix_searched_and_not_present_is_not_looked_for():
    pattern = PhrasePattern("t", ("verify",), r"\b(verify|confirm)\s+account\b")
    text = "please confirm account"
    assert pattern.found(text, {"verify"})  # not searched: looked for with str.find
    assert not pattern.found(text, {"verify"}, frozenset({"verify", "confirm"}))  # the pass said it is absent


TRIGGER_SETS = (scoring._LANGUAGE_TRIGGERS, scoring._QR_MFA_TRIGGERS)


def _trigger_texts() -> list[str]:
    rng = random.Random(11)
    texts = []
    for raw in REAL:
        text = raw.decode("utf-8", "replace").casefold()
        start = rng.randrange(max(1, len(text) - 20_000))
        texts += [text[start:start + 20_000], text[start:start + 20_000].encode("ascii", "ignore").decode()]
    return texts


def test_trigger_sets_cover_every_trigger_and_long_prefix_once():
    language, qr_mfa = scoring._LANGUAGE_TRIGGERS.triggers, scoring._QR_MFA_TRIGGERS.triggers
    assert not language & qr_mfa and scoring._ALL_SEARCHED == language | qr_mfa
    assert set(scoring._TRIGGERS) <= scoring._ALL_SEARCHED
    for family in (scoring._CREDENTIAL, scoring._BEC, scoring._DELIVERY, scoring._SPAMMY):
        for p in family:  # the language checks read `language` alone: their triggers must all be in it
            assert p.triggers <= language
            assert {q for q in p.prefixes or () if len(q) >= scoring.MIN_SEARCHED_PREFIX} <= language
    for p in ALL_PATTERNS:
        assert {q for q in p.prefixes or () if len(q) >= scoring.MIN_SEARCHED_PREFIX} <= scoring._ALL_SEARCHED


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(st.sampled_from([*scoring._TRIGGERS, "de", "activated", "term", "in", "form", "x", "é"]),
                      max_size=40),
       seps=st.lists(st.sampled_from([" ", "", "\n", "é", "停"]), min_size=1, max_size=40))
def test_trigger_sets_find_exactly_the_triggers_a_scan_finds(words, seps):
    text = "".join(w + seps[i % len(seps)] for i, w in enumerate(words))
    for ts in TRIGGER_SETS:
        assert ts.present(text) == triggers_present(text, ts.triggers), text


# Hostile text: any code point (lone surrogates from 8-bit headers, astral characters, NUL), and triggers
# that nest, overlap, repeat a character or are empty.
_HOSTILE_TRIGGERS = ("aa", "aaa", "ab", "bab", "b", "\udce9x", "\U0001f600", "é", "\x00", "停止", "")


@settings(max_examples=500, deadline=None)
@given(text=st.text(st.one_of(st.sampled_from("abx é\udce9\U0001f600\x00停止"), st.characters()), max_size=60),
       triggers=st.lists(st.one_of(st.sampled_from(_HOSTILE_TRIGGERS), st.text(max_size=3)), max_size=8))
def test_trigger_set_finds_exactly_what_a_scan_finds_in_any_text(text, triggers):
    assert TriggerSet(triggers).present(text) == triggers_present(text, triggers)


def test_trigger_set_edge_cases():
    assert TriggerSet([]).present("anything") == frozenset()
    assert TriggerSet([""]).present("") == {""}  # the empty string occurs in every text, as `in` says
    nested = TriggerSet(["deactivat", "deactivated", "activ", "ted"])
    assert nested.present("account deactivated") == {"deactivat", "deactivated", "activ", "ted"}
    assert nested.present("deactivat") == {"deactivat", "activ"}
    assert TriggerSet(["$$$"]).present("$$") == frozenset() and TriggerSet(["$$$"]).present("$$$$") == {"$$$"}


def test_trigger_sets_on_real_mail_text():
    for text in _trigger_texts():
        for ts in TRIGGER_SETS:
            assert ts.present(text) == triggers_present(text, ts.triggers)


@pytest.mark.parametrize("body", ["plain ascii", "caf\u00e9 \u2019quoted\u2019", "Pass\u200dword Expir\u00adation",
                                  "\ufeffBOM and \U0001f600", "\u0130stanbul \u00df STRASSE"])
def test_folded_text_is_the_translated_case_folded_text(body):
    for text in (body, body * 3, "Ver\u200bify \u00c9\n" + body):
        assert scoring._fold(text) == text.translate(scoring._INVISIBLE).casefold()


def test_literal_prefixes():
    assert literal_prefixes(r"\b(verify|re-?activate)\s+account\b") == {"verify", "reactivate", "re-activate"}
    assert literal_prefixes(r"\bdon'?t\s+miss|w-?2s?\b") == {"don't", "dont", "w2", "w-2", "w2s", "w-2s"}
    assert literal_prefixes(r"ab?c?") == {"a", "ab", "ac", "abc"}
    assert literal_prefixes(r"\$\$\$|\bmlm\b|\bmulti[- ]level") == {"$$$", "mlm", "multi level", "multi-level"}
    assert literal_prefixes(r"\bpassword\s+(will\s+)?expire") == {"password"}
    for unknown in (r"\w+ing", r"(a|b?)c", r"(?i)verify", r".{0,4}pay", r"[^x]y", r"\bx|y*z", r"(x|)abc"):
        assert literal_prefixes(unknown) is None, unknown
    assert literal_prefixes("verify", re.IGNORECASE) is None


def test_dense_prefixes_fall_back_to_one_search():
    pattern = PhrasePattern("t", ("to",), r"\bto\s+be\s+removed\b")
    text = "to " * (MAX_OCCURRENCES + 10) + "to be removed"
    assert pattern.found(text, {"to"}) and not pattern.found(text[:-8], {"to"})
    assert not pattern.found(text, set())  # no trigger: not found, whatever the regex says
    longer = PhrasePattern("t", ("tox",), r"\btox\s+be\s+removed\b")  # tried one by one, then searched
    text = "tox " * (MAX_OCCURRENCES + 10) + "tox be removed"
    assert longer.found(text, {"tox"}) and not longer.found(text[:-8], {"tox"})


def test_overlapping_prefix_occurrences_are_all_tried():
    pattern = PhrasePattern("dollars", ("$$$",), r"\$\$\$(?=x)")
    assert pattern.prefixes == {"$$$"}
    assert pattern.found("$$$$x", {"$$$"})  # the match starts at the second, overlapping, occurrence


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["<a", "<A", "</a>", "</A ", " href=", '"', "'", "x", ">", "http://", "HTTP://",
                                 "WwW.", "www.", "ex.com", " ", "\n", "İ", "ſ", "<", "/", "action", "FormAction",
                                 "act\u0131on", "act", "=", "form"]), max_size=80))
def test_finditer_at_candidates_finds_what_finditer_finds(pieces):
    text = "".join(pieces)
    lowered = text.lower()
    for pattern, needles, before in ((html_links._ANCHOR_OPEN, ("<a",), (0,)),
                                     (html_links._ANCHOR_CLOSE, ("</a",), (0,)),
                                     (parse._TEXT_URL, parse._TEXT_URL_STARTS, (0,)),
                                     (parse._ACTION, ("act",), parse._ACTION_BEFORE)):
        expected = [m.span() for m in pattern.finditer(text)]
        assert [m.span() for m in html_links.finditer_at(pattern, text, lowered, needles, before)] == expected


def test_finditer_at_finds_a_formaction_and_a_dotless_i_action():
    text = '<button formaction=http://evil.example/a> <form ACT\u0131ON="https://evil.example/b">'
    found = [m.group(1) for m in html_links.finditer_at(parse._ACTION, text, text.lower(), ("act",),
                                                          parse._ACTION_BEFORE)]
    assert found == [m.group(1) for m in parse._ACTION.finditer(text)] == ["http://evil.example/a",
                                                                          "https://evil.example/b"]


def _parse_plain_boundaries(raw: bytes, monkeypatch) -> tuple:
    monkeypatch.setattr(email.feedparser, "re", re)  # the standard library's own boundary regex ...
    monkeypatch.setattr(email.feedparser, "NLCRE_eol", mime_limits._NLCRE_EOL)  # ... line-end search ...
    monkeypatch.setattr(mime_limits, "_LineBuffer", email.feedparser.BufferedSubFile)  # ... line buffer ...
    monkeypatch.setattr(mime_limits, "_BoundedFeedParser", email.feedparser.BytesFeedParser)  # ... and parser
    return _parse(raw, fast=True, monkeypatch=monkeypatch)


def test_the_fast_parse_is_in_place():
    assert isinstance(email.feedparser.NLCRE_eol, mime_limits._LineEndAtEnd)
    parser = mime_limits._BoundedFeedParser()
    parser._input = mime_limits._LineBuffer()
    parser.feed(b"Content-Type: text/plain\n\n")
    assert parser._input.in_body  # the body that follows is read in chunks
    parser.feed(b"one\ntwo\n--not a boundary\nthree\n")
    assert parser.close().get_payload() == "one\ntwo\n--not a boundary\nthree\n"
    assert not parser._input.in_body
    buffer = mime_limits._LineBuffer()
    buffer.push("a\r\nb\rc\n--x\nd\n")
    buffer.in_body = True
    buffer.push_eof_matcher(mime_limits._BoundaryMatcher("--x").match)
    assert [buffer.readline() for _ in range(2)] == ["a\r\nb\rc\n", ""]  # the boundary ends the body
    assert not buffer.in_body
    buffer.pop_eof_matcher()
    assert [buffer.readline() for _ in range(3)] == ["--x\n", "d\n", email.feedparser.NeedMoreData]


# Lines that exercise the header and body runs: header fields, continuations, the Unix From line, an
# empty field name, lines that start with "-" or "--" (some of them this message's boundaries), nested
# multipart and message/* headers, a boundary that is also a header line ("--q:"), blank lines, and
# every line end.
PIECES = ["From: a@b.example", "Subject: x", " folded", "\tfolded", "From someone", ":no name", "X-B:",
          "Content-Type: multipart/mixed; boundary=b", "Content-Type: message/rfc822",
          "Content-Type: multipart/alternative; boundary=c", "Content-Type: message/delivery-status",
          'Content-Type: multipart/mixed; boundary="q:"', "--b", "--b--", "--c", "--c--", "--q:", "--q:--", "- item",
          "-", "--", "body text", "<b>html</b>", "", "x: y"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(["\n", "\r\n", "\r", ""])),
                      max_size=30),
       chunk=st.integers(1, 40))
def test_header_and_body_runs_parse_exactly_as_the_standard_library(lines, chunk):
    raw = "".join(text + end for text, end in lines).encode()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mime_limits, "FEED_CHUNK_BYTES", chunk)  # lines split across feeds too
        fast = _parse(raw, fast=True, monkeypatch=patch)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mime_limits, "FEED_CHUNK_BYTES", chunk)
        assert fast == _parse_plain_boundaries(raw, patch)


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("ab\r\n -"), max_size=12))
def test_line_end_search_finds_what_the_regex_finds(text):
    expected, got = mime_limits._NLCRE_EOL.search(text), email.feedparser.NLCRE_eol.search(text)
    assert (expected is None) == (got is None)
    if expected is not None:
        assert (expected.group(0), expected.start()) == (got.group(0), got.start())


NESTED = (b"From: a@b.example\nContent-Type: multipart/mixed; boundary=\"o+(1)?\"\n\npre\n--o+(1)?\n"
          b"Content-Type: multipart/alternative; boundary=i.*\n\n--i.*\n\nplain\n--i.*  \t\n\n<b>x</b>\n--i.*--\n"
          b"--o+(1)?\r\nContent-Type: text/plain\r\n\r\nlast\r\n--o+(1)?--\r\nepilogue\n")


REPORT = (b"From: mailer-daemon@b.example\nContent-Type: multipart/report; report-type=delivery-status; boundary=r\n\n"
          b"--r\n\nnot delivered\n--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; b.example\n\n"
          b"Final-Recipient: rfc822; x@y.example\n--not a boundary\nAction: failed\n\n--r\n"
          b"Content-Type: message/rfc822\n\nFrom: x@y.example\nSubject: lost\n\n--lost body\n--r--\n")


# A boundary that is also a header line: a part whose header block runs into it ends there.
COLON_BOUNDARY = (b'From: a@b.example\nContent-Type: multipart/mixed; boundary="q:"\n\n--q:\nX-A: 1\n'
                  b"Content-Type: text/plain\n--q:\nX-B: 2\n\nbody\n- not\n-- not\n--q:--\n")


@pytest.mark.parametrize("raw", [NESTED, REPORT, COLON_BOUNDARY, *EDGE, *REAL], ids=lambda raw: str(len(raw)))
def test_boundary_matcher_and_line_buffer_parse_exactly_as_the_standard_library(raw, monkeypatch):
    fast = _parse(raw, fast=True, monkeypatch=monkeypatch)
    assert fast == _parse_plain_boundaries(raw, monkeypatch)


@settings(max_examples=300, deadline=None)
@given(boundary=st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), min_size=1, max_size=12),
       tail=st.lists(st.sampled_from(["--", " ", "\t", "\r\n", "\n", "\r", "x", "-", "$"]), max_size=5))
def test_boundary_matcher_matches_as_the_regex(boundary, tail):
    separator = "--" + boundary
    pattern = "(?P<sep>" + re.escape(separator) + r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
    matcher = mime_limits._FeedParserRe().compile(pattern)
    assert isinstance(matcher, mime_limits._BoundaryMatcher)
    for line in (separator + "".join(tail), "".join(tail) + separator, separator[:-1] + "".join(tail)):
        expected, got = re.compile(pattern).match(line), matcher.match(line)
        assert (expected is None) == (got is None)
        if expected is not None:
            assert [expected.group(g) for g in ("end", "ws", "linesep")] == [got.group(g) for g in ("end", "ws", "linesep")]


def _same_answers(bounded, plain) -> None:
    for name in ("Content-Type", "content-type", "X-A", "x-a", "Subject", "MIME-Version", "missing"):
        assert bounded.get(name) == plain.get(name) and bounded.get(name, 7) == plain.get(name, 7)
        assert bounded.get_all(name) == plain.get_all(name) and bounded.get_all(name, 7) == plain.get_all(name, 7)
        assert (name in bounded) == (name in plain)
    assert bounded.get_content_type() == plain.get_content_type()
    assert bounded.get_content_maintype() == plain.get_content_maintype()
    assert bounded.get_params() == plain.get_params() and bounded.get_filename() == plain.get_filename()
    for header in ("content-type", "Content-Disposition", "X-A", "missing"):
        assert bounded.get_params(7, header) == plain.get_params(7, header)
        assert bounded.get_params(7, header, unquote=False) == plain.get_params(7, header, unquote=False)
    for param in ("charset", "CharSet", "name", "filename", "boundary", "missing"):
        for header in ("content-type", "Content-Disposition", "missing"):
            assert bounded.get_param(param, 7, header) == plain.get_param(param, 7, header)
            assert bounded.get_param(param, 7, header, unquote=False) == plain.get_param(param, 7, header, False)
    assert bounded.get_content_charset(7) == plain.get_content_charset(7)
    assert bounded.get_boundary(7) == plain.get_boundary(7)
    params = bounded.get_params(unquote=False)
    if params:
        params.clear()  # a caller's copy: the cached list stays whole
        assert bounded.get_params() == plain.get_params()


def test_indexed_header_lookups_answer_as_message_does_through_every_change():
    from email.message import Message

    limits = mime_limits.ParseLimits(AnalysisBudget())
    bounded, plain = mime_limits.BoundedMessage(limits=limits), Message()
    changes = [
        lambda m: m.set_raw("Content-Type", 'text/plain; charset="utf-8"; name="a.txt"'),
        lambda m: m.set_raw("X-A", "1"),
        lambda m: m.set_raw("x-a", "2\udcff"),  # an 8-bit byte: fetched as a Header, as Message.get does
        lambda m: m.__setitem__("Subject", "hello"),
        lambda m: m.replace_header("x-A", "replaced"),
        lambda m: m.set_param("charset", "latin-1"),
        lambda m: m.del_param("name"),
        lambda m: m.set_type("multipart/mixed"),
        lambda m: m.set_boundary("b1"),
        lambda m: m.add_header("Content-Disposition", "attachment", filename="x.pdf"),
        lambda m: m.__delitem__("X-A"),
        lambda m: m.replace_header("Subject", "again"),
        lambda m: m.set_default_type("message/rfc822"),  # no effect while there is a Content-Type ...
        lambda m: m.__delitem__("Content-Type"),  # ... the default type then
        lambda m: m.set_default_type("text/plain"),
        lambda m: m.set_raw("Content-Type", "text/html; charset*=utf-8''%e2%82%ac; name*0=a; name*1=.htm"),
        lambda m: m.set_raw("Content-Disposition", 'attachment; filename="q\\"uoted.pdf"; Name=x'),
        lambda m: m.set_param("charset", "us-ascii", header="Content-Disposition"),
    ]
    _same_answers(bounded, plain)
    for change in changes:
        change(bounded)
        change(plain)
        _same_answers(bounded, plain)


ADDRESS_PIECES = ["a", "Bo", "x.y", "é", "@", ".", "<", ">", '"', " ", "  ", "\t", ",", ";", ":", "(", ")", "[", "]",
                  "\\", "-", "_", "+", "'", "example.com", "b-c.org", "\r\n ", "\u00a0", "=?utf-8?q?x?="]


_piece = st.sampled_from(ADDRESS_PIECES)
_blank = st.sampled_from(["", " ", "  ", "\t", " \t ", "\r\n ", "\n\t", "\r"])
_word = st.lists(st.sampled_from(["a", "Bo", "x.y", "é", "Ø", "-", "'", "1", ".", "\u00a0"]), min_size=1, max_size=3).map("".join)
_spec = st.tuples(st.lists(st.sampled_from(["a", "b.c", ".", "x+y", "'"]), min_size=1, max_size=3),
                  st.lists(st.sampled_from(["example", ".", "com", "b-c", "1"]), min_size=1, max_size=4)).map(
    lambda parts: "".join(parts[0]) + "@" + "".join(parts[1]))
_name = st.one_of(st.lists(st.tuples(_word, _blank), max_size=4).map(lambda ws: "".join(w + b for w, b in ws)),
                  st.just(""), st.just("=?utf-8?q?J=C3=B6rn_via_list?="),
                  st.text(st.sampled_from('ab ,é\\"'), max_size=6).map(lambda t: f'"{t}"'))
_address_form = st.one_of(
    st.lists(_piece, max_size=14).map("".join),  # a soup of specials
    st.tuples(_blank, _spec, _blank).map("".join),  # a bare address
    st.tuples(_blank, _name, _blank, _spec, _blank, st.sampled_from(["", ">", ","])).map(
        lambda p: f"{p[0]}{p[1]}{p[2]}<{p[3]}{p[5] or '>'}{p[4]}"),  # a name and an address in angle brackets
)


@settings(max_examples=1500, deadline=None)
@given(_address_form)
def test_address_fast_path_reads_as_parseaddr(raw):
    assert parse.parse_address(raw) == email.utils.parseaddr(raw)


@pytest.mark.parametrize("raw", ["jane@example.com", "  Jane Q. Doe\t<jane.doe@mail.example.co.uk>  ",
                                 '"Doe, Jane" <jane@example.com>', '"" <a@b>', "José <j@x.es>", "a@b.com (Jane)",
                                 "Jane <jane@example.com>, Bob <bob@example.com>", '"Jane \\"J\\"" <j@x.org>',
                                 "<@route:jane@example.com>", "jane@[10.0.0.1]", "Jane <jane@example.com",
                                 "Jane \t Q  Doe <jane@example.com>", "<bounces+x=y.example@lists.example>",
                                 "=?utf-8?q?J=C3=B6rn?=\r\n <j@x.org>", '"a \\(b\\)" <c@d.example>'])
def test_address_fast_path_on_common_and_odd_forms(raw):
    assert parse.parse_address(raw) == email.utils.parseaddr(raw)


def test_address_fast_path_on_real_mail_headers():
    checked = 0
    for raw in REAL:
        msg = email.message_from_bytes(raw)
        for name in ("From", "Return-Path", "Sender", "Reply-To"):
            for value in msg.get_all(name) or []:
                assert parse.parse_address(str(value)) == email.utils.parseaddr(str(value)), value
                checked += 1
    assert checked > 100


def test_tenant_lookalikes_are_cached_per_host_and_tenant_domains():
    from swordfish.analysis.lookalike import Lookalike, tenant_lookalike

    for _ in range(2):  # the second time from the cache
        assert tenant_lookalike("examp1e.com", frozenset({"example.com"})) == Lookalike("example.com", "confusable")
        assert tenant_lookalike("exmaple.com", frozenset({"example.com"})) == Lookalike("example.com", "typo")
        assert tenant_lookalike("examp1e.com", frozenset({"other.org"})) is None
        assert tenant_lookalike("examp1e.com", frozenset()) is None
        assert tenant_lookalike("example-login.net", frozenset({"example.com"})) == Lookalike("example.com", "embedded")


_HEADER_PIECES = ["Re: ", "caf", "=?unknown-8bit?q?caf=E9?=", "=?utf-8?q?J=C3=B6rn?=", "=?x-weird?b?w6k=?=", " ",
                  "\udce9", "é", "=", "?", "<a@b.example>", '"Q \\=\\? x"', "=\\?unknown-8bit?q?=E9?=", "\t", "\r\n "]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(_HEADER_PIECES), max_size=8).map("".join))
def test_headers_read_without_the_fallback_charset_only_when_it_cannot_matter(value):
    if not parse._may_hold_8bit(value):
        for fallback in ("koi8-r", "iso-2022-jp", "cp1252"):
            assert parse.header_text(value, fallback) == parse.header_text(value, None)
            assert parse._address(value, fallback) == parse._address(value, None)


_PARAM_PIECES = ["text/plain", "Multipart/Mixed", ";", "; ", "=", " = ", "charset", "CharSet", "utf-8", "name", "a b",
                 "x.pdf", '"', '"q"', "\\", "*", "name*0*", "<", ">", "%e9", "\t", "\r\n ", "İ", "ſ", "",
                 '="utf-8"', '= "a;b"', '=""', '"x"y"', ' "', '" ']


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(_PARAM_PIECES), max_size=12).map("".join))
@example("text/plain; name=<x.pdf>; charset = UTF-8 ")
@example('text/plain; name="a\\"b;c"; x')
@example("text/plain; name*=utf-8''%e9.pdf; a;;b=")
@example('multipart/alternative; boundary="----=_Part_1;x"; charset="UTF-8"')
@example('text/plain; charset="utf-8"; format=flowed; name = "a b.txt" ')
@example('"text/plain"; charset="utf-8"')
@example('text/plain; "charset"="x"; name="a"b"; q=""')
def test_parameter_lists_read_as_message_reads_them(value):
    from email.message import Message

    bounded = mime_limits.BoundedMessage(limits=mime_limits.ParseLimits(AnalysisBudget()))
    plain = Message()
    for msg in (bounded, plain):
        msg.set_raw("Content-Type", value)
        msg.set_raw("Content-Disposition", "attachment;" + value)
    def outcome(msg, method: str, *args, **kwargs):  # the stdlib itself raises on some RFC 2231 mixtures
        try:
            return getattr(msg, method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the same exception is the same answer
            return type(exc)

    calls = [("get_params", (None, "content-type"), {"unquote": False}), ("get_params", (None, "content-type"), {}),
             ("get_params", (None, "Content-Disposition"), {"unquote": False}),
             ("get_params", (None, "Content-Disposition"), {}),
             ("get_filename", (), {}), ("get_boundary", (), {}), ("get_content_charset", (), {})]
    for method, args, kwargs in calls:
        assert outcome(bounded, method, *args, **kwargs) == outcome(plain, method, *args, **kwargs), method


def _labelled(matches) -> list[tuple]:
    return [(m.span(), m.groups()) for m in matches]


_LABELLED_PIECES = ["<http://", "<https://", "<HTTP://", "<hTtPs://", "<http:/", "<", ">", "www.", "bank", ".com",
                    ".c", "ex-ample", "/path?q=1", "https://", "http://", " ", "  ", "\t", "\n", "\u00a0", "\u2003",
                    "x", "a.b", "\u017f", "\u212a", "\u0131", "\u00e9", "é.com", "0", "-", ".", "_", "\"", "'"]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_LABELLED_PIECES), max_size=40).map("".join))
@example("www.bank.com <https://evil.example/login> and bank.com\t\t\t<http://x.example/> b.cc    <http://y.ex/>")
@example("a.com <http://x> https://a.com/p <https://b.example/q>.b.com<http://c.example/>")
def test_labelled_urls_are_the_matches_the_regex_finds(text):
    assert _labelled(parse.labelled_urls(text)) == _labelled(parse._TEXT_LABELLED_URL.finditer(text))


def test_labelled_urls_with_labels_and_targets_at_their_length_limits():
    label = "a" + "b" * 200 + ".com/" + "p" * 500
    for text in (label + "   <https://" + "t" * 3990 + ">", "x " + label + "p <http://a.example/>",
                 "https://" + label + "\t<http://a.example/>", "z" * 2000 + ".com <http://a.example/>",
                 label + " <https://" + "t" * 4000 + "> tail.com <http://a.example/>"):
        expected = _labelled(parse._TEXT_LABELLED_URL.finditer(text))
        assert _labelled(parse.labelled_urls(text)) == expected


def test_labelled_urls_on_real_mail_text():
    found = 0
    for raw in REAL:
        text = parse.parse_message(raw).text
        middle = len(text) // 2  # and a labelled link written into it, as a converter writes one
        for candidate in (raw.decode("utf-8", "replace"), text,
                          text[:middle] + " www.bank.example <https://evil.example/x> " + text[middle:]):
            expected = _labelled(parse._TEXT_LABELLED_URL.finditer(candidate))
            assert _labelled(parse.labelled_urls(candidate)) == expected
            found += len(expected)
    assert found >= len(REAL)


def test_white_space_is_the_same_for_str_and_the_regex():
    import sys

    space = re.compile(r"\s")  # labelled_urls splits at str.isspace where the label stops at \s
    assert [c for c in map(chr, range(sys.maxunicode + 1)) if bool(space.match(c)) != c.isspace()] == []


def test_parameters_of_real_mail_parts_read_as_message_reads_them():
    from email.message import Message

    parts = 0
    for raw in [*REAL, NESTED, REPORT, COLON_BOUNDARY]:
        msg, _ = mime_limits.parse_bounded(raw, AnalysisBudget(seconds=1000))
        for part in msg.walk():
            plain = Message()
            plain._headers = list(part._headers)
            plain.set_default_type(part.get_default_type())
            _same_answers(part, plain)
            parts += 1
    assert parts > len(REAL)


def _base64_part(payload: str, cte: str = "base64") -> email.message.Message:
    part = email.message.Message()
    part["Content-Transfer-Encoding"] = cte
    part.set_payload(payload)
    return part


@settings(max_examples=1500, deadline=None)
@given(pieces=st.lists(st.sampled_from(["YWJj", "ZA==", "ZGU=", "QQ", "=", "\n", "\r\n", " ", "*", "é", "\udce9",
                                        "YQ==YWJj", "a", "Zm9vYmFy"]), max_size=12),
       cte=st.sampled_from(["base64", "BASE64", "base64 ", "quoted-printable", ""]))
def test_base64_fast_path_decodes_exactly_as_compat32(pieces, cte):
    payload = "".join(pieces)
    fast, plain = _base64_part(payload, cte), _base64_part(payload, cte)

    def outcome(decode):
        try:
            return decode()
        except Exception as exc:  # noqa: BLE001 - the stdlib raises on some of these; so must the fast path
            return type(exc)

    assert outcome(lambda: parse.decoded_payload(fast, fast.get_payload())) == outcome(
        lambda: plain.get_payload(decode=True))
    assert [type(d) for d in fast.defects] == [type(d) for d in plain.defects]


def test_base64_fast_path_on_real_attachments():
    parts = [part for raw in REAL for part in email.message_from_bytes(raw).walk()
             if not part.is_multipart() and str(part.get("Content-Transfer-Encoding", "")).lower() == "base64"]
    assert len(parts) > 20
    for part in parts:
        assert parse.decoded_payload(part, part.get_payload()) == part.get_payload(decode=True)
