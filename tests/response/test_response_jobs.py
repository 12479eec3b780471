"""Bulk response jobs (issue 28): a job's items worked off through Nango (the stand-in), each
mailbox's outcome stored and audited, resumable after a worker dies, throttled per tenant and
provider on an injected clock, and waiting (not failing) while the breaker is open."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from swordfish.store.response_jobs import (
    Bucket,
    JobRefused,
    campaign_items,
    claim,
    create_job,
    progress,
    search_items,
)
from swordfish.store.traces import TraceSearch

from tests.response.conftest import mailbox_mail
from tests.trace.conftest import record, store

LURE = dict(link_domains=["lure.example"], sender_domain="lure.example")


def start(pool, action, items, *, tenant_id=None, scope=None, source="search", by="ann@msp.example"):
    with pool.connection() as conn, conn.transaction():
        return create_job(conn, scope=scope, tenant_id=tenant_id, action=action, source=source,
                          source_ref={"filters": {"link_domain": "lure.example"}}, items=items, created_by=by,
                          created_role="msp_admin")


def lure_items(pool, scope=None):
    with pool.connection() as conn, conn.transaction():
        return search_items(conn, TraceSearch(link_domain="lure.example"), scope)


def job_progress(pool, job_id, scope=None):
    with pool.connection() as conn, conn.transaction():
        return progress(conn, job_id, scope)


def audit_rows(database, action):
    with psycopg.connect(database.superuser_url) as conn:
        return conn.execute("SELECT actor, tenant_id, object_id, outcome, after FROM console_audit "
                            "WHERE action = %s ORDER BY audit_id", (action,)).fetchall()


def test_a_bulk_quarantine_moves_every_copy_and_stores_each_mailboxs_outcome(app_db, database, nango, make_worker):
    for tenant, message in (("tenant-a", "a1"), ("tenant-b", "b1"), ("tenant-c", "c1")):
        mailbox_mail(app_db, nango, tenant, message, **LURE, envelope_recipients=[f"bob@{tenant}.example"])
    store(app_db, record("tenant-d", "d1", **LURE))  # submitted inline: no mailbox to act on
    nango.mailboxes["conn-tenant-c"].pop("graph-c1")  # its owner deleted it meanwhile
    job = start(app_db, "quarantine", lure_items(app_db))
    assert job["total"] == 4 and job_progress(app_db, job["job_id"])["finished"] == 0

    result = make_worker().run()

    assert result.counts == Counter(done=2, gone=1, skipped=1) and result.next_due is None
    assert sorted((q.connection_id, q.message_id) for q in nango.quarantined) == [
        ("conn-tenant-a", "graph-a1"), ("conn-tenant-b", "graph-b1")]
    view = job_progress(app_db, job["job_id"])
    assert view["finished"] == view["total"] == 4 and view["finished_at"] is not None
    assert {t["tenant_id"]: (t["finished"], t["total"]) for t in view["tenants"]} == {
        "tenant-a": (1, 1), "tenant-b": (1, 1), "tenant-c": (1, 1), "tenant-d": (1, 1)}
    with app_db.connection() as conn, conn.transaction():
        from swordfish.store.response_jobs import job_items

        items = {i["message_id"]: i for i in job_items(conn, job["job_id"], None)}
    assert items["a1"]["state"] == "done" and items["a1"]["mailbox"] == "bob@tenant-a.example"
    assert items["c1"]["state"] == "gone" and "no longer in the mailbox" in items["c1"]["why"]
    assert items["d1"]["state"] == "skipped" and "not from a connected mailbox" in items["d1"]["why"]
    # the ledger knows the quarantines, so they can be released later (in bulk or one by one)
    with psycopg.connect(database.superuser_url) as conn:
        assert sorted(conn.execute("SELECT message_id, state FROM mailbox_quarantines").fetchall()) == [
            ("a1", "quarantined"), ("b1", "quarantined")]
    started = audit_rows(database, "response_job.start")
    assert [(a, o) for a, _, _, o, _ in started] == [("ann@msp.example", "ok")]
    assert started[0][4]["messages"] == 4 and started[0][4]["action"] == "quarantine"
    actions = audit_rows(database, "response.quarantine")
    assert sorted((t, m, after["outcome"]) for _, t, m, _, after in actions) == [
        ("tenant-a", "a1", "done"), ("tenant-b", "b1", "done"), ("tenant-c", "c1", "gone"), ("tenant-d", "d1", "skipped")]
    assert all(a == f"response-job:{job['job_id']}" and after["started_by"] == "ann@msp.example"
               for a, _, _, _, after in actions)


def test_release_and_delete_follow_the_ledger(app_db, database, nango, make_worker):
    for message in ("a1", "a2", "a3"):
        mailbox_mail(app_db, nango, "tenant-a", message, **LURE)
    make_worker().run(start(app_db, "quarantine", lure_items(app_db))["job_id"])
    assert len(nango.quarantined) == 3

    release = start(app_db, "release", [{"tenant_id": "tenant-a", "message_id": "a1"},
                                        {"tenant_id": "tenant-a", "message_id": "a1"}])  # twice: one item
    assert release["total"] == 1
    assert make_worker().run(release["job_id"]).counts == Counter(done=1)
    assert nango.folder_of("conn-tenant-a", "graph-a1") == "inbox"

    delete = start(app_db, "delete", lure_items(app_db))
    assert make_worker().run(delete["job_id"]).counts == Counter(done=3)
    assert sorted(d.message_id for d in nango.deleted) == ["graph-a1", "graph-a2", "graph-a3"]
    again = start(app_db, "release", lure_items(app_db))  # deleted: nothing left to release
    assert make_worker().run(again["job_id"]).counts == Counter(skipped=3)
    with psycopg.connect(database.superuser_url) as conn:
        assert set(conn.execute("SELECT state FROM mailbox_quarantines").fetchall()) == {("deleted",)}
        assert conn.execute("SELECT count(*) FROM verdict_releases").fetchone()[0] == 1


def test_a_worker_killed_mid_job_leaves_the_rest_to_the_next_and_nothing_is_done_twice(
        app_db, nango, make_worker, worker_clock):
    for i in range(7):
        mailbox_mail(app_db, nango, "tenant-a", f"a{i}", **LURE)
    job = start(app_db, "quarantine", lure_items(app_db))
    first = make_worker(chunk=2)
    assert sum(first.run(max_items=3).counts.values()) == 3  # then it dies...
    with app_db.connection() as conn, conn.transaction():  # ...and one more it had taken but never finished
        [held] = claim(conn, worker_clock(), lease=timedelta(minutes=5), limit=1)
    assert make_worker().run().counts == Counter(done=3)  # the held item waits for its lease
    worker_clock.advance(301)
    assert make_worker().run().counts == Counter(done=1)
    assert Counter(q.message_id for q in nango.quarantined) == Counter({f"graph-a{i}": 1 for i in range(7)})
    assert job_progress(app_db, job["job_id"])["counts"]["done"] == 7


def test_the_throttle_is_a_bucket_per_tenant_and_provider_on_the_workers_clock(app_db, nango, make_worker,
                                                                                worker_clock):
    for i in range(5):
        mailbox_mail(app_db, nango, "tenant-a", f"a{i}", **LURE)
    mailbox_mail(app_db, nango, "tenant-b", "b0", **LURE)
    job = start(app_db, "quarantine", lure_items(app_db))
    worker = make_worker(rate=0.5, burst=2)  # two at once, then one every two seconds

    first = worker.run()
    assert first.counts["done"] == 3  # two of tenant-a's, and tenant-b's own bucket
    assert first.next_due == worker_clock() + timedelta(seconds=2)
    assert worker.run().counts["done"] == 0  # the clock has not moved: nothing is due
    worker_clock.advance(2)
    assert worker.run().counts["done"] == 1
    worker_clock.advance(4)
    assert worker.run().counts["done"] == 2
    view = job_progress(app_db, job["job_id"])
    assert view["counts"]["done"] == 6 and view["finished_at"] is not None


def test_the_bucket_refills_at_its_rate_up_to_its_burst(worker_clock):
    bucket = Bucket(rate_per_second=0.5, burst=2)
    now = worker_clock()
    assert bucket.take(2.0, now, now) == (1.0, 0.0)
    assert bucket.take(0.0, now, now) == (0.0, 2.0)
    assert bucket.take(0.0, now - timedelta(seconds=1), now) == (0.5, 1.0)
    assert bucket.take(0.0, now - timedelta(hours=1), now) == (1.0, 0.0)  # never more than the burst


def test_while_the_breaker_is_open_items_wait_and_finish_once_it_closes(app_db, nango, make_worker, registry):
    for i in range(3):
        mailbox_mail(app_db, nango, "tenant-a", f"a{i}", **LURE)
    job = start(app_db, "quarantine", lure_items(app_db))
    registry.force_open("nango_remediate", actor="test", reason="Nango outage drill")
    worker = make_worker()
    assert worker.run().counts == Counter(waiting=3)
    view = job_progress(app_db, job["job_id"])
    assert view["counts"]["pending"] == 3 and view["counts"]["failed"] == 0 and nango.quarantined == []
    registry.force_close("nango_remediate", actor="test", reason="drill over")
    worker.clock.advance(3600)
    assert worker.run().counts == Counter(done=3)


def test_a_failing_provider_is_retried_with_backoff_and_refused_credentials_fail_with_why(
        app_db, nango, make_worker, worker_clock):
    mailbox_mail(app_db, nango, "tenant-a", "a1", **LURE)
    job = start(app_db, "quarantine", lure_items(app_db))
    nango.set_fault("500")
    assert make_worker().run().counts == Counter(retrying=1)
    nango.set_fault("ok")
    assert make_worker().run().counts == Counter()  # waiting out its backoff
    worker_clock.advance(30)
    assert make_worker().run().counts == Counter(done=1)
    assert job_progress(app_db, job["job_id"])["counts"]["done"] == 1

    mailbox_mail(app_db, nango, "tenant-b", "b1", **LURE)
    refused = start(app_db, "quarantine", [{"tenant_id": "tenant-b", "message_id": "b1"}])
    from swordfish.integrations.nango import NangoClient
    from swordfish.pipeline.response import ResponseWorker

    wrong = ResponseWorker(app_db, NangoClient(nango.url, "wrong-secret", timeout=0.5), bucket=Bucket(10, 10),
                           registry=make_worker().__dict__["_registry"], clock=worker_clock)
    assert wrong.run(refused["job_id"]).counts == Counter(failed=1)
    with app_db.connection() as conn, conn.transaction():
        from swordfish.store.response_jobs import job_items

        [item] = job_items(conn, refused["job_id"], None)
    assert item["state"] == "failed" and "credentials" in item["why"]


def test_tenant_roles_are_limited_to_their_tenant_and_cross_tenant_jobs_to_staff(app_db, nango):
    for tenant in ("tenant-a", "tenant-b"):
        mailbox_mail(app_db, nango, tenant, f"{tenant}-1", **LURE)
    mine = lure_items(app_db, ["tenant-a"])
    assert {i["tenant_id"] for i in mine} == {"tenant-a"}  # the search itself is scoped
    with pytest.raises(JobRefused, match="MSP staff"):
        start(app_db, "quarantine", mine, scope=["tenant-a"])
    with pytest.raises(JobRefused, match="not your tenant"):
        start(app_db, "quarantine", mine, tenant_id="tenant-b", scope=["tenant-a"])
    # items of another tenant handed to a tenant job are dropped, never acted on
    job = start(app_db, "quarantine", lure_items(app_db), tenant_id="tenant-a", scope=["tenant-a"])
    assert job["total"] == 1
    with app_db.connection() as conn, conn.transaction():  # another tenant's analyst cannot see it
        assert progress(conn, job["job_id"], ["tenant-b"]) is None
        assert progress(conn, job["job_id"], ["tenant-a"])["total"] == 1
    cross = start(app_db, "quarantine", lure_items(app_db))
    with app_db.connection() as conn, conn.transaction():
        assert progress(conn, cross["job_id"], ["tenant-a"]) is None  # a cross-tenant job is staff's
    with pytest.raises(JobRefused, match="nothing to act on"):
        start(app_db, "quarantine", [])


def test_a_campaigns_copies_become_the_jobs_items(app_db, nango):
    from datetime import UTC, datetime

    from swordfish.store.campaigns import CampaignGrouper, Hit

    hits = []
    for tenant in ("tenant-a", "tenant-b", "tenant-c"):
        rec = mailbox_mail(app_db, nango, tenant, f"{tenant}-1", **LURE, envelope_recipients=[f"x@{tenant}.example"])
        hits.append(Hit(tenant, datetime.now(UTC), rec.trace))
    [campaign_id, *_] = CampaignGrouper(app_db).observe(hits)
    with app_db.connection() as conn, conn.transaction():
        campaign, items = campaign_items(conn, campaign_id)
    assert sorted(i["tenant_id"] for i in items) == ["tenant-a", "tenant-b", "tenant-c"]
    assert {i["mailbox"][0] for i in items} == {"x@tenant-a.example", "x@tenant-b.example", "x@tenant-c.example"}
    with app_db.connection() as conn, conn.transaction(), pytest.raises(JobRefused, match="no campaign"):
        campaign_items(conn, 10**9)
