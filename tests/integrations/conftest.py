"""Fixtures for the threat-feed and Nango tests: the local stand-ins and an indicator store."""

from __future__ import annotations

import pytest
from swordfish.integrations.indicators import IndicatorStore

from devstack.feed_server import FeedServer
from devstack.nango_standin import NangoStandin
from devstack.services import REPO_ROOT

FEED_SAMPLES = REPO_ROOT / "samples" / "feeds"
NANGO_SECRET = "test-nango-secret"


@pytest.fixture()
def feed_server():
    with FeedServer(FEED_SAMPLES, hang_seconds=30) as server:
        yield server


@pytest.fixture()
def store(redis_url):
    store = IndicatorStore.from_url(redis_url, timeout_seconds=2.0)
    yield store
    store.client.close()


MAILBOX_MESSAGE = (
    b"From: FedEx <tracking@fedex-delivery.example>\r\nTo: ap@acme.example\r\n"
    b"Subject: Your parcel is on hold\r\nMessage-ID: <hold-1@fedex-delivery.example>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Pay the customs fee: https://drive.google.com/file/d/1qtm5hdD1b-Z4XPhkvoWHH72jbQaJyRu8/view\r\n"
)
# Graph message ids carry '=', '+' and '/': the client must keep them one path segment.
MESSAGE_ID = "AAMkAGI2=/+msg1"


@pytest.fixture()
def nango():
    mailboxes = {"conn-acme": {MESSAGE_ID: MAILBOX_MESSAGE}}
    with NangoStandin(NANGO_SECRET, mailboxes, hang_seconds=30) as server:
        yield server


@pytest.fixture()
def nango_secret() -> str:
    return NANGO_SECRET


@pytest.fixture()
def mailbox_message() -> tuple[str, bytes]:
    """(Graph message id, raw MIME) of the one message in connection ``conn-acme``."""
    return MESSAGE_ID, MAILBOX_MESSAGE
