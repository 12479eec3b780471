"""Authentication read the way a receiving MTA reads it: the DMARC policy and disposition behind a
`dmarc=fail`, Microsoft's compauth reason codes, ARC chains sealed by trusted intermediaries, and
mailing-list delivery.

Why: a bare `dmarc=fail` is not a phishing sign. Mailing lists that tag the subject or add a footer
without rewriting `From` break the author's DKIM, so the author's DMARC fails; when the author's domain
publishes `p=none` (gmail.com, universities, most of the world) receivers deliver it and so must we.
A failure under `p=reject` or `p=quarantine` still is a sign: the domain owner says such mail is forged.
rspamd and Microsoft weigh DMARC by the published policy and trust ARC seals of known forwarders; this
module does the same from the headers the parser kept (`ParsedMessage.auth_details`, `.arc`,
`.list_headers`). Pure, no I/O: we cannot verify signatures (no DNS), so an ARC chain counts only when
the receiving server (the trusted Authentication-Results) says `arc=pass`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .urls import registered_domain

# Sealers whose ARC results a receiver may take instead of its own failed checks: the big mailbox
# providers and forwarders, and list hosts that seal (Microsoft's and Google's own lists of trusted
# sealers start with these). A tenant adds its own (`TenantPolicy.trusted_arc_sealers`).
DEFAULT_TRUSTED_ARC_SEALERS = frozenset({
    "google.com", "googlegroups.com", "microsoft.com", "outlook.com", "office365.com", "yahoo.com", "aol.com",
    "icloud.com", "me.com", "apple.com", "messagingengine.com", "fastmail.com", "zoho.com", "zohomail.com",
    "protonmail.ch", "proton.me", "mimecast.com", "proofpoint.com", "pphosted.com", "groups.io",
    "kernel.org", "linux.dev", "freelists.org", "mailman3.org", "riseup.net", "mailchannels.net",
})

# key=value properties in a result clause, comments included: "(p=NONE sp=QUARANTINE dis=NONE)",
# Microsoft's "action=oreject", rspamd's "(policy=reject)", "header.from=", "header.d=", "smtp.mailfrom=".
_PROPERTY = re.compile(r"\b(p|sp|dis|action|policy|reason|header\.from|header\.d|header\.i|smtp\.mailfrom)"
                       r"\s*=\s*\"?([^\s;()\"]{1,200})", re.IGNORECASE)
_INSTANCE = re.compile(r"\bi\s*=\s*(\d{1,3})\b")
_SEAL_CV = re.compile(r"\bcv\s*=\s*([a-z]+)", re.IGNORECASE)
_SEAL_D = re.compile(r"\bd\s*=\s*([a-z0-9.-]{1,253})", re.IGNORECASE)
_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)([^;]*)", re.IGNORECASE)
_LIST_ID = re.compile(r"<\s*([^<>\s]{1,300})\s*>")
_MAILTO = re.compile(r"mailto:\s*[^@\s<>]{1,200}@([a-z0-9.-]{1,253})", re.IGNORECASE)
_ADDRESS_HOST = re.compile(r"@([a-z0-9.-]{1,253})", re.IGNORECASE)

ENFORCED = frozenset({"reject", "quarantine"})
# Microsoft's action= values: the action taken, or the policy overridden ("oreject": p=reject, delivered anyway).
_MS_ACTIONS = {"reject": "reject", "oreject": "reject", "quarantine": "quarantine", "pct.quarantine": "quarantine",
               "pct.reject": "reject", "none": "none", "bestguesspass": "none"}


def properties(clause: str) -> dict[str, str]:
    """The key=value properties of one result clause (comments included), keys lower-cased."""
    out: dict[str, str] = {}
    for key, value in _PROPERTY.findall(clause):
        key, value = key.lower(), value.strip(".").lower()
        if key == "header.i":  # "@gmail.com" or "user@gmail.com": the signing domain
            value = value.rpartition("@")[2]
        out.setdefault(key, value)
    return out


def dmarc_policy(props: dict[str, str], from_domain: str) -> str:
    """'reject', 'quarantine', 'none' or 'unknown': the policy the From domain publishes, as the receiver
    reported it (p=, or sp= for a subdomain; rspamd's policy=; Microsoft's action=)."""
    subdomain = bool(from_domain) and registered_domain(from_domain) not in ("", from_domain)
    for key in (("sp", "p") if subdomain else ("p",)) + ("policy",):
        value = props.get(key)
        if value in ("reject", "quarantine", "none"):
            return value
    action = _MS_ACTIONS.get(props.get("action", ""))
    return action or "unknown"


@dataclass(slots=True)
class ArcChain:
    """The ARC sets of a message, by instance: sealer domain and chain validation (cv) per seal, and what
    each sealer's own Authentication-Results (ARC-Authentication-Results) said."""
    seals: dict[int, tuple[str, str]] = field(default_factory=dict)  # i -> (d=, cv=)
    results: dict[int, str] = field(default_factory=dict)  # i -> the AAR's text
    problems: list[str] = field(default_factory=list)

    def intact(self) -> bool:
        """Instances 1..N each with one seal and one AAR, cv=none at 1 and pass above, none failed."""
        if not self.seals or self.problems:
            return False
        n = max(self.seals)
        if set(self.seals) != set(range(1, n + 1)) or set(self.results) != set(self.seals):
            return False
        return all(cv == ("none" if i == 1 else "pass") for i, (_, cv) in self.seals.items())

    def sealers(self) -> list[str]:
        return [self.seals[i][0] for i in sorted(self.seals)]


def read_arc(seal_values: list[str], result_values: list[str]) -> ArcChain:
    chain = ArcChain()
    for value in seal_values[:50]:
        m = _INSTANCE.search(value)
        if not m:
            chain.problems.append("ARC-Seal without an instance")
            continue
        i = int(m.group(1))
        cv, d = _SEAL_CV.search(value), _SEAL_D.search(value)
        if i in chain.seals:
            chain.problems.append(f"two ARC-Seals with i={i}")
            continue
        chain.seals[i] = ((d.group(1).lower().strip(".") if d else ""), (cv.group(1).lower() if cv else ""))
    for value in result_values[:50]:
        m = _INSTANCE.search(value)
        if not m:
            continue
        i = int(m.group(1))
        if i in chain.results:
            chain.problems.append(f"two ARC-Authentication-Results with i={i}")
            continue
        chain.results[i] = value[:2000]
    return chain


def _under(host: str, domain: str) -> bool:
    return bool(host) and bool(domain) and (host == domain or host.endswith("." + domain))


def arc_restores_pass(chain: ArcChain | None, receiver_arc: str | None, from_domain: str,
                      trusted: frozenset[str]) -> str | None:
    """Evidence when a trusted ARC chain says the author's mail authenticated before an intermediary
    changed it: the receiver validated the chain (arc=pass: we cannot check signatures without DNS), every
    sealer is trusted, and some sealer's results show dmarc=pass, or dkim=pass for the From domain."""
    if chain is None or receiver_arc != "pass" or not chain.intact():
        return None
    sealers = chain.sealers()
    if not all(any(_under(s, t) for t in trusted) for s in sealers):
        return None
    org = registered_domain(from_domain) or from_domain
    for i in sorted(chain.results):
        for method, result, rest in _RESULT.findall(chain.results[i]):
            method, result = method.lower(), result.lower()
            props = properties(rest)
            if result != "pass":
                continue
            signer = props.get("header.d") or props.get("header.i", "")
            if method == "dmarc" or (method == "dkim" and org and _under(signer, org)):
                return f"ARC i={i} sealed by {chain.seals[i][0]}: {method}=pass (sealers {', '.join(sealers)})"
    return None


@dataclass(slots=True)
class ListDelivery:
    list_id: str
    list_domain: str  # registered domain of the list (List-Id, else List-Post)
    how: str  # what shows the list's own server delivered it


def list_delivery(headers: dict[str, str], return_path: str, dkim_pass_domains: list[str],
                  spf_result: str | None, spf_mailfrom: str) -> ListDelivery | None:
    """A message a mailing list delivered: it names a list (List-Id or List-Post) and the list's own server
    sent it: the envelope sender (Return-Path, or Sender) is at the list's domain with SPF not failing for
    it, or a DKIM signature of the list's domain verified. Naming a list in a header is easy to forge; being
    sent from the list's server is not."""
    list_id = headers.get("list-id", "")
    m = _LIST_ID.search(list_id)
    ident = (m.group(1) if m else list_id.strip()).lower()
    post = _MAILTO.search(headers.get("list-post", ""))
    domain = registered_domain(ident) if "." in ident else ""
    if not domain and post:
        domain = registered_domain(post.group(1).lower())
    if not domain:
        return None
    envelope = [h.lower() for h in (_host(return_path), _host(headers.get("sender", "")), spf_mailfrom) if h]
    for host in envelope:
        if registered_domain(host) == domain:
            if spf_result in ("fail", "softfail") and registered_domain(spf_mailfrom) == domain:
                return None  # the list's own envelope failed SPF: not from the list's server
            return ListDelivery(ident or domain, domain, f"envelope sender at {host}")
    for d in dkim_pass_domains:
        if registered_domain(d) == domain:
            return ListDelivery(ident or domain, domain, f"DKIM signature of {d} verified")
    return None


def _host(address: str) -> str:
    m = _ADDRESS_HOST.search(address or "")
    return m.group(1).lower().strip(".") if m else ""


# Microsoft's compauth reason codes (learn.microsoft.com: "Anti-spam message headers"): 000 the message
# failed DMARC with a reject or quarantine policy; 001 failed implicit authentication (no or weak
# records); 002 the organisation forbids this sender/domain pair; 010 failed DMARC with an enforcing policy
# and the sender is one of the organisation's own domains; 6xx failed implicit authentication from one of
# its own domains. 1xx/7xx passed, 2xx soft-passed, 3xx not checked, 4xx/9xx bypassed.
def compauth_strength(reason: str) -> float:
    """1.0 for an explicit failure (an enforcing policy or the organisation's own domain), 0.5 for an
    implicit one (Microsoft's guess where the domain publishes nothing enforceable)."""
    if reason == "001":
        return 0.5
    return 1.0
