"""Detectors and the scorer: a `ParsedMessage` and a tenant policy in, a `Verdict` out.

Each detector appends `_Hit`s: a signal name from `weights.CATALOG`, its value and its evidence. A hit's
weight is the signal's learned weight (data/weights.json, `make fit`) times its value, so the reasons
add up to the score; the verdict kind is the category that contributes most, once the score reaches
that kind's threshold (also learned, overridable per tenant).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from .authentication import ENFORCED, ListDelivery, arc_restores_pass, compauth_strength, dmarc_policy, list_delivery
from .content import content_model, content_tokens
from .data.brands import BRANDS, DISPLAY_NAME_EXCLUDED
from .data.hosts import (
    CLOUD_MACHINE_HOST_SUFFIXES,
    DYNAMIC_DNS_DOMAINS,
    FREE_FILE_HOSTS,
    FREE_FILE_HOSTS_BY_HOST,
    FREE_SITE_HOST_ZONES,
    FREE_SITE_HOSTS,
    FREE_SITE_HOSTS_BY_HOST,
    FREEMAIL_DOMAINS,
    URL_SHORTENERS,
)
from .data.language import (
    BEC_PHRASES,
    CREDENTIAL_PHRASES,
    DELIVERY_PHRASES,
    GTUBE,
    MFA_PHRASES,
    QR_LURE_PHRASES,
    SPAM_PHRASES,
)
from .lookalike import brand_lookalike, tenant_lookalike
from .models import Reason, TenantPolicy, Verdict, VerdictKind
from .parse import BUDGET_PROBLEM, QUOTED_LINE, ParsedMessage, address_host
from .phrases import PhrasePattern, TriggerSet
from .signals import (
    LINK_REWRITERS,
    abused_tld,
    body_brand,
    body_form,
    ipfs_link,
    is_html_attachment,
    javascript_links,
    looks_like_file_name,
    machine_host,
    receiver_verdicts,
    rewritten_target,
    subject_brand,
)
from .urls import (
    domain_label,
    has_public_suffix,
    is_internal_ip,
    is_ip_host,
    registered_domain,
    skeleton,
    unicode_host,
)
from .weights import (
    AUTH_FAILURES,
    BRAND_OWN_SIGNED_MAIL,
    CATALOG,
    DKIM_NOT_PASSED,
    MALWARE,
    PHISHING,
    SPAM,
    SPF_NOT_PASSED,
    model,
)

QR_CODE_LURE = "QR_CODE_LURE"
MIME_EVASION = "MIME_EVASION"
ANALYSIS_BUDGET_EXCEEDED = "ANALYSIS_BUDGET_EXCEEDED"
EXPERIMENTAL_DETECTORS: frozenset[str] = frozenset({QR_CODE_LURE})
CONTENT_MODEL = "CONTENT_MODEL"  # a detector an operator can switch off (`disabled`): the learned one

BRAND_BODY_CHARS = 3_000  # a lure names its brand early
MAX_LANGUAGE_CHARS = 4_000  # language patterns look at the start of the text only: lures are short, and
# on long mail (patches, digests) the phrase scans were most of the analysis time. 20,000 until 30 Nov:
# 8,000 changed the phrase signals of 54 of 10,084 corpus messages (48 of them legitimate, losing a spam
# phrase deep in a long mail) and caught the same share in the fit (63.1% against 63.3%); 4,000 since the
# HTML's text is read too (session 5): 75.6% against 75.4% caught, 0.04 ms less in the 40 KiB bench view
MAX_SUBJECT_CHARS = 1_000  # a subject is a line; a hostile one of megabytes is read no further

# Microsoft 365's common attachments filter, plus what lures of the last years used (one, iso, url, ...).
# Not "sh": a shell script needs a terminal and chmod on the reader's side, Microsoft does not block it, and
# developers attach them to list posts (a legitimate bridge@ post scored 8.0 as malware on its pre.sh alone).
DANGEROUS_EXTENSIONS = frozenset({
    "exe", "scr", "pif", "com", "bat", "cmd", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta", "ps1",
    "psm1", "msi", "msix", "msp", "jar", "lnk", "iso", "img", "vhd", "vhdx", "cpl", "dll", "reg", "appx",
    "appxbundle", "application", "gadget", "msc", "scf", "chm", "xll", "one", "sys", "inf", "apk", "dmg",
    "pkg", "app", "elf", "url", "library-ms", "settingcontent-ms",
})
MACRO_EXTENSIONS = frozenset({"docm", "dotm", "xlsm", "xltm", "xlam", "xlsb", "pptm", "potm", "ppam", "ppsm",
                              "sldm"})
DANGEROUS_SNIFFED = frozenset({"application/x-msdownload", "application/x-elf", "application/x-ms-shortcut",
                               "application/java-vm", "application/x-iso9660-image"})
_DECOY_EXT = r"pdf|docx?|xlsx?|pptx?|txt|rtf|csv|jpe?g|png|gif|html?|zip|mp3|mp4|wav|invoice"
_DOUBLE_EXT = re.compile(rf"\.({_DECOY_EXT})[\s_.]*\.([a-z0-9-]{{2,12}})$", re.IGNORECASE)
_EMAIL_IN_NAME = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
_DOMAIN_TEXT = re.compile(r"^(?:https?://)?(?:[\w-]+\.)+[a-z]{2,24}(?::\d+)?(?:[/?#]\S*)?$", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")
# Zero-width and other invisible format characters: phishers put them inside lure words
# ("P\u200dass\u200dword Expir\u200dation") so that phrase lists do not match; the language checks read without them.
_INVISIBLE = dict.fromkeys([0x00AD, 0x034F, 0x180E, *range(0x200B, 0x2010), *range(0x202A, 0x202F),
                            *range(0x2060, 0x2065), 0xFEFF])
_INVISIBLE_CLASS = "[" + "".join(map(chr, _INVISIBLE)) + "]"
_INVISIBLE_SEARCH = re.compile(_INVISIBLE_CLASS)
# A word broken up by invisible characters, or one whose letters switch between Latin and Cyrillic or
# Greek ("p\u0430ssword" with a Cyrillic a). Greek mu and omega are left out: "10\u03bcs", "5k\u03a9" are units.
_ZERO_WIDTH = frozenset(map(chr, _INVISIBLE)) - {"\u00ad"}
# possessive and after a non-word: one pass over each word (a plain \w+ here retried every start inside a
# long run, quadratic on CJK text, where a sentence is one run)
_BROKEN_WORD = re.compile(rf"(?<!\w)\w++(?:{_INVISIBLE_CLASS}++\w++)+")
_FOREIGN_LETTER = "\u0370-\u03a8\u03aa-\u03bb\u03bd-\u03c8\u03ca-\u03ff\u0400-\u04ff"
_FOREIGN_SEARCH = re.compile(f"[{_FOREIGN_LETTER}]")
_OBFUSCATION_CHARS = re.compile(f"{_INVISIBLE_CLASS}|[{_FOREIGN_LETTER}]")
_SCRIPT_SWITCH = re.compile(rf"[a-zA-Z][{_FOREIGN_LETTER}]|[{_FOREIGN_LETTER}][a-zA-Z]")  # no IGNORECASE: it folds mu to Mu
MIN_OBFUSCATED_WORDS = 2  # one could be a typo or a pasted name; phishing kits break up every lure word


def _family(patterns: tuple[tuple[str, tuple[str, ...], str], ...]) -> list[PhrasePattern]:
    return [PhrasePattern(label, triggers, rx) for label, triggers, rx in patterns]


_CREDENTIAL = _family(CREDENTIAL_PHRASES)
_BEC = _family(BEC_PHRASES)
_DELIVERY = _family(DELIVERY_PHRASES)
_SPAMMY = _family(SPAM_PHRASES)
_QR = _family(QR_LURE_PHRASES)
_MFA = _family(MFA_PHRASES)
# Every family's triggers, and the prefixes its patterns' matches start with, found in one pass per
# message (phrases.TriggerSet) instead of a scan each; prefixes of one or two characters ("i", "to") occur
# all over a text and are left to PhrasePattern.found. Those only the QR-code and MFA phrases use, only for
# the few messages whose QR-code checks get that far.
_TRIGGERS = tuple(sorted({t for family in (_CREDENTIAL, _BEC, _DELIVERY, _SPAMMY, _QR, _MFA) for p in family
                          for t in p.triggers}))
MIN_SEARCHED_PREFIX = 3


def _searched(families: tuple[list[PhrasePattern], ...]) -> set[str]:
    return {s for family in families for p in family
            for s in (*p.triggers, *(q for q in p.prefixes or () if len(q) >= MIN_SEARCHED_PREFIX))}


_LANGUAGE_TRIGGERS = TriggerSet(_searched((_CREDENTIAL, _BEC, _DELIVERY, _SPAMMY)))
_QR_MFA_TRIGGERS = TriggerSet(_searched((_QR, _MFA)) - _LANGUAGE_TRIGGERS.triggers)
_ALL_SEARCHED = _LANGUAGE_TRIGGERS.triggers | _QR_MFA_TRIGGERS.triggers

_SINGLE_WORD_BRANDS = frozenset(b for b in BRANDS if b not in DISPLAY_NAME_EXCLUDED)
# registered domain -> the brands that own it (a link text showing one is a claim to be that brand)
_BRAND_OF_DOMAIN: dict[str, frozenset[str]] = {
    domain: frozenset(b for b, owned in BRANDS.items() if domain in owned)
    for domain in frozenset().union(*BRANDS.values())
}
_MULTIWORD_BRANDS = {"wells fargo": "wellsfargo", "bank of america": "bankofamerica",
                     "american express": "americanexpress", "geek squad": "geeksquad",
                     "office 365": "office365", "one drive": "onedrive", "docu sign": "docusign",
                     "we transfer": "wetransfer", "pay pal": "paypal", "linked in": "linkedin",
                     "mercado pago": "mercadopago", "mercado libre": "mercadolibre", "mercado livre": "mercadolivre",
                     "magazine luiza": "magazineluiza", "banco do brasil": "bancodobrasil", "la poste": "laposte",
                     "poste italiane": "posteitaliane", "intesa sanpaolo": "intesasanpaolo", "japan post": "japanpost",
                     "banco santander": "santander", "caixa bank": "caixabank"}


@dataclass(slots=True)
class _Hit:
    reason: Reason
    category: str
    value: float


class _Hits(list):
    def add(self, name: str, evidence: str, value: float = 1.0, *, category: str | None = None,
            weight: float | None = None) -> None:
        """Record a signal; its weight is the learned one times `value` unless `weight` is given (a
        tenant's own allow-list weight)."""
        spec = CATALOG[name]
        w = model().weight(name) * value if weight is None else weight
        self.append(_Hit(Reason(name=name, weight=round(w, 2), evidence=evidence[:300], value=value),
                         category or spec.category, value))

    def names(self) -> set[str]:
        return {h.reason.name for h in self}

    def drop(self, names: frozenset[str]) -> None:
        self[:] = [h for h in self if h.reason.name not in names]


def _fold(text: str) -> str:
    """Text as the phrase patterns and the content model read it: invisible characters dropped,
    case-folded."""
    if not text.isascii() and _INVISIBLE_SEARCH.search(text):  # str.translate costs ~30 ns a character
        text = text.translate(_INVISIBLE)
    return text.casefold()


def _phrases(family: list[PhrasePattern], text: str, present: frozenset[str],
             searched: frozenset[str] = _LANGUAGE_TRIGGERS.triggers) -> list[str]:
    """The labels of the family's patterns found; `present`: the strings of `searched` in `text`."""
    return [p.label for p in family if p.found(text, present, searched)]


def _sender_domain(parsed: ParsedMessage) -> str:
    return registered_domain(parsed.from_domain) if parsed.from_domain else ""


# --- detectors ------------------------------------------------------------------------------------

_AUTH_SIGNALS = {
    ("spf", "fail"): "SPF_FAIL", ("spf", "softfail"): "SPF_SOFTFAIL", ("spf", "none"): "SPF_NONE",
    ("spf", "permerror"): "SPF_PERMERROR", ("dkim", "fail"): "DKIM_FAIL", ("dkim", "none"): "DKIM_NONE",
    ("dkim", "permerror"): "DKIM_PERMERROR", ("dmarc", "fail"): "DMARC_FAIL", ("dmarc", "none"): "DMARC_NONE",
    ("compauth", "fail"): "COMPAUTH_FAIL", ("compauth", "softpass"): "COMPAUTH_SOFTPASS",
    ("arc", "fail"): "ARC_FAIL",
}


def _auth(parsed: ParsedMessage, policy: TenantPolicy, hits: _Hits) -> ListDelivery | None:
    """The receiver's results, read as a receiving MTA reads them (authentication.py): a DMARC failure by
    the policy the From domain publishes, what a list's own changes or a trusted ARC chain explain left
    out (and said so in LIST_DELIVERY / ARC_TRUSTED_PASS). Returns the list delivery, for the identity
    checks (a list's Return-Path and Reply-To are the list's)."""
    auth = parsed.auth
    spf, dmarc, dkim = auth.get("spf"), auth.get("dmarc"), auth.get("dkim")
    listed = list_delivery(parsed.list_headers, parsed.return_path, parsed.dkim_pass_domains,
                           spf.result if spf else None, spf.props.get("smtp.mailfrom", "") if spf else "")
    restored = None
    if (dmarc and dmarc.result == "fail") or (dkim and dkim.result == "fail") or (spf and spf.result == "fail"):
        arc = auth.get("arc")
        restored = arc_restores_pass(parsed.arc, arc.result if arc else None, parsed.from_domain, policy.arc_sealers)
    published = dmarc_policy(dmarc.props, parsed.from_domain) if dmarc else "unknown"
    # a list's subject tag or footer breaks the author's signature; under an enforcing policy that still
    # counts (a domain publishing p=reject says no list may carry its mail unchanged)
    list_explains = listed is not None and published not in ENFORCED
    explained: list[str] = []
    for method, result in auth.items():
        name = _AUTH_SIGNALS.get((method, result.result))
        if not name:
            continue
        value, evidence = 1.0, result.evidence
        if name == "DMARC_FAIL":
            evidence = f"{evidence} (published policy: {published})"
            if restored or list_explains:
                explained.append(name)
                continue
            if published not in ENFORCED:
                name = "DMARC_FAIL_POLICY_NONE"
        elif name in ("DKIM_FAIL", "COMPAUTH_FAIL") and (restored or list_explains):
            explained.append(name)
            continue
        elif name in ("SPF_FAIL", "SPF_SOFTFAIL") and restored:  # a forwarder's address, checked against the author's SPF
            explained.append(name)
            continue
        if name == "COMPAUTH_FAIL":
            value = compauth_strength(result.props.get("reason", ""))
        hits.add(name, evidence, value)
    if restored:
        hits.add("ARC_TRUSTED_PASS", restored + (f"; not weighed: {', '.join(explained)}" if explained else ""))
    if listed:
        hits.add("LIST_DELIVERY", f"list {listed.list_id} ({listed.how}); From domain's DMARC policy: {published}"
                 + (f"; not weighed: {', '.join(explained)}" if explained and not restored else ""))
    failed = any(auth.get(m) and auth[m].result == "fail" for m in ("dmarc", "spf", "compauth"))
    if failed and not (restored or list_explains) and _sender_domain(parsed) in policy.domain_set:
        hits.add("OWN_DOMAIN_SPOOF", f"From {parsed.from_address} (a tenant domain) failed authentication")
    for name, value, evidence in receiver_verdicts(parsed.verdict_headers):
        hits.add(name, evidence, value)
    return listed


def _display_brand(name: str) -> str | None:
    skel = skeleton(name)
    words = set(_WORD.findall(skel))
    for brand in words & _SINGLE_WORD_BRANDS:
        return brand
    compact = " ".join(_WORD.findall(skel))
    for phrase, brand in _MULTIWORD_BRANDS.items():
        if phrase in compact or brand in words:
            return brand
    if len(words) == 1:  # the display name is just the brand ("Apple", "UPS")
        (only,) = words
        if only in BRANDS:
            return only
    return None


class Author(NamedTuple):
    """Who the message says wrote it: From, or the author a mailing list moved out of From."""
    name: str
    address: str
    host: str
    domain: str  # registered domain of host


_VIA_LIST = re.compile(r"\s+via\s+\S.*$", re.IGNORECASE | re.DOTALL)


def author_of(parsed: ParsedMessage, listed: ListDelivery | None) -> Author:
    """From, unless a list that delivered the message rewrote From to its own address to keep DMARC
    ("Jane Roe via Dev" <dev@lists.example>, Mailman's and Google Groups' way for p=reject senders): then the
    name without " via Dev", and the author's address from X-Original-From or the Reply-To the list set.
    The identity checks read the author; a list's own address in From names nobody."""
    host = parsed.from_domain or ""
    if listed is not None and host and registered_domain(host) == listed.list_domain:
        via = _VIA_LIST.search(parsed.from_name or "")
        if via:
            address = parsed.original_from or next((a for a in parsed.reply_to if registered_domain(
                address_host(a)) not in ("", listed.list_domain)), "")
            name = parsed.from_name[:via.start()].strip().strip("'\"")
            if address:
                author_host = address_host(address)
                return Author(name, address, author_host, registered_domain(author_host))
            return Author(name, parsed.from_address, host, registered_domain(host))
    return Author(parsed.from_name or "", parsed.from_address, host, registered_domain(host) if host else "")


def _identity(parsed: ParsedMessage, policy: TenantPolicy, hits: _Hits, listed: ListDelivery | None,
              author: Author) -> None:
    sender_dom = author.domain
    name = author.name
    if name and author.address:
        key = " ".join(name.casefold().split())
        is_vip = key in policy.vip_keys or any(vip in key for vip in policy.vip_keys if len(vip) >= 6)
        if is_vip and sender_dom not in policy.domain_set:
            hits.add("VIP_IMPERSONATION", f"display name {name!r} from outside domain {sender_dom}")
        brand = _display_brand(name)
        if brand and sender_dom and sender_dom not in BRANDS[brand] and sender_dom not in policy.domain_set:
            legit = policy.extra_brands.get(brand, ())
            if sender_dom not in legit:
                hits.add("BRAND_IMPERSONATION", f"display name {name!r} names {brand} but mail is from {sender_dom}")
        m = _EMAIL_IN_NAME.search(name)
        if m:
            shown = registered_domain(m.group(1).lower())
            if shown and shown != sender_dom:
                hits.add("FROMNAME_SPOOF", f"display name shows {m.group(0)!r}, sender is {author.address}")
    if sender_dom and "BRAND_IMPERSONATION" not in hits.names() and sender_dom not in policy.domain_set:
        brand = subject_brand(parsed.subject or "", sender_dom)
        if brand and sender_dom not in policy.extra_brands.get(brand, ()):
            hits.add("BRAND_IN_SUBJECT", f"subject names {brand}, mail is from {sender_dom}")
    # Reply-To is read against From as shown, not the author: read against the author (a rewritten post's
    # Reply-To is its author, no diversion), the fit of session 10 caught fewer held-out lures (82.3% against 84.1%)
    sender_dom = _sender_domain(parsed)
    if parsed.reply_to and sender_dom:
        # a list that sets Reply-To to itself diverts nothing
        others = sorted({registered_domain(address_host(a)) for a in parsed.reply_to} - {
            sender_dom, "", listed.list_domain if listed else ""})
        if others:
            # (not when a list moved the author out of From: its own From claims no company, the author's address
            # in Reply-To is the Mailman/Google Groups rewrite, whatever mailbox the author uses)
            rewritten = author.address.casefold() != (parsed.from_address or "").casefold()
            if any(d in FREEMAIL_DOMAINS for d in others) and sender_dom not in FREEMAIL_DOMAINS and not rewritten:
                # replies diverted from a company domain to a personal mailbox: the BEC pattern
                hits.add("REPLYTO_FREEMAIL", f"Reply-To {', '.join(others)} (free mail) for From {sender_dom}")
            else:
                hits.add("REPLYTO_MISMATCH", f"Reply-To {', '.join(others)} differs from From {sender_dom}")
    if parsed.return_path and sender_dom and listed is None:  # a list's envelope sender is the list's own
        rp = registered_domain(address_host(parsed.return_path))
        if rp and rp != sender_dom:
            hits.add("RETURNPATH_MISMATCH", f"Return-Path {rp} differs from From {sender_dom}")


def _lookalikes(parsed: ParsedMessage, policy: TenantPolicy, hits: _Hits) -> None:
    evidence: list[str] = []
    value = 0.0
    tenant_evidence: list[str] = []
    tenant_value = 0.0
    punycode: list[str] = []
    checked: set[str] = set()
    sender_hosts = [parsed.from_domain] if parsed.from_domain else []
    # replies diverted to a look-alike of the tenant's own domain ("examp1e.com") are the BEC pattern
    reply_hosts = [h for h in (address_host(a) for a in parsed.reply_to[:5]) if h]
    link_hosts = [link.host for link in parsed.links]
    for role, hosts in (("sender", sender_hosts), ("reply-to", reply_hosts), ("link", link_hosts)):
        for host in hosts:
            if not host or host in checked or is_ip_host(host):
                continue
            checked.add(host)
            found = tenant_lookalike(host, policy.domain_set)
            if found is None and role != "reply-to":  # a reply address on a brand-ish free-mail domain
                found = brand_lookalike(host)  # ("email.de" vs ymail) is ordinary; the tenant's is not
            if found and not (found.how == "embedded" and role == "link" and not _trusted_brand_context(
                    parsed, found)):
                if registered_domain(host) in policy.domain_set:
                    continue
                line = f"{role} {unicode_host(host)} imitates {found.target} ({found.how})"
                if found.target in policy.domain_set:
                    tenant_evidence.append(line)
                    tenant_value = max(tenant_value, 1.0 if role == "link" else 2.0)
                else:
                    evidence.append(line)
                    value = max(value, 1.0 if role == "link" else 2.0)
            elif "xn--" in host:
                punycode.append(unicode_host(host))
            if len(evidence) + len(tenant_evidence) >= 3 or len(checked) >= 60:
                break
    if tenant_evidence:
        hits.add("TENANT_LOOKALIKE_DOMAIN", "; ".join(tenant_evidence), tenant_value)
    if evidence:
        hits.add("LOOKALIKE_DOMAIN", "; ".join(evidence), value)
    if punycode:
        hits.add("PUNYCODE_DOMAIN", ", ".join(punycode[:3]))
    sender = [parsed.from_domain] if parsed.from_domain else []
    tlds = abused_tld(sender + link_hosts[:60])
    if tlds:
        hits.add("SUSPICIOUS_TLD", ", ".join(tlds[:3]))


_TLD_LABEL = re.compile(r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")


def _both_real_hosts(shown_host: str, target_host: str) -> bool:
    """A mismatch needs two places on the internet: the text a host under a public suffix (not a file name,
    'gain30.75.webm'), the link an IP or a host whose last label can be a top-level domain (not a list
    archive's mangled 'lists.ettus.noclick_com'). The link's test is the looser: a lure on a top-level domain
    newer than the bundled suffix list must still count."""
    return has_public_suffix(shown_host) and (
        is_ip_host(target_host) or bool(_TLD_LABEL.fullmatch(target_host.rsplit(".", 1)[-1])))


def _trusted_brand_context(parsed: ParsedMessage, found: object) -> bool:
    # A link host embedding a brand (brand-support.example) only counts when the message also talks
    # about that brand: many legitimate resellers and partners embed brand names in their domains.
    target = getattr(found, "target", "").split(".")[0].split(" ")[0]
    context = (parsed.subject or "").lower() + " " + parsed.from_name.lower() + " " + parsed.text[:2000].lower()
    return bool(target) and target in context


def _brand_sender_foreign_links(parsed: ParsedMessage, author: Author, listed: ListDelivery | None,
                                hits: _Hits) -> None:
    """Mail from a brand's own domain ("Banco Santander <noreply@santander.es>") that no signature of
    that domain vouches for, whose links all lead off the brand to one unrelated site: the spoofed
    bank or carrier notice. A brand's real mail links to its own domains or is signed by them (and a
    receiver's DMARC pass vouches for it too)."""
    sender_dom = author.domain
    sender_brands = _BRAND_OF_DOMAIN.get(sender_dom, frozenset())
    government = not sender_brands and bool(_GOVERNMENT_HOST.search(author.host))
    if government:
        sender_brands = frozenset({"a government body"})
    if not sender_brands or not parsed.links or sender_dom in FREEMAIL_DOMAINS:
        return  # a person's gmail.com address links wherever the person likes
    if _vouched_for(parsed, sender_dom):
        return
    if parsed.list_headers and any(registered_domain(d) == sender_dom for d in parsed.dkim_signers):
        return  # the brand signed it and a list's footer broke the signature: an employee's post, not a spoof
    local = author.address.rpartition("@")[0].lower()
    if government:
        if not _ROLE_SENDER.match(local) and (not author.name or _names_themselves(author.name, local)):
            return  # a civil servant ("Ryan, Shane" <shane_ryan@education.gov.ie>) posting to a list, unsigned in 2002
    elif _display_brand(author.name) not in sender_brands and not _ROLE_SENDER.match(local):
        return  # a person at the brand ("jane@adobe.com") links wherever the conversation goes; the brand itself does not
    owned = _owned_by(sender_brands, sender_dom)
    targets = _link_targets(parsed, listed)
    if targets and targets.isdisjoint(owned) and len(targets) <= 3:
        hits.add("BRAND_SENDER_FOREIGN_LINKS", f"From {sender_dom} ({', '.join(sorted(sender_brands))}), unsigned, "
                 f"links only to {', '.join(sorted(targets))}")


# Government domains, which tax-office and court lures put in From ("Administracion Tributaria"
# <impuestos@hacienda.gob.es>): gov/gob/gouv/go/govt/gv/gub/jus/mil under a country code, the US's .gov and .mil,
# and the federal domains of Canada, the EU, Switzerland and Germany.
_GOVERNMENT_HOST = re.compile(
    r"(?:^|\.)(?:(?:gov|gob|gouv|govt|go|gv|gub|jus|mil)\.[a-z]{2}|gov|mil|gc\.ca|europa\.eu|admin\.ch|bund\.de)$")

# Platforms whose own signed notifications carry other people's words and links: shared files and forms, invoices
# and money requests, signature envelopes, messages, bookings. Their real mail is how a lure passes
# authentication (a PayPal invoice with a callback number, a DocuSign envelope, a SharePoint share), so their
# signature vouches for nothing their words say.
_RELAYS_OTHERS_WORDS = frozenset({
    "microsoft", "office365", "outlook", "onedrive", "sharepoint", "google", "gmail", "yahoo", "paypal", "stripe",
    "intuit", "quickbooks", "docusign", "adobe", "dropbox", "wetransfer", "salesforce", "zoom", "slack", "linkedin",
    "facebook", "instagram", "whatsapp", "ebay", "booking", "airbnb", "steam", "mercadopago", "mercadolibre",
    "mercadolivre"})
# What a brand's own signed mail is not judged on: its words (a real password reset reads like its imitation).
_WORDING_SIGNALS = frozenset({"CREDENTIAL_PHISH_LANGUAGE", "BEC_PAYMENT_LANGUAGE", "DELIVERY_LURE_LANGUAGE",
                              "CONTENT_UNWANTED"})


def _brand_own_signed_mail(parsed: ParsedMessage, author: Author, listed: ListDelivery | None) -> str | None:
    """Why the message is a well-known brand's own mail, or None: From the brand's own domain, signed by that
    domain (an aligned DKIM pass, or DMARC pass), with links only to the brand's own domains. A lure can copy a
    password reset word for word, but not the brand's signature, and a link to the brand's own site leads no
    one astray. Platforms that relay other people's words (_RELAYS_OTHERS_WORDS) and free mail are left out."""
    sender_dom = author.domain
    brands = _BRAND_OF_DOMAIN.get(sender_dom, frozenset())
    if not brands or sender_dom in FREEMAIL_DOMAINS or not brands.isdisjoint(_RELAYS_OTHERS_WORDS):
        return None
    how = _vouched_for(parsed, sender_dom)
    if not how:
        return None
    owned = _owned_by(brands, sender_dom)
    targets = _link_targets(parsed, listed)
    if not targets <= owned:
        return None
    where = f"every link to {', '.join(sorted(targets))}" if targets else "no links"
    return f"From {sender_dom} ({', '.join(sorted(brands))}), {how} pass for it, {where}"


def _vouched_for(parsed: ParsedMessage, domain: str) -> str | None:
    """"DKIM" when a passing signature is the domain's own (aligned), "DMARC" when DMARC passed, else None."""
    if any(registered_domain(d) == domain for d in parsed.dkim_pass_domains):
        return "DKIM"
    dmarc = parsed.auth.get("dmarc")
    return "DMARC" if dmarc and dmarc.result == "pass" else None


def _owned_by(brands: frozenset[str], sender_dom: str) -> frozenset[str]:
    """The registered domains of the brands (none for a government body) and the sender's own."""
    return frozenset().union(*(BRANDS.get(b, ()) for b in brands)) | {sender_dom}


def _names_themselves(name: str, local: str) -> bool:
    """Whether every word of the display name is in the address's local part: a person under their own name."""
    words = _NAME_WORD.findall(name.casefold())
    return bool(words) and all(w in local for w in words)


_NAME_WORD = re.compile(r"[^\W\d_]{2,}")


def _link_targets(parsed: ParsedMessage, listed: ListDelivery | None) -> set[str]:
    """The registered domains the message's links lead to, without template plumbing and, when a list really
    delivered the message, the list's own (a List-Post header alone anyone can write: naming the lure's
    domain there took its links out of the brand checks)."""
    list_domain = listed.list_domain if listed else ""
    return {link.domain for link in parsed.links if link.domain and link.domain != list_domain
            and link.domain not in _LINK_INFRASTRUCTURE}


def _brand_name_links_elsewhere(parsed: ParsedMessage, author: Author, listed: ListDelivery | None,
                                hits: _Hits) -> None:
    """A display name naming a brand from a domain the brand does not own (BRAND_IMPERSONATION), whose links
    all go to one to three domains that are neither the brand's nor the sender's own: "DHL Express"
    <internet@lensmedia.example> linking to loyalfilings.example. A reseller or partner naming the brand links
    to its own site."""
    if "BRAND_IMPERSONATION" not in hits.names():
        return
    brand = _display_brand(author.name)
    if not brand:
        return
    targets = _link_targets(parsed, listed)
    if targets and len(targets) <= 3 and targets.isdisjoint(BRANDS[brand] | {author.domain}):
        hits.add("BRAND_NAME_LINKS_ELSEWHERE", f"display name names {brand}, links only to {', '.join(sorted(targets))}")


# The addresses a company's automated mail comes from, not a person's.
_ROLE_SENDER = re.compile(r"(?:no-?reply|do-?not-?reply|notifica\w*|alert\w*|info|service\w*|support|account\w*|"
                          r"security|billing|factura\w*|facturacion|invoice\w*|news\w*|mailer|avisos?|"
                          r"devoluci\w*|contato|contacto|atendimento|cliente\w*)(?:[._+-]?\w*)?$")
# Where ordinary mail's links go besides the sender's own site: schema and image hosts of HTML templates.
_LINK_INFRASTRUCTURE = frozenset({"w3.org", "schema.org", "gstatic.com", "googleapis.com", "xmlsoap.org"})


def _machine_sender(author: Author, hits: _Hits) -> None:
    why = machine_host(author.host)
    if why:
        hits.add("SENDER_MACHINE_HOST", f"From {author.address}: {why}")


def _links(parsed: ParsedMessage, policy: TenantPolicy, hits: _Hits,
           indicator_hits: Mapping[str, str]) -> None:
    if indicator_hits:
        listed = sorted(indicator_hits.items())
        feeds = {feed for _, feed in listed}
        category = MALWARE if "urlhaus" in feeds else PHISHING
        ev = "; ".join(f"{ind} ({feed})" for ind, feed in listed[:3])
        hits.add("URL_IN_THREAT_FEED", ev, category=category)
    mismatch: list[str] = []
    brand_text: list[str] = []  # mismatches whose text shows a well-known brand's own domain
    ips: list[str] = []
    shorteners: list[str] = []
    file_hosts: list[str] = []
    site_hosts: list[str] = []
    machine_hosts: list[str] = []
    obfuscated: list[str] = []
    ipfs: list[str] = []
    # X's own mail links through t.co, LinkedIn's through lnkd.in: a brand's shortener in its own mail hides nothing
    sender_brands = _BRAND_OF_DOMAIN.get(_sender_domain(parsed), frozenset())
    replying = _replies(parsed)
    for link in parsed.links:
        if link.source == "quoted" and replying:
            continue  # the earlier author's link, quoted back (a syzbot report's goo.gl and appspot links)
        if link.text and _DOMAIN_TEXT.match(link.text) and not looks_like_file_name(link.text):
            shown_host = link.text.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].split(":", 1)[0].lower()
            shown = registered_domain(shown_host)
            target = link.domain
            inner = rewritten_target(link.url, link.host, link.domain)
            if inner is not None:  # a gateway's rewrite: compare with where it really leads
                target = registered_domain(inner) if inner else shown
            # (last: a quoted reply shows the gateway's own rewritten link, nam10.safelinks.protection.outlook.com/?url=...)
            if shown != target and target and "." in shown and domain_label(shown_host) \
                    and shown not in LINK_REWRITERS and _both_real_hosts(shown_host, link.host) \
                    and rewritten_target(link.text, shown_host, shown) is None:
                mismatch.append(f"text {shown} -> {target}")
                owners = _BRAND_OF_DOMAIN.get(shown)
                if owners and not any(target in BRANDS[b] for b in owners):
                    brand_text.append(f"text {shown} ({', '.join(sorted(owners))}) -> {target}")
        if link.hidden_host:
            obfuscated.append(link.hidden_host)
        if ipfs_link(link.url, link.host, link.domain):
            ipfs.append(link.host)
        if is_ip_host(link.host) and not is_internal_ip(link.host):
            ips.append(link.host)
        elif link.domain in URL_SHORTENERS and sender_brands.isdisjoint(_BRAND_OF_DOMAIN.get(link.domain, ())):
            shorteners.append(link.url)
        elif link.host in FREE_SITE_HOSTS_BY_HOST or link.domain in FREE_SITE_HOSTS or link.host.endswith(
                FREE_SITE_HOST_ZONES):
            site_hosts.append(link.host)
        elif link.host in FREE_FILE_HOSTS_BY_HOST or link.domain in FREE_FILE_HOSTS:
            file_hosts.append(link.host)
        elif link.domain in DYNAMIC_DNS_DOMAINS or link.host.endswith(CLOUD_MACHINE_HOST_SUFFIXES):
            machine_hosts.append(link.host)
    if mismatch:
        hits.add("LINK_TEXT_MISMATCH", "; ".join(mismatch[:3]))
    if brand_text:
        # the classic bank and payment lure: "https://www.paypal.com/signin" on a link to somewhere else
        hits.add("BRAND_LINK_TEXT_MISMATCH", "; ".join(brand_text[:3]))
    if ips:
        hits.add("IP_URL", ", ".join(sorted(set(ips))[:3]))
    if shorteners:
        hits.add("URL_SHORTENER", ", ".join(sorted(set(shorteners))[:3]))
    if file_hosts:
        hits.add("FREE_FILE_HOST", ", ".join(sorted(set(file_hosts))[:3]))
    if site_hosts:
        hits.add("FREE_SITE_HOST", ", ".join(sorted(set(site_hosts))[:3]))
    if machine_hosts:
        hits.add("CLOUD_MACHINE_LINK", ", ".join(sorted(set(machine_hosts))[:3]))
    if obfuscated:
        hits.add("OBFUSCATED_URL_HOST", ", ".join(sorted(set(obfuscated))[:3]))
    if ipfs:
        hits.add("IPFS_LINK", ", ".join(sorted(set(ipfs))[:3]))
    if parsed.html:
        js = javascript_links(parsed.html)
        if js:
            hits.add("JAVASCRIPT_LINK", f"{js} javascript: link(s) in the HTML body")
        form = body_form(parsed.html)
        if form:
            hits.add("CREDENTIAL_FORM", f"{form} in the HTML body")


def _ext(name: str) -> str:
    base = name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].strip().rstrip(".").lower()
    return base.rsplit(".", 1)[-1] if "." in base else ""


def _attachments(parsed: ParsedMessage, hits: _Hits) -> None:
    executables: list[str] = []
    macros: list[str] = []
    doubles: list[str] = []
    smuggling: list[str] = []
    forms: list[str] = []
    encrypted: list[str] = []
    html_files: list[str] = []
    redirects: list[str] = []
    for att in parsed.attachments:
        label = att.filename or f"<unnamed {att.declared_type}>"
        names = [(att.filename, label)] + [(m, f"{label}!{m}") for m in att.members]
        for name, shown in names:
            ext = _ext(name)
            if ext in DANGEROUS_EXTENSIONS:
                executables.append(shown)
            elif ext in MACRO_EXTENSIONS:
                macros.append(shown)
            clean = name.replace("\u202e", "")
            if clean != name:
                doubles.append(f"{shown} (right-to-left override)")
            else:
                m = _DOUBLE_EXT.search(name.strip())
                if m and (m.group(2).lower() in DANGEROUS_EXTENSIONS or m.group(2).lower() in MACRO_EXTENSIONS):
                    doubles.append(shown)
        if att.sniffed_type in DANGEROUS_SNIFFED and _ext(att.filename) not in DANGEROUS_EXTENSIONS:
            executables.append(f"{label} (content is {att.sniffed_type})")
        if att.has_macro and label not in macros:
            macros.append(f"{label} (VBA project inside)")
        if att.encrypted:
            encrypted.append(label)
        if att.html_script:
            smuggling.append(label)
        if att.html_form:
            forms.append(label)
        if att.html_redirect:
            redirects.append(f"{label} -> {att.html_redirect[:80]}")
        if is_html_attachment(att.filename, att.declared_type, att.sniffed_type):
            html_files.append(label)
    if executables:
        hits.add("EXECUTABLE_ATTACHMENT", ", ".join(executables[:3]))
    if macros:
        hits.add("MACRO_OFFICE", ", ".join(macros[:3]))
    if doubles:
        hits.add("DOUBLE_EXTENSION", ", ".join(doubles[:3]))
    if smuggling:
        hits.add("HTML_SMUGGLING", ", ".join(smuggling[:3]) + ": script decodes or redirects")
    if forms:
        hits.add("HTML_CREDENTIAL_FORM", ", ".join(forms[:3]) + ": HTML form asking for a password")
    if html_files:
        hits.add("HTML_ATTACHMENT", ", ".join(html_files[:3]))
    if redirects:
        hits.add("HTML_ATTACHMENT_REDIRECT", "; ".join(redirects[:3]))
    if encrypted:
        hits.add("ENCRYPTED_ARCHIVE", ", ".join(encrypted[:3]) + ": password-protected, content not scannable")


def _language(parsed: ParsedMessage, policy: TenantPolicy, text: str, present: frozenset[str], hits: _Hits) -> None:
    sender_dom = _sender_domain(parsed)
    if GTUBE in text:
        hits.add("GTUBE", "GTUBE test string")
    cred = _phrases(_CREDENTIAL, text, present)
    if cred:
        hits.add("CREDENTIAL_PHISH_LANGUAGE", ", ".join(cred), min(len(cred), 3))
        brand = body_brand(text[:BRAND_BODY_CHARS], sender_dom)
        if brand and sender_dom not in BRANDS[brand] and sender_dom not in policy.domain_set:
            # "Dear PayPal member, verify your account" from a domain PayPal does not own
            hits.add("BRAND_CREDENTIAL_LURE", f"names {brand} and asks for credentials, mail is from {sender_dom}")
    bec = _phrases(_BEC, text, present)
    if bec:
        hits.add("BEC_PAYMENT_LANGUAGE", ", ".join(bec), min(len(bec), 3))
    if (len(bec) >= 2 or len(cred) >= 2) and sender_dom in FREEMAIL_DOMAINS:
        # business requests about money or credentials rarely come from a personal free-mail account
        hits.add("FREEMAIL_SENDER", f"{sender_dom} account making a payment or credential request")
    delivery = _phrases(_DELIVERY, text, present)
    if len(delivery) >= 2:  # one is a receipt's shipping charge or a real notice's missed delivery
        hits.add("DELIVERY_LURE_LANGUAGE", ", ".join(delivery))
    spam = _phrases(_SPAMMY, text, present)
    if spam:
        hits.add("SPAM_LANGUAGE", ", ".join(spam), min(len(spam), 4))


def _obfuscated_words(text: str) -> list[str]:
    """Words broken up by invisible characters, then words mixing scripts, in the order found."""
    found: list[str] = []
    if not _OBFUSCATION_CHARS.search(text):  # one scan: most mail, accented and CJK too, has neither
        return found
    for m in _BROKEN_WORD.finditer(text) if _INVISIBLE_SEARCH.search(text) else ():
        word = m.group(0)
        # a soft hyphen alone is how newsletters hyphenate ("Verant\u00adwortung"); kits break every letter or two
        if not _ZERO_WIDTH.isdisjoint(word) or min(map(len, word.split("\u00ad"))) <= 1:
            found.append(word)
    seen_end = -1
    for m in _SCRIPT_SWITCH.finditer(text) if _FOREIGN_SEARCH.search(text) else ():
        if m.start() < seen_end:
            continue  # another switch inside a word already counted
        start, end = m.start(), m.end()
        while start > 0 and text[start - 1].isalnum():
            start -= 1
        while end < len(text) and text[end].isalnum():
            end += 1
        seen_end = end
        found.append(text[start:end])
    return found


def _obfuscation(text: str, hits: _Hits) -> None:
    """`text`: the subject and the start of the body as sent (before _fold drops invisible characters)."""
    if text.isascii():
        return
    found = _obfuscated_words(text)
    if len(found) >= MIN_OBFUSCATED_WORDS:
        shown = ", ".join(ascii(word) for word in found[:3])
        hits.add("TEXT_OBFUSCATION", f"{len(found)} words broken up or mixing scripts: {shown}")


def _recipient_domain_in_sender_name(parsed: ParsedMessage, policy: TenantPolicy, hits: _Hits, author: Author) -> None:
    """"Webmail acme.com", "cPanel on acme.com", "acme.com IT Support" from another domain: the lure
    poses as the recipient's own mail system. Tenant domains and the To/Cc addresses' domains count as
    the recipient's; free-mail domains do not (anyone's "gmail.com" is nobody's mail system)."""
    sender_dom = author.domain
    name = author.name.casefold()
    if not sender_dom or not name or "." not in name:
        return
    # most display names have no dot: To and Cc are parsed only for the rest
    recipient_domains = set(policy.domain_set)
    recipient_domains.update(registered_domain(address_host(a)) for a in parsed.to[:20])
    for domain in sorted(recipient_domains - {sender_dom, ""} - FREEMAIL_DOMAINS):
        # the domain or a subdomain of it, not the tail of another name ("Dropbox.com" does not name box.com);
        # glued to a word after it is still a claim ("lists.sourceforge.netIT", seen in lures)
        if "." in domain and domain_label(domain) and re.search(rf"(?<![^\W_]){re.escape(domain)}", name):
            hits.add("RECIPIENT_DOMAIN_IN_SENDER_NAME",
                     f"display name {parsed.from_name!r} names the recipient's domain {domain}, mail is from {sender_dom}")
            return


def _recipient_in_subject(parsed: ParsedMessage, hits: _Hits) -> None:
    subject = parsed.subject or ""
    if "@" not in subject:  # most subjects: To and Cc are not even parsed
        return
    folded = subject.casefold()
    shown = next((a for a in parsed.to if "@" in a and a.casefold() in folded), None)
    if shown:
        hits.add("RECIPIENT_IN_SUBJECT", f"subject shows the recipient's address {shown}")


# Reply prefixes of the common mail clients' languages (English, German, Nordic, Portuguese, Dutch, Finnish,
# Italian); forwards are left out: a forwarded message has no In-Reply-To either.
_REPLY_SUBJECT = re.compile(r"^\s*(?:re|aw|sv|res|antw|vs|r)\s*(?:\[\d{1,3}\])?\s*:", re.IGNORECASE)


def _in_thread(parsed: ParsedMessage) -> bool:
    """Whether a header names the message it answers (In-Reply-To, or Outlook's Thread-Index)."""
    return bool(parsed.in_reply_to.strip() or parsed.thread_index)


def _replies(parsed: ParsedMessage) -> bool:
    """Whether the message presents itself as a reply (a header names the earlier message, or a subject prefix)."""
    return _in_thread(parsed) or bool(_REPLY_SUBJECT.match(parsed.subject or ""))


def _quotes_earlier_message(parsed: ParsedMessage) -> bool:
    """Two or more quoted lines ("> ") in the text: one is as easily a lure's own formatting."""
    found = QUOTED_LINE.finditer(parsed.text)
    return next(found, None) is not None and next(found, None) is not None


def _fake_reply(parsed: ParsedMessage, hits: _Hits) -> None:
    subject = parsed.subject or ""
    # Mail clients of 2002 (and some webmail) sent replies without In-Reply-To; they quoted the message they
    # answered. No lure or spam of the corpus quotes "> " lines under its fake "Re:" (124 of 182 such list
    # replies do).
    if _REPLY_SUBJECT.match(subject) and not _in_thread(parsed) and not _quotes_earlier_message(parsed):
        hits.add("FAKE_REPLY", f"subject {subject[:80]!r} replies to no earlier message")


# An element styled invisible (zero font size, display:none, visibility:hidden) and the text right inside it.
_HIDDEN_ELEMENT = re.compile(
    r"""<(?:span|div|p|font|td|a|b|i)\b[^>]{0,300}?style\s*=\s*["'][^"']{0,300}?"""
    r"""(?:font-size\s*:\s*0(?:\.0+)?(?:px|pt|em|rem|%)?\s*(?:;|!|["'])|display\s*:\s*none|visibility\s*:\s*hidden)"""
    r"""[^>]{0,300}>([^<]{0,200})""", re.IGNORECASE)
MAX_HIDDEN_SCANNED = 60
_HIDDEN_ADDRESS = re.compile(r"https?://|\bwww\.[a-z0-9-]+\.", re.IGNORECASE)


def _hidden_text(parsed: ParsedMessage, hits: _Hits) -> None:
    """Zero-font and display:none text in three or more places. One hidden preheader (a newsletter's preview
    line) is ordinary; a template's zero-size table cells hold no text."""
    html = parsed.html
    if not html or ("font-size" not in html and "display" not in html and "visibility" not in html):
        return
    found = []
    addresses = []
    for i, m in enumerate(_HIDDEN_ELEMENT.finditer(html)):
        if i == MAX_HIDDEN_SCANNED:
            break
        text = " ".join(m.group(1).split())
        if sum(ch.isalnum() for ch in text) >= 2:
            found.append(text[:30])
            if _HIDDEN_ADDRESS.search(text):
                addresses.append(text[:60])
    if addresses:
        # a web address nobody sees is written for the link scanners: a decoy of a real site ("www.nfe.fazenda.gov.br")
        hits.add("HIDDEN_URL_TEXT", f"web address hidden from the reader: {addresses[0]!r}")
    if len(found) >= 3:
        hits.add("HIDDEN_TEXT", f"{len(found)} hidden text runs: " + ", ".join(repr(t) for t in found[:4]))


def message_tokens(parsed: ParsedMessage, body: str | None = None) -> set[str]:
    """The content model's tokens of a message (`make features` stores them; the fit learns from them).
    `body`: the text already casefolded and cleared of invisible characters, when the caller has it."""
    if body is None:  # the same text collect_signals reads (casefolding can lengthen it: cut before, not after)
        body = _fold(parsed.text[:MAX_LANGUAGE_CHARS])
    recipients = " ".join(str(h) for h in parsed.to_headers)
    return content_tokens(parsed.subject, body, recipients)


def _content(parsed: ParsedMessage, body: str, hits: _Hits) -> None:
    found = content_model().reason(message_tokens(parsed, body))
    if found:
        name, value, evidence = found
        hits.add(name, evidence, value)


def _qr_codes(parsed: ParsedMessage, text: str, present: frozenset[str], hits: _Hits) -> None:
    """A QR code in an image or PDF that leads to a URL (the URL itself went through the link checks
    with the others). Stronger with credential, MFA or "scan the code" language, and when the code is
    the message's only link: the lure's whole point is to keep the link away from URL scanning."""
    if not parsed.qr_codes:
        return
    qr_urls = {url for _, url in parsed.qr_codes}
    value = 1.0
    present = present | _QR_MFA_TRIGGERS.present(text)
    asks = (_phrases(_CREDENTIAL, text, present, _ALL_SEARCHED) + _phrases(_MFA, text, present, _ALL_SEARCHED)
            + _phrases(_QR, text, present, _ALL_SEARCHED))
    if asks:
        value += 1.0
    only_link = all(link.url in qr_urls for link in parsed.links)
    if only_link:
        value += 1.0
    where, url = parsed.qr_codes[0]
    extra = f" with {', '.join(asks)}" if asks else ""
    hits.add("QR_CODE_URL", f"QR code in {where} -> {url}{extra}{'; the only link' if only_link else ''}", value)


def _new_link_domains(parsed: ParsedMessage, new_domains: Mapping[str, float], hits: _Hits) -> None:
    """Link domains this deployment first saw a short while ago (the pipeline's link-domain history
    decides which: the engine does no I/O). Phishing sites live for hours to days."""
    if not new_domains:
        return
    found = sorted({link.domain for link in parsed.links if link.domain in new_domains})
    if found:
        hits.add("NEW_LINK_DOMAIN", "; ".join(f"{d} first seen {new_domains[d]:.1f} h ago" for d in found[:3]))


def _qr_lure(parsed: ParsedMessage, text: str, present: frozenset[str], hits: _Hits) -> None:
    # QR-code phishing ("quishing") puts the link in an image, out of reach of URL scanning: a message
    # that asks to scan a code, carries an image or PDF, and has few clickable links is the pattern.
    scannable = parsed.image_count > 0 or any(a.sniffed_type == "application/pdf" for a in parsed.attachments)
    if not scannable or parsed.qr_codes or len(parsed.links) > 3:
        return
    present = present | _QR_MFA_TRIGGERS.present(text)
    found = _phrases(_QR, text, present, _ALL_SEARCHED)
    if found:
        value = 2.0 if _phrases(_CREDENTIAL, text, present, _ALL_SEARCHED) or _phrases(
            _BEC, text, present, _ALL_SEARCHED) else 1.0
        hits.add(QR_CODE_LURE, f"asks to scan a code in an image ({parsed.image_count} image(s), "
                 f"{len(parsed.links)} link(s))", value)


_BRANDED = frozenset({"BRAND_IMPERSONATION", "BRAND_IN_SUBJECT", "LOOKALIKE_DOMAIN", "TENANT_LOOKALIKE_DOMAIN",
                      "FROMNAME_SPOOF",
                      "BRAND_CREDENTIAL_LURE"})
# Brand claims from a domain that is not the brand's (a look-alike domain is already a deceptive link).
_BRAND_CLAIMS = frozenset({"BRAND_IMPERSONATION", "BRAND_IN_SUBJECT", "BRAND_CREDENTIAL_LURE", "FROMNAME_SPOOF"})
_DECEPTIVE_LINKS = frozenset({"LINK_TEXT_MISMATCH", "IP_URL", "URL_SHORTENER", "FREE_FILE_HOST", "FREE_SITE_HOST",
                              "JAVASCRIPT_LINK", "OBFUSCATED_URL_HOST", "IPFS_LINK", "CLOUD_MACHINE_LINK",
                              "HTML_ATTACHMENT_REDIRECT",
                              "CREDENTIAL_FORM", "HTML_CREDENTIAL_FORM", "SUSPICIOUS_TLD", "NEW_LINK_DOMAIN"})
# Signals counted as independent phishing evidence (the weak auth "none" results and the interactions
# themselves are not).
_COUNTED = frozenset(name for name, spec in CATALOG.items() if spec.category == PHISHING) - {
    "SPF_NONE", "DKIM_NONE", "DMARC_NONE", "COMPAUTH_SOFTPASS", "PUNYCODE_DOMAIN"} - {
    "AUTHFAIL_WITH_CREDENTIAL_ASK", "AUTHFAIL_WITH_BRAND", "CREDENTIAL_ASK_WITH_DECEPTIVE_LINK",
    "PAYMENT_ASK_FROM_UNVERIFIED", "SEVERAL_PHISH_SIGNALS", "BRAND_WITH_DECEPTIVE_LINK"}


def _interactions(hits: _Hits) -> None:
    """Evidence that means more together than apart: a logistic regression over sums alone cannot
    learn that DMARC failing matters more when the message also asks for a password."""
    present = hits.names()
    auth_failed = sorted(present & AUTH_FAILURES)
    if not auth_failed and present & SPF_NOT_PASSED and present & DKIM_NOT_PASSED:
        auth_failed = sorted(present & (SPF_NOT_PASSED | DKIM_NOT_PASSED))  # nothing authenticates the sender
    cred = "CREDENTIAL_PHISH_LANGUAGE" in present
    if auth_failed and cred:
        hits.add("AUTHFAIL_WITH_CREDENTIAL_ASK", f"{', '.join(auth_failed)} with credential language")
    branded = sorted(present & _BRANDED)
    if auth_failed and branded:
        hits.add("AUTHFAIL_WITH_BRAND", f"{', '.join(auth_failed)} with {', '.join(branded)}")
    deceptive = sorted(present & _DECEPTIVE_LINKS)
    if cred and deceptive:
        hits.add("CREDENTIAL_ASK_WITH_DECEPTIVE_LINK", f"credential language with {', '.join(deceptive)}")
    brand_claims = sorted(present & _BRAND_CLAIMS)
    if brand_claims and deceptive:
        # a brand named by a sender that is not the brand, and a link that hides where it goes: the
        # classic bank and payment lure, stronger than the sum of its parts
        hits.add("BRAND_WITH_DECEPTIVE_LINK", f"{', '.join(brand_claims)} with {', '.join(deceptive)}")
    diverted = sorted(present & {"REPLYTO_MISMATCH", "REPLYTO_FREEMAIL", "FREEMAIL_SENDER"})
    if "BEC_PAYMENT_LANGUAGE" in present and (auth_failed or diverted):
        unverified = auth_failed + diverted
        hits.add("PAYMENT_ASK_FROM_UNVERIFIED", f"payment language with {', '.join(unverified)}")
    counted = sorted(present & _COUNTED)
    if len(counted) >= 3:
        hits.add("SEVERAL_PHISH_SIGNALS", f"{len(counted)} signals: {', '.join(counted)}", min(len(counted) - 2, 3))


def _parents(host: str) -> set[str]:
    """A host and its parents of two labels or more (a block on a domain covers its subdomains)."""
    labels = (host or "").lower().split(".")
    return {".".join(labels[i:]) for i in range(len(labels) - 1)}


def _indicator_blocks(parsed: ParsedMessage, policy: TenantPolicy, sender_keys: set[str], hits: _Hits) -> bool:
    """A campaign's blocked indicators (store.indicator_blocks): BLOCKLISTED naming the block."""
    link_keys: set[str] = set()
    for link in parsed.links[:MAX_BLOCK_CHECK_LINKS]:
        link_keys |= _parents(link.host)
        if link.domain:
            link_keys.add(link.domain)
    hashes = {(a.sha256 or "").lower() for a in parsed.attachments} - {""}
    for block in policy.indicator_blocks:
        found = ((block.kind == "link_domain" and block.indicator in link_keys)
                 or (block.kind == "attachment_sha256" and block.indicator in hashes)
                 or (block.kind == "sender_domain" and block.indicator in sender_keys))
        if found:
            what = {"link_domain": "link domain", "attachment_sha256": "attachment SHA-256",
                    "sender_domain": "sender domain"}[block.kind]
            # a campaign the MSP judged a threat: argues phishing (a sender list entry is only the tenant's taste)
            hits.add("BLOCKLISTED", f"{what} {block.indicator} is blocked ({block.label()})", category=PHISHING)
            return True
    return False


MAX_BLOCK_CHECK_LINKS = 500


def _policy_lists(parsed: ParsedMessage, policy: TenantPolicy, hits: _Hits) -> bool:
    """Adds ALLOWLISTED/BLOCKLISTED; returns True when the sender is block-listed."""
    addr = parsed.from_address
    host = parsed.from_domain
    # A domain entry covers the domain and every subdomain (analysis/list_entries.py): the host and its
    # parents down to the registered domain, never a public suffix above it.
    keys = {addr, host, registered_domain(host)} - {""}
    if host and not is_ip_host(host):
        labels, stop = host.split("."), registered_domain(host)
        keys.update(p for p in (".".join(labels[i:]) for i in range(1, len(labels))) if p.endswith(stop))
    blocked = sorted(keys & policy.block_set)
    if blocked:
        hits.add("BLOCKLISTED", f"sender matches block list entry {blocked[0]}")
        return True
    if policy.indicator_blocks and _indicator_blocks(parsed, policy, _parents(host), hits):
        return True
    allowed = sorted(keys & policy.allow_set)
    if allowed:
        spoofed = any(parsed.auth.get(m) and parsed.auth[m].result == "fail" for m in ("dmarc", "spf", "compauth"))
        if spoofed:
            hits.add("ALLOWLIST_IGNORED", f"{allowed[0]} is allow-listed but failed authentication")
        else:
            hits.add("ALLOWLISTED", f"sender matches allow list entry {allowed[0]}", weight=policy.allow_weight)
    return False


# --- scoring --------------------------------------------------------------------------------------


def collect_signals(parsed: ParsedMessage, policy: TenantPolicy, indicator_hits: Mapping[str, str] | None = None,
                    *, experimental: frozenset[str] = frozenset(),
                    new_link_domains: Mapping[str, float] | None = None,
                    disabled: frozenset[str] = frozenset()) -> tuple[_Hits, bool]:
    """Every signal a message carries, with its value and evidence, and whether the sender is
    block-listed. `make fit` learns its weights from these. `new_link_domains` (registered domain ->
    hours since this deployment first saw it) comes from the pipeline's link-domain history; without
    one (the corpus, `swordfish analyze`) NEW_LINK_DOMAIN is simply absent. `disabled` holds detectors an
    operator switched off (CONTENT_MODEL: the content model's kill switch)."""
    hits = _Hits()
    blocked = False
    try:
        blocked = _policy_lists(parsed, policy, hits)
        listed = _auth(parsed, policy, hits)
        author = author_of(parsed, listed)
        _identity(parsed, policy, hits, listed, author)
        _machine_sender(author, hits)
        _lookalikes(parsed, policy, hits)
        _links(parsed, policy, hits, indicator_hits or {})
        _brand_sender_foreign_links(parsed, author, listed, hits)
        _brand_name_links_elsewhere(parsed, author, listed, hits)
        _attachments(parsed, hits)
        body = _fold(parsed.text[:MAX_LANGUAGE_CHARS])
        text = _fold(parsed.subject or "") + "\n" + body
        present = _LANGUAGE_TRIGGERS.present(text)
        _language(parsed, policy, text, present, hits)
        brand_own = _brand_own_signed_mail(parsed, author, listed)
        if brand_own:
            hits.add(BRAND_OWN_SIGNED_MAIL, brand_own + ": its wording is not weighed")
            hits.drop(_WORDING_SIGNALS)
        _obfuscation((parsed.subject or "")[:MAX_SUBJECT_CHARS] + "\n" + parsed.text[:MAX_LANGUAGE_CHARS], hits)
        _recipient_in_subject(parsed, hits)
        _recipient_domain_in_sender_name(parsed, policy, hits, author)
        _fake_reply(parsed, hits)
        _hidden_text(parsed, hits)
        if CONTENT_MODEL not in disabled and not brand_own:
            _content(parsed, body, hits)
        _qr_codes(parsed, text, present, hits)
        _new_link_domains(parsed, new_link_domains or {}, hits)
        if QR_CODE_LURE in experimental:
            _qr_lure(parsed, text, present, hits)
        _interactions(hits)
    except Exception as exc:  # noqa: BLE001 - a detector bug must still yield a verdict, and say so
        hits.add("ANALYSIS_ERROR", f"a detector failed: {type(exc).__name__}")
    _evasion_and_budget(parsed, hits)
    return hits, blocked


_TENANT_LISTS = frozenset({"ALLOWLISTED", "BLOCKLISTED", "ALLOWLIST_IGNORED"})


# Not examples for the fit: the tenant's lists, and what the work limits left out (weight 0, a note)
_NOT_FEATURES = _TENANT_LISTS | {"CONTENT_NOT_EXAMINED"}


def signal_values(hits: _Hits) -> dict[str, float]:
    """name -> value of every signal but the tenant's lists and the work limits' note: one example for
    `make fit` (which learns the weights of the learnable ones and scores the others with their priors)."""
    return {h.reason.name: h.value for h in hits if h.reason.name not in _NOT_FEATURES}


def score_message(parsed: ParsedMessage, policy: TenantPolicy, indicator_hits: Mapping[str, str] | None = None,
                  *, experimental: frozenset[str] = frozenset(),
                  new_link_domains: Mapping[str, float] | None = None,
                  disabled: frozenset[str] = frozenset()) -> Verdict:
    """Score a parsed message under a tenant policy. Pure and deterministic; never raises."""
    hits, blocked = collect_signals(parsed, policy, indicator_hits, experimental=experimental,
                                    new_link_domains=new_link_domains, disabled=disabled)
    return _verdict(parsed, policy, hits, blocked)


def _evasion_and_budget(parsed: ParsedMessage, hits: _Hits) -> None:
    problems = [p for p in parsed.parse_problems if p not in parsed.evasion and not p.startswith(BUDGET_PROBLEM)]
    if problems and not parsed.budget_exceeded:  # a parse stopped at the budget leaves defects of its own
        hits.add("MIME_PARSE_PROBLEM", "; ".join(problems[:3]))
    if parsed.evasion:
        hits.add(MIME_EVASION, "; ".join(parsed.evasion[:3]))
    if parsed.budget_exceeded:
        hits.add(ANALYSIS_BUDGET_EXCEEDED,
                 "analysis stopped at its time budget; the verdict covers what was analysed before")
    if parsed.not_examined:  # weight 0: what the work limits left out is said, the same on any machine
        more = len(parsed.not_examined) - 3
        hits.add("CONTENT_NOT_EXAMINED", "; ".join(parsed.not_examined[:3]) + (f"; and {more} more" if more > 0 else ""))


def _verdict(parsed: ParsedMessage, policy: TenantPolicy, hits: _Hits, blocked: bool) -> Verdict:
    # The score is the sum of the rounded reason weights, so what a reader adds up is what was compared.
    score = round(sum(h.reason.weight for h in hits), 2)
    by_category = {PHISHING: 0.0, MALWARE: 0.0, SPAM: 0.0}
    for h in hits:
        if h.category in by_category:
            by_category[h.category] += h.reason.weight
    t = policy.thresholds
    if by_category[MALWARE] >= t.malware:
        # judged on the malware reasons alone: an allow-listed sender's dangerous attachment stays malware
        kind = VerdictKind.MALWARE
    else:
        dominant = PHISHING if by_category[PHISHING] >= by_category[SPAM] else SPAM
        threshold = t.phishing if dominant == PHISHING else t.spam
        if by_category[MALWARE] > by_category[dominant] and score >= t.malware:
            kind = VerdictKind.MALWARE
        elif score >= threshold and by_category[dominant] > 0:  # a kind needs evidence of its own kind
            kind = VerdictKind(dominant)
        elif score >= t.suspicious:
            kind = VerdictKind.SUSPICIOUS
        else:
            kind = VerdictKind.CLEAN
    if kind in (VerdictKind.SPAM, VerdictKind.SUSPICIOUS) and any(h.reason.name == "ALLOWLISTED" for h in hits):
        # the tenant vouched for this sender (and it authenticated): its bulk mail is not spam to them;
        # phishing and malware verdicts stand, a compromised partner's mailbox is still a threat
        kind = VerdictKind.CLEAN
    if blocked and _SEVERITY[kind] < _SEVERITY[policy.block_verdict]:
        kind = policy.block_verdict  # the block list forces at least its verdict, never a milder one
    if parsed.evasion and kind == VerdictKind.CLEAN:
        kind = VerdictKind.SUSPICIOUS  # evasion is not innocence: no allow list or threshold makes it clean
    reasons = sorted((h.reason for h in hits), key=lambda r: (-abs(r.weight), r.name))
    return Verdict(verdict=kind, score=score, reasons=reasons, parse_problems=list(parsed.parse_problems),
                   subject=parsed.subject, sender=parsed.sender, budget_exceeded=parsed.budget_exceeded)


_SEVERITY = {VerdictKind.CLEAN: 0, VerdictKind.SUSPICIOUS: 1, VerdictKind.SPAM: 2, VerdictKind.PHISHING: 3,
             VerdictKind.MALWARE: 4}

IndicatorLookup = Callable[[set[str]], Mapping[str, str]]
