"""Signals the first engine did not read: the receiving server's verdict headers, forms and
`javascript:` links in the body, HTML attachments, brands named in the subject, abused top-level
domains, and the interactions between signals.

Kept apart from parse.py and scoring.py: `capture_headers` is the only thing the parser calls (one
pass over the header names it already has), everything else reads the `ParsedMessage`.
"""

from __future__ import annotations

import itertools
import re
from email.header import decode_header
from email.message import Message

from .data.brands import BRANDS, DISPLAY_NAME_EXCLUDED
from .data.hosts import CLOUD_MACHINE_HOST_SUFFIXES, IPFS_GATEWAYS
from .urls import registered_domain, skeleton

MAX_VERDICT_HEADER_CHARS = 2_000

# Header (lower case) -> key in ParsedMessage.verdict_headers. Only the topmost of each is kept: the
# receiving server adds its own on top.
_VERDICT_HEADERS = {
    "x-forefront-antispam-report": "forefront",
    "x-microsoft-antispam": "msantispam",
    "x-ms-exchange-organization-scl": "scl",
    "x-microsoft-antispam-mailbox-delivery": "ms_delivery",
    "x-spam-flag": "spam_flag",
    "x-spam-status": "spam_status",
    "x-spamd-result": "spamd_result",
    "x-spam": "x_spam",
    "x-barracuda-spam-status": "barracuda_status",
    "x-barracuda-spam-flag": "barracuda_flag",
    "x-proofpoint-spam-details": "proofpoint",
}

_SCL = re.compile(r"\bSCL:(-?\d)", re.IGNORECASE)
_BCL = re.compile(r"\bBCL:(\d)", re.IGNORECASE)
_SFV = re.compile(r"\bSFV:([A-Z]+)", re.IGNORECASE)
_CAT = re.compile(r"\bCAT:([A-Z]+)", re.IGNORECASE)
# Outlook.com / Exchange Online mailbox delivery: dest:J is the server's own decision to file the message as
# Junk (RF:JunkEmail says the same); with OFR:CustomRules the recipient's own rule moved it, not a verdict.
_DEST = re.compile(r"(?:^|;)\s*dest:([A-Z])\b", re.IGNORECASE)
_DELIVERY_BY_USER_RULE = re.compile(r"\bOFR:CustomRules\b", re.IGNORECASE)
_SPAM_CATS = frozenset({"SPM", "HSPM"})
_PROOFPOINT_SPAM = re.compile(r"\brule=(?:outbound_)?(spam|bulk|phish\w*)\b", re.IGNORECASE)
_PHISH_CATS = frozenset({"PHSH", "HPHSH", "HPHISH", "SPOOF", "GIMP", "UIMP", "DIMP", "OSPM"})
_JS_HREF = re.compile(r"""\bhref\s*=\s*["']?\s*(?:javascript|vbscript)\s*:""", re.IGNORECASE)
_FORM = re.compile(r"<form\b[^>]{0,2000}>", re.IGNORECASE)
_FORM_ACTION = re.compile(r"""\baction\s*=\s*["']?\s*(https?:)?//""", re.IGNORECASE)
_PASSWORD_INPUT = re.compile(r"""<input\b[^>]{0,500}\btype\s*=\s*["']?password""", re.IGNORECASE)
# A field a credential or card phish asks for; a newsletter's subscribe or search box (email, q, zip) is not one.
_CREDENTIAL_INPUT = re.compile(r"""<input\b[^>]{0,500}\b(?:name|id|placeholder)\s*=\s*["']?[^"'>]{0,40}"""
                               r"""(?:user|login|logon|pass|pwd|card|cvv|cvc|ssn|otp|pin\b|acct|account|iban|routing)""",
                               re.IGNORECASE)
# Inputs the reader does not fill in: a newsletter's hidden "user" field names the list's account, not a login.
_UNFILLED_INPUT = re.compile(r"""<input\b[^>]{0,500}\btype\s*=\s*["']?(?:hidden|submit|button|image|reset|checkbox|radio)\b""",
                            re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")
_HTML_EXTENSIONS = (".htm", ".html", ".shtml", ".xhtml", ".svg", ".mht", ".mhtml")

# Top-level domains where abuse far outweighs ordinary use (Spamhaus and Interisle TLD reports);
# a weak signal on its own, learned like every other.
ABUSED_TLDS = frozenset({
    "top", "xyz", "click", "link", "work", "gq", "ml", "cf", "ga", "tk", "buzz", "rest", "cyou", "icu",
    "cam", "monster", "quest", "sbs", "bond", "zip", "mov", "lol", "support", "country", "kim", "men",
    "loan", "download", "racing", "review", "win", "bid", "stream", "date", "faith", "trade", "party",
    "science", "accountant", "cricket", "su",
})

# Brands a subject line names on purpose; common words ("apple", "chase", "ups") are left out.
_SUBJECT_BRANDS = frozenset(b for b in BRANDS if b not in DISPLAY_NAME_EXCLUDED and len(b) >= 4) - {
    "google", "amazon", "microsoft", "zoom", "slack", "booking", "steam", "norton", "intuit", "salesforce",
}


# One alternation over the brand names: one regex pass instead of one per brand.
_SUBJECT_BRANDS_RX = re.compile(r"\b(" + "|".join(sorted(_SUBJECT_BRANDS | {"amazon", "microsoft", "google"},
                                                          key=len, reverse=True)) + r")\b")


def capture_headers(msg: Message) -> dict[str, str]:
    """The receiving server's verdict headers, topmost of each, as plain text (called by the parser)."""
    found: dict[str, str] = {}
    for name, value in itertools.islice(msg.raw_items(), 400):
        key = _VERDICT_HEADERS.get(name.lower())
        if key and key not in found:
            value = msg.policy.header_fetch_parse(name, value)  # what items() gives, for these fields only
            text = str(value)[:MAX_VERDICT_HEADER_CHARS]
            if "=?" in text:  # some relays re-encode long header lines as RFC 2047 words
                text = _decoded(text)
            found[key] = " ".join(text.split())
    return found


def _decoded(text: str) -> str:
    try:
        return "".join(c.decode(cs or "utf-8", "replace") if isinstance(c, bytes) else c
                       for c, cs in decode_header(text))
    except (LookupError, ValueError):  # unknown charset, broken encoded word: keep the raw text
        return text


def receiver_verdicts(headers: dict[str, str]) -> list[tuple[str, float, str]]:
    """(signal, value, evidence) for what the receiving server concluded."""
    out: list[tuple[str, float, str]] = []
    if not headers:
        return out
    forefront = headers.get("forefront", "")
    spam_evidence = []
    scl = None
    m = _SCL.search(forefront) or _SCL.search("SCL:" + headers.get("scl", "").strip())
    if m:
        scl = int(m.group(1))
    sfv = _SFV.search(forefront)
    if sfv and sfv.group(1).upper() == "SPM":
        spam_evidence.append("SFV:SPM")
    category = _CAT.search(forefront)
    cat = category.group(1).upper() if category else ""
    if cat in _SPAM_CATS:
        spam_evidence.append(f"CAT:{cat}")
    delivery = headers.get("ms_delivery", "")
    dest = _DEST.search(delivery)
    if dest and dest.group(1).upper() == "J" and not _DELIVERY_BY_USER_RULE.search(delivery):
        spam_evidence.append("X-Microsoft-Antispam-Mailbox-Delivery dest:J (filed as Junk)")
    if cat in _PHISH_CATS:
        out.append(("RECEIVER_PHISH_VERDICT", 1.0, f"X-Forefront-Antispam-Report CAT:{cat}"))
    if scl is not None and scl >= 5:
        out.append(("RECEIVER_SCL_HIGH", 1.0, f"SCL:{scl}"))
    bcl = _BCL.search(headers.get("msantispam", "")) or _BCL.search(forefront)
    if bcl and int(bcl.group(1)) >= 7:
        out.append(("RECEIVER_BULK_HIGH", 1.0, f"BCL:{bcl.group(1)}"))
    if headers.get("spam_flag", "").strip().lower().startswith("yes"):
        spam_evidence.append("X-Spam-Flag: YES")
    if headers.get("spam_status", "").strip().lower().startswith("yes"):
        spam_evidence.append("X-Spam-Status: " + headers["spam_status"].strip()[:60])
    if headers.get("x_spam", "").strip().lower() in ("yes", "true", "spam"):
        spam_evidence.append("X-Spam: " + headers["x_spam"].strip()[:20])
    for key, name in (("barracuda_status", "X-Barracuda-Spam-Status"), ("barracuda_flag", "X-Barracuda-Spam-Flag")):
        if headers.get(key, "").strip().lower().startswith("yes"):
            spam_evidence.append(f"{name}: " + headers[key].strip()[:60])
    rule = _PROOFPOINT_SPAM.search(headers.get("proofpoint", ""))
    if rule:
        spam_evidence.append(f"X-Proofpoint-Spam-Details rule={rule.group(0).split('=', 1)[1]}")
    spamd = headers.get("spamd_result", "").strip().lower()
    if spamd.startswith("default: true"):
        spam_evidence.append("X-Spamd-Result: " + headers["spamd_result"].strip()[:60])
    if spam_evidence:
        out.append(("RECEIVER_SPAM_VERDICT", 1.0, "; ".join(spam_evidence)))
    return out


def body_form(html: str) -> str | None:
    """Evidence of a credential form in the HTML body: a password field, or a form posting to another
    site that asks for a login, card or account field (newsletters' subscribe and search forms post
    elsewhere too: a third of SpamAssassin's hard_ham did). Most mail has no form, so the first regex
    search is the whole cost."""
    m = _FORM.search(html)
    if not m:
        return None
    if _PASSWORD_INPUT.search(html, m.start()):
        return "form with a password field"
    for i, form in enumerate(_FORM.finditer(html, m.start())):
        if i == 10:  # bounded: hostile HTML can hold thousands of forms
            break
        if _FORM_ACTION.search(form.group(0)):
            end = html.find("</form", form.end())
            fields = html[form.end(): end if end != -1 else form.end() + 20_000]
            if any(not _UNFILLED_INPUT.match(fields, field.start())
                   for field in _CREDENTIAL_INPUT.finditer(fields)):
                return "form posting to " + form.group(0)[:120]
    return None


def javascript_links(html: str) -> int:
    if "script:" not in html and "SCRIPT:" not in html and "Script:" not in html:
        return 0
    return len(_JS_HREF.findall(html))


def is_html_attachment(filename: str, declared: str, sniffed: str) -> bool:
    return filename.lower().endswith(_HTML_EXTENSIONS) or declared in ("text/html", "image/svg+xml") or \
        sniffed in ("text/html", "image/svg+xml")


def subject_brand(subject: str, sender_domain: str) -> str | None:
    """A brand the subject names although the sender domain is not one of the brand's."""
    if not subject:
        return None
    words = set(_WORD.findall(skeleton(subject)))
    for brand in sorted(words & _SUBJECT_BRANDS):
        if sender_domain not in BRANDS[brand]:
            return brand
    return None


def body_brand(text: str, sender_domain: str) -> str | None:
    """A brand the (case-folded) start of the body names, from a sender domain it does not own."""
    if not text or not _SUBJECT_BRANDS_RX.search(text):
        return None
    for brand in sorted(set(_SUBJECT_BRANDS_RX.findall(text))):
        if sender_domain not in BRANDS[brand]:
            return brand
    return None


# Security gateways and webmail rewrite every link through themselves; the text still shows the real
# destination. The target is read back out of the rewritten URL (or the link is not compared at all).
LINK_REWRITERS = frozenset({"safelinks.protection.outlook.com", "urldefense.com", "urldefense.proofpoint.com",
                            "proofpoint.com", "mimecast.com", "deref-web.de", "google.com", "barracudanetworks.com",
                            "linkprotect.cudasvc.com", "secure-web.cisco.com", "clicktime.symantec.com",
                            "scanner.topsec.com", "emailsecurity.trendmicro.com"})
_EMBEDDED_URL = re.compile(r"(?:https?(?::|%3A|-3A)(?://|%2F%2F|__))([a-z0-9.-]+\.[a-z]{2,24})", re.IGNORECASE)


def rewritten_target(url: str, host: str, domain: str) -> str | None:
    """The host a gateway-rewritten link really leads to; None when `url` is not a rewrite (or its
    target cannot be read, in which case the caller skips the comparison)."""
    if domain not in LINK_REWRITERS and not host.endswith(".safelinks.protection.outlook.com"):
        return None
    if domain == "google.com" and not url.split("?", 1)[0].endswith("/url"):
        return None
    path_and_query = url.split("://", 1)[-1].split("/", 1)[-1]
    m = _EMBEDDED_URL.search(path_and_query)
    return m.group(1).lower() if m else ""


_FILE_EXTENSIONS = frozenset({"py", "sh", "md", "rs", "pl", "cpp", "hpp", "png", "jpg", "gif", "yml", "yaml",
                              "json", "txt", "log", "csv", "pdf", "zip", "gz", "tar", "mov", "mp4", "doc", "docx",
                              "xls", "xlsx", "ppt", "pptx", "c", "h", "js", "ts", "java", "go", "rb", "edf", "xml",
                              "html", "htm", "ini", "cfg", "conf", "patch", "diff", "exe", "iso", "img", "bin"})


def looks_like_file_name(text: str) -> bool:
    """'trace_lo.png', 'mb_iface.cpp', 'README.md': anchor text naming a file, not a site."""
    if "/" in text or text.lower().startswith("www."):
        return False
    stem, _, ext = text.rpartition(".")
    return "_" in stem or ext.lower() in _FILE_EXTENSIONS


def abused_tld(hosts: list[str]) -> list[str]:
    found = []
    for host in hosts:
        tld = host.rsplit(".", 1)[-1]
        if tld in ABUSED_TLDS:
            dom = registered_domain(host)
            if dom not in found:
                found.append(dom)
    return found


# A content identifier as a host's first label (CIDv1 in base32: "bafy...", "bafk...") or an /ipfs/ path
# with either kind (CIDv0 is "Qm" and 44 base58 characters).
_CID_LABEL = re.compile(r"b[a-z2-7]{50,}")
_IPFS_PATH = re.compile(r"/ip[fn]s/(?:Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{50,}|[a-z0-9.-]+\.[a-z]{2,})")


def ipfs_link(url: str, host: str, domain: str) -> bool:
    """A link to content on IPFS: a public gateway's host, a content hash as the first label, or an
    /ipfs/<hash> path on any host (gateways are many and anyone can run one)."""
    if domain in IPFS_GATEWAYS or host in IPFS_GATEWAYS:
        return True
    if _CID_LABEL.fullmatch(host.split(".", 1)[0]):
        return True
    path = url.split("://", 1)[-1].partition("/")[2]
    return bool(path) and _IPFS_PATH.match("/" + path) is not None


# The first labels of the names a hosting company gives a rented machine ("vps-e0fc7fe3.vps.ovh.net",
# "vmi2661888.contaboserver.net", "ec2-18-189-194-178..."), and an IPv4 address written into a label
# ("v163-44-196-121.a001.g.bkk1.static.cnode.io", "213.159.66.148.host.secureserver.net").
_MACHINE_LABEL = re.compile(r"vps-?[0-9a-f]{4,}|vps\d{3,}|vmi\d{4,}|ec2-\d{1,3}-.*|ip-\d{1,3}-\d{1,3}-.*")
_IP_IN_NAME = re.compile(r"(?<![0-9])(25[0-5]|2[0-4]\d|1?\d?\d)[-.](25[0-5]|2[0-4]\d|1?\d?\d)[-.]"
                         r"(25[0-5]|2[0-4]\d|1?\d?\d)[-.](25[0-5]|2[0-4]\d|1?\d?\d)(?![0-9])")


def machine_host(host: str) -> str | None:
    """Why a sender's host name is a rented machine's rather than an organisation's, None when it is not:
    companies send from their own domain, kits from whatever server they rented this week."""
    if not host:
        return None
    # (not a dynamic-DNS name: a person's home server sends from one, "jsa@pen.homeip.net" in the 2002 corpus)
    if host.endswith(CLOUD_MACHINE_HOST_SUFFIXES):
        return f"{host} is a hosting provider's machine name"
    if _MACHINE_LABEL.fullmatch(host.split(".", 1)[0]):
        return f"{host} is a rented server's generated name"
    subdomain = host.removesuffix(registered_domain(host))
    if subdomain and _IP_IN_NAME.search(subdomain):
        return f"{host} has an IP address in its name"
    return None
