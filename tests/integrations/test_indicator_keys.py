"""Lookup keys: mail candidates and feed entries agree, and shared hosts never become indicators."""

from __future__ import annotations

import pytest
from swordfish.integrations.indicator_keys import feed_indicator_keys, indicator_keys_for_url, normalise_url


@pytest.mark.parametrize(("raw", "expected"), [
    ("HTTPS://Evil.EXAMPLE:443/Login?Next=/A#frag", "https://evil.example/Login?Next=/A"),
    ("http://evil.example:80", "http://evil.example/"),
    ("http://evil.example:8080/x", "http://evil.example:8080/x"),
    ("http://user:secret@evil.example/x", "http://evil.example/x"),
    ("https://robínhood.com/contact", "https://xn--robnhood-e2a.com/contact"),
])
def test_normalise_url_applies_the_documented_rules(raw, expected):
    assert normalise_url(raw) == expected


def test_normalise_url_rejects_what_is_not_a_web_url():
    with pytest.raises(ValueError, match="not an http"):
        normalise_url("mailto:someone@example.com")


def test_mail_url_is_looked_up_by_url_host_and_registered_domain():
    assert indicator_keys_for_url("https://login.evil.co.uk/a?b=1#top") == {
        "https://login.evil.co.uk/a?b=1", "login.evil.co.uk", "evil.co.uk"}


def test_unusable_mail_url_has_no_keys_and_does_not_raise():
    assert indicator_keys_for_url("http://[::1") == set()
    assert indicator_keys_for_url("") == set()


def test_feed_entry_on_google_drive_blocks_only_that_url():
    drive_url = "https://drive.google.com/file/d/abc/view"
    stored = feed_indicator_keys(drive_url)
    assert stored == {drive_url}
    other_drive_link = indicator_keys_for_url("https://drive.google.com/file/d/other/view")
    assert not stored & other_drive_link
    assert stored & indicator_keys_for_url(drive_url)


def test_feed_entry_on_shortener_blocks_only_that_url():
    assert feed_indicator_keys("https://bit.ly/33p6BKD") == {"https://bit.ly/33p6BKD"}


def test_feed_entry_on_an_attacker_host_blocks_that_host_but_not_siblings():
    stored = feed_indicator_keys("http://login.phish-kit.com/x")
    assert stored & indicator_keys_for_url("https://login.phish-kit.com/other")
    assert not stored & indicator_keys_for_url("https://www.phish-kit.com/")


def test_feed_listing_a_bare_domain_blocks_its_subdomains():
    stored = feed_indicator_keys("phish-kit.com")
    assert stored & indicator_keys_for_url("https://login.phish-kit.com/x")


def test_per_user_subdomain_of_a_free_host_is_an_indicator_but_the_service_is_not():
    assert "attacker.000webhostapp.com" in feed_indicator_keys("http://attacker.000webhostapp.com/p")
    assert feed_indicator_keys("http://www.mediafire.com/file/x") == {"http://www.mediafire.com/file/x"}
