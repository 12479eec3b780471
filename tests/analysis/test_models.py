"""The policy and verdict models round-trip through JSON (policies are stored as JSONB)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from swordfish.analysis import Reason, TenantPolicy, Verdict, VerdictKind, analyze

from .helpers import SA, mail


def test_default_policy_round_trips_through_json():
    policy = TenantPolicy()
    assert TenantPolicy.model_validate(policy.model_dump(mode="json")) == policy


def test_policy_entries_are_normalised_and_round_trip():
    policy = TenantPolicy(domains=["Example.COM "], allow_list=["@Partner.org"], vip_names=["  Dana   Whitfield "],
                          block_verdict="phishing", thresholds={"phishing": 7})
    dumped = policy.model_dump(mode="json")
    assert dumped["domains"] == ["example.com"] and dumped["allow_list"] == ["partner.org"]
    assert dumped["vip_names"] == ["Dana Whitfield"] and dumped["thresholds"]["phishing"] == 7.0
    assert TenantPolicy.model_validate(dumped) == policy


def test_policy_ignores_unknown_stored_fields():
    assert TenantPolicy.model_validate({"domains": ["a.com"], "retired_option": True}).domains == ["a.com"]


def test_allow_weight_cannot_raise_the_score():
    with pytest.raises(ValidationError):
        TenantPolicy(allow_weight=3)


def test_reason_is_frozen_and_verdict_round_trips():
    v = analyze(mail(SA / "spam" / "gtube.eml"))
    with pytest.raises(ValidationError):
        v.reasons[0].weight = 0  # type: ignore[misc]
    again = Verdict.model_validate(v.model_dump(mode="json"))
    assert again == v and again.verdict is VerdictKind.SPAM and isinstance(again.reasons[0], Reason)
