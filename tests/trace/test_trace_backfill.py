"""`swordfish trace backfill` (issue 28): verdicts stored before traces existed get theirs from the
raw archive (moto's S3, the real archive reader), envelope recipients included; a verdict whose
archive entry is gone is counted and left for a later run; running again writes nothing twice; the
owner role goes through the pooler like the application (no session state)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import boto3
from swordfish.integrations.mail_source import MailSourceLoader
from swordfish.integrations.message_content import ArchivedMessageSource
from swordfish.integrations.raw_archive import S3RawMailArchive
from swordfish.pipeline.ports import IncomingRecord
from swordfish.pipeline.submission import inline_submission
from swordfish.store.database import Database
from swordfish.store.traces import TraceSearch, backfill, search
from swordfish.store.verdicts import VerdictRecord, save_verdicts

from tests.trace.conftest import store

MAIL = (b"From: it@old-lure.example\r\nTo: sam@a.example\r\nSubject: Password expiry\r\n"
        b"Message-ID: <old-1@old-lure.example>\r\n"
        b"Received: from mx.old-lure.example (mx.old-lure.example [198.51.100.23]) by mx.a.example; now\r\n"
        b"\r\nReset at https://reset.old-lure.com/now before it expires.\r\n")


def test_older_verdicts_get_their_trace_from_the_raw_archive_once(app_db, database, moto_server):
    s3 = boto3.client("s3", endpoint_url=moto_server.url, region_name="eu-west-1")
    bucket = f"archive-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    archive = S3RawMailArchive(s3, bucket)
    submissions = [inline_submission("tenant-a", f"old-{i}", MAIL, envelope_recipients=["sam@a.example"])
                   for i in range(3)]
    key = archive.archive([IncomingRecord(f"q{i}", s.model_dump_json(exclude_none=True), None)
                           for i, s in enumerate(submissions)])
    now = datetime.now(UTC)
    store(app_db, *[VerdictRecord(tenant_id="tenant-a", message_id=f"old-{i}", verdict="phishing", score=8.0,
                                  reasons=[{"name": "CREDENTIAL_PHISHING_LANGUAGE", "weight": 4.0}], parse_problems=[],
                                  subject="Password expiry", sender="it@old-lure.example", submitted_at=now,
                                  sqs_sent_at=None, raw_archive_key=key, raw_archive_line=i) for i in range(3)])
    with app_db.connection() as conn, conn.transaction():  # one whose archive object is gone
        save_verdicts(conn, [VerdictRecord(tenant_id="tenant-b", message_id="gone", verdict="clean", score=0,
                                           reasons=[], parse_problems=[], subject=None, sender=None, submitted_at=now,
                                           sqs_sent_at=None, raw_archive_key="raw-submissions/2026/x.jsonl.gz",
                                           raw_archive_line=0)])
    source = ArchivedMessageSource(archive, MailSourceLoader(s3_client=s3, mailbox_fetch=None, max_bytes=10**7))

    def load(tenant_id, message_id, key, line):
        submission, raw = source.load_submission(tenant_id, message_id, key, line)
        return submission.envelope_recipients, raw

    owner = Database(database.owner_url, max_size=1)  # what the command uses: the owner, through the pooler
    try:
        assert backfill(owner, load, batch=2) == {"traced": 3, "unavailable": 1, "already": 0}
        assert backfill(owner, load, batch=2) == {"traced": 0, "unavailable": 1, "already": 0}  # idempotent
    finally:
        owner.close()
    with app_db.connection() as conn, conn.transaction():
        rows, _ = search(conn, TraceSearch(recipient="sam@a.example", link_domain="old-lure.com"), None)
    assert sorted(r["message_id"] for r in rows) == ["old-0", "old-1", "old-2"]
    assert rows[0]["sending_ip"] == "198.51.100.23" and rows[0]["envelope_recipients"] == ["sam@a.example"]
    assert rows[0]["header_message_id"] == "<old-1@old-lure.example>"
