"""The embedded stack's large mail on disk (issue 25: moto's S3 lost it with a restart): what the
submitter puts, the pipeline's loader reads by the same pointer; a pointer out of the folder or to
nothing is mail not found (dead-lettered with its reason), never a file elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from swordfish.integrations.large_mail import DirLargeMailStore
from swordfish.integrations.mail_source import MailSourceLoader
from swordfish.pipeline.ports import PermanentFailure
from swordfish.pipeline.submission import S3Source, Submission
from swordfish.pipeline.submitter import INLINE_LIMIT_BYTES, Submitter


def pointer(bucket: str, key: str) -> Submission:
    return Submission(tenant_id="acme-corp", message_id="m1", submitted_at=datetime.now(UTC),
                      source=S3Source(bucket=bucket, key=key))


def test_large_mail_is_put_and_read_back_through_the_same_pointer(tmp_path):
    store = DirLargeMailStore(tmp_path / "large-mail")
    raw = b"Subject: big\r\n\r\n" + b"x" * (INLINE_LIMIT_BYTES + 10)
    submission = Submitter(sqs=None, queue_url="", s3=store, bucket="swordfish-large-mail-0-eu-west-1").build(
        "acme-corp", "m1", raw)
    assert submission.source.kind == "s3" and submission.source.version_id is None
    assert MailSourceLoader(s3_client=store, mailbox_fetch=None, max_bytes=len(raw) + 1).load(submission) == raw
    assert store.count() == 1 and not list((tmp_path / "large-mail").rglob(".tmp-*"))
    # A restarted stack's store over the same folder reads it (moto's restart no longer loses it).
    assert DirLargeMailStore(tmp_path / "large-mail").get_object(
        Bucket=submission.source.bucket, Key=submission.source.key)["ContentLength"] == len(raw)


@pytest.mark.parametrize("bucket,key", [("swordfish-large-mail", "incoming/acme-corp/gone.eml"),
                                        ("swordfish-large-mail", "../../secret.txt"),
                                        ("../.", "secret.txt")])
def test_a_pointer_to_nothing_or_out_of_the_folder_is_mail_not_found(tmp_path, bucket, key):
    (tmp_path / "secret.txt").write_text("not mail")
    store = DirLargeMailStore(tmp_path / "large-mail")
    loader = MailSourceLoader(s3_client=store, mailbox_fetch=None, max_bytes=1_000_000)
    with pytest.raises(PermanentFailure) as caught:
        loader.load(pointer(bucket, key))
    assert caught.value.code == "mail_not_found" and "NoSuchKey" in caught.value.reason
    with pytest.raises(ValueError):
        store.put_object(Bucket="swordfish-large-mail", Key="../../escape.eml", Body=b"x")


def test_large_mail_expires_as_the_buckets_lifecycle_rule_says(tmp_path):
    import os

    from swordfish import constants

    store = DirLargeMailStore(tmp_path / "large-mail")
    store.put_object(Bucket="b-large", Key="incoming/t/old.eml", Body=b"old")
    store.put_object(Bucket="b-large", Key="incoming/t/new.eml", Body=b"new")
    now = 2_000_000_000.0
    old = tmp_path / "large-mail" / "b-large" / "incoming" / "t" / "old.eml"
    os.utime(old, (now - 31 * 86_400, now - 31 * 86_400))
    os.utime(old.with_name("new.eml"), (now - 29 * 86_400, now - 29 * 86_400))
    assert store.prune(constants.LARGE_MAIL_EXPIRY_DAYS, now=now) == 1
    assert store.count() == 1 and not old.exists()
