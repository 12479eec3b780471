"""Blocking a campaign's indicators (issue 28): a block for one tenant or MSP-wide reaches the
tenant's policy when it loads, and a new message holding the indicator is flagged with a reason
naming the block; undoing it stops that."""

from __future__ import annotations

import base64
import hashlib

import pytest
from swordfish.analysis import TenantPolicy, VerdictKind, parse_message, score_message
from swordfish.store.indicator_blocks import active_blocks, add_block, campaign_indicators, remove_block
from swordfish.store.tenants import load_policy

from tests.trace.conftest import record, store

PAYLOAD = b"%PDF-1.4 not really a pdf, but bytes with a digest\n"


def mail(link: str = "https://www.example.org/", sender: str = "news@harmless.example", attach: bool = False) -> bytes:
    parts = [f"From: Team <{sender}>\r\nTo: bob@a.example\r\nSubject: Quarterly figures\r\nMIME-Version: 1.0\r\n"
             "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n"
             f'<p>Here are the figures: <a href="{link}">the report</a></p>\r\n']
    if attach:
        parts.append("--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=r.pdf\r\n"
                     "Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(PAYLOAD).decode() + "\r\n")
    parts.append("--b--\r\n")
    return "".join(parts).encode()


def verdict_for(pool, tenant: str, raw: bytes):
    with pool.tenant_transaction(tenant) as conn:
        policy = TenantPolicy.model_validate(load_policy(conn, tenant))
    return score_message(parse_message(raw), policy)


def block(pool, **kwargs):
    with pool.connection() as conn, conn.transaction():
        return add_block(conn, created_by="ann@msp.example", **kwargs)


def blocklisted(verdict) -> list[str]:
    return [r.evidence for r in verdict.reasons if r.name == "BLOCKLISTED"]


def test_a_blocked_link_domain_flags_new_mail_for_that_tenant_only_and_undoing_stops_it(app_db):
    before = verdict_for(app_db, "tenant-a", mail("https://login.lure.example/x"))
    assert blocklisted(before) == []
    row = block(app_db, tenant_id="tenant-a", kind="link_domain", indicator="Lure.Example", campaign_id=7)

    flagged = verdict_for(app_db, "tenant-a", mail("https://login.lure.example/x"))
    assert flagged.verdict == VerdictKind.PHISHING
    assert blocklisted(flagged) == [f"link domain lure.example is blocked (block {row['block_id']}, campaign 7)"]
    assert blocklisted(verdict_for(app_db, "tenant-b", mail("https://login.lure.example/x"))) == []

    with app_db.connection() as conn, conn.transaction():
        assert remove_block(conn, row["block_id"], "ann@msp.example", ["tenant-a"])["removed_by"] == "ann@msp.example"
    assert blocklisted(verdict_for(app_db, "tenant-a", mail("https://login.lure.example/x"))) == []


def test_msp_wide_blocks_reach_every_tenant_for_hashes_and_sender_domains(app_db):
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    h = block(app_db, tenant_id=None, kind="attachment_sha256", indicator=digest.upper())
    s = block(app_db, tenant_id=None, kind="sender_domain", indicator="lure-sender.example")
    for tenant in ("tenant-b", "tenant-c"):
        assert blocklisted(verdict_for(app_db, tenant, mail(attach=True))) == [
            f"attachment SHA-256 {digest} is blocked (block {h['block_id']})"]
        assert blocklisted(verdict_for(app_db, tenant, mail(sender="ceo@mail.lure-sender.example"))) == [
            f"sender domain lure-sender.example is blocked (block {s['block_id']})"]
    # a tenant's analysts see MSP-wide blocks but cannot undo them
    with app_db.connection() as conn, conn.transaction():
        assert {b["block_id"] for b in active_blocks(conn, ["tenant-b"])} == {h["block_id"], s["block_id"]}
        assert remove_block(conn, h["block_id"], "bo@b.example", ["tenant-b"]) is None
    assert block(app_db, tenant_id=None, kind="attachment_sha256", indicator=digest)["block_id"] == h["block_id"]


@pytest.mark.parametrize(("kind", "indicator", "why"), [
    ("link_domain", "https://lure.example/x", "URL"), ("link_domain", "com", "public suffix"),
    ("attachment_sha256", "abc", "64 hexadecimal"), ("content", "x" * 32, "kind must be"),
    ("sender_domain", "ceo@lure.example", "a domain, not an address"), ("link_domain", "*.lure.example", "wildcard"),
])
def test_what_cannot_be_blocked_is_refused_with_why(app_db, kind, indicator, why):
    with pytest.raises(ValueError, match=why):
        block(app_db, tenant_id="tenant-a", kind=kind, indicator=indicator)


def test_a_campaign_offers_its_indicator_and_what_every_flagged_copy_shares(app_db):
    from swordfish.store.campaigns import CampaignGrouper, Hit, get_campaign

    lure = dict(link_domains=["lure.example", "cdn.example"], sender_domain="lure-sender.example",
                attachment_sha256=["a" * 64])
    stored = store(app_db, *(record(t, f"{t}-1", **lure) for t in ("tenant-a", "tenant-b", "tenant-c")),
                   record("tenant-d", "d-1", link_domains=["lure.example"], sender_domain="other.example"))
    hits = [Hit(s.tenant_id, s.committed_at, lure_trace) for s, lure_trace in
            zip(stored, [record("x", "y", **lure).trace] * 3 + [record("x", "y", link_domains=["lure.example"],
                                                                      sender_domain="other.example").trace],
                strict=True)]
    grouped = CampaignGrouper(app_db).observe(hits)
    with app_db.connection() as conn, conn.transaction():
        by_kind = {get_campaign(conn, c)["kind"]: get_campaign(conn, c) for c in grouped}
        offered = campaign_indicators(conn, by_kind["link_domain"])
    assert offered == [("link_domain", "lure.example")]  # the fourth copy shares nothing else
    with app_db.connection() as conn, conn.transaction():
        offered = campaign_indicators(conn, by_kind["sender_domain"])
    assert offered == [("sender_domain", "lure-sender.example"), ("link_domain", "cdn.example"),
                       ("link_domain", "lure.example"), ("attachment_sha256", "a" * 64)]
