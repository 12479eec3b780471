"""Robust MIME parsing: raw bytes in, a `ParsedMessage` of plain facts out. Never raises.

Uses the standard library's compat32 parser: it tolerates broken structure (recording defects instead of
failing) and is several times faster than the modern policy, whose header objects this engine does not
need. Everything a detector looks at is extracted here once, so scoring never re-parses.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import html
import io
import re
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.header import Header, decode_header
from email.message import Message
from email.utils import getaddresses, parseaddr

from .authentication import ArcChain, properties, read_arc
from .budget import AnalysisBudget
from .html_links import finditer_at, html_to_text, iter_html_links
from .mime_limits import MAX_PARSE_BYTES, control_characters, parse_bounded
from .qr import MAX_CODES, MAX_IMAGE_BYTES, MAX_IMAGES, MAX_MESSAGE_PIXELS, QrScan, scan_image, scan_pdf
from .signals import capture_headers
from .urls import idna_host, normalize_url, obfuscated_host, registered_domain, unicode_host, url_host, written_host

MAX_PARTS = 400  # a message with more MIME parts than this is abuse; the rest is skipped
MAX_DEPTH = 30  # nesting deeper than any real mail client produces
MAX_TEXT_CHARS = 300_000  # text scanned for language and URLs, per message
MIN_PLAIN_CHARS = 600  # plain text shorter than this beside an HTML body is not the body (Mailman's footer: ~250)
MAX_HTML_CHARS = 400_000
MAX_LINKS = 300
MAX_ARCHIVE_MEMBERS = 200  # member names kept per archive
MAX_HEADER_CHARS = 4_000  # per header value we look at
MAX_ADDRESS_HEADER_CHARS = 8_000  # To/Cc/Reply-To values read, all fields together (50 addresses are kept)
# Work limits, per message, fixed in advance so the same message is examined the same way on any
# machine (the analysis budget's timer is only the last resort); what they leave out is listed in
# ParsedMessage.not_examined, which the verdict names (CONTENT_NOT_EXAMINED).
# A zip whose directory lists more entries is not opened: zipfile reads the whole directory (~10 µs an
# entry), though only the first MAX_ARCHIVE_MEMBERS names are kept.
MAX_ARCHIVE_ENTRIES = 1_000
MAX_ARCHIVES = 5  # archives opened per message
MAX_MESSAGE_ARCHIVE_ENTRIES = 2_000  # directory entries read per message, all archives together
# HTML attachments read per message, all together (the HTML body has its own MAX_HTML_CHARS)
MAX_MESSAGE_HTML_CHARS = 2 * 400_000
# Attachment bytes decoded (base64 or quoted-printable) and opened per message; past them an attachment
# keeps its name, declared type and the type its first bytes show, and is not opened.
MAX_DECODED_BYTES = 3_000_000
SNIFF_BYTES = 48 * 1024  # decoded from an attachment past the allowance, for its type (sniff reads 0x8006)
_ARCHIVE_EXTENSIONS = (".zip", ".rar", ".7z", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".cab", ".iso", ".img",
                       ".jar", ".ace", ".arj", ".lzh", ".z", ".zipx")
MAX_BOUNDARY_CHARS = 70  # RFC 2046
LINK_BUDGET_CHECK_EVERY = 64
BUDGET_PROBLEM = "analysis budget spent"  # parse problems with this prefix are the budget's, not the message's

_WS = re.compile(r"\s+")
_ACTION = re.compile(r"\b(?:action|formaction)\s*=\s*[\"']?(https?://[^\"'\s>]{1,4000})", re.IGNORECASE)
# "act" is at 0 ("action") or 4 ("formaction") from a match's start, lower-cased ("i" is not used: under
# IGNORECASE the dotless "ı" matches it, and lower() keeps it)
_ACTION_BEFORE = (0, 4)
_TEXT_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"'`{}|\\^\[\]]{2,4000}", re.IGNORECASE)
_TEXT_URL_STARTS = ("http", "www.")  # every match starts so, lower-cased (no other character folds to these)
# Plain text as HTML-to-text converters and mail clients write a link: "www.bank.com <https://target/>".
_LABEL = r"((?:https?://)?[a-z0-9][a-z0-9.-]{0,200}\.[a-z]{2,24}(?:/[^\s<>]{0,500})?)[ \t]{0,3}"
_TARGET = r"<(https?://[^\s<>]{2,4000})>"
_TEXT_LABELLED_URL = re.compile(_LABEL + _TARGET, re.IGNORECASE)
# The same two halves apart, for labelled_urls: the label ending at a given "<", and the target after it.
_LABEL_BEFORE = re.compile(_LABEL + r"\Z", re.IGNORECASE)
_LABELLED_TARGET = re.compile(_TARGET, re.IGNORECASE)
MAX_LABEL_CHARS = 1_000  # more than a label and its spaces can span (8 + 1 + 200 + 1 + 24 + 1 + 500 + 3)
_BLANK_BOUNDARY = re.compile(r"""boundary\s*=\s*(?:"\s*"|'\s*'|;|$)""", re.IGNORECASE)
_HEADER_LINE = re.compile(r"^[\x21-\x39\x3b-\x7e]{1,76}:", re.MULTILINE)
_OBFUSCATED_MARKERS = ("hxxp", "[.]", "(.)", "[dot]", "(dot)", "[:]")
_DEOBFUSCATE = re.compile(r"hxxp|\[\.\]|\(\.\)|\[dot\]|\(dot\)|\[:\]", re.IGNORECASE)
_DEOBF_MAP = {"hxxp": "http", "[.]": ".", "(.)": ".", "[dot]": ".", "(dot)": ".", "[:]": ":"}
_PDF_URI = re.compile(rb"/URI\s*+\(((?:[^()\\]|\\.){1,2000}+)\)")  # stops at the next paren: linear
_AUTH_METHOD = re.compile(r"\b(spf|dkim|dmarc|arc|compauth)\s*=\s*([a-z]+)", re.IGNORECASE)
_COMMENT = re.compile(r"\([^()]{0,1000}\)")
# An image inlined in the HTML itself (no MIME part): one way a QR-code lure ships its picture.
_DATA_IMAGE = re.compile(r"data:image/(?:png|jpe?g|gif);base64,([A-Za-z0-9+/=\s]{64,7000000})", re.IGNORECASE)
_BARE_DOMAIN_URL = re.compile(r"^[a-z0-9][a-z0-9.-]{0,250}\.[a-z]{2,24}(?::\d{1,5})?(?:[/?#]\S*)?$", re.IGNORECASE)
_SCANNED_IMAGES = ("image/png", "image/jpeg", "image/gif")

_HTML_EXTENSIONS = (".htm", ".html", ".shtml", ".xhtml", ".svg", ".mht", ".mhtml")
# An HTML file that, opened, sends the browser to a web address: a meta refresh or a script assigning the
# location (the attachment is only a way past the link scanners of the message body).
_HTML_REDIRECT = re.compile(
    r"""<meta\b[^>]{0,200}?http-equiv\s*=\s*["']?refresh[^>]{0,200}?url\s*=\s*['"]?\s*(https?://[^'"\s>]+)"""
    r"""|location\s*\.\s*(?:assign|replace)\s*\(\s*["'`](https?://[^"'`\s]+)"""
    r"""|location(?:\s*\.\s*href)?\s*=\s*["'`](https?://[^"'`\s]+)""")
_SMUGGLING_MARKERS = ("atob(", "new blob", "blob(", "createobjecturl", "mssaveoropenblob", "mssaveblob",
                      "fromcharcode", "unescape(", "eval(", "document.write(", "window.location",
                      "location.href", "location.replace")


@dataclass(slots=True)
class Link:
    url: str  # normalize_url form
    host: str  # ASCII (punycode) host
    domain: str  # registered domain
    text: str | None = None  # visible anchor text, for HTML links
    source: str = "text"  # text | quoted (on a "> " line of plain text) | html | obfuscated | attachment | qr
    hidden_host: str = ""  # how the host was written to hide it (hex IP, percent-encoding), as the evidence says


@dataclass(slots=True)
class Attachment:
    filename: str
    declared_type: str
    sniffed_type: str
    size: int
    sha256: str
    inline: bool = False
    has_macro: bool = False
    encrypted: bool = False
    members: tuple[str, ...] = ()  # archive member names
    html_script: bool = False  # HTML/SVG with script that builds or redirects (smuggling)
    html_form: bool = False  # HTML with a form asking for a password or posting elsewhere
    html_redirect: str = ""  # where an HTML attachment sends the browser as it opens (meta refresh, location =)


@dataclass(slots=True)
class AuthResult:
    method: str
    result: str
    evidence: str
    props: dict[str, str] = field(default_factory=dict)  # p=, sp=, dis=, action=, reason=, header.from= ...


@dataclass(slots=True)
class ParsedMessage:
    subject: str | None = None
    from_name: str = ""
    from_address: str = ""
    from_domain: str = ""  # ASCII host of the From address
    reply_to: list[str] = field(default_factory=list)
    return_path: str = ""
    to_headers: list = field(default_factory=list, repr=False)  # To and Cc values, read into `to` on use
    message_id: str = ""
    received: list[str] = field(default_factory=list)  # the topmost Received fields (a few, cut), newest first
    in_reply_to: str = ""
    thread_index: bool = False  # Outlook's Thread-Index: a client's reply may carry it instead of In-Reply-To
    auth: dict[str, AuthResult] = field(default_factory=dict)
    dkim_pass_domains: list[str] = field(default_factory=list)  # d= of every dkim=pass the trusted header states
    dkim_signers: list[str] = field(default_factory=list)  # d= of the DKIM-Signature headers (claimed, unverified)
    original_from: str = ""  # X-Original-From's address: the author, where a list (Google Groups) rewrote From
    arc: ArcChain | None = None  # the ARC sets, when the message has any
    list_headers: dict[str, str] = field(default_factory=dict)  # list-id, list-post, sender (lower-case keys)
    text: str = ""  # plain-text bodies (or text rendered from HTML when there is none)
    html: str = ""  # raw HTML bodies
    links: list[Link] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    image_count: int = 0
    qr_codes: list[tuple[str, str]] = field(default_factory=list)  # (where, decoded text) of QR codes in images
    parse_problems: list[str] = field(default_factory=list)
    not_examined: list[str] = field(default_factory=list)  # what the work limits left out, and why
    verdict_headers: dict[str, str] = field(default_factory=dict)  # receiving server's spam verdicts
    evasion: list[str] = field(default_factory=list)  # structure built to defeat parsers (also a parse problem)
    budget_exceeded: bool = False  # the analysis budget ran out: the rest of the message was not analysed
    _to: list[str] | None = field(default=None, repr=False)

    @property
    def to(self) -> list[str]:
        """To and Cc addresses (the first 50). Parsed on first use: no detector reads them yet, and a
        list message's Cc field took a tenth of the analysis through getaddresses."""
        if self._to is None:
            self._to = _addresses(self.to_headers)
        return self._to

    def note_not_examined(self, what: str) -> None:
        if what not in self.not_examined and len(self.not_examined) < 20:
            self.not_examined.append(what)

    def note_evasion(self, finding: str) -> None:
        """Record structure built to defeat parsers; it is listed first among the parse problems too."""
        if finding in self.evasion or len(self.evasion) >= 20:
            return
        self.evasion.append(finding)
        if finding not in self.parse_problems:
            self.parse_problems.insert(len(self.evasion) - 1, finding)

    @property
    def sender(self) -> str | None:
        return self.from_address or None

    def indicator_candidates(self) -> set[str]:
        """Everything to look up in the threat feeds, in one round trip: normalised URLs, their hosts
        and registered domains, and the sender, Reply-To and Return-Path domains."""
        out: set[str] = set()
        for link in self.links:
            out.add(link.url)
            if link.host:
                out.add(link.host)
            if link.domain:
                out.add(link.domain)
        for address in (self.from_address, self.return_path, *self.reply_to):
            host = address_host(address)
            if host:
                out.add(host)
                out.add(registered_domain(host))
        out.discard("")
        return out


def address_host(address: str) -> str:
    if "@" not in address:
        return ""
    return idna_host(address.rsplit("@", 1)[1].strip(" >"))


def _decode_bytes(data: bytes, charset: str | None, problems: list[str] | None = None) -> str:
    if charset:
        cs = charset.strip().strip("\"'").lower()
        if cs in ("unknown-8bit", "x-unknown", "8bit", "default", "us-ascii", "ascii"):
            cs = ""
        if cs:
            try:
                codecs.lookup(cs)
                return data.decode(cs, "replace")
            except LookupError:
                if problems is not None:
                    problems.append(f"unknown charset {charset[:40]!r}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _decode_raw_header(data: bytes, fallback: str | None) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return _decode_bytes(data, fallback or "cp1252")


def _header_charset(msg: Message) -> str | None:
    """The charset a sender that puts raw 8-bit bytes in headers most likely used: the one it declared
    for the first text part."""
    part = msg
    for _ in range(5):
        cs = part.get_content_charset()
        if cs:
            return cs
        payload = part.get_payload()
        if not isinstance(payload, list) or not payload or not isinstance(payload[0], Message):
            return None
        part = payload[0]
    return None


def _may_hold_8bit(value: object) -> bool:
    """Whether header_text may need the fallback charset for this header value (or a part of it)."""
    if value is None:
        return False
    if isinstance(value, Header):
        return True
    text = str(value)
    return not text.isascii() or "=" in text


def header_text(value: object, fallback: str | None = None) -> str:
    """A header value as readable Unicode: RFC 2047 words decoded, raw 8-bit bytes guessed (UTF-8, else
    the message's declared body charset, else Windows-1252), whitespace folded."""
    if value is None:
        return ""
    try:
        if isinstance(value, Header):
            chunks = decode_header(value)
        else:
            s = str(value)[:MAX_HEADER_CHARS]
            if "=?" not in s:
                if not s.isascii() and any("\udc80" <= c <= "\udcff" for c in s):  # 8-bit bytes kept as surrogates
                    s = _decode_raw_header(s.encode("ascii", "surrogateescape"), fallback)
                return _WS.sub(" ", s).strip()
            chunks = decode_header(s)
        out = []
        for chunk, charset in chunks:
            if isinstance(chunk, bytes):
                if charset in (None, "unknown-8bit"):
                    out.append(_decode_raw_header(chunk, fallback))
                else:
                    out.append(_decode_bytes(chunk, charset))
            else:
                out.append(chunk)
        return _WS.sub(" ", "".join(out))[:MAX_HEADER_CHARS].strip()
    except Exception:  # noqa: BLE001 - malformed encoded words must not stop the analysis
        return _WS.sub(" ", str(value)[:MAX_HEADER_CHARS]).strip()


# The forms most From and Return-Path values take, read as email.utils.parseaddr reads them: a bare
# address, or the address in angle brackets after a display name (words without specials, or one quoted
# string without escapes) or none. parseaddr's pure-Python tokenizer was a twentieth of the analysis.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR_SPEC = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_NAME_WORD = r"[^()<>@,:;\"\[\]\\ \t\r\n]+"
_SIMPLE_ADDRESS = re.compile(rf"[ \t\r\n]*(?:({_ADDR_SPEC})|(?:\"([^\"\\\r\n]*)\"|"
                             rf"({_NAME_WORD}(?:[ \t\r\n]+{_NAME_WORD})*))?[ \t\r\n]*<({_ADDR_SPEC})>)[ \t\r\n]*")
_BLANKS = re.compile(r"[ \t\r\n]+")


def parse_address(raw: str) -> tuple[str, str]:
    """email.utils.parseaddr(raw), without its tokenizer for the common forms."""
    m = _SIMPLE_ADDRESS.fullmatch(raw)
    if m is None:
        return parseaddr(raw)
    bare, quoted, words, routed = m.groups()
    if bare is not None:
        return "", bare
    return (quoted if quoted is not None else _BLANKS.sub(" ", words) if words is not None else ""), routed


def _address(value: object, fallback: str | None = None) -> tuple[str, str]:
    if value is None:
        return "", ""
    raw = header_text(value, fallback) if isinstance(value, Header) else str(value)[:MAX_HEADER_CHARS]
    name, addr = parse_address(raw)
    if not addr and raw:
        # parseaddr gives up on some broken headers; a bare address is still worth having
        m = re.search(r"[\w.+'-]+@[\w.-]+", raw)
        addr = m.group(0) if m else ""
    name = header_text(name, fallback)
    return name.strip("\"' "), addr.strip().strip("<>").lower()


def _addresses(values: list) -> list[str]:
    raws: list[str] = []
    room = MAX_ADDRESS_HEADER_CHARS  # getaddresses is slow per address: read only what 50 addresses need
    for v in values:
        if room <= 0:
            break
        raws.append((header_text(v) if isinstance(v, Header) else str(v)[:MAX_HEADER_CHARS])[:room])
        room -= len(raws[-1])
    return [a.lower() for _, a in getaddresses(raws) if "@" in a][:50]


def sniff(data: bytes) -> str:
    """Content type from magic bytes (a small table of the types detectors care about; libmagic is a
    native library that the Lambda runtime does not ship)."""
    head = data[:16]
    if head[:2] == b"MZ":
        return "application/x-msdownload"
    if head[:4] == b"\x7fELF":
        # e_type at offset 16 (either byte order: the values fit one byte): 1 is a relocatable object (a
        # compiler's .o, which developers attach to bug reports), 2 an executable, 3 a shared object or PIE
        e_type = data[16:18]
        if e_type in (b"\x01\x00", b"\x00\x01"):
            return "application/x-object"
        return "application/x-elf"
    if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
        return "application/zip"
    if head[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return "application/x-ole-storage"
    if head[:4] == b"%PDF":
        return "application/pdf"
    if head[:6] == b"Rar!\x1a\x07":
        return "application/x-rar"
    if head[:6] == b"7z\xbc\xaf\x27\x1c":
        return "application/x-7z-compressed"
    if head[:2] == b"\x1f\x8b":
        return "application/gzip"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if head[:4] == b"GIF8":
        return "image/gif"
    if head[:5] == b"{\\rtf":
        return "application/rtf"
    if head[:8] == b"L\x00\x00\x00\x01\x14\x02\x00":
        return "application/x-ms-shortcut"
    if data[0x8001:0x8006] == b"CD001":
        return "application/x-iso9660-image"
    if head[:4] == b"\xca\xfe\xba\xbe":
        return "application/java-vm"
    start = data[:1024].lstrip().lower()
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<form")) or (
        b"<script" in start or b"<svg" in start
    ):
        return "image/svg+xml" if b"<svg" in start and b"<html" not in start else "text/html"
    if not data:
        return "application/x-empty"
    sample = data[:512]
    if all(32 <= b < 127 or b in (9, 10, 13) for b in sample):
        return "text/plain"
    return "application/octet-stream"


_OLE_VBA = ("_VBA_PROJECT".encode("utf-16-le"), b"VBA\x00", "Macros".encode("utf-16-le"))
_OLE_ENCRYPTED = ("EncryptedPackage".encode("utf-16-le"), "EncryptionInfo".encode("utf-16-le"))


def _zip_entry_count(data: bytes) -> int:
    """Entries the archive's directory claims (from its end record), without reading the directory."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or end + 12 > len(data):
        return 0
    return struct.unpack_from("<H", data, end + 10)[0]


@dataclass(slots=True)
class _Work:
    """What one message's attachments have used of the per-message work limits."""

    parsed: ParsedMessage
    budget: AnalysisBudget
    qr: QrScan
    decoded_bytes: int = 0
    archives: int = 0
    archive_entries: int = 0
    html_chars: int = 0


def _inspect_zip(data: bytes, att: Attachment, work: _Work) -> None:
    name = att.filename or "zip attachment"
    entries = _zip_entry_count(data)
    if entries > MAX_ARCHIVE_ENTRIES:  # left at its sniffed type
        work.parsed.note_not_examined(f"{name}: {entries:,} archive entries, over the {MAX_ARCHIVE_ENTRIES:,} "
                                      "an archive is opened with")
        return
    if work.archives >= MAX_ARCHIVES or work.archive_entries + entries > MAX_MESSAGE_ARCHIVE_ENTRIES:
        work.parsed.note_not_examined(f"{name}: not opened, past the {MAX_ARCHIVES} archives or "
                                      f"{MAX_MESSAGE_ARCHIVE_ENTRIES:,} archive entries read per message")
        return
    work.archives += 1
    work.archive_entries += entries
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()[:MAX_ARCHIVE_MEMBERS]
    except Exception:  # noqa: BLE001 - corrupt archives are common in spam; the sniffed type remains
        return
    nested = [info.filename for info in infos if info.filename.lower().endswith(_ARCHIVE_EXTENSIONS)]
    if nested:  # archives are opened one level deep
        work.parsed.note_not_examined(f"{name}: {len(nested)} archive(s) inside it not opened "
                                      f"({', '.join(n[:60] for n in nested[:3])})")
    names = []
    for info in infos:
        names.append(info.filename[:255])
        if info.flag_bits & 0x1:
            att.encrypted = True
        if info.filename.lower().rsplit("/", 1)[-1] in ("vbaproject.bin", "vbadata.xml"):
            att.has_macro = True
    att.members = tuple(names)


def _inspect_html(data: bytes, att: Attachment, work: _Work) -> None:
    room = min(MAX_HTML_CHARS, MAX_MESSAGE_HTML_CHARS - work.html_chars)
    if room <= 0:
        work.parsed.note_not_examined(f"{att.filename or 'HTML attachment'}: not read, past the "
                                      f"{MAX_MESSAGE_HTML_CHARS:,} characters of HTML attachments read per message")
        return
    if len(data) > room:
        work.parsed.note_not_examined(f"{att.filename or 'HTML attachment'}: read to {room:,} of {len(data):,} bytes")
    work.html_chars += min(len(data), room)
    links, budget = work.parsed.links, work.budget
    text = data[:room].decode("utf-8", "replace").lower()
    if "<script" in text and any(marker in text for marker in _SMUGGLING_MARKERS):
        att.html_script = True
    if "<form" in text and ("password" in text or "type=\"password\"" in text or "action=\"http" in text):
        att.html_form = True
    if "refresh" in text or "location" in text:
        m = _HTML_REDIRECT.search(text)
        if m:
            att.html_redirect = next(g for g in m.groups() if g)[:200]
    _html_links(text, links, "attachment", budget)


def _analyse_attachment(data: bytes, filename: str, declared: str, inline: bool, work: _Work) -> Attachment:
    sniffed = sniff(data)
    att = Attachment(filename=filename, declared_type=declared, sniffed_type=sniffed, size=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), inline=inline)
    lower = filename.lower()
    links, budget, qr = work.parsed.links, work.budget, work.qr
    if sniffed == "application/zip":
        _inspect_zip(data, att, work)
    elif sniffed == "application/x-ole-storage":
        window = data[:2_000_000]
        att.has_macro = any(marker in window for marker in _OLE_VBA)
        att.encrypted = any(marker in window for marker in _OLE_ENCRYPTED)
    elif sniffed in ("text/html", "image/svg+xml") or lower.endswith(_HTML_EXTENSIONS) or declared in (
        "text/html", "image/svg+xml"
    ):
        _inspect_html(data, att, work)
    elif sniffed == "application/pdf":
        for m in _PDF_URI.finditer(data[:2_000_000]):
            _add_link(links, m.group(1).decode("latin-1"), None, "attachment")
        scan_pdf(data, filename or "PDF attachment", qr, budget)
    elif sniffed in _SCANNED_IMAGES:
        scan_image(data, filename or ("inline image" if inline else "image attachment"), qr, budget)
    return att


def _add_link(links: list[Link], raw: str, text: str | None, source: str) -> None:
    if len(links) >= MAX_LINKS:
        return
    url = normalize_url(html.unescape(raw) if "&" in raw else raw)
    if url is None:
        return
    host = url_host(url)
    links.append(Link(url=url, host=host, domain=registered_domain(host), text=text, source=source,
                      hidden_host=obfuscated_host(written_host(raw)) or ""))


def _html_links(markup: str, links: list[Link], source: str, budget: AnalysisBudget) -> None:
    for count, link in enumerate(iter_html_links(markup), 1):
        if len(links) >= MAX_LINKS or (count % LINK_BUDGET_CHECK_EVERY == 0 and budget.exceeded("HTML links")):
            break
        _add_link(links, link.href, link.text or None, source)
    for m in finditer_at(_ACTION, markup, markup.lower(), ("act",), _ACTION_BEFORE):
        if len(links) >= MAX_LINKS:
            break
        _add_link(links, m.group(1), None, source)


# Punctuation that ends a sentence rather than a URL written in running text.
_TRAILING = ".,;:!?)]}'\">"


def labelled_urls(text: str) -> Iterator[re.Match[str]]:
    """The matches of `_TEXT_LABELLED_URL.finditer(text)`, tried only before a "<" that a link target
    follows. The regex starts with a class, so `re` tries it at every position of the text and backtracks
    through every word there (~100 ns a character: a third of a millisecond on a plain-text mail that
    holds one such link). A label holds no white space, "<" or ">" but the spaces before the "<", so a
    match's "<" is the first after its start: the leftmost match with its "<" at q starts at the leftmost
    position from which the label runs up to q, in the run of characters before q."""
    pos = 0
    at = text.find("<")
    while at >= 0:
        if at >= pos and _LABELLED_TARGET.match(text, at):
            end = at  # where the label's run ends: up to three spaces or tabs before the "<"
            while end > at - 3 and end > 0 and text[end - 1] in " \t":
                end -= 1
            low = max(pos, at - MAX_LABEL_CHARS)
            start = end  # the run of characters before `end` with no white space, "<" or ">"
            if end > low and not text[end - 1].isspace():
                run = text[low:end].rsplit(None, 1)[-1]  # str.isspace is re's \s for str patterns
                start = end - len(run) + max(run.rfind("<"), run.rfind(">")) + 1
            label = _LABEL_BEFORE.search(text, max(low, start), at)
            if label is not None:
                m = _TEXT_LABELLED_URL.match(text, label.start())
                if m is None or m.start(2) != at + 1:  # cannot happen; the plain search has the last word
                    yield from _TEXT_LABELLED_URL.finditer(text, pos)
                    return
                yield m
                pos = m.end()
        at = text.find("<", at + 1)


class _QuotedLines:
    """Whether the line holding a position is quoted from an earlier message ("> " at its start), asked at
    rising positions: each character is searched for a line end once (a 300,000-character line holding
    thousands of URLs cost a search back to its start for each)."""

    __slots__ = ("text", "searched_to", "line_start", "quoted")

    def __init__(self, text: str):
        self.text, self.searched_to, self.line_start, self.quoted = text, 0, -1, False

    def at(self, pos: int) -> bool:
        if pos < self.searched_to:  # a new pass over the text: start again
            self.searched_to, self.line_start = 0, -1
        end = self.text.rfind("\n", self.searched_to, pos)
        start = end + 1 if end >= 0 else self.line_start if self.line_start >= 0 else 0
        if start != self.line_start:
            self.line_start = start
            self.quoted = QUOTED_LINE.match(self.text, start) is not None
        self.searched_to = pos
        return self.quoted


# A plain-text line quoted from an earlier message: how a reply shows what it answers ("^" at a line's start).
QUOTED_LINE = re.compile(r"^[ \t]*>", re.MULTILINE)


def _text_links(text: str, links: list[Link], seen: set[str]) -> None:
    # A URL seen only on quoted lines is the earlier author's ("quoted"); written once outside them, the
    # sender's ("text"): `seen` holds the sender's, `quoted` the rest, and the one-per-URL pass below
    # prefers the sender's entry.
    quoted: set[str] = set()
    quoted_lines = _QuotedLines(text)

    def add(raw: str, label: str | None, pos: int) -> None:
        if raw in seen:
            return
        if quoted_lines.at(pos):
            if raw not in quoted:
                quoted.add(raw)
                _add_link(links, raw, label, "quoted")
            return
        seen.add(raw)
        _add_link(links, raw, label, "text")

    if "<http" in text or "<HTTP" in text:  # labelled links first, so the target keeps its label
        for m in labelled_urls(text):
            if len(links) >= MAX_LINKS:
                return
            add(m.group(2).rstrip(_TRAILING), m.group(1), m.start())
    lowered = text.lower()
    for m in finditer_at(_TEXT_URL, text, lowered, _TEXT_URL_STARTS):
        if len(links) >= MAX_LINKS:
            return
        add(m.group(0).rstrip(_TRAILING), None, m.start())
    if any(marker in lowered for marker in _OBFUSCATED_MARKERS):
        plain = _DEOBFUSCATE.sub(lambda m: _DEOBF_MAP[m.group(0).lower()], text)
        for m in _TEXT_URL.finditer(plain):
            raw = m.group(0).rstrip(_TRAILING)
            if raw not in seen:
                seen.add(raw)
                _add_link(links, raw, None, "obfuscated")


def _defects(part: Message, problems: list[str], where: str) -> None:
    for defect in getattr(part, "defects", ()) or ():
        name = type(defect).__name__
        msg = f"{name} in {where}"
        if msg not in problems and len(problems) < 30:
            problems.append(msg)


def _clauses(value: str) -> list[str]:
    """A header split at the semicolons outside comments: "dmarc=fail (p=NONE sp=NONE) header.from=x"."""
    if "(" not in value:
        return value.split(";")
    out, depth, start = [], 0, 0
    for i, ch in enumerate(value):
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif ch == ";" and not depth:
            out.append(value[start:i])
            start = i + 1
    out.append(value[start:])
    return out


_DKIM_SIGNER = re.compile(r"(?:^|;)\s*d\s*=\s*([A-Za-z0-9.-]{1,253})")


def _parse_auth(msg: Message, parsed: ParsedMessage, trusted: frozenset[str] | None) -> None:
    # Per method, the topmost (most recently added) header that states it wins: earlier hops' claims
    # can be forged by the sender, the receiving MTA's cannot.
    dkim_header: int | None = None
    for n, value in enumerate((msg.get_all("Authentication-Results") or [])[:20]):
        text = header_text(value)[:MAX_HEADER_CHARS]
        clauses = _clauses(text)
        authserv = _COMMENT.sub("", clauses[0])
        if _AUTH_METHOD.match(authserv.strip()):
            # Microsoft 365 / Outlook.com leave out the authserv-id: "spf=fail ... ; dkim=none ...". The first
            # clause is then a result, not a server name (without this, their SPF result was lost). Such a
            # header names no server, so it is never one of the trusted ones.
            if trusted is not None:
                continue
        else:
            if trusted is not None and authserv.strip().split(" ")[0].lower() not in trusted:
                continue
            clauses = clauses[1:]
        for clause in clauses:
            m = _AUTH_METHOD.search(_COMMENT.sub("", clause))  # comments hold other results ("arc=pass (spf=pass")
            if not m:
                continue
            method, result = m.group(1).lower(), m.group(2).lower()
            props = properties(clause)
            if method not in parsed.auth:
                parsed.auth[method] = AuthResult(method, result, _COMMENT.sub("", clause).strip()[:200], props)
                if method == "dkim":
                    dkim_header = n
            signer = props.get("header.d") or props.get("header.i")
            if method == "dkim" and dkim_header == n and result == "pass" and signer:
                parsed.dkim_pass_domains.append(signer)
    if "spf" not in parsed.auth:
        spf = msg.get("Received-SPF")
        if spf is not None:
            text = header_text(spf)
            word = text.split(" ", 1)[0].lower().rstrip(";")
            if word.isalpha():
                parsed.auth["spf"] = AuthResult("spf", word, f"Received-SPF: {text[:160]}")
    seals = msg.get_all("ARC-Seal") or []
    if seals:
        parsed.arc = read_arc([header_text(v)[:MAX_HEADER_CHARS] for v in seals[:50]],
                              [header_text(v)[:MAX_HEADER_CHARS] for v in (msg.get_all("ARC-Authentication-Results")
                                                                           or [])[:50]])
    for value in (msg.get_all("DKIM-Signature") or [])[:10]:
        m = _DKIM_SIGNER.search(header_text(value)[:MAX_HEADER_CHARS])
        if m:
            parsed.dkim_signers.append(m.group(1).lower())
    original = msg.get("X-Original-From")
    if original is not None:
        parsed.original_from = _address(original)[1]
    for name in ("List-Id", "List-Post", "Sender"):
        value = msg.get(name)
        if value is not None:
            parsed.list_headers[name.lower()] = header_text(value)[:500]


# Defects that mean the multipart structure itself is broken (an unclosed last part is mere truncation).
_BOUNDARY_DEFECTS = frozenset({"NoBoundaryInMultipartDefect", "StartBoundaryNotFoundDefect"})


def _check_boundary(part: Message, parsed: ParsedMessage, where: str) -> None:
    """Malformed boundaries are built to make parsers disagree about where parts are."""
    for defect in getattr(part, "defects", ()) or ():
        if type(defect).__name__ in _BOUNDARY_DEFECTS:
            parsed.note_evasion(f"malformed multipart boundary in {where} ({type(defect).__name__})")
    declared = str(part.get("Content-Type", ""))
    if len(declared) <= MAX_BOUNDARY_CHARS and not _BLANK_BOUNDARY.search(declared):
        return  # too short to hold an over-long boundary; control characters were caught as a header's
    boundary = part.get_boundary()
    if boundary is not None and (len(boundary) > MAX_BOUNDARY_CHARS or not boundary.strip()
                                 or control_characters(boundary)):
        parsed.note_evasion(f"malformed multipart boundary in {where} ({len(boundary):,} characters"
                            f"{', control characters' if control_characters(boundary) else ''})")


def _check_header_block(part: Message, parsed: ParsedMessage, where: str) -> None:
    """A control character that ends a header block early hides the headers after it from this parser,
    while other readers may still see them."""
    if not any(type(d).__name__ == "MissingHeaderBodySeparatorDefect" for d in getattr(part, "defects", ())):
        return
    payload = part.get_payload()
    start = payload if isinstance(payload, str) else (part.preamble or "")
    first_line, _, after = start[:MAX_HEADER_CHARS].lstrip("\r\n").partition("\n")
    if not part.keys() and not _HEADER_LINE.search(after):
        return  # bytes with no header before or after are not mail ("no header fields"), nothing hidden
    controls = control_characters(first_line) or ("U+001B" if "\x1b" in first_line else "")
    if controls:
        parsed.note_evasion(f"header block of {where} cut short by control characters ({controls})")


def _walk(msg: Message, parsed: ParsedMessage, budget: AnalysisBudget,
          qr: QrScan) -> tuple[list[str], list[str]]:
    """Collect body texts and attachments with an explicit stack (no recursion: nesting is hostile input).
    Once the budget is spent, bodies are still collected (their size is capped) and attachments keep their
    names and types, but their content is no longer inspected."""
    plain: list[str] = []
    htmls: list[str] = []
    text_budget = MAX_TEXT_CHARS
    html_budget = MAX_HTML_CHARS
    stack: list[tuple[Message, int]] = [(msg, 0)]
    count = 0
    problems = parsed.parse_problems
    work = _Work(parsed, budget, qr)
    while stack:
        part, depth = stack.pop()
        count += 1
        if count > MAX_PARTS:
            parsed.note_evasion(f"more than {MAX_PARTS} MIME parts; the rest was not analysed")
            break
        where = "message" if count == 1 else f"part {count}"
        _defects(part, problems, where)
        _check_header_block(part, parsed, where)
        payload = part.get_payload()
        ctype = part.get_content_type()
        if ctype.startswith("multipart/"):
            _check_boundary(part, parsed, where)
        if part.is_multipart() or isinstance(payload, list):
            if depth >= MAX_DEPTH:
                parsed.note_evasion(f"MIME nesting deeper than {MAX_DEPTH} levels; inner parts not analysed")
                continue
            children = payload if isinstance(payload, list) else []
            stack.extend((child, depth + 1) for child in reversed(children) if isinstance(child, Message))
            continue
        maintype = ctype.split("/", 1)[0]
        disposition = (part.get("Content-Disposition") or "")
        disposition = str(disposition).split(";", 1)[0].strip().lower()
        filename = part.get_filename() or part.get_param("name") or ""
        if isinstance(filename, tuple):  # RFC 2231 value compat32 could not collapse
            filename = filename[2] if len(filename) > 2 else ""
        filename = header_text(filename) if filename else ""
        controls = control_characters(filename)
        if controls:
            parsed.note_evasion(f"control characters ({controls}) in attachment name {filename[:80]!r}")
        is_body = maintype == "text" and ctype in ("text/plain", "text/html") and disposition != "attachment" \
            and not filename
        if maintype == "image":
            parsed.image_count += 1
        if not is_body and maintype == "text" and not filename and disposition != "attachment":
            continue  # text/calendar, text/csv bodies etc.: nothing to score
        if not is_body and (len(parsed.attachments) >= 100 or budget.exceeded("attachments")):
            if len(parsed.attachments) < 100:  # named, typed, not opened
                parsed.attachments.append(Attachment(filename=filename, declared_type=ctype, sniffed_type="",
                                                     size=0, sha256="", inline=disposition == "inline"))
            continue
        inline = disposition == "inline" or (disposition == "" and maintype == "image")
        if not is_body:
            size = _decoded_size(part, payload)
            if work.decoded_bytes + size > MAX_DECODED_BYTES:
                parsed.note_not_examined(f"{filename or ctype}: {size:,} bytes not opened, past the "
                                         f"{MAX_DECODED_BYTES:,} bytes of attachments opened per message")
                head = _decoded_head(part, payload)
                parsed.attachments.append(Attachment(filename=filename, declared_type=ctype, sniffed_type=sniff(head),
                                                     size=size, sha256="", inline=inline))
                continue
            work.decoded_bytes += size
        data = decoded_payload(part, payload)
        if data is None:
            data = b""
        _defects(part, problems, where)
        if is_body:
            text = _decode_bytes(data[:4 * max(text_budget, html_budget)], part.get_content_charset(), problems)
            if ctype == "text/html":
                if html_budget > 0:
                    htmls.append(text[:html_budget])
                    html_budget -= len(htmls[-1])
            elif text_budget > 0:
                plain.append(text[:text_budget])
                text_budget -= len(plain[-1])
            continue
        parsed.attachments.append(_analyse_attachment(data, filename, ctype, inline, work))
    return plain, htmls


def _transfer_encoding(part: Message) -> str:
    return str(part.get("Content-Transfer-Encoding", "")).lower()  # as compat32's get_payload reads it


def decoded_payload(part: Message, payload: object) -> bytes | None:
    """part.get_payload(decode=True), with base64 decoded in one C call when the payload is clean base64
    (only its alphabet, line breaks, and padding at the end): compat32 splits it into lines and joins
    them first, which costs more than the decoding. Any other payload goes the stdlib's way (which also
    records its defects); tests/analysis/test_fast_paths.py compares the two."""
    if isinstance(payload, str) and payload.isascii() and _transfer_encoding(part) == "base64":
        chars = len(payload) - payload.count("\n") - payload.count("\r")
        if chars % 4 == 0:
            try:
                data = binascii.a2b_base64(payload)  # skips line breaks (and anything else not base64)
            except binascii.Error:
                data = None
            tail = payload[-64:].rstrip("\r\n")  # (not payload.rstrip: that copies a megabyte to look at the end)
            padding = len(tail) - len(tail.rstrip("="))
            # every character was base64 (a skipped one or data after the padding gives fewer bytes)
            if data is not None and padding <= 2 and len(data) == chars // 4 * 3 - padding:
                return data
    return part.get_payload(decode=True)


def _decoded_size(part: Message, payload: object) -> int:
    """About the bytes `part.get_payload(decode=True)` gives (without decoding): base64 holds three bytes
    in four characters, line breaks aside."""
    if not isinstance(payload, str):
        return 0
    return len(payload) * 3 // 4 if _transfer_encoding(part) == "base64" else len(payload)


def _decoded_head(part: Message, payload: object) -> bytes:
    """The first bytes of an attachment, decoded from the start of its payload only."""
    if not isinstance(payload, str):
        return b""
    head = payload[:SNIFF_BYTES * 4 // 3 + SNIFF_BYTES // 40]  # base64 lines: 76 characters and a line break
    try:
        cte = _transfer_encoding(part).strip()
        if cte == "base64":
            head = "".join(head.split())
            return binascii.a2b_base64(head[:len(head) // 4 * 4])
        raw = head.encode("ascii", "surrogateescape")
        return binascii.a2b_qp(raw) if cte == "quoted-printable" else raw
    except (ValueError, UnicodeError):  # binascii.Error: not base64 after all
        return b""


def parse_message(raw: bytes, *, trusted_authserv_ids: frozenset[str] | None = None,
                  budget: AnalysisBudget | None = None) -> ParsedMessage:
    """Parse raw RFC 5322 bytes within an analysis budget (the default one when none is given). Never
    raises: anything unexpected is recorded in parse_problems."""
    parsed = ParsedMessage()
    budget = budget if budget is not None else AnalysisBudget()
    try:
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            raw = str(raw).encode("utf-8", "surrogateescape")
        raw = bytes(raw)
        if not raw or raw.isspace():  # not raw.strip(): that copies a 20 MB message
            parsed.parse_problems.append("empty message")
            return parsed
        msg, limits = parse_bounded(raw, budget)
        for finding in limits.findings:
            parsed.note_evasion(finding)
        if limits.unparsed_bytes:
            parsed.parse_problems.append(f"{BUDGET_PROBLEM}: the last {limits.unparsed_bytes:,} of "
                                         f"{len(raw):,} bytes were not parsed")
        elif limits.stopped_in_headers:
            parsed.parse_problems.append(f"{BUDGET_PROBLEM} in a header flood: the rest was not parsed")
        if limits.cut_bytes:
            parsed.note_not_examined(f"the last {limits.cut_bytes:,} of {len(raw):,} bytes, past the "
                                     f"{MAX_PARSE_BYTES:,} parsed per message")
        _fill(msg, parsed, trusted_authserv_ids, budget)
        if limits.unparsed_bytes or limits.stopped_in_headers or limits.cut_bytes:  # unclosed parts: the cut's doing
            parsed.parse_problems = [p for p in parsed.parse_problems
                                     if not p.startswith("CloseBoundaryNotFoundDefect")]
    except Exception as exc:  # noqa: BLE001 - the engine's contract: a verdict for any input
        parsed.parse_problems.append(f"message could not be fully parsed: {type(exc).__name__}")
        if isinstance(exc, RecursionError | MemoryError):  # what the caps missed is still hostile structure
            parsed.note_evasion(f"structure that defeats the MIME parser ({type(exc).__name__})")
        _headers_only(raw, parsed, trusted_authserv_ids)
    parsed.budget_exceeded = budget.exceeded_at is not None
    return parsed


def _headers_only(raw: bytes, parsed: ParsedMessage, trusted: frozenset[str] | None) -> None:
    """Salvage sender, subject and authentication results when the body defeated the parser."""
    try:
        end = raw.find(b"\n\r\n", 0, 1_000_000)
        end = raw.find(b"\n\n", 0, 1_000_000) if end < 0 else end
        msg, _ = parse_bounded(raw[:end + 1] if end >= 0 else raw[:1_000_000], AnalysisBudget())
        parsed.subject = header_text(msg.get("Subject")) if msg.get("Subject") is not None else None
        parsed.from_name, parsed.from_address = _address(msg.get("From"))
        parsed.from_domain = address_host(parsed.from_address)
        parsed.reply_to = _addresses(msg.get_all("Reply-To") or [])
        parsed.to_headers = (msg.get_all("To") or []) + (msg.get_all("Cc") or [])
        parsed.message_id = header_text(msg.get("Message-ID"))[:300]
        parsed.received = _received(msg)
        _parse_auth(msg, parsed, trusted)
        parsed.verdict_headers = capture_headers(msg)
    except Exception as exc:  # noqa: BLE001 - nothing more to salvage
        parsed.parse_problems.append(f"headers could not be read either: {type(exc).__name__}")


MAX_RECEIVED = 8  # the trace reads the receiving side's hops; a forged pile below them is not read
MAX_RECEIVED_CHARS = 1000


def _received(msg: Message) -> list[str]:
    return [str(v)[:MAX_RECEIVED_CHARS] for v in (msg.get_all("Received") or [])[:MAX_RECEIVED]]


def _fill(msg: Message, parsed: ParsedMessage, trusted: frozenset[str] | None, budget: AnalysisBudget) -> None:
    # msg is a BoundedMessage: its get and get_all use an index of the fields, not a walk per call
    if not msg.keys():
        parsed.parse_problems.append("no header fields")
    subject = msg.get("Subject")
    sender = msg.get("From")
    # The body's charset is the fallback for 8-bit bytes in these two headers; plain ASCII without an
    # encoded word ("=?", which "=" precedes) has none, and looking it up parses a part's parameters.
    fallback = _header_charset(msg) if _may_hold_8bit(subject) or _may_hold_8bit(sender) else None
    parsed.subject = header_text(subject, fallback) if subject is not None else None
    parsed.from_name, parsed.from_address = _address(sender, fallback)
    parsed.from_domain = address_host(parsed.from_address)
    if sender is None:
        parsed.parse_problems.append("no From header")
    parsed.reply_to = _addresses(msg.get_all("Reply-To") or [])
    _, parsed.return_path = _address(msg.get("Return-Path"))
    parsed.to_headers = (msg.get_all("To") or []) + (msg.get_all("Cc") or [])
    parsed.message_id = header_text(msg.get("Message-ID"))[:300]
    parsed.received = _received(msg)
    parsed.in_reply_to = header_text(msg.get("In-Reply-To") or msg.get("References"))[:300]
    parsed.thread_index = msg.get("Thread-Index") is not None
    _parse_auth(msg, parsed, trusted)
    parsed.verdict_headers = capture_headers(msg)
    for name, decoded in (("Subject", parsed.subject or ""), ("From", parsed.from_name + parsed.from_address)):
        controls = control_characters(decoded)  # encoded words can hide what the raw header check cannot see
        if controls:
            parsed.note_evasion(f"control characters ({controls}) in decoded {name}")

    qr = QrScan()
    plain, htmls = _walk(msg, parsed, budget, qr)
    parsed.html = "\n".join(htmls)
    if "base64," in parsed.html:
        _html_data_images(parsed, qr, budget)
    _qr_links(parsed, qr)
    for what in qr.skipped:
        parsed.note_not_examined(f"QR codes: {what}")
    text = "\n".join(plain)
    link_text = text  # where bare URLs are looked for
    if htmls:
        for markup in htmls:
            _html_links(markup, parsed.links, "html", budget)
        if not text.strip():
            text = link_text = html_to_text(parsed.html)
        elif len(text.strip()) < MIN_PLAIN_CHARS:
            # Hardly any plain text beside the HTML: a list's footer, a gateway's disclaimer or a decoy
            # alternative ("view this mail in a browser"). What the reader sees is the HTML, so the language
            # detectors and the content model read its text first (they read the start of the text only).
            # Its links were taken from the markup above; bare URLs are looked for in the plain part only,
            # as before (a second scan of the shown text cost more than it found).
            text = html_to_text(parsed.html) + "\n" + text
    parsed.text = text[:MAX_TEXT_CHARS]
    _text_links(link_text[:MAX_TEXT_CHARS], parsed.links, set())
    # one entry per distinct URL: the HTML occurrence (with its anchor text) wins over a bare mention, the
    # sender's own mention over a quoted one
    unique: dict[str, Link] = {}
    for link in parsed.links:
        kept = unique.get(link.url)
        if kept is None or (link.text and not kept.text) or (kept.source == "quoted" and link.source != "quoted"):
            unique[link.url] = link
    parsed.links = list(unique.values())


def _html_data_images(parsed: ParsedMessage, qr: QrScan, budget: AnalysisBudget) -> None:
    for count, m in enumerate(_DATA_IMAGE.finditer(parsed.html), 1):
        if len(qr.codes) >= MAX_CODES:
            break
        if count > MAX_IMAGES or not qr.room():
            qr.skip(f"images in the HTML body past the {MAX_IMAGES} images or {MAX_MESSAGE_PIXELS:,} pixels "
                    "decoded per message")
            break
        if len(m.group(1)) * 3 // 4 > MAX_IMAGE_BYTES:
            qr.skip(f"image in the HTML body: {len(m.group(1)) * 3 // 4:,} bytes, over the {MAX_IMAGE_BYTES:,} "
                    "an image is decoded at")
            continue
        parsed.image_count += 1
        try:
            data = base64.b64decode(m.group(1))
        except ValueError:  # binascii.Error: not base64 after all
            continue
        scan_image(data, "image in the HTML body", qr, budget)


def _qr_links(parsed: ParsedMessage, qr: QrScan) -> None:
    """The URLs decoded from QR codes join the links, so the same URL analysis applies to them (feeds,
    look-alikes, IP literals, free hosts); a bare "domain/path" is what a phone camera opens too."""
    for where, text in qr.codes:
        candidate = text if "://" in text or text[:4].lower() == "www." else (
            "http://" + text if _BARE_DOMAIN_URL.match(text) else "")
        url = normalize_url(candidate) if candidate else None
        if url is None:
            continue  # a ticket number, a payment slip, a Wi-Fi login: not a link
        parsed.qr_codes.append((where, url))
        host = url_host(url)
        # first among the links: MAX_LINKS full of attachment links must not crowd a code's URL out
        parsed.links.insert(0, Link(url=url, host=host, domain=registered_domain(host), source="qr"))
        del parsed.links[MAX_LINKS:]


def display_host(host: str) -> str:
    """Readable form of a host for evidence strings."""
    return unicode_host(host)
