"""URL and domain helpers shared by the parser, the detectors and the threat-feed loaders.

`normalize_url` is the single definition of a URL's lookup form: feed loaders must store indicators
in this form so the analyser's candidates match them.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from functools import lru_cache
from urllib.parse import unquote, urlsplit

import tldextract

from .data.confusables import CONFUSABLE_CHARS, CONFUSABLE_SEQUENCES

# The bundled public-suffix snapshot only: no network fetch, no cache directory (Lambda's disk is
# read-only outside /tmp, and the analysis engine does no I/O).
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
# registered_domain, domain_label and has_public_suffix ask about the same hosts: one public-suffix lookup each
_extract = lru_cache(maxsize=8192)(_EXTRACT)

_DEFAULT_PORTS = {"http": "80", "https": "443", "ftp": "21"}
_HOST_OK = re.compile(r"^[a-z0-9._-]+$")
_CONFUSABLE_TABLE = str.maketrans(CONFUSABLE_CHARS)


@lru_cache(maxsize=8192)
def idna_host(host: str) -> str:
    """Lower-case ASCII (punycode) form of a host name; '' when it is not a usable host."""
    host = host.strip().strip(".").lower()
    if "%" in host:  # browsers percent-decode a host before resolving it ("%77%77%77%2e..." is "www....")
        host = unquote(host).strip().strip(".").lower()
    if not host or len(host) > 253:
        return ""
    if host.startswith("[") and host.endswith("]"):
        return host
    if host.isascii():
        return host if _HOST_OK.match(host) else ""
    labels = []
    for label in host.split("."):
        if label.isascii():
            labels.append(label)
            continue
        try:
            labels.append(label.encode("idna").decode("ascii"))
        except UnicodeError:  # invalid IDNA label (too long, disallowed code points)
            try:
                labels.append("xn--" + label.encode("punycode").decode("ascii"))
            except UnicodeError:
                return ""
    return ".".join(labels)


@lru_cache(maxsize=8192)
def unicode_host(host: str) -> str:
    """Readable (Unicode) form of a punycode host; the input if a label does not decode."""
    if "xn--" not in host:
        return host
    labels = []
    for label in host.split("."):
        if label.startswith("xn--"):
            try:
                label = label[4:].encode("ascii").decode("punycode")
            except (UnicodeError, ValueError):
                pass
        labels.append(label)
    return ".".join(labels)


# Not ipaddress's is_private: that also takes the documentation ranges (198.51.100.0/24, ...), which are not
# reachable inside anyone's network either.
_INTERNAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "0.0.0.0/8", "::1/128", "fe80::/10", "fc00::/7"))


def is_internal_ip(host: str) -> bool:
    """A private, loopback or link-local address ('http://192.168.10.2' in a question about a device on the
    asker's network): reachable only inside a network, so no lure's link to an outsider."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # the obfuscated forms below are public addresses written to hide
    return any(address in network for network in _INTERNAL_NETWORKS)


def is_ip_host(host: str) -> bool:
    h = host.strip("[]")
    if not h or not (h[0].isdigit() or ":" in h or h.startswith("0x")):
        return False
    try:
        ipaddress.ip_address(h)
        return True
    except ValueError:
        pass
    # Obfuscated IPv4 forms browsers still resolve: hex, octal, fewer than four parts ("0x2f.0140.35985")
    return browser_ipv4(h) is not None


_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")


@lru_cache(maxsize=8192)
def browser_ipv4(host: str) -> str | None:
    """The dotted address a browser makes of a numeric host, None when it is not one: the WHATWG URL
    standard's IPv4 parser (one to four parts, each decimal, octal after a leading 0 or hex after 0x, the
    last filling the bytes left), which is how "http://0x2f.0140.35985/" reaches 47.96.140.145."""
    parts = host.lower().removesuffix(".").split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMERIC_LABEL.fullmatch(p) for p in parts):
        return None
    if len(parts) == 1 and not parts[0].startswith("0x") and len(parts[0]) < 8:
        return None  # a short bare number is a typo or a port, not an address anyone hides behind
    numbers: list[int] = []
    for part in parts:
        if part.startswith("0x"):
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not part.isdigit() or "8" in part or "9" in part:
                return None
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        return None
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - i))
    return str(ipaddress.IPv4Address(value))


def written_host(url: str) -> str:
    """The host of a URL as written in the message, before any decoding ('' when there is none)."""
    rest = url.strip().split("://", 1)
    if len(rest) != 2:
        return ""
    netloc = rest[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]
    return netloc.rsplit(":", 1)[0].lower() if not netloc.startswith("[") else ""


def obfuscated_host(host: str) -> str | None:
    """How a link's host is written to hide where it leads, None when it is written plainly: an IPv4
    address other than as four decimals, or a percent-encoded name (browsers decode both; people and
    URL filters reading the text do not)."""
    if "%" in host:
        return f"{host[:40]} (percent-encoded)"
    address = browser_ipv4(host)
    if address is not None and address != host:
        return f"{host[:40]} (= {address})"
    return None


def has_public_suffix(host: str) -> bool:
    """'a.example.co.uk' does; a file name shown as link text ('gain30.75.webm') or a list archive's mangled
    host ('lists.ettus.noclick_com') does not."""
    return bool(host) and bool(_extract(host).suffix)


@lru_cache(maxsize=8192)
def registered_domain(host: str) -> str:
    """eTLD+1 of an ASCII host ('mail.paypal.co.uk' -> 'paypal.co.uk'); the host itself for IPs and
    names without a public suffix."""
    if not host:
        return ""
    if is_ip_host(host):
        return host
    ext = _extract(host)
    if ext.domain and ext.suffix:
        return f"{ext.domain}.{ext.suffix}"
    return host


@lru_cache(maxsize=8192)
def domain_label(host: str) -> str:
    """The registrable label of a host, without suffix ('login.paypal.co.uk' -> 'paypal')."""
    if not host or is_ip_host(host):
        return ""
    return _extract(host).domain


@lru_cache(maxsize=16384)
def skeleton(text: str) -> str:
    """What a label looks like to a reader: confusable characters, accents and letter pairs folded to
    plain a-z ('pаypa1' with a Cyrillic a -> 'paypal')."""
    folded = text.lower().translate(_CONFUSABLE_TABLE)
    if not folded.isascii():  # ASCII has no compatibility forms and no combining marks
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in folded if not unicodedata.combining(c))
    for seq, repl in CONFUSABLE_SEQUENCES:
        folded = folded.replace(seq, repl)
    return folded


@lru_cache(maxsize=16384)
def normalize_url(url: str) -> str | None:
    """The lookup form of a URL: lower-case scheme and host (punycode), default port and fragment
    dropped, empty path as '/', path and query kept as written. None when it is not an http(s)/ftp URL
    with a host."""
    url = url.strip() if url else ""
    if not url or len(url) > 4096:
        return None
    if url[:4].lower() == "www.":
        url = "http://" + url
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https", "ftp"):
            return None
        host = idna_host(parts.hostname or "")
        port = parts.port
    except ValueError:  # bad port, bad IPv6 literal
        return None
    if not host:
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    netloc = host
    if port is not None and str(port) != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{port}"
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{netloc}{path}{query}"


def url_host(normalized: str) -> str:
    """Host of a URL already in `normalize_url` form (cheap: no re-parse)."""
    rest = normalized.split("://", 1)[-1]
    host = rest.split("/", 1)[0]
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host
