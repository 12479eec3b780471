"""Campaign grouping (issue 28): verdicts of different tenants that share an indicator become one
campaign when the third tenant's copy is stored (the grouper runs after that batch's commit, with an
injected clock: grouped_at is that clock's now, so within a minute of the hit); what it holds; what
does not make a campaign."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from swordfish.store.campaigns import CampaignGrouper, Hit, get_campaign, list_campaigns, members, summary

from tests.trace.conftest import record, store


class Clock:
    def __init__(self):
        self.now = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)

    def __call__(self):
        return self.now


def deliver(pool, grouper, *records):
    """What the pipeline does: store the batch, then hand the stored verdicts to the grouper."""
    stored = store(pool, *records)
    return grouper.observe([Hit(s.tenant_id, s.committed_at, r.trace) for s, r in zip(stored, records, strict=True)
                            if s.inserted])


def campaigns(pool):
    with pool.connection() as conn, conn.transaction():
        return list_campaigns(conn)


def test_the_third_tenants_copy_groups_the_campaign_at_once(app_db):
    clock = Clock()
    grouper = CampaignGrouper(app_db, clock=clock)
    lure = dict(link_domains=["lure.example"], sender_domain="lure-sender.example", content_digest="c" * 32)
    assert deliver(app_db, grouper, record("tenant-a", "a1", **lure, envelope_recipients=["ann@a.example"])) == []
    clock.now += timedelta(minutes=5)
    assert deliver(app_db, grouper, record("tenant-b", "b1", verdict="clean", score=1.0, reasons=(), **lure,
                                           envelope_recipients=["bo@b.example"])) == []
    assert campaigns(app_db) == []  # two tenants are not a campaign yet
    clock.now += timedelta(minutes=5)
    third_hit = clock.now
    touched = deliver(app_db, grouper, record("tenant-c", "c1", **lure, envelope_recipients=["cy@c.example"]),
                      record("tenant-c", "c2", **lure, envelope_recipients=["cz@c.example"]))
    rows = campaigns(app_db)
    assert len(touched) == 3 and {(r["kind"], r["indicator"]) for r in rows} == {
        ("link_domain", "lure.example"), ("sender_domain", "lure-sender.example"), ("content", "c" * 32)}
    assert all(r["grouped_at"] - third_hit < timedelta(minutes=1) and r["tenant_count"] == 3 for r in rows)

    with app_db.connection() as conn, conn.transaction():
        campaign = get_campaign(conn, touched[0])
        view = summary(campaign, members(conn, campaign))
    assert view["tenants"] == ["tenant-a", "tenant-b", "tenant-c"]
    assert [m["address"] for m in view["mailboxes"]] == ["ann@a.example", "bo@b.example", "cy@c.example",
                                                        "cz@c.example"]
    assert view["verdict_mix"] == {"phishing": 3, "clean": 1} and view["copies"] == 4
    assert view["reasons"] == {"CREDENTIAL_PHISHING_LANGUAGE": 3}
    assert [c["message_id"] for c in view["clean_copies"]] == ["b1"]  # the copy that was delivered
    assert view["clean_copies"][0]["recipients"] == ["bo@b.example"]
    assert view["first_seen"] < view["last_seen"]

    assert sorted(touched.grown) == sorted(touched)  # new campaigns: each is news for the MSP
    # Another copy for a tenant already counted: brought up to date, nothing to alert.
    again = deliver(app_db, grouper, record("tenant-c", "c3", **lure))
    assert sorted(again) == sorted(touched) and again.grown == []

    # A fourth tenant's copy later: the same campaign, brought up to date, grouped_at unchanged.
    clock.now += timedelta(hours=1)
    fourth = deliver(app_db, grouper, record("tenant-d", "d1", **lure))
    assert sorted(fourth.grown) == sorted(touched)  # reached one more client
    assert [v["tenants"] for v in grouper.summaries(fourth.grown[:1])] == [
        ["tenant-a", "tenant-b", "tenant-c", "tenant-d"]]
    later = {r["campaign_id"]: r for r in campaigns(app_db)}
    assert set(later) == set(touched) and all(r["tenant_count"] == 4 for r in later.values())
    assert all(r["grouped_at"] - third_hit < timedelta(minutes=1) and r["updated_at"] == clock.now
               for r in later.values())


def test_what_is_not_a_campaign(app_db):
    grouper = CampaignGrouper(app_db, clock=Clock())
    # Three tenants, every copy clean: a newsletter, not a lure.
    deliver(app_db, grouper, *[record(t, f"{t}-n", verdict="clean", reasons=(), link_domains=["news.example"],
                                      sender_domain="news.example") for t in ("tenant-a", "tenant-b", "tenant-c")])
    # Free mail shared by phishing in three tenants: the sender domain is no indicator (the rest may be).
    deliver(app_db, grouper, *[record(t, f"{t}-g", sender_domain="gmail.com", link_domains=[]) for t in
                               ("tenant-a", "tenant-b", "tenant-c")])
    # A domain nearly every message links to, with one flagged copy among many clean ones.
    many = [record(t, f"{t}-p{i}", verdict="clean", reasons=(), link_domains=["cdn-everywhere.example"],
                   sender_domain=f"s{i}.example") for t in ("tenant-a", "tenant-b", "tenant-c") for i in range(10)]
    deliver(app_db, grouper, *many, record("tenant-d", "d-p", link_domains=["cdn-everywhere.example"],
                                           sender_domain="other.example"))
    # One tenant many times: not across tenants.
    deliver(app_db, grouper, *[record("tenant-a", f"a-s{i}", link_domains=["solo.example"],
                                      sender_domain="solo.example") for i in range(5)])
    assert campaigns(app_db) == []


def test_an_indicator_everywhere_and_clean_is_not_counted_again_for_a_while(app_db, monkeypatch):
    from swordfish.store import campaigns as module

    monkeypatch.setattr(module, "SAMPLE", 6)  # a full sample, small enough for a test
    clock = Clock()
    grouper = CampaignGrouper(app_db, clock=clock)
    deliver(app_db, grouper, *[record(t, f"{t}-{i}", verdict="clean", reasons=(), link_domains=["cdn.example"],
                                      sender_domain=f"{t}-{i}.example") for t in ("tenant-a", "tenant-b", "tenant-c")
                               for i in range(3)])
    assert grouper.common == {("link_domain", "cdn.example"): clock.now + module.COMMON_TTL}
    # Within the TTL a phishing burst on it is not counted; after it, it is (and groups).
    burst = [record(t, f"{t}-phish-{i}", link_domains=["cdn.example"], sender_domain=f"{t}-p{i}.example")
             for t in ("tenant-a", "tenant-b", "tenant-c") for i in range(2)]
    assert deliver(app_db, grouper, *burst[:3]) == []
    clock.now += module.COMMON_TTL + timedelta(seconds=1)
    assert len(deliver(app_db, grouper, *burst[3:])) == 1
    assert [(r["kind"], r["indicator"]) for r in campaigns(app_db)] == [("link_domain", "cdn.example")]
