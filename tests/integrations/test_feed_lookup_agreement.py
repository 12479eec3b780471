"""Feed indicators loaded by the refresher match what the analysis engine looks up for real mail."""

from __future__ import annotations

import pytest
from swordfish.analysis import analyze, parse_message
from swordfish.integrations.feed_refresher import FeedFetcher, FeedRefresher
from swordfish.integrations.indicator_keys import indicator_keys_for_url

DRIVE_LURE = "https://drive.google.com/file/d/1qtm5hdD1b-Z4XPhkvoWHH72jbQaJyRu8/view?usp=sharing"


def _mail(html_body: str) -> bytes:
    return (
        "From: Shipping <notice@parcel-notice.example>\r\nTo: ap@acme.example\r\nSubject: Delivery\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html_body + "\r\n"
    ).encode()


@pytest.fixture()
def loaded_store(store, feed_server):
    report = FeedRefresher(store, FeedFetcher(timeout=1), feed_server.urls).refresh_all()
    assert not report.failed
    return store


def test_every_mail_candidate_key_of_a_link_is_what_indicator_keys_gives():
    other = "https://Login.Phish-Kit.com:443/a#x"
    parsed = parse_message(_mail(f'<a href="{DRIVE_LURE}">Track</a> <a href="{other}">x</a>'))
    for url in (DRIVE_LURE, other):
        assert indicator_keys_for_url(url) <= parsed.indicator_candidates()


def test_exact_feed_url_in_mail_is_a_hit(loaded_store):
    parsed = parse_message(_mail(f'<p>Your parcel: <a href="{DRIVE_LURE}">track it</a></p>'))
    assert loaded_store.match(parsed.indicator_candidates()) == {DRIVE_LURE: "urlhaus"}


def test_other_link_on_the_same_feed_host_is_a_hit_by_host(loaded_store):
    parsed = parse_message(_mail('<a href="http://www.supersitescentral.com/rl/remove.html">remove</a>'))
    assert loaded_store.match(parsed.indicator_candidates()) == {"www.supersitescentral.com": "urlhaus"}


def test_other_google_drive_and_google_links_are_not_hits(loaded_store):
    parsed = parse_message(_mail('<a href="https://drive.google.com/file/d/other/view">doc</a> '
                                 '<a href="https://www.google.com/">search</a>'))
    assert loaded_store.match(parsed.indicator_candidates()) == {}


def test_analyser_reports_the_feed_hit_as_a_reason(loaded_store):
    verdict = analyze(_mail(f'<a href="{DRIVE_LURE}">track it</a>'), indicator_hits_for=loaded_store.match)
    feed_reasons = [r for r in verdict.reasons if r.name == "URL_IN_THREAT_FEED"]
    assert len(feed_reasons) == 1 and DRIVE_LURE in feed_reasons[0].evidence
