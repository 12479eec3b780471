"""NangoClient against the Nango stand-in, in each fault mode."""

from __future__ import annotations

import time

import pytest
from swordfish.integrations.nango import (
    NangoAuthError,
    NangoClient,
    NangoMessageTooLarge,
    NangoNotFound,
    NangoTimeout,
    NangoUnavailable,
)

from devstack.nango_standin import Quarantine

PROVIDER = "microsoft"


@pytest.fixture()
def client(nango, nango_secret):
    return NangoClient(nango.url, nango_secret, timeout=0.3)


def test_fetch_message_returns_the_raw_mime(client, mailbox_message):
    message_id, raw = mailbox_message
    assert client.fetch_message("conn-acme", PROVIDER, message_id) == raw


def test_quarantine_moves_the_message_to_junk(client, nango, mailbox_message):
    message_id, _ = mailbox_message
    client.quarantine("conn-acme", PROVIDER, message_id)
    assert nango.quarantined == [Quarantine("conn-acme", PROVIDER, message_id, "junkemail")]


def test_delete_removes_the_message_and_a_second_delete_is_not_found(client, nango, mailbox_message):
    message_id, _ = mailbox_message
    assert client.delete("conn-acme", PROVIDER, message_id) is None
    assert nango.deleted == [Quarantine("conn-acme", PROVIDER, message_id, "inbox")]
    with pytest.raises(NangoNotFound):
        client.delete("conn-acme", PROVIDER, message_id)
    with pytest.raises(NangoNotFound):
        client.fetch_message("conn-acme", PROVIDER, message_id)


def test_health_passes_when_nango_is_up(client):
    client.health()  # raises on failure; a second call proves the pooled connection is reusable
    client.health()


def test_wrong_secret_is_an_auth_error(nango, mailbox_message):
    client = NangoClient(nango.url, "not-the-secret", timeout=0.3)
    with pytest.raises(NangoAuthError, match="401") as raised:
        client.fetch_message("conn-acme", PROVIDER, mailbox_message[0])
    assert raised.value.status == 401 and "not-the-secret" not in str(raised.value)


def test_unknown_message_is_not_found(client):
    with pytest.raises(NangoNotFound, match="ErrorItemNotFound"):
        client.fetch_message("conn-acme", PROVIDER, "no-such-message")


def test_unknown_connection_is_not_found(client, mailbox_message):
    with pytest.raises(NangoNotFound, match="unknown_connection"):
        client.quarantine("conn-unknown", PROVIDER, mailbox_message[0])


def test_server_error_is_unavailable_not_not_found(client, nango, mailbox_message):
    nango.set_fault("500")
    with pytest.raises(NangoUnavailable) as raised:
        client.fetch_message("conn-acme", PROVIDER, mailbox_message[0])
    assert raised.value.status == 500 and not isinstance(raised.value, NangoNotFound)
    with pytest.raises(NangoUnavailable):
        client.health()


def test_hang_is_a_timeout_after_one_attempt(client, nango, mailbox_message):
    nango.set_fault("hang")
    started = time.monotonic()
    with pytest.raises(NangoTimeout, match="within 0.3s"):
        client.fetch_message("conn-acme", PROVIDER, mailbox_message[0])
    assert time.monotonic() - started < 5  # guard against a hang, not a latency assertion
    assert nango.request_count() == 1  # no hidden retry doubling the wait


def test_each_timeout_is_raised_and_counted_separately(client, nango, mailbox_message):
    nango.set_fault("hang")
    timeouts = 0
    for _ in range(3):
        try:
            client.quarantine("conn-acme", PROVIDER, mailbox_message[0])
        except NangoTimeout:
            timeouts += 1
    assert timeouts == 3 and nango.request_count() == 3
    assert nango.quarantined == []


def test_down_is_unavailable_and_recovers_when_back(client, nango, mailbox_message):
    nango.set_fault("down")
    with pytest.raises(NangoUnavailable, match="cannot connect") as raised:
        client.fetch_message("conn-acme", PROVIDER, mailbox_message[0])
    assert not isinstance(raised.value, NangoTimeout)
    nango.set_fault("ok")
    assert client.fetch_message("conn-acme", PROVIDER, mailbox_message[0]) == mailbox_message[1]


def test_message_over_the_size_limit_is_refused(nango, nango_secret, mailbox_message):
    client = NangoClient(nango.url, nango_secret, timeout=1, max_message_bytes=50)
    with pytest.raises(NangoMessageTooLarge, match="larger than 50 bytes"):
        client.fetch_message("conn-acme", PROVIDER, mailbox_message[0])


def test_missing_connection_id_is_refused_before_any_request(client, nango, mailbox_message):
    with pytest.raises(ValueError, match="connection id"):
        client.fetch_message("", PROVIDER, mailbox_message[0])
    assert nango.request_count() == 0


def test_client_needs_url_and_secret():
    with pytest.raises(ValueError, match="SWORDFISH_NANGO_BASE_URL"):
        NangoClient("", "", timeout=1)
