"""Allow and block list entries: what is accepted, what is refused and why, what an entry matches."""

from __future__ import annotations

import pytest
from swordfish.analysis import TenantPolicy, analyze
from swordfish.analysis.list_entries import MAX_LIST_ENTRIES, check_list

from tests.analysis.helpers import SAMPLES, mail


def names(verdict) -> set[str]:
    return {r.name for r in verdict.reasons}


@pytest.mark.parametrize("entry, stored", [
    ("Priya.Raman@Example.com", "priya.raman@example.com"),
    ("example.com", "example.com"),
    ("@example.com", "example.com"),
    ("mail.partner.co.uk", "mail.partner.co.uk"),
    ("  bücher.de ", "xn--bcher-kva.de"),
])
def test_addresses_and_domains_are_accepted_in_their_matching_form(entry, stored):
    accepted, refused = check_list([entry])
    assert accepted == [stored] and refused == []


@pytest.mark.parametrize("entry, why", [
    ("*@evil.example", "wildcard"),
    ("*.evil.example", "wildcard"),
    ("https://evil.example/login", "URL"),
    ("evil.example/login", "URL"),
    ("block everything from evil", "spaces"),
    ("evil", "not a domain"),
    ("co.uk", "public suffix"),
    ("com", "public suffix"),
    ("198.51.100.7", "IP address"),
    ("user@", "not an address"),
    ("a@b@evil.example", "not an address"),
    ("<x>@evil.example", "not an address"),
    ("x" * 300 + ".example", "characters"),
])
def test_entries_that_can_never_match_are_refused_with_the_reason(entry, why):
    accepted, refused = check_list(["ok@partner.example", entry])
    assert accepted == ["ok@partner.example"]
    assert [r.entry for r in refused] == [entry.strip()] and why in refused[0].reason


def test_duplicates_and_blank_lines_are_not_refusals():
    accepted, refused = check_list(["a.example", "", "A.example", "  "])
    assert accepted == ["a.example"] and refused == []


def test_the_limit_is_stated_and_enforced_not_a_silent_cut():
    entries = [f"user{i}@partner.example" for i in range(MAX_LIST_ENTRIES + 1)]
    accepted, refused = check_list(entries)
    assert len(accepted) == MAX_LIST_ENTRIES
    assert [r.entry for r in refused] == [entries[-1]] and f"{MAX_LIST_ENTRIES:,}" in refused[0].reason


def test_a_domain_entry_matches_the_domain_and_every_subdomain():
    raw = mail(SAMPLES / "swordfish" / "clean-project-notes.eml")  # From: priya.raman@example.com
    policy = TenantPolicy(block_list=["example.com"], block_verdict="phishing")
    assert "BLOCKLISTED" in names(analyze(raw, policy))
    sub = raw.replace(b"@example.com", b"@mail.eu.example.com", 1)
    assert "BLOCKLISTED" in names(analyze(sub, policy))
    assert "BLOCKLISTED" in names(analyze(sub, TenantPolicy(block_list=["eu.example.com"])))
    assert "BLOCKLISTED" not in names(analyze(raw, TenantPolicy(block_list=["eu.example.com"])))


# --- extra brands ----------------------------------------------------------------------------------


def test_extra_brands_keep_known_brands_and_registered_domains_and_say_why_not():
    from swordfish.analysis.list_entries import MAX_BRAND_DOMAINS, check_extra_brands, parse_extra_brands

    accepted, refused = check_extra_brands({"PayPal": ["Partner.com", "partner.com", "mail.partner.com", "a@b.com"],
                                            "Wells Fargo": ["payroll.com"], "acmewidgets": ["x.com"],
                                            "docusign": []})
    assert accepted == {"paypal": ["partner.com"], "wellsfargo": ["payroll.com"]}
    assert [(r.entry, r.reason.split(":")[0]) for r in refused] == [
        ("paypal: mail.partner.com", "brands are compared on the sender's registered domain"),
        ("paypal: a@b.com", "an address"),
        ("acmewidgets", "not a brand the engine knows (such as paypal, microsoft, docusign); its impersonation is "
                        "never looked up"),
        ("docusign", "name at least one domain")]
    many, over = check_extra_brands({"paypal": [f"d{i}.com" for i in range(MAX_BRAND_DOMAINS + 1)]})
    assert len(many["paypal"]) == MAX_BRAND_DOMAINS and len(over) == 1 and "limit" in over[0].reason
    assert parse_extra_brands("paypal partner.com")[1][0].reason.startswith("write one brand a line")
    assert check_extra_brands(["paypal"])[1][0].reason == "must map a brand to a list of domains"


def test_an_extra_brand_domain_is_not_brand_impersonation_for_that_tenant():
    raw = (b"From: PayPal <payroll@partner.com>\r\nTo: ann@acme.example\r\nSubject: March payroll\r\n"
           b"Message-ID: <1@partner.com>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\nYour payslip is ready.\r\n")
    assert "BRAND_IMPERSONATION" in names(analyze(raw, TenantPolicy()))
    assert "BRAND_IMPERSONATION" not in names(analyze(raw, TenantPolicy(extra_brands={"paypal": ["partner.com"]})))
