"""Every breaker's fallback, against the Nango stand-in, the feed server, Redis and moto with real faults."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime

import boto3
import pytest
from swordfish import constants
from swordfish.integrations.feed_refresher import FeedFetcher, FeedRefresher
from swordfish.integrations.indicators import IndicatorStore
from swordfish.integrations.nango import NangoClient, NangoUnavailable
from swordfish.pipeline.ports import PermanentFailure, QuarantineEntry, ReleaseFailed, RetryLater
from swordfish.pipeline.queues import SqsQueuePort
from swordfish.pipeline.submission import Submission
from swordfish.resilience.circuit_breaker import BREAKERS, BreakerRegistry
from swordfish.resilience.fallbacks import (
    FALLBACKS,
    GuardedFeedFetcher,
    GuardedIndicatorLookup,
    GuardedRemediator,
    GuardedS3,
    RemediationDeferred,
    guarded_mailbox_fetch,
)

from devstack.feed_server import FeedServer
from devstack.nango_standin import NangoStandin
from devstack.services import RedisServer, free_port
from tests.resilience.breaker_helpers import stop_redis

SECRET = "test-secret"
RAW = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def nango():
    with NangoStandin(secret_key=SECRET, mailboxes={"conn-1": {"msg-1": RAW}}, hang_seconds=3) as server:
        yield server


@pytest.fixture(autouse=True)
def nango_ok(nango):
    nango.set_fault("ok")
    yield
    nango.set_fault("ok")


@pytest.fixture()
def registry(breaker_settings):
    # A long recovery: these tests look at the open circuit, not at its recovery.
    return BreakerRegistry(settings=breaker_settings(breaker_recovery_timeout_seconds=30))


def mailbox_submission(message_id: str = "msg-1") -> Submission:
    return Submission.model_validate({
        "tenant_id": "acme", "message_id": f"m-{uuid.uuid4().hex[:6]}", "submitted_at": datetime.now(UTC),
        "source": {"kind": "mailbox", "connection_id": "conn-1", "provider_config_key": "microsoft",
                   "provider_message_id": message_id},
    })


def test_every_breaker_has_a_documented_fallback_saying_fail_open_or_fail_closed():
    assert set(FALLBACKS) == set(BREAKERS)
    assert {p.security for p in FALLBACKS.values()} <= {"fail-open", "fail-closed"}
    assert FALLBACKS["nango_fetch"].security == "fail-closed"
    assert FALLBACKS["redis_indicators"].security == "fail-open"


def test_nango_fetch_sends_the_record_back_with_a_delay_once_its_breaker_opens(registry, nango):
    fetch = guarded_mailbox_fetch(NangoClient(nango.url, SECRET, timeout=0.5), registry)
    source = mailbox_submission().source
    assert fetch(source) == RAW
    nango.set_fault("500")
    for _ in range(5):
        with pytest.raises(NangoUnavailable):
            fetch(source)
    before = nango.request_count()
    with pytest.raises(RetryLater) as retry:
        fetch(source)
    assert nango.request_count() == before  # the open breaker spared Nango the call
    assert 25 <= retry.value.delay_seconds <= 30  # until the breaker may half-open
    assert "nango_fetch" in retry.value.reason


def test_a_hanging_nango_opens_the_fetch_breaker_through_timeouts(registry, nango):
    fetch = guarded_mailbox_fetch(NangoClient(nango.url, SECRET, timeout=0.2), registry)
    nango.set_fault("hang")
    for _ in range(5):
        with pytest.raises(NangoUnavailable, match="0.2s"):
            fetch(mailbox_submission().source)
    with pytest.raises(RetryLater):
        fetch(mailbox_submission().source)


def test_a_missing_message_is_a_permanent_failure_and_leaves_the_breaker_closed(registry, nango):
    fetch = guarded_mailbox_fetch(NangoClient(nango.url, SECRET, timeout=0.5), registry)
    for _ in range(6):
        with pytest.raises(PermanentFailure) as failure:
            fetch(mailbox_submission("gone").source)
        assert failure.value.code == "mail_not_found"
    assert registry.status("nango_fetch").state == "CLOSED"


@pytest.fixture()
def retry_queue(moto_server):
    sqs = boto3.client("sqs", endpoint_url=moto_server.url, region_name="eu-west-1")
    url = sqs.create_queue(QueueName=f"{constants.REMEDIATION_RETRY_QUEUE_NAME}-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    return sqs, url


def test_remediation_is_deferred_to_the_retry_queue_once_nango_remediate_opens(registry, nango, retry_queue):
    sqs, url = retry_queue
    port = SqsQueuePort(sqs, queue_url=url, dlq_url=url, remediation_queue_url=url)
    remediator = GuardedRemediator(NangoClient(nango.url, SECRET, timeout=0.5), defer=port.defer_remediation,
                                   registry=registry)
    assert remediator.quarantine(mailbox_submission()) == "quarantined"
    assert len(nango.quarantined) >= 1
    nango.set_fault("500")
    for _ in range(5):
        with pytest.raises(NangoUnavailable):
            remediator.quarantine(mailbox_submission())
    submission = mailbox_submission()
    assert remediator.quarantine(submission) == "deferred"
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)["Messages"]
    payload = json.loads(message["Body"])
    assert (payload["action"], payload["tenant_id"], payload["message_id"]) == (
        "quarantine", "acme", submission.message_id)
    assert payload["source"]["provider_message_id"] == "msg-1"
    # Separate breakers: failing quarantines do not stop mail from being fetched.
    assert registry.status("nango_fetch").state == "CLOSED"


def test_without_a_deferral_port_an_open_remediation_breaker_raises_for_the_caller_to_defer(registry):
    registry.force_open("nango_remediate", actor="test", reason="drill")
    remediator = GuardedRemediator(NangoClient(f"http://127.0.0.1:{free_port()}", SECRET, timeout=0.2),
                                   registry=registry)
    with pytest.raises(RemediationDeferred, match="nango_remediate"):
        remediator.quarantine(mailbox_submission())


class ListLedger:
    def __init__(self, fail: bool = False):
        self.entries, self.fail = [], fail

    def record_quarantine(self, entry):
        if self.fail:
            raise RuntimeError("ledger down")
        self.entries.append(entry)


def _entry(submission) -> QuarantineEntry:
    source = submission.source
    return QuarantineEntry(submission.tenant_id, submission.message_id, source.connection_id,
                           source.provider_config_key, source.provider_message_id)


def test_a_quarantine_is_remembered_and_a_release_moves_the_message_back(registry, nango):
    nango.add_message("conn-1", "msg-rel", RAW)
    ledger = ListLedger()
    remediator = GuardedRemediator(NangoClient(nango.url, SECRET, timeout=0.5), registry=registry, ledger=ledger)
    submission = mailbox_submission("msg-rel")
    assert remediator.quarantine(submission) == "quarantined"
    assert nango.folder_of("conn-1", "msg-rel") == "junkemail"
    assert ledger.entries == [_entry(submission)]  # the id Nango answered for the moved message
    assert remediator.release(ledger.entries[0]) == "msg-rel"
    assert nango.folder_of("conn-1", "msg-rel") == "inbox"
    assert [m.message_id for m in nango.released][-1] == "msg-rel"


def test_when_a_move_gives_the_message_a_new_id_the_release_uses_it(registry):
    with NangoStandin(secret_key=SECRET, mailboxes={"conn-1": {"msg-graph": RAW}}, new_ids_on_move=True) as graph:
        ledger = ListLedger()
        remediator = GuardedRemediator(NangoClient(graph.url, SECRET, timeout=0.5), registry=registry, ledger=ledger)
        assert remediator.quarantine(mailbox_submission("msg-graph")) == "quarantined"
        [entry] = ledger.entries
        assert entry.provider_message_id == "msg-graph~1" and graph.folder_of("conn-1", "msg-graph~1") == "junkemail"
        assert remediator.release(entry) == "msg-graph~2"  # the id in the inbox now
        assert graph.folder_of("conn-1", "msg-graph~2") == "inbox"


def test_a_failed_ledger_write_leaves_the_quarantine_standing(registry, nango):
    remediator = GuardedRemediator(NangoClient(nango.url, SECRET, timeout=0.5), registry=registry,
                                   ledger=ListLedger(fail=True))
    nango.add_message("conn-1", "msg-led", RAW)
    assert remediator.quarantine(mailbox_submission("msg-led")) == "quarantined"
    assert nango.folder_of("conn-1", "msg-led") == "junkemail"


@pytest.mark.parametrize(("fault", "secret", "message_id", "kind"), [
    ("500", SECRET, "msg-1", "unavailable"),
    ("down", SECRET, "msg-1", "unavailable"),
    ("ok", "wrong-secret", "msg-1", "refused"),
    ("ok", SECRET, "not-in-the-mailbox", "gone"),
])
def test_a_release_that_fails_says_why_and_moves_nothing(registry, nango, fault, secret, message_id, kind):
    nango.add_message("conn-1", "msg-stay", RAW)
    GuardedRemediator(NangoClient(nango.url, SECRET, timeout=0.5), registry=registry).quarantine(
        mailbox_submission("msg-stay"))
    remediator = GuardedRemediator(NangoClient(nango.url, secret, timeout=0.5), registry=registry)
    nango.set_fault(fault)
    entry = QuarantineEntry("acme", "m-x", "conn-1", "microsoft", message_id)
    with pytest.raises(ReleaseFailed) as failed:
        remediator.release(entry)
    nango.set_fault("ok")
    assert failed.value.kind == kind and "nothing was released" in str(failed.value).lower()
    assert nango.folder_of("conn-1", "msg-stay") == "junkemail"


def test_the_quarantine_breaker_covers_releases_too(registry, nango):
    remediator = GuardedRemediator(NangoClient(nango.url, SECRET, timeout=0.5), registry=registry)
    nango.set_fault("500")
    # Quarantines failing open the shared breaker (within its threshold of 5; on a loaded machine a
    # 0.5 s client timeout has been seen to trip it a call early, so the count is not what is tested)...
    with pytest.raises(RemediationDeferred):
        for _ in range(6):
            with contextlib.suppress(NangoUnavailable):
                remediator.quarantine(mailbox_submission())
    before = nango.request_count()
    with pytest.raises(ReleaseFailed) as failed:  # ...and a release is then refused without calling Nango
        remediator.release(QuarantineEntry("acme", "m-y", "conn-1", "microsoft", "msg-1"))
    assert nango.request_count() == before
    assert failed.value.kind == "unavailable" and "circuit breaker" in str(failed.value)


def test_indicator_lookup_answers_from_the_last_snapshot_marked_degraded_when_redis_is_stopped(registry):
    server = RedisServer().start()
    try:
        store = IndicatorStore.from_url(server.url, 0.2)
        store.replace("urlhaus", ["evil.example/payload"])
        store.replace("openphish", ["phish.example"])
        lookup = GuardedIndicatorLookup(store, registry)
        candidates = {"evil.example/payload", "phish.example", "fine.example"}
        expected = {"evil.example/payload": "urlhaus", "phish.example": "openphish"}
        assert lookup.match(candidates) == expected
        assert lookup.last_lookup_degraded is False
        stop_redis(server)
        for _ in range(6):  # failures while closed, then the open breaker: the snapshot answers both
            assert lookup.match(candidates) == expected
            assert lookup.last_lookup_degraded is True
        assert registry.status("redis_indicators").state == "OPEN"
    finally:
        stop_redis(server)


def test_indicator_lookup_with_no_snapshot_yet_finds_nothing_and_is_degraded(registry):
    store = IndicatorStore.from_url(f"unix:///tmp/no-such-redis-{uuid.uuid4().hex}.sock", 0.2)
    lookup = GuardedIndicatorLookup(store, registry)
    assert lookup.match({"evil.example"}) == {}
    assert lookup.last_lookup_degraded is True


def test_feed_refresh_keeps_the_last_good_snapshot_while_the_feed_server_is_down(breaker_settings, redis_url, clock):
    registry = BreakerRegistry(settings=breaker_settings(breaker_recovery_timeout_seconds=1,
                                                         breaker_success_threshold=1))
    with FeedServer(hang_seconds=2) as feeds:
        store = IndicatorStore.from_url(redis_url, 2.0)
        # "down" closes the listener (refused at once): the fetch timeout never decides here, and at 0.5 s the
        # healthy first fetch timed out on a loaded 2-core machine (1.3 s, three test workers)
        refresher = FeedRefresher(store, GuardedFeedFetcher(FeedFetcher(10.0), registry), feeds.urls)
        assert refresher.refresh("urlhaus").outcome == "loaded"
        loaded = store.status()["urlhaus"]
        feeds.set_fault("down")
        for _ in range(6):
            result = refresher.refresh("urlhaus")
            assert result.outcome == "kept_last_good"
        assert "breaker feed_urlhaus is OPEN" in result.error  # the last one never touched the network
        after = store.status()["urlhaus"]
        assert (after.indicators, after.refreshed_at) == (loaded.indicators, loaded.refreshed_at)
        assert registry.status("feed_openphish").state == "CLOSED"  # one feed's breaker per feed
        feeds.set_fault("ok")
        clock.advance_to(registry.status("feed_urlhaus").opened_at + 1)  # past the 1 s recovery window
        assert refresher.refresh("urlhaus").outcome == "loaded"  # the probe succeeds and closes it
        assert registry.status("feed_urlhaus").state == "CLOSED"


def test_s3_request_errors_do_not_open_the_breaker_but_an_unreachable_s3_does(registry, moto_server):
    s3 = boto3.client("s3", endpoint_url=moto_server.url, region_name="eu-west-1")
    bucket = f"mail-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket=bucket, Key="big.eml", Body=RAW)
    guarded = GuardedS3(s3, registry)
    assert guarded.get_object(Bucket=bucket, Key="big.eml")["Body"].read() == RAW
    for _ in range(6):
        with pytest.raises(s3.exceptions.NoSuchKey):
            guarded.get_object(Bucket=bucket, Key="missing.eml")
    assert registry.status("s3_mail").state == "CLOSED"

    from botocore.config import Config

    down = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{free_port()}", region_name="eu-west-1",
                        config=Config(connect_timeout=0.2, retries={"max_attempts": 1}))
    unreachable = GuardedS3(down, registry)
    for _ in range(5):
        with pytest.raises(Exception, match="Could not connect"):
            unreachable.get_object(Bucket=bucket, Key="big.eml")
    with pytest.raises(RetryLater, match="s3_mail"):
        unreachable.get_object(Bucket=bucket, Key="big.eml")
