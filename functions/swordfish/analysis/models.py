"""The analysis engine's inputs and outputs: per-tenant policy in, verdict with reasons out."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .weights import model


class VerdictKind(StrEnum):
    CLEAN = "clean"
    SPAM = "spam"
    SUSPICIOUS = "suspicious"
    PHISHING = "phishing"
    MALWARE = "malware"


class Reason(BaseModel):
    """One scored signal, Rspamd-style: a symbol name, its weight in the score, and what triggered it."""

    model_config = ConfigDict(frozen=True)

    name: str
    weight: float  # the signal's learned weight times `value`
    evidence: str
    value: float = 1.0  # 1 for a yes/no signal, a small count for graded ones (kept for the next fit)


class Verdict(BaseModel):
    verdict: VerdictKind
    score: float
    reasons: list[Reason] = Field(default_factory=list)
    parse_problems: list[str] = Field(default_factory=list)
    subject: str | None = None
    sender: str | None = None
    budget_exceeded: bool = False  # analysis stopped at its time budget: the verdict covers part of the message


def _learned(kind: str):
    return lambda: model().thresholds[kind]


class Thresholds(BaseModel):
    """Score at or above which a message gets each verdict. The kind among spam/phishing/malware is
    chosen by which category of reasons contributes most; below its threshold but at or above
    `suspicious`, the message is suspicious. Defaults: the thresholds `make fit` chose on held-out
    folds (data/weights.json); a tenant may set its own."""

    model_config = ConfigDict(extra="ignore")

    suspicious: float = Field(default_factory=_learned("suspicious"))
    spam: float = Field(default_factory=_learned("spam"))
    phishing: float = Field(default_factory=_learned("phishing"))
    malware: float = Field(default_factory=_learned("malware"))


def _clean_entries(values: list[str]) -> list[str]:
    out = []
    for value in values:
        v = str(value).strip().lower()
        v = v.removeprefix("@")
        if v and v not in out:
            out.append(v)
    return out


class IndicatorBlock(BaseModel):
    """One blocked indicator: a link domain (and its subdomains), an attachment's SHA-256, or a
    sender domain (and its subdomains)."""

    model_config = ConfigDict(extra="ignore")

    block_id: int
    kind: Literal["link_domain", "attachment_sha256", "sender_domain"]
    indicator: str
    campaign_id: int | None = None

    def label(self) -> str:
        return f"block {self.block_id}" + (f", campaign {self.campaign_id}" if self.campaign_id else "")


class TenantPolicy(BaseModel):
    """What a tenant tells the engine about itself. Stored as JSONB; every field has a default so
    `TenantPolicy()` is a usable policy and old stored policies validate after fields are added."""

    model_config = ConfigDict(extra="ignore")

    domains: list[str] = Field(default_factory=list, description="the tenant's own domains")
    vip_names: list[str] = Field(default_factory=list, description="display names of executives etc.")
    allow_list: list[str] = Field(default_factory=list, description="sender addresses or domains")
    block_list: list[str] = Field(default_factory=list, description="sender addresses or domains")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    block_verdict: VerdictKind = Field(default=VerdictKind.SPAM,
                                       description="verdict forced on block-listed senders")
    allow_weight: float = Field(default=-6.0, le=0, description="score added for allow-listed senders")
    trusted_authserv_ids: list[str] = Field(
        default_factory=list,
        description="authserv-ids whose Authentication-Results are trusted; empty: the topmost per method")
    trusted_arc_sealers: list[str] = Field(
        default_factory=list,
        description="ARC sealer domains trusted besides the built-in list of mailbox providers and list hosts")
    extra_brands: dict[str, list[str]] = Field(
        default_factory=dict, description="brand name -> its legitimate registered domains")
    indicator_blocks: list[IndicatorBlock] = Field(
        default_factory=list, description="a campaign's indicators blocked for this tenant or MSP-wide "
                                          "(store.indicator_blocks; merged in when the policy loads)")

    @field_validator("domains", "allow_list", "block_list", "trusted_authserv_ids", "trusted_arc_sealers")
    @classmethod
    def _normalise_entries(cls, values: list[str]) -> list[str]:
        return _clean_entries(values)

    @field_validator("vip_names")
    @classmethod
    def _normalise_names(cls, values: list[str]) -> list[str]:
        return [" ".join(str(v).split()) for v in values if str(v).strip()]

    # Derived lookup structures, computed once per policy object (a batch reuses one policy).
    @cached_property
    def domain_set(self) -> frozenset[str]:
        from .urls import idna_host, registered_domain

        return frozenset(registered_domain(idna_host(d)) or d for d in self.domains)

    @cached_property
    def vip_keys(self) -> frozenset[str]:
        return frozenset(" ".join(name.casefold().split()) for name in self.vip_names)

    @cached_property
    def allow_set(self) -> frozenset[str]:
        return frozenset(self.allow_list)

    @cached_property
    def block_set(self) -> frozenset[str]:
        return frozenset(self.block_list)

    @cached_property
    def arc_sealers(self) -> frozenset[str]:
        from .authentication import DEFAULT_TRUSTED_ARC_SEALERS

        return DEFAULT_TRUSTED_ARC_SEALERS | frozenset(self.trusted_arc_sealers)

    @cached_property
    def trusted_ids(self) -> frozenset[str] | None:
        return frozenset(self.trusted_authserv_ids) or None
