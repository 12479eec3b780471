"""A message as an analyst may see it: every header as text, the text of the message, and the HTML
body sanitised for a sandboxed frame. Never raises: the mail is hostile by assumption (any byte in
any header or charset), so anything the parser or a codec cannot take becomes a visible problem.

Bounded at each step: the bytes parsed (``MAX_PARSE_BYTES``), the MIME structure (the analysis's own
caps, ``analysis.mime_limits``), and every piece shown; what a bound cuts is said on the page.
"""

from __future__ import annotations

import email.header
import html
import re
from dataclasses import dataclass, field
from email.message import Message

import nh3

from swordfish.analysis.budget import AnalysisBudget
from swordfish.analysis.mime_limits import parse_bounded

MAX_PARSE_BYTES = 2 * 1024 * 1024  # of the message; a 25 MB one is mostly attachments
PARSE_SECONDS = 2.0  # the analysis caps keep real mail far below this; a stop says so
MAX_HEADERS = 500
MAX_HEADER_CHARS = 4_000  # per header value shown
MAX_PARTS = 200
MAX_TEXT_CHARS = 200_000
MAX_HTML_CHARS = 400_000  # before and after sanitising

# Tags that survive, with only these attributes. No <img src> other than data: images, no href at all:
# a remote image is a tracking pixel and a link is a phishing click, inside the console.
_TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "dd", "div", "dl", "dt", "em",
         "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "small",
         "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"}
_ATTRIBUTES = {"img": {"src", "alt", "width", "height"}, "td": {"colspan", "rowspan", "align"},
               "th": {"colspan", "rowspan", "align"}, "*": {"title"}}
_BLOCK_END = re.compile(r"<(?:br|/p|/div|/tr|/li|/h[1-6]|/table)\b", re.IGNORECASE)
_DROP_WITH_CONTENT = {"script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "math",
                      "title", "head", "textarea", "select", "button"}


@dataclass
class MessageView:
    headers: list[tuple[str, str]] = field(default_factory=list)
    text: str | None = None
    text_from_html: bool = False
    html: str | None = None  # sanitised: only for the sandboxed frame's srcdoc
    notes: list[str] = field(default_factory=list)  # what was cut or could not be read


_VISIBLE = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _as_text(value: object, limit: int, *, one_line: bool = False) -> tuple[str, bool]:
    """Any value as printable text: undecodable bytes (kept as surrogates by the parser) become
    U+FFFD, NUL and other controls become visible escapes. ``one_line``: CR, LF and tab too, so a
    header cannot show a line of its own (an encoded word can decode to CR/LF)."""
    if not isinstance(value, str):
        value = str(value)
    text = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if not one_line:
        text = text.replace("\r\n", "\n").replace("\r", "\n")  # a body's line ends are not hostile
    text = "".join(_VISIBLE[c] if one_line and c in _VISIBLE
                   else c if c in "\t\n" or c.isprintable()
                   else f"\\x{ord(c):02x}" if ord(c) < 0x100 else "\ufffd"
                   for c in text)
    return (text[:limit], True) if len(text) > limit else (text, False)


def _header_value(value: object) -> object:
    """A raw header value unfolded (a folded line is one header, RFC 5322 2.2.3), with RFC 2047
    encoded words (=?utf-8?b?...?=) shown decoded and the raw form after it on the same line: an
    analyst reads the lure, and still sees how it was sent. Anything the decoder cannot take (junk
    charsets, broken words) leaves the raw value alone."""
    if not isinstance(value, str):
        return value
    value = _FOLD.sub("", value)
    if "=?" not in value:
        return value
    try:
        decoded = str(email.header.make_header(email.header.decode_header(value[:MAX_HEADER_CHARS])))
    except Exception:  # hostile input: LookupError, UnicodeError, HeaderParseError, ...
        return value
    return value if decoded == value else f"{decoded}  [as sent: {value}]"


def _payload_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except (LookupError, ValueError, TypeError):  # unknown or non-text codec names ("rot13", junk)
        return payload.decode("utf-8", "replace")


def _keep_data_images(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        return value if value[:11].lower() == "data:image/" else None
    return value


def sanitise_html(markup: str) -> str:
    """What may go into the sandboxed frame: no script, no event handler, no form, no remote fetch."""
    return nh3.clean(markup, tags=_TAGS, attributes=_ATTRIBUTES, clean_content_tags=_DROP_WITH_CONTENT,
                     attribute_filter=_keep_data_images, strip_comments=True, url_schemes={"data"},
                     link_rel=None)


def html_to_text(markup: str) -> str:
    """The readable text of an HTML body (for mail without a text/plain part)."""
    stripped = nh3.clean(_BLOCK_END.sub(lambda m: "\n" + m.group(0), markup), tags=set(), clean_content_tags=_DROP_WITH_CONTENT,
                         strip_comments=True)
    lines = (" ".join(line.split()) for line in html.unescape(stripped).splitlines())
    return "\n".join(line for line in lines if line)


def render_message(raw: bytes) -> MessageView:
    view = MessageView()
    try:
        _render(raw, view)
    except Exception as exc:  # a parser or codec path no bound covers: say so, show what was built
        view.notes.append(f"the message could not be read in full ({type(exc).__name__}); showing what was read")
    return view


def _render(raw: bytes, view: MessageView) -> None:
    if len(raw) > MAX_PARSE_BYTES:
        view.notes.append(f"the message is {len(raw):,} bytes: only the first {MAX_PARSE_BYTES:,} are shown")
        raw = raw[:MAX_PARSE_BYTES]
    message, limits = parse_bounded(raw, AnalysisBudget(PARSE_SECONDS))
    view.notes.extend(f"parser bound: {finding}" for finding in limits.findings[:10])
    items = message.raw_items() if hasattr(message, "raw_items") else message.items()
    cut_values = 0
    for count, (name, value) in enumerate(items):
        if count >= MAX_HEADERS:
            view.notes.append(f"more than {MAX_HEADERS} header fields: the rest are not shown")
            break
        name_text, _ = _as_text(name, 200, one_line=True)
        value_text, cut = _as_text(_header_value(value), MAX_HEADER_CHARS, one_line=True)
        cut_values += cut
        view.headers.append((name_text, value_text))
    if cut_values:
        view.notes.append(f"{cut_values} header value(s) longer than {MAX_HEADER_CHARS:,} characters were cut")

    plain = markup = None
    for count, part in enumerate(message.walk()):
        if count >= MAX_PARTS:
            view.notes.append(f"more than {MAX_PARTS} MIME parts: the rest are not shown")
            break
        if part.is_multipart() or (part.get_content_disposition() or "") == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and plain is None:
            plain = _payload_text(part)
        elif kind == "text/html" and markup is None:
            markup = _payload_text(part)
    if markup is not None:
        if len(markup) > MAX_HTML_CHARS:
            view.notes.append(f"the HTML body is {len(markup):,} characters: only the first "
                              f"{MAX_HTML_CHARS:,} are shown")
            markup = markup[:MAX_HTML_CHARS]
        view.html = sanitise_html(markup)[:MAX_HTML_CHARS]
    if plain is None and markup is not None:
        plain, view.text_from_html = html_to_text(markup), True
    if plain is not None:
        if len(plain) > MAX_TEXT_CHARS:
            view.notes.append(f"the text is {len(plain):,} characters: only the first {MAX_TEXT_CHARS:,} are shown")
        view.text, _ = _as_text(plain[:MAX_TEXT_CHARS], MAX_TEXT_CHARS)
