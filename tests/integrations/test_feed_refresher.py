"""The feed refresher against the local feed server in each fault mode, and real Redis."""

from __future__ import annotations

import time
from dataclasses import dataclass

import handlers.feed_refresher as refresher_handler
import pytest
from swordfish import wiring
from swordfish.integrations.feed_refresher import FeedFetcher, FeedFetchError, FeedFetchTimeout, FeedRefresher

DRIVE_LURE = "https://drive.google.com/file/d/1qtm5hdD1b-Z4XPhkvoWHH72jbQaJyRu8/view?usp=sharing"


@pytest.fixture()
def refresher(store, feed_server):
    return FeedRefresher(store, FeedFetcher(timeout=0.5), feed_server.urls)


def test_refresh_loads_every_sample_feed(refresher, store):
    report = refresher.refresh_all()
    assert {r.feed: r.outcome for r in report.results} == {
        "urlhaus": "loaded", "openphish": "loaded", "phishtank": "loaded"}
    assert store.match({DRIVE_LURE, "ehawkerbd.com", "www.nlcmacon.com", "google.com"}) == {
        DRIVE_LURE: "urlhaus", "ehawkerbd.com": "openphish", "www.nlcmacon.com": "phishtank"}


def test_feed_server_error_keeps_the_last_good_snapshot(refresher, store, feed_server):
    refresher.refresh_all()
    feed_server.set_fault("error", paths=["/openphish.txt"])
    report = refresher.refresh_all()
    result = {r.feed: r for r in report.results}
    assert result["openphish"].outcome == "kept_last_good" and "HTTP 500" in result["openphish"].error
    assert result["urlhaus"].outcome == "loaded"
    assert store.match({"ehawkerbd.com"}) == {"ehawkerbd.com": "openphish"}
    assert "HTTP 500" in store.status()["openphish"].last_error


def test_hanging_feed_times_out_and_keeps_the_last_good_snapshot(refresher, store, feed_server):
    refresher.refresh("urlhaus")
    feed_server.set_fault("hang")
    started = time.monotonic()
    result = refresher.refresh("urlhaus")
    assert time.monotonic() - started < 5  # guard against a hang, not a latency assertion
    assert result.outcome == "kept_last_good" and "FeedFetchTimeout" in result.error
    assert store.match({DRIVE_LURE}) == {DRIVE_LURE: "urlhaus"}


def test_feed_server_down_keeps_the_last_good_snapshot(refresher, store, feed_server):
    refresher.refresh("phishtank")
    feed_server.set_fault("down")
    result = refresher.refresh("phishtank")
    assert result.outcome == "kept_last_good" and "cannot connect" in result.error
    feed_server.set_fault("ok")
    assert refresher.refresh("phishtank").outcome == "loaded"


def test_error_page_served_with_200_is_not_loaded(refresher, store, feed_server):
    refresher.refresh("openphish")
    feed_server.set_content("openphish", b"<html>\n<body>\n<h1>Rate limit exceeded</h1>\n</body>\n</html>\n")
    result = refresher.refresh("openphish")
    assert result.outcome == "kept_last_good" and "mostly unparseable" in result.error
    assert result.bad_rows == 5
    assert store.match({"ehawkerbd.com"}) == {"ehawkerbd.com": "openphish"}


def test_truncated_feed_is_refused_as_a_suspicious_shrink(refresher, store, feed_server):
    refresher.refresh("urlhaus")
    first_row_only = b"\n".join((feed_server.folder / "urlhaus.csv").read_bytes().splitlines()[:10])
    feed_server.set_content("urlhaus", first_row_only)
    result = refresher.refresh("urlhaus")
    assert result.outcome == "kept_last_good" and "refused" in result.error
    assert store.status()["urlhaus"].indicators == result.indicators > 1


def test_unconfigured_feed_is_skipped(store, feed_server):
    refresher = FeedRefresher(store, FeedFetcher(timeout=0.5), {"urlhaus": feed_server.urls["urlhaus"]})
    outcomes = {r.feed: r.outcome for r in refresher.refresh_all().results}
    assert outcomes == {"urlhaus": "loaded", "openphish": "not_configured", "phishtank": "not_configured"}


def test_fetcher_refuses_a_feed_over_the_size_limit(feed_server):
    with pytest.raises(FeedFetchError, match="larger than 100 bytes"):
        FeedFetcher(timeout=1, max_bytes=100).fetch("urlhaus", feed_server.urls["urlhaus"])


def test_fetcher_timeout_is_typed(feed_server):
    feed_server.set_fault("hang")
    with pytest.raises(FeedFetchTimeout):
        FeedFetcher(timeout=0.2).fetch("urlhaus", feed_server.urls["urlhaus"])


@dataclass
class _Context:  # the attributes Powertools reads from a Lambda context
    function_name: str = "feed-refresher"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:000000000000:function:feed-refresher"
    aws_request_id: str = "req-1"


@pytest.fixture()
def handler_env(settings_env, redis_url, feed_server):
    settings_env(redis_url=redis_url, feed_timeout_seconds=0.5, **{f"{f}_feed_url": u for f, u in
                                                                   feed_server.urls.items()})
    wiring.reset()  # the refresher is rebuilt from these settings
    yield feed_server
    wiring.reset()


def test_scheduled_handler_loads_the_feeds(handler_env, store):
    result = refresher_handler.handler({"source": "aws.events"}, _Context())
    assert result["failed"] == []
    assert result["feeds"]["urlhaus"]["indicators"] == store.status()["urlhaus"].indicators > 0


def test_scheduled_handler_fails_when_every_feed_fails(handler_env):
    handler_env.set_fault("down")
    with pytest.raises(RuntimeError, match="every threat feed failed"):
        refresher_handler.handler({"source": "aws.events"}, _Context())
