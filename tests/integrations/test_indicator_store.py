"""The Redis indicator store against real Redis: atomic swaps, last-good snapshots, one-trip lookups."""

from __future__ import annotations

import threading

import pytest
import redis
from swordfish.integrations.indicators import IndicatorStore, IndicatorStoreError


def test_match_maps_candidates_to_the_feed_that_lists_them(store):
    store.replace("urlhaus", {"http://malware.example/x", "malware.example"})
    store.replace("openphish", {"https://phish.example/login", "phish.example"})
    hits = store.match({"malware.example", "https://phish.example/login", "clean.example"})
    assert hits == {"malware.example": "urlhaus", "https://phish.example/login": "openphish"}


def test_candidate_in_two_feeds_is_reported_for_the_first_feed(store):
    store.replace("phishtank", {"both.example"})
    store.replace("urlhaus", {"both.example"})
    assert store.match({"both.example"}) == {"both.example": "urlhaus"}


def test_match_with_no_feeds_loaded_finds_nothing(store):
    assert store.match({"anything.example"}) == {}
    assert store.match(set()) == {}


def test_match_handles_thousands_of_candidates(store):
    store.replace("urlhaus", {f"host{i}.example" for i in range(0, 5000, 7)})
    candidates = {f"host{i}.example" for i in range(5000)}
    hits = store.match(candidates)
    assert set(hits) == {f"host{i}.example" for i in range(0, 5000, 7)}


def test_match_is_one_redis_command_for_all_feeds(store):
    for feed in store.feeds:
        store.replace(feed, {f"{feed}.example"})
    sentinel = "end-of-lookup"
    with store.client.monitor() as monitor:
        hits = store.match({"urlhaus.example", "phishtank.example", "u1", "u2", "u3"})
        store.client.echo(sentinel)
        commands = []
        while True:
            entry = monitor.next_command()
            if sentinel in entry["command"]:
                break
            if entry.get("client_type") != "lua":  # commands run inside the script are not round trips
                commands.append(entry["command"])
    assert hits == {"urlhaus.example": "urlhaus", "phishtank.example": "phishtank"}
    assert len(commands) == 1 and commands[0].startswith("EVAL ")


def test_replace_swaps_in_the_new_set_and_drops_the_old(store):
    store.replace("urlhaus", {"old.example"})
    outcome = store.replace("urlhaus", {"new.example", "other.example"}, min_keep_ratio=0)
    assert outcome.replaced and (outcome.indicators, outcome.previous_indicators) == (2, 1)
    assert store.match({"old.example", "new.example"}) == {"new.example": "urlhaus"}


def test_replaced_set_does_not_expire_and_leaves_no_loading_keys(store):
    store.replace("openphish", {f"h{i}.example" for i in range(100)})
    assert store.client.ttl(store.set_key("openphish")) == -1
    assert list(store.client.scan_iter(match="*loading*")) == []


def test_readers_never_see_a_half_loaded_set(store):
    old = {f"old{i}.example" for i in range(1000)}
    new = {f"new{i}.example" for i in range(60000)}
    store.replace("urlhaus", old)
    seen_sizes: set[int] = set()
    done = threading.Event()

    def reader():
        client = redis.Redis(connection_pool=store.client.connection_pool)
        while not done.is_set():
            seen_sizes.add(client.scard(store.set_key("urlhaus")))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        store.replace("urlhaus", new)
    finally:
        done.set()
        thread.join(10)
    assert seen_sizes <= {len(old), len(new)}
    assert len(old) in seen_sizes  # the reader did run while the new set was being loaded


def test_empty_snapshot_is_refused_and_the_last_good_one_kept(store):
    store.replace("openphish", {"kept.example"}, rows=1, source="http://feed/openphish.txt")
    before = store.status()["openphish"]
    outcome = store.replace("openphish", set())
    after = store.status()["openphish"]
    assert not outcome.replaced and "kept the last good snapshot" in outcome.reason
    assert store.match({"kept.example"}) == {"kept.example": "openphish"}
    assert after.refreshed_at == before.refreshed_at and after.indicators == 1
    assert "refused" in after.last_error


def test_suspiciously_small_snapshot_is_refused(store):
    store.replace("phishtank", {f"p{i}.example" for i in range(100)})
    outcome = store.replace("phishtank", {"p1.example", "p2.example"}, min_keep_ratio=0.5)
    assert not outcome.replaced and outcome.previous_indicators == 100
    assert store.status()["phishtank"].indicators == 100


def test_shrink_can_be_forced(store):
    store.replace("phishtank", {f"p{i}.example" for i in range(100)})
    assert store.replace("phishtank", {"p1.example"}, min_keep_ratio=0).replaced
    assert store.status()["phishtank"].indicators == 1


def test_status_records_last_refresh_and_counts(store):
    store.replace("urlhaus", {"a.example", "http://a.example/x"}, rows=1, bad_rows=3, source="http://f/u.csv")
    store.record_failure("openphish", "HTTP 500")
    status = store.status()
    assert (status["urlhaus"].indicators, status["urlhaus"].rows, status["urlhaus"].bad_rows) == (2, 1, 3)
    assert status["urlhaus"].source == "http://f/u.csv"
    assert 0 <= status["urlhaus"].age_seconds() < 60
    assert status["openphish"].refreshed_at is None and status["openphish"].last_error == "HTTP 500"


def test_snapshot_copies_every_feed_for_lookups_without_redis(store):
    store.replace("urlhaus", {"u.example"})
    store.replace("phishtank", {"p.example"})
    snapshot = store.snapshot()
    store.client.flushall()
    assert snapshot.match({"u.example", "p.example", "x.example"}) == {"u.example": "urlhaus",
                                                                       "p.example": "phishtank"}
    assert len(snapshot) == 2


def test_unknown_feed_is_refused_with_a_clear_error(store):
    with pytest.raises(ValueError, match="unknown threat feed 'spamhaus'"):
        store.replace("spamhaus", {"x.example"})


def test_unreachable_redis_raises_a_typed_error_quickly(tmp_path):
    store = IndicatorStore.from_url(f"unix://{tmp_path}/no-redis.sock", timeout_seconds=0.2)
    with pytest.raises(IndicatorStoreError, match="threat-indicator lookup failed"):
        store.match({"x.example"})
