"""Links and visible text from HTML in linear time.

Hostile markup is normal input, so every pattern here is built not to backtrack: each one either
always succeeds once started (an unterminated tag or quote runs to the end of the input, as in an
HTML tokenizer) or stops at the next `<`, and the scan only moves forward. The standard library's
`html.parser` was the other candidate: a tag costs several times more there in pure Python, and fed
incrementally it rescans an unterminated tag at every feed.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import NamedTuple

MAX_ANCHOR_TEXT_SCAN = 2_000  # characters after an <a ...> searched for its visible text
MAX_ANCHOR_TEXT = 300

# An <a> start tag: attributes (quoted values may hold `>`) up to `>` or the end of the input.
# Possessive: nothing after the attributes can fail, so nothing is retried.
_ANCHOR_OPEN = re.compile(r"""<a(?=[\s/>])((?:[^>"']++|"[^"]*+"|'[^']*+')*+)>?""", re.IGNORECASE)
_ANCHOR_CLOSE = re.compile(r"</a[\s>]", re.IGNORECASE)
_HREF = re.compile(r"""(?<![\w-])href\s*+=\s*+(?:"([^"]*+)"|'([^']*+)'|([^\s"'>]++))""", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*+>")  # stops at the next `<`: linear even when `>` never comes
_SCRIPT_STYLE_OPEN = re.compile(r"<(script|style)(?=[\s/>])", re.IGNORECASE)
_SCRIPT_CLOSE = re.compile(r"</script", re.IGNORECASE)
_STYLE_CLOSE = re.compile(r"</style", re.IGNORECASE)
_WS = re.compile(r"\s+")


class HtmlLink(NamedTuple):
    href: str  # as written (entities still encoded)
    text: str  # visible text of the anchor, whitespace folded; "" when none


def finditer_at(pattern: re.Pattern[str], text: str, lowered: str, needles: tuple[str, ...],
                before: tuple[int, ...] = (0,)) -> Iterator[re.Match[str]]:
    """The matches `pattern.finditer(text)` gives, for a pattern every match of which has one of `needles`
    (in the lower-cased text) at one of the distances `before` from its start: a match is tried only
    there. A case-insensitive
    pattern gets no prefix skipping from the regex engine, which then tries every position (about
    40 ns each); `str.find` skips to the candidates in C. `lowered` must be `text.lower()`; when lower-
    casing changed its length the positions would not line up, and the plain finditer is used."""
    if len(lowered) != len(text):
        yield from pattern.finditer(text)
        return
    starts: list[int] = []
    for needle in needles:
        at = lowered.find(needle)
        while at >= 0:
            starts.extend(at - back for back in before if at >= back)
            at = lowered.find(needle, at + 1)
    end = 0
    match = pattern.match
    for at in sorted(starts):
        if at < end:
            continue  # inside the previous match: finditer resumes after it
        m = match(text, at)
        if m is not None:
            yield m
            end = max(m.end(), at + 1)


def iter_html_links(markup: str) -> Iterator[HtmlLink]:
    """Each <a href> of the markup in document order, with its visible text (for link-text versus
    target checks). An anchor's text ends at its </a>, at the next <a>, or after 2,000 characters."""
    closes = _ANCHOR_CLOSE.finditer(markup)  # these start with "<", which has no case: the engine skips to it
    next_close = -1
    pending: tuple[str, int] | None = None  # previous anchor's href and where its text starts
    for m in _ANCHOR_OPEN.finditer(markup):
        if pending is not None:
            next_close = _advance(closes, next_close, pending[1])
            yield _link(markup, pending, min(m.start(), _or_end(next_close, markup)))
            pending = None
        href = _HREF.search(m.group(1))
        if href is not None:
            pending = (href.group(1) or href.group(2) or href.group(3) or "", m.end())
    if pending is not None:
        next_close = _advance(closes, next_close, pending[1])
        yield _link(markup, pending, _or_end(next_close, markup))


def _advance(closes: Iterator[re.Match[str]], current: int, start: int) -> int:
    """The first </a at or after `start` (the close positions are consumed in order, once)."""
    while current != -2 and current < start:
        found = next(closes, None)
        current = found.start() if found is not None else -2
    return current


def _or_end(position: int, markup: str) -> int:
    return len(markup) if position < 0 else position


def _link(markup: str, pending: tuple[str, int], stop: int) -> HtmlLink:
    href, start = pending
    inner = markup[start:min(stop, start + MAX_ANCHOR_TEXT_SCAN)]
    if "<" in inner:
        inner = _TAG.sub(" ", inner)
    if "&" in inner:
        inner = html.unescape(inner)
    return HtmlLink(href.strip(), _WS.sub(" ", inner).strip()[:MAX_ANCHOR_TEXT])


def html_to_text(markup: str) -> str:
    """Visible text of HTML: script and style content dropped, tags replaced by spaces, entities
    decoded. An unterminated <script> or <style> hides the rest of the document, as in a browser."""
    if "<" not in markup:
        return html.unescape(markup)
    pieces: list[str] = []
    pos = 0
    while True:
        m = _SCRIPT_STYLE_OPEN.search(markup, pos)
        if m is None:
            pieces.append(markup[pos:])
            break
        pieces.append(markup[pos:m.start()])
        close = (_SCRIPT_CLOSE if m.group(1).lower() == "script" else _STYLE_CLOSE).search(markup, m.end())
        if close is None:
            break
        end = markup.find(">", close.end())
        pos = len(markup) if end < 0 else end + 1
        pieces.append(" ")
    return html.unescape(_TAG.sub(" ", "".join(pieces)))
