"""NEW_LINK_DOMAIN through the processor, against the in-memory link-domain history on a manual clock:
one lookup per batch, the warm-up, the window, and an unavailable history costing the signal only."""

from __future__ import annotations

import pytest
from swordfish.monitoring import error_tracker
from swordfish.pipeline.processor import Pipeline, PolicyCache

from tests.analysis.helpers import build
from tests.unit.fakes import (
    CLEAN,
    FakeFlags,
    FakeLinkDomainHistory,
    FakeMailLoader,
    FakeQueue,
    FakeVerdictStore,
    ManualClock,
    inline,
    record,
)

HOUR = 3600.0
DAY = 24 * HOUR
FRESH = build(sender="Payroll <payroll@hr-portal-notice.example>", subject="Your payslip",
              body="Your payslip is ready: https://payslip-view.example/s/8812 (sign in with your work account).")


@pytest.fixture()
def clock():
    return ManualClock()


@pytest.fixture()
def store():
    return FakeVerdictStore()


@pytest.fixture()
def history(clock):
    return FakeLinkDomainHistory(clock)


def make(store, clock, history) -> Pipeline:
    return Pipeline(database=None, policies=PolicyCache(store, clock=clock.monotonic), mail=FakeMailLoader(),
                    queue=FakeQueue(), flags_snapshot=FakeFlags, verdicts=store, clock=clock, link_domains=history,
                    new_link_domain_window_seconds=48 * HOUR, new_link_domain_warmup_seconds=7 * DAY)


def run(pipeline, *messages: tuple[str, bytes]):
    records = [record(inline("acme", mid, raw)) for mid, raw in messages]
    batch = pipeline.new_batch(records)
    for r in records:
        batch.add(r)
    batch.commit()
    return batch


def reasons(store, message_id) -> dict[str, dict]:
    return {r["name"]: r for r in store.rows["acme", message_id].reasons}


def test_a_link_domain_first_seen_within_the_window_is_new_once_the_deployment_is_warm(store, clock, history):
    pipeline = make(store, clock, history)
    run(pipeline, ("warm-1", CLEAN))  # the deployment starts observing: fabrikam.com is seen
    clock.advance(8 * DAY)
    batch = run(pipeline, ("newsletter", CLEAN), ("payslip", FRESH))
    assert len(history.calls) == 2  # one lookup per batch, whatever the number of messages and links
    assert history.calls[1] == {"fabrikam.com", "payslip-view.example"}
    fresh = reasons(store, "payslip")
    assert "NEW_LINK_DOMAIN" in fresh and "payslip-view.example first seen 0.0 h ago" in fresh["NEW_LINK_DOMAIN"]["evidence"]
    assert "NEW_LINK_DOMAIN" not in reasons(store, "newsletter")  # seen eight days ago
    row = store.rows["acme", "payslip"]
    assert round(sum(r["weight"] for r in row.reasons), 2) == row.score  # rescored: reasons still add up
    assert all(a.parsed is None for a in batch.analysed)  # the kept parse is dropped after the commit

    clock.advance(20 * HOUR)
    run(pipeline, ("payslip-again", FRESH))
    assert "first seen 20.0 h ago" in reasons(store, "payslip-again")["NEW_LINK_DOMAIN"]["evidence"]
    clock.advance(29 * HOUR)  # 49 hours after the first sighting: past the window
    run(pipeline, ("payslip-later", FRESH))
    assert "NEW_LINK_DOMAIN" not in reasons(store, "payslip-later")


def test_during_the_warm_up_nothing_is_new(store, clock, history):
    pipeline = make(store, clock, history)
    run(pipeline, ("first", FRESH))
    clock.advance(6 * DAY)
    run(pipeline, ("still-warming", build(body="See https://brand-new-site.example/x")))
    assert "NEW_LINK_DOMAIN" not in reasons(store, "first")
    assert "NEW_LINK_DOMAIN" not in reasons(store, "still-warming")
    clock.advance(2 * DAY)
    run(pipeline, ("warm", build(body="See https://another-new-site.example/x")))
    assert "NEW_LINK_DOMAIN" in reasons(store, "warm")


def test_a_message_without_links_asks_nothing(store, clock, history):
    run(make(store, clock, history), ("no-links", build(body="Lunch at noon?")))
    assert history.calls == []


def test_an_unavailable_history_costs_the_signal_only_and_is_reported_once_per_outage(store, clock, history,
                                                                                        monkeypatch):
    reported: list[list[str]] = []
    monkeypatch.setattr(error_tracker, "capture_exception",
                        lambda exc, **kw: reported.append(kw.get("fingerprint") or []))
    pipeline = make(store, clock, history)
    run(pipeline, ("warm-1", CLEAN))
    clock.advance(8 * DAY)
    history.down = True
    run(pipeline, ("a", FRESH))
    clock.advance(10)
    run(pipeline, ("b", FRESH))  # within the retry pause: not even asked
    assert len(history.calls) == 2
    clock.advance(31)
    run(pipeline, ("c", FRESH))
    assert len(history.calls) == 3
    assert reported.count(["link-domain-history-failed"]) == 1
    for mid in ("a", "b", "c"):
        assert store.rows["acme", mid].verdict and "NEW_LINK_DOMAIN" not in reasons(store, mid)
    history.down = False
    clock.advance(31)
    run(pipeline, ("d", FRESH))
    assert "NEW_LINK_DOMAIN" in reasons(store, "d")
    history.down = True
    clock.advance(31)
    run(pipeline, ("e", FRESH))
    assert reported.count(["link-domain-history-failed"]) == 2  # a new outage is reported again


def test_without_a_history_the_pipeline_keeps_no_parse_and_adds_no_signal(store, clock):
    pipeline = make(store, clock, None)
    batch = run(pipeline, ("x", FRESH))
    assert "NEW_LINK_DOMAIN" not in reasons(store, "x")
    assert all(a.parsed is None for a in batch.analysed)
