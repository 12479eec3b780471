"""The processor with in-memory fakes of its ports: no PostgreSQL, SQS, S3, Nango or Redis.

The same behaviours run end to end against the real services in tests/pipeline; here they run in
milliseconds, with an injected clock for message ages and the policy cache.
"""

from __future__ import annotations

import pytest
from swordfish.features import AUTO_QUARANTINE, CONTENT_MODEL_KILL_SWITCH, DEGRADED_MODE_KILL_SWITCH
from swordfish.pipeline.ports import RetryLater
from swordfish.pipeline.processor import Pipeline, PolicyCache

from tests.unit.fakes import (
    PHISH,
    SAMPLES,
    T0,
    FakeFlags,
    FakeMailLoader,
    FakeQueue,
    FakeRemediator,
    FakeVerdictStore,
    ManualClock,
    inline,
    mailbox,
    record,
)


@pytest.fixture()
def store():
    return FakeVerdictStore()


@pytest.fixture()
def queue():
    return FakeQueue()


@pytest.fixture()
def clock():
    return ManualClock()


def make(store, queue, clock, *, mail=None, remediator=None, flags=None) -> Pipeline:
    return Pipeline(database=None, policies=PolicyCache(store, clock=clock.monotonic), mail=mail or FakeMailLoader(),
                    queue=queue, remediator=remediator, flags_snapshot=lambda: flags or FakeFlags(),
                    verdicts=store, clock=clock)


def run(pipeline: Pipeline, records):
    batch = pipeline.new_batch(records)
    for r in records:
        batch.add(r)
    return batch, batch.commit()


def test_a_batch_becomes_verdicts_and_a_redelivery_is_not_stored_twice(store, queue, clock):
    pipeline = make(store, queue, clock)
    records = [record(inline("acme", "m-1")), record(inline("acme", "m-2", PHISH)), record(inline("globex", "m-1"))]
    _, committed = run(pipeline, records)
    assert [(a.submission.tenant_id, a.submission.message_id, s.inserted) for a, s in committed.stored] == [
        ("acme", "m-1", True), ("acme", "m-2", True), ("globex", "m-1", True)]
    assert store.rows["acme", "m-2"].verdict == "phishing"
    assert store.rows["acme", "m-1"].verdict == "clean" and store.rows["acme", "m-1"].flags_version == "test-1"
    _, again = run(pipeline, [record(inline("acme", "m-2", PHISH))])
    assert [s.inserted for _, s in again.stored] == [False]
    assert queue.dead == [] and queue.requeued == []


def test_bad_json_and_unknown_tenants_are_dead_lettered_at_once_and_the_rest_is_stored(store, queue, clock):
    pipeline = make(store, queue, clock)
    bad, unknown, good = record("{not json"), record(inline("nobody", "m-1")), record(inline("acme", "ok"))
    batch, committed = run(pipeline, [bad, unknown, good])
    assert [(qid, code) for qid, code, _ in queue.dead] == [(bad.queue_message_id, "invalid_submission"),
                                                            (unknown.queue_message_id, "unknown_tenant")]
    assert batch.handed_off_ids() == {bad.queue_message_id, unknown.queue_message_id}
    assert [a.submission.message_id for a, _ in committed.stored] == ["ok"]


def test_an_unavailable_dependency_requeues_with_its_delay_instead_of_failing(store, queue, clock):
    mail = FakeMailLoader(fail={"later": RetryLater("Nango is unavailable", 45)})
    pipeline = make(store, queue, clock, mail=mail)
    waiting = record(inline("acme", "later"))
    run(pipeline, [waiting, record(inline("acme", "now"))])
    assert queue.requeued == [(waiting.queue_message_id, 45)]
    assert set(store.rows) == {("acme", "now")}


def test_other_errors_raise_for_redelivery_until_the_last_receive_then_dead_letter(store, queue, clock):
    mail = FakeMailLoader(fail={"flaky": ConnectionError("reset by peer")})
    pipeline = make(store, queue, clock, mail=mail)
    first = record(inline("acme", "flaky"), receive_count=1)
    batch = pipeline.new_batch([first])
    with pytest.raises(ConnectionError):
        batch.add(first)
    last = record(inline("acme", "flaky"), receive_count=pipeline.max_receive_count)
    pipeline.new_batch([last]).add(last)
    assert [(qid, code) for qid, code, _ in queue.dead] == [(last.queue_message_id, "retries_exhausted")]


def test_old_messages_switch_on_degraded_mode_unless_the_kill_switch_is_on(store, queue, clock):
    old = T0  # sent at T0; the clock is 90 s later, past the 60 s backlog threshold
    clock.advance(90)
    batch, _ = run(make(store, queue, clock), [record(inline("acme", "late"), sent_at=old)])
    assert batch.degraded and batch.oldest_age_seconds == 90
    assert store.rows["acme", "late"].degraded
    kill = FakeFlags(on={DEGRADED_MODE_KILL_SWITCH: True})
    batch, _ = run(make(store, queue, clock, flags=kill), [record(inline("acme", "late-2"), sent_at=old)])
    assert not batch.degraded and not store.rows["acme", "late-2"].degraded


def test_the_content_model_kill_switch_scores_a_tenants_mail_with_the_rules_alone(store, queue, clock):
    flags = FakeFlags(on={CONTENT_MODEL_KILL_SWITCH: {"acme"}})
    run(make(store, queue, clock, flags=flags), [record(inline("acme", "p-1", PHISH)), record(inline("globex", "p-1", PHISH))])
    switched_off, normal = store.rows["acme", "p-1"], store.rows["globex", "p-1"]
    names = {r["name"] for r in normal.reasons}
    assert "CONTENT_UNWANTED" in names
    assert {r["name"] for r in switched_off.reasons} == names - {"CONTENT_UNWANTED"}
    assert switched_off.score < normal.score and switched_off.verdict == "phishing"  # the rules still catch it


def test_phishing_from_a_mailbox_is_quarantined_for_tenants_with_the_flag_only(store, queue, clock):
    mail = FakeMailLoader(mailbox={"m-phish": PHISH})
    remediator = FakeRemediator()
    flags = FakeFlags(on={AUTO_QUARANTINE: {"acme"}})
    pipeline = make(store, queue, clock, mail=mail, remediator=remediator, flags=flags)
    run(pipeline, [record(mailbox("acme", "a-1", "m-phish")), record(mailbox("globex", "g-1", "m-phish"))])
    assert remediator.quarantined == ["a-1"]
    # A redelivery of an already stored verdict is not quarantined again.
    run(pipeline, [record(mailbox("acme", "a-1", "m-phish"))])
    assert remediator.quarantined == ["a-1"] and queue.deferred == []


def test_a_failed_quarantine_and_degraded_mode_defer_one_remediation_request(store, queue, clock):
    mail = FakeMailLoader(mailbox={"m-phish": PHISH})
    flags = FakeFlags(on={AUTO_QUARANTINE: True})
    failing = FakeRemediator(error=TimeoutError("Nango timed out"))
    run(make(store, queue, clock, mail=mail, remediator=failing, flags=flags), [record(mailbox("acme", "x-1", "m-phish"))])
    clock.advance(120)
    run(make(store, queue, clock, mail=mail, remediator=FakeRemediator(), flags=flags),
        [record(mailbox("acme", "x-2", "m-phish"), sent_at=T0)])
    assert [(r.message_id, r.verdict, r.why, r.source.provider_message_id) for r in queue.deferred] == [
        ("x-1", "phishing", "Nango timed out", "m-phish"), ("x-2", "phishing", "degraded mode", "m-phish")]
    assert store.rows["acme", "x-2"].deferred_work == ["remediation"]


def test_a_refused_row_fails_alone_and_is_dead_lettered_on_its_last_receive(store, queue, clock):
    store.refuse = {"bad-row"}
    pipeline = make(store, queue, clock)
    retried = record(inline("acme", "bad-row"), receive_count=1)
    _, committed = run(pipeline, [retried, record(inline("acme", "fine"))])
    assert [a.submission.message_id for a, _ in committed.stored] == ["fine"]
    assert [a.record.queue_message_id for a, _ in committed.retry] == [retried.queue_message_id]
    last = record(inline("acme", "bad-row"), receive_count=pipeline.max_receive_count)
    _, committed = run(pipeline, [last])
    assert committed.retry == [] and [c for _, c, _ in queue.dead] == ["store_rejected"]


def test_an_unreachable_store_fails_the_batch_and_dead_letters_only_last_receives(store, queue, clock):
    store.unreachable = True
    pipeline = make(store, queue, clock)
    last = record(inline("acme", "l"), receive_count=pipeline.max_receive_count)
    retried = record(inline("acme", "r"))
    batch = pipeline.new_batch([last, retried])
    batch.add(last)
    batch.add(retried)
    with pytest.raises(Exception, match="connection refused"):
        batch.commit()
    assert [(qid, code) for qid, code, _ in queue.dead] == [(last.queue_message_id, "commit_failed")]
    assert store.rows == {}


def test_tenant_policies_are_cached_for_their_ttl_on_the_injected_clock(store, clock):
    cache = PolicyCache(store, ttl=60, clock=clock.monotonic)
    cache.get("acme")
    clock.advance(59)
    cache.get("acme")
    assert store.policy_loads == 1
    clock.advance(2)
    cache.get("acme")
    assert store.policy_loads == 2


def test_a_spent_analysis_budget_still_gives_every_message_a_verdict_marked_as_such(store, queue, clock):
    ticks = iter(range(1_000_000))
    pipeline = make(store, queue, clock)
    pipeline.analysis_budget_seconds = 0.5
    pipeline.analysis_clock = lambda: float(next(ticks))  # one second per read: spent at the first check
    big = b"From: a@partner.example\r\nSubject: big\r\n\r\n" + b"x\r\n" * 100_000
    _, committed = run(pipeline, [record(inline("acme", "big", big)), record(inline("globex", "small"))])
    by_id = {a.submission.message_id: a for a, _ in committed.stored}
    assert by_id["big"].verdict.budget_exceeded and by_id["big"].analysis_seconds >= 1.0
    assert "ANALYSIS_BUDGET_EXCEEDED" in {r["name"] for r in store.rows["acme", "big"].reasons}
    assert ("globex", "small") in store.rows
    assert store.rows["acme", "big"].subject == "big"  # the partial verdict keeps what was read
    pipeline.analysis_clock = lambda: 0.0  # a clock that never moves: nothing is ever over budget
    _, committed = run(pipeline, [record(inline("acme", "big-2", big))])
    assert not committed.stored[0][0].verdict.budget_exceeded


class ListArchive:
    """``RawMailArchive``: one "object" per batch, its records in order (or failing)."""

    def __init__(self, fail: bool = False):
        self.objects, self.fail = [], fail

    def archive(self, records):
        if self.fail:
            raise OSError("S3 unreachable")
        self.objects.append([r.body for r in records])
        return f"raw-submissions/2026/11/29/22/batch-{len(self.objects)}.jsonl.gz"


def test_each_verdict_points_at_its_line_of_the_batch_archive_and_an_archive_outage_leaves_none(store, queue, clock):
    pipeline = make(store, queue, clock)
    pipeline.raw_archive = ListArchive()
    bad = record("{not json")
    run(pipeline, [record(inline("acme", "a-0")), bad, record(inline("acme", "a-2"))])
    assert [(store.rows["acme", m].raw_archive_key, store.rows["acme", m].raw_archive_line) for m in ("a-0", "a-2")] == [
        ("raw-submissions/2026/11/29/22/batch-1.jsonl.gz", 0), ("raw-submissions/2026/11/29/22/batch-1.jsonl.gz", 2)]
    assert '"a-2"' in pipeline.raw_archive.objects[0][2]
    pipeline.raw_archive = ListArchive(fail=True)
    _, committed = run(pipeline, [record(inline("acme", "a-3"))])
    assert [s.inserted for _, s in committed.stored] == [True]  # the verdict, without a pointer
    assert (store.rows["acme", "a-3"].raw_archive_key, store.rows["acme", "a-3"].raw_archive_line) == (None, None)


class Campaigns:
    """The ``CampaignObserver`` port: the hits it was given, or a failure."""

    def __init__(self, fail: bool = False):
        self.hits, self.fail = [], fail

    def observe(self, hits):
        if self.fail:
            raise ConnectionError("campaign store down")
        self.hits.extend(hits)
        return [1]


def test_each_stored_verdict_carries_its_trace_and_goes_to_the_campaign_grouper(store, queue, clock):
    pipeline = make(store, queue, clock)
    pipeline.campaigns = Campaigns()
    run(pipeline, [record(inline("acme", "m-1", PHISH)), record(inline("globex", "m-2", PHISH))])
    trace = store.rows["acme", "m-1"].trace
    assert trace is not None and trace.sender_domain and trace.link_domains
    assert [(h.tenant_id, h.trace.link_domains) for h in pipeline.campaigns.hits] == [
        ("acme", trace.link_domains), ("globex", store.rows["globex", "m-2"].trace.link_domains)]
    run(pipeline, [record(inline("acme", "m-1", PHISH))])  # a redelivery: stored before, not grouped again
    assert len(pipeline.campaigns.hits) == 2


def test_a_failing_campaign_grouper_costs_no_verdict(store, queue, clock):
    pipeline = make(store, queue, clock)
    pipeline.campaigns = Campaigns(fail=True)
    _, committed = run(pipeline, [record(inline("acme", "m-1", PHISH))])
    assert [s.inserted for _, s in committed.stored] == [True] and queue.dead == [] and queue.requeued == []
# --- alerts (issue 28) ------------------------------------------------------------------------

class ListPublisher:
    def __init__(self, fail: bool = False):
        self.events, self.fail = [], fail

    def publish(self, events):
        if self.fail:
            raise ConnectionError("alerts queue down")
        self.events.extend(events)


VIP_MAIL = (b"From: \"Jane Doe\" <jane.doe.ceo@freemail.example>\r\nTo: ap@acme.example\r\n"
            b"Subject: quick favour\r\nMessage-ID: <v1@freemail.example>\r\n\r\nAre you at your desk? I need a task done.\r\n")
MALWARE_MAIL = (SAMPLES / "invoice-double-extension-zip.eml").read_bytes()


def test_stored_malware_and_vip_impersonation_raise_alerts_once(store, queue, clock):
    store.policies["acme"] = {"domains": ["acme.example"], "vip_names": ["Jane Doe"]}
    publisher = ListPublisher()
    pipeline = make(store, queue, clock)
    pipeline.alerts = publisher
    records = [record(inline("acme", "vip-1", VIP_MAIL)), record(inline("acme", "clean-1")),
               record(inline("acme", "mal-1", MALWARE_MAIL))]
    run(pipeline, records)
    kinds = {(e.kind, e.details["message_id"]) for e in publisher.events}
    assert ("vip_impersonation", "vip-1") in kinds
    assert kinds == {("vip_impersonation", "vip-1"), ("malware", "mal-1")}
    before = len(publisher.events)
    run(pipeline, [record(inline("acme", "vip-1", VIP_MAIL))])  # a redelivery alerts no more
    assert len(publisher.events) == before


class GrowingCampaigns(Campaigns):
    """Reports campaign 7 as grown to three tenants at every batch."""

    def observe(self, hits):
        from swordfish.store.campaigns import Grouped

        super().observe(hits)
        return Grouped([7], grown=[7])

    def summaries(self, campaign_ids):
        return [{"campaign_id": i, "tenants": ["acme", "globex", "initech"], "kind": "link_domain",
                 "indicator": "lure.example", "first_seen": "2027-01-15T09:00:00+00:00",
                 "last_seen": "2027-01-15T09:10:00+00:00", "verdict_mix": {"phishing": 3},
                 "reasons": {"CREDENTIAL_PHISH_LANGUAGE": 3}} for i in campaign_ids]


def test_a_campaign_that_reached_another_tenant_is_an_alert(store, queue, clock):
    publisher = ListPublisher()
    pipeline = make(store, queue, clock)
    pipeline.alerts, pipeline.campaigns = publisher, GrowingCampaigns()
    run(pipeline, [record(inline("acme", "m-1", PHISH))])
    [event] = [e for e in publisher.events if e.kind == "campaign"]
    assert event.tenant_ids == ("acme", "globex", "initech") and event.details["tenant_count"] == 3
    assert event.details["indicators"] == {"link_domain": ["lure.example"]}
    assert event.details["link"] == "/console/campaigns/7"


def test_an_alerts_outage_costs_no_verdict(store, queue, clock):
    store.policies["acme"] = {"domains": ["acme.example"], "vip_names": ["Jane Doe"]}
    pipeline = make(store, queue, clock)
    pipeline.alerts = ListPublisher(fail=True)
    _, committed = run(pipeline, [record(inline("acme", "vip-1", VIP_MAIL))])
    assert [s.inserted for _, s in committed.stored] == [True] and queue.dead == []
