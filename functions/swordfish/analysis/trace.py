"""What a trace stores per verdict, read from the parsed message (pure, no I/O).

Recipients (envelope and header), the header Message-ID, the sending IP and HELO of the trusted
Received field, link domains and URLs, attachment names and SHA-256s, the sender and Reply-To
domains, and a digest of the normalised subject and body for grouping near-identical copies.
Every value comes from hostile bytes: counts and lengths are bounded here, and nothing raises.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field

from .parse import ParsedMessage, address_host

MAX_RECIPIENTS = 100
MAX_LINKS = 100
MAX_ATTACHMENTS = 50
MAX_ADDRESS = 254
MAX_URL = 2048
MAX_NAME = 255
MAX_HOST = 255

# Term kinds: each multi-valued field is searchable through an index on hash("kind:value").
RECIPIENT, LINK_DOMAIN, URL, ATTACHMENT_NAME, ATTACHMENT_SHA256 = "r", "d", "u", "n", "h"


@dataclass
class TraceFields:
    envelope_recipients: list[str] = field(default_factory=list)
    header_recipients: list[str] = field(default_factory=list)
    header_message_id: str | None = None
    sending_ip: str | None = None
    helo: str | None = None
    link_domains: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    attachment_names: list[str] = field(default_factory=list)
    attachment_sha256: list[str] = field(default_factory=list)
    sender_domain: str | None = None
    reply_to_domain: str | None = None
    content_digest: str | None = None

    def terms(self) -> set[int]:
        """The hashed search terms of the multi-valued fields (recipients of either kind as one)."""
        out = {term_key(RECIPIENT, a) for a in (*self.envelope_recipients, *self.header_recipients)}
        out |= {term_key(LINK_DOMAIN, d) for d in self.link_domains}
        out |= {term_key(URL, u) for u in self.urls}
        out |= {term_key(ATTACHMENT_NAME, n.casefold()) for n in self.attachment_names}
        out |= {term_key(ATTACHMENT_SHA256, h) for h in self.attachment_sha256}
        return out


def term_key(kind: str, value: str) -> int:
    """A signed 64-bit key for ("kind", value): PostgreSQL's bigint, the first 8 bytes of SHA-256, so
    SQL computes the same (``TERM_KEY_SQL``: the backfill and the search benchmark seed with it)."""
    digest = hashlib.sha256(f"{kind}:{value}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# term_key in SQL, for a text expression ``{}`` of "kind:value".
TERM_KEY_SQL = "('x' || left(encode(sha256(convert_to({}, 'UTF8')), 'hex'), 16))::bit(64)::bigint"


def _clean(value: str | None, limit: int) -> str | None:
    """Printable, single-line, cut: or None. (storable_text later replaces NUL and surrogates.)"""
    if not value:
        return None
    value = str(value)[: limit * 2]
    if not value.isprintable():  # the common case is printable: checked in C, no copy
        value = "".join(ch for ch in value if ch.isprintable())
    return value.strip()[:limit] or None


def _unique(values, limit: int, cap: int, transform=lambda v: v) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for value in values:
        if len(out) >= cap:
            break
        v = _clean(transform(value) if value else value, limit)
        if v and v not in seen:
            seen.add(v)
            out.append(v)
    return out


def _address(value: str) -> str:
    return value.strip().strip("<>").lower()


_ADDRESS = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}$")


def normalise_recipients(values) -> list[str]:
    """Envelope recipients as a submitter states them: addresses only, lower case, bounded."""
    return [a for a in _unique(values or [], MAX_ADDRESS, MAX_RECIPIENTS, _address) if _ADDRESS.match(a)]


# "from helo.example (rdns.example [192.0.2.1])": the HELO the client gave, then the address the
# receiving server saw (in brackets; IPv6 as IPv6:...). Postfix, Exim, Exchange and Gmail write it so.
_FROM_CLAUSE = re.compile(r"^\s*from\s+(\S{1,255})(.{0,600}?)(?:\bby\b|;|$)", re.IGNORECASE | re.DOTALL)
_BRACKET_IP = re.compile(r"\[(?:IPv6:)?([0-9a-fA-F:.]{2,45})\]")
_BARE_IP = re.compile(r"\(\s*(?:[^()\s]*\s+)?(?:IPv6:)?([0-9a-fA-F:.]{7,45})\s*\)")


# The receiving side's own hops (RFC 1918, carrier-grade NAT, IPv6 unique local). Not is_private:
# that also holds the documentation ranges, which the tests and samples use as public senders.
_INTERNAL = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                      "100.64.0.0/10", "fc00::/7"))


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def trusted_hop(received: list[str]) -> tuple[str | None, str | None]:
    """(sending IP, HELO) from the topmost Received field whose client is a public address.

    The topmost fields were written by the tenant's receiving side; hops inside it (private or
    loopback addresses: a gateway handing to the mailbox server) are skipped, and the first public
    client is the one that connected from outside. Fields below it are the sender's to forge, so
    the search stops at the first public hop."""
    for value in received[:8]:
        text = " ".join(str(value).split())[:1000]
        match = _FROM_CLAUSE.match(text)
        if not match:
            continue
        helo, rest = match.group(1), match.group(2)
        found = _BRACKET_IP.search(rest) or _BARE_IP.search(rest)
        address = _ip(found.group(1)) if found else _ip(helo.strip("[]"))
        if address is None:
            continue
        if address.is_loopback or address.is_link_local or any(address in net for net in _INTERNAL):
            continue
        helo_text = _clean(helo.strip("[]").lower(), MAX_HOST)
        return str(address), helo_text
    return None, None


_URLISH = re.compile(r"\b(?:https?://|www\.)\S+|\S+@\S+", re.IGNORECASE)
_NON_WORD = re.compile(r"[\W\d_]+", re.UNICODE)


def content_digest(subject: str | None, text: str | None) -> str | None:
    """A digest of the subject and the start of the body with what personalises a copy removed
    (URLs, addresses, digits, punctuation, case, spacing): copies of one lure sent to different
    people share it. None when there is too little text to say anything."""
    body = f"{subject or ''}\n{(text or '')[:2000]}"
    words = _NON_WORD.sub(" ", _URLISH.sub(" ", body).casefold()).split()
    if len(words) < 8:
        return None
    return hashlib.sha256(" ".join(words[:400]).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def extract_trace(parsed: ParsedMessage, envelope_recipients=None) -> TraceFields:
    """The trace fields of one parsed message. Never raises: a field it cannot read is left empty."""
    trace = TraceFields()
    try:
        trace.envelope_recipients = normalise_recipients(envelope_recipients)
        trace.header_recipients = [a for a in _unique(parsed.to, MAX_ADDRESS, MAX_RECIPIENTS, _address) if "@" in a]
        trace.header_message_id = _clean(parsed.message_id, 300)
        trace.sending_ip, trace.helo = trusted_hop(parsed.received)
        links = parsed.links[: MAX_LINKS * 4]
        trace.link_domains = _unique((link.domain for link in links if link.domain and "." in link.domain),
                                     MAX_HOST, MAX_LINKS, str.lower)
        trace.urls = _unique((link.url for link in links), MAX_URL, MAX_LINKS)
        attachments = parsed.attachments[: MAX_ATTACHMENTS * 4]
        trace.attachment_names = _unique((a.filename for a in attachments), MAX_NAME, MAX_ATTACHMENTS)
        trace.attachment_sha256 = _unique((a.sha256 for a in attachments), 64, MAX_ATTACHMENTS, str.lower)
        trace.sender_domain = _clean(_domain(parsed.from_address), MAX_HOST)
        reply_to = next((d for d in (_domain(a) for a in parsed.reply_to[:10]) if d), None)
        trace.reply_to_domain = _clean(reply_to, MAX_HOST)
        trace.content_digest = content_digest(parsed.subject, parsed.text)
    except Exception:  # noqa: BLE001 - a trace is evidence, never a reason to lose the verdict
        pass
    return trace


def _domain(address: str | None) -> str | None:
    return address_host(address or "") or None  # ASCII (punycode), lower case; '' when not a usable host
