"""Look-alike domains: confusable characters, punycode, one-edit typos and brand names embedded in
someone else's domain."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .data.brands import BRANDS, MIN_LOOKALIKE_LABEL
from .urls import domain_label, registered_domain, skeleton, unicode_host

# Brand labels that are also ordinary words one edit away from other ordinary words; they are matched
# by confusable skeleton only, never by edit distance ("stripe" vs "striped", "norton" vs "morton").
_NO_EDIT_DISTANCE = frozenset({"stripe", "norton", "booking", "google", "intuit", "yahoo", "steam",
                               "apple", "adobe", "slack", "chase"})

# Ordinary words and real services one edit from a brand label: "email" (gmail) names half the mail
# services there are (email.de, email-redir.com); posteo (poste) is a German mail provider. Typo-matched,
# they made look-alikes of their users' mail.
_ORDINARY_WORDS = frozenset({"email", "posteo"})


@dataclass(frozen=True, slots=True)
class Lookalike:
    target: str  # the domain or brand imitated
    how: str  # confusable | punycode | typo | embedded


def osa_distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal-string-alignment edit distance (Levenshtein plus adjacent transposition), giving up at
    `limit`. Own code: labels are under 64 characters and a C dependency for this is not worth it."""
    if abs(len(a) - len(b)) >= limit:
        return limit
    if a == b:
        return 0
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        best = i
        ai = a[i - 1]
        for j in range(1, len(b) + 1):
            cost = 0 if ai == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ai == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            best = min(best, v)
        if best >= limit:
            return limit
        prev2, prev = prev, cur
    return min(prev[-1], limit)


def _deletions(label: str) -> list[str]:
    # Ordered (not a set): which brand a typo is reported as imitating must not follow the hash seed.
    return list(dict.fromkeys([label, *(label[:i] + label[i + 1:] for i in range(len(label)))]))


class _BrandIndex:
    """Symmetric-deletion index over brand labels: finds one-edit neighbours with a few dict look-ups
    instead of an edit-distance computation against every brand."""

    def __init__(self, brands: dict[str, frozenset[str]]) -> None:
        self.owner: dict[str, str] = {}  # label -> brand
        self.legit: dict[str, frozenset[str]] = {}
        for brand, domains in brands.items():
            labels = {brand} | {domain_label(d) for d in domains}
            for label in sorted(labels):
                if len(label) >= 4:
                    self.owner.setdefault(label, brand)
            self.legit[brand] = domains
        self.skeletons = {skeleton(label): label for label in self.owner}
        self.deletions: dict[str, list[str]] = {}
        for label in sorted(self.owner):
            if len(label) >= MIN_LOOKALIKE_LABEL and label not in _NO_EDIT_DISTANCE:
                for variant in _deletions(label):
                    self.deletions.setdefault(variant, []).append(label)
        self.embed_tokens = {label for label in self.owner if len(label) >= 4}
        self.all_domains = sorted({d for domains in brands.values() for d in domains})
        self.legit_domains = frozenset(self.all_domains)


BRAND_INDEX = _BrandIndex(BRANDS)


def _label_match(label: str, target: str) -> str | None:
    if label == target:
        return None
    if skeleton(label) == skeleton(target):
        return "confusable"
    if len(target) >= MIN_LOOKALIKE_LABEL and target not in _NO_EDIT_DISTANCE and osa_distance(label, target) == 1:
        return "typo"
    return None


@lru_cache(maxsize=8192)
def brand_lookalike(host: str) -> Lookalike | None:
    """The brand an ASCII host imitates, if any (None for the brand's own domains)."""
    regdom = registered_domain(host)
    label = domain_label(host)
    if not label:
        return None
    readable = unicode_host(label)
    punycode = readable != label
    idx = BRAND_INDEX
    if regdom in idx.legit_domains:
        return None
    # The whole label, then each hyphen-separated token of it (micros0ft-support.com).
    tokens = [t for t in readable.split("-") if len(t) >= 4] if "-" in readable else []
    combined = _combosquat(readable)
    if combined and not punycode:
        return Lookalike(idx.owner[combined], "embedded")
    for cand in [readable, *tokens]:
        target = idx.skeletons.get(skeleton(cand))
        if target:
            if target != cand:
                return Lookalike(f"{idx.owner[target]} ({target})", "punycode" if punycode else "confusable")
            if cand is not readable:  # the brand itself embedded in someone else's domain
                return Lookalike(idx.owner[target], "embedded")
        if not punycode and len(cand) >= MIN_LOOKALIKE_LABEL and cand not in _ORDINARY_WORDS:
            for variant in _deletions(cand):
                for target in idx.deletions.get(variant, ()):
                    # A typosquat keeps the brand's first letter, which is what a reader checks; a
                    # different first letter is another name (kmail, ucloud, lindows, jpost), not a typo.
                    if target != cand and cand[0] == target[0] and osa_distance(cand, target) == 1:
                        return Lookalike(f"{idx.owner[target]} ({target})", "typo")
    if regdom != host:
        sub = "." + host[: -len(regdom) - 1]
        for d in idx.all_domains:
            if sub.endswith("." + d) or ("." + d + ".") in sub + ".":
                return Lookalike(d, "embedded")
    return None


def _combosquat(label: str) -> str | None:
    """The brand label that two or three consecutive hyphen-separated words of `label` spell together
    ("aproveite-magazine-luiza" spells magazineluiza): combosquatting splits a brand's name so that no
    single word of the domain is the brand. Whole words only: a brand inside a longer word is not one."""
    words = label.split("-")
    if len(words) < 2:
        return None
    for size in (2, 3):
        for start in range(len(words) - size + 1):
            joined = "".join(words[start:start + size])
            if len(joined) >= 6 and joined in BRAND_INDEX.owner:
                return joined
    return None


def tenant_lookalike(host: str, tenant_domains: frozenset[str]) -> Lookalike | None:
    """The tenant domain an ASCII host imitates, if any."""
    if not tenant_domains:
        return None
    # cached per host and tenant domains in this set's order (the first match wins): the same link and
    # sender hosts come back message after message, and each costs an edit distance per tenant domain
    return _tenant_lookalike(host, tuple(tenant_domains))


@lru_cache(maxsize=8192)
def _tenant_lookalike(host: str, tenant_domains: tuple[str, ...]) -> Lookalike | None:
    regdom = registered_domain(host)
    if regdom in tenant_domains:
        return None
    label = domain_label(host)
    readable = unicode_host(label)
    for domain in tenant_domains:
        target = domain_label(domain)
        if not target:
            continue
        how = _label_match(readable, target)
        if how:
            return Lookalike(domain, "punycode" if readable != label else how)
        if len(target) >= 5 and target in label.split("-"):
            return Lookalike(domain, "embedded")
    return None
