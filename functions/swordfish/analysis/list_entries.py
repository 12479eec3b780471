"""What an allow or block list entry may be, checked where entries are written (CLI, console).

An entry is a sender **address** (``user@example.com``: that address only) or a **domain**
(``example.com``: the domain and every subdomain, ``mail.example.com`` included). Nothing else can
match what ``scoring._policy_lists`` compares (the From address, its host and the host's parents),
so everything else is refused with the reason, never stored to match nothing: wildcards (a domain
already covers its subdomains), URLs, free text, IP addresses, bare public suffixes (``co.uk``).
Stored policies are not re-checked when they load: an old entry keeps working or not as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .urls import _extract, idna_host, is_ip_host

MAX_LIST_ENTRIES = 1000  # per list; the policy is one JSONB document loaded for every batch
MAX_ENTRY_CHARS = 254  # the longest e-mail address SMTP carries
_LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.\-\u0080-\uffff]{1,64}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Refused:
    entry: str
    reason: str

    def __str__(self) -> str:
        return f"{self.entry}: {self.reason}"


def _domain(text: str) -> tuple[str | None, str | None]:
    host = idna_host(text)
    if is_ip_host(text.strip("[]")):
        return None, "an IP address: lists match sender addresses and domains"
    if not host or not all(_LABEL.match(label) for label in host.split(".")):
        return None, "not a domain name or an address"
    parts = _extract(host)
    if parts.suffix and not parts.domain:
        return None, f"a public suffix: no sender has the address {host} itself; name the domain under it"
    if "." not in host:
        return None, "not a domain name or an address"
    return host, None


def check_entry(raw: str) -> tuple[str | None, str | None]:
    """(the entry as stored, None) or (None, why it is refused)."""
    text = str(raw).strip()
    if len(text) > MAX_ENTRY_CHARS:
        return None, f"longer than {MAX_ENTRY_CHARS} characters"
    if any(c.isspace() for c in text):
        return None, "contains spaces: one address or domain per line"
    if "*" in text or "?" in text:
        return None, ("wildcards are not supported: a domain entry (example.com) already matches the domain "
                      "and every subdomain; an address entry matches that address only")
    if "://" in text or "/" in text:
        return None, "a URL: write the sender's domain (example.com) or address"
    text = text.lower().removeprefix("@")
    if "@" not in text:
        return _domain(text)
    local, _, domain = text.rpartition("@")
    if not local or "@" in local or not _LOCAL_PART.match(local) or local.startswith(".") or local.endswith("."):
        return None, "not an address (user@example.com)"
    host, why = _domain(domain)
    if host is None:
        return None, "not an address (user@example.com)" if why.startswith("not") else why
    return f"{local}@{domain}", None


def check_list(values, *, limit: int = MAX_LIST_ENTRIES) -> tuple[list[str], list[Refused]]:
    """The accepted entries (normalised, deduplicated, in order) and the refused ones with why."""
    accepted: list[str] = []
    refused: list[Refused] = []
    for raw in values:
        if not str(raw).strip():
            continue
        entry, why = check_entry(raw)
        if entry is None:
            refused.append(Refused(str(raw).strip(), why))
        elif entry not in accepted:
            if len(accepted) >= limit:
                refused.append(Refused(str(raw).strip(), f"over the limit of {limit:,} entries per list"))
            else:
                accepted.append(entry)
    return accepted, refused


# --- extra brands: a tenant's own legitimate senders for a brand the engine knows -------------------

MAX_EXTRA_BRANDS = 100
MAX_BRAND_DOMAINS = 50


def _brand_key(raw: str) -> str:
    return re.sub(r"[\s\-_.]+", "", str(raw).lower())  # "Wells Fargo" -> "wellsfargo", as BRANDS is keyed


def check_extra_brands(mapping) -> tuple[dict[str, list[str]], list[Refused]]:
    """``extra_brands`` as the engine compares it (``scoring._identity``: the sender's registered
    domain against a brand's domains), and what is refused with why: a brand the engine does not
    know (it would never be looked up), anything but a registered domain (a subdomain or an address
    would never equal the sender's registered domain), and past the limits."""
    from .data.brands import BRANDS
    from .urls import registered_domain

    accepted: dict[str, list[str]] = {}
    refused: list[Refused] = []
    if not isinstance(mapping, dict):
        return {}, [Refused("extra_brands", "must map a brand to a list of domains")]
    for raw_brand, domains in mapping.items():
        brand = _brand_key(raw_brand)
        if brand not in BRANDS:
            refused.append(Refused(str(raw_brand), "not a brand the engine knows (such as paypal, microsoft, "
                                                   "docusign); its impersonation is never looked up"))
            continue
        if len(accepted) >= MAX_EXTRA_BRANDS and brand not in accepted:
            refused.append(Refused(str(raw_brand), f"over the limit of {MAX_EXTRA_BRANDS} brands"))
            continue
        if not isinstance(domains, list | tuple) or not domains:
            refused.append(Refused(str(raw_brand), "name at least one domain"))
            continue
        kept = accepted.setdefault(brand, [])
        for raw in domains:
            text = str(raw).strip().lower().removeprefix("@")
            host, why = (None, "an address: write the sender's domain") if "@" in text else _domain(text)
            if host is None:
                refused.append(Refused(f"{brand}: {str(raw).strip()}", why))
            elif registered_domain(host) != host:
                refused.append(Refused(f"{brand}: {host}", "brands are compared on the sender's registered "
                                                           f"domain: write {registered_domain(host)}"))
            elif len(kept) >= MAX_BRAND_DOMAINS:
                refused.append(Refused(f"{brand}: {host}", f"over the limit of {MAX_BRAND_DOMAINS} domains a brand"))
            elif host not in kept:
                kept.append(host)
        if not kept:
            del accepted[brand]
    return accepted, refused


def parse_extra_brands(text: str) -> tuple[dict[str, list[str]], list[Refused]]:
    """One brand a line, ``brand: domain, domain``, as the console's form has it; then checked."""
    mapping: dict[str, list[str]] = {}
    refused: list[Refused] = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        brand, colon, rest = line.partition(":")
        domains = [d for d in re.split(r"[\s,]+", rest) if d]
        if not colon or not brand.strip() or not domains:
            refused.append(Refused(line.strip()[:100], "write one brand a line: brand: domain, domain"))
            continue
        mapping.setdefault(brand.strip(), []).extend(domains)
    accepted, more = check_extra_brands(mapping)
    return accepted, refused + more
