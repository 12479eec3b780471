"""Putting mail on the emails queue: inline when it fits, through S3 when it does not.

Used by the API's submissions route, `swordfish submit` and the demo and load runners.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from swordfish import constants
from swordfish.pipeline.queues import CORRELATION_ATTRIBUTE
from swordfish.pipeline.submission import S3Source, Submission, inline_submission

# Base64 grows mail by 4/3 and the JSON envelope adds a little: above this raw size we use S3.
INLINE_LIMIT_BYTES = (constants.SQS_MAX_BODY_BYTES * 3) // 4 - 4096


@dataclass(frozen=True)
class Submitted:
    message_id: str
    queue_message_id: str | None
    error: str | None = None


def message_id_for(raw: bytes) -> str:
    """A stable id from content, for mail submitted without one (re-submitting it is a duplicate)."""
    return "sha256-" + hashlib.sha256(raw).hexdigest()[:32]


class Submitter:
    def __init__(self, sqs: Any, queue_url: str, *, s3: Any | None = None, bucket: str | None = None):
        self.sqs, self.queue_url, self.s3, self.bucket = sqs, queue_url, s3, bucket

    def build(self, tenant_id: str, message_id: str, raw: bytes, submitted_at: datetime | None = None, *,
              envelope_recipients: list[str] | None = None) -> Submission:
        submitted_at = submitted_at or datetime.now(UTC)
        if len(raw) <= INLINE_LIMIT_BYTES:
            return inline_submission(tenant_id, message_id, raw, submitted_at, envelope_recipients)
        if self.s3 is None or not self.bucket:
            raise ValueError(f"message {message_id} is {len(raw)} bytes: too large for SQS and no bucket is configured")
        key = f"incoming/{tenant_id}/{uuid.uuid4()}.eml"
        put = self.s3.put_object(Bucket=self.bucket, Key=key, Body=raw)
        return Submission(tenant_id=tenant_id, message_id=message_id, submitted_at=submitted_at,
                          source=S3Source(bucket=self.bucket, key=key, version_id=put.get("VersionId")),
                          envelope_recipients=envelope_recipients or None)

    def send(self, submissions: Iterable[Submission], correlation_id: str | None = None) -> list[Submitted]:
        """SendMessageBatch in tens; returns one result per submission, failures included."""
        results: list[Submitted] = []
        batch: list[Submission] = []
        for submission in submissions:
            batch.append(submission)
            if len(batch) == 10:
                results.extend(self._send_batch(batch, correlation_id))
                batch = []
        if batch:
            results.extend(self._send_batch(batch, correlation_id))
        return results

    def _send_batch(self, batch: list[Submission], correlation_id: str | None) -> list[Submitted]:
        correlation_id = correlation_id or str(uuid.uuid4())
        entries = [{
            "Id": str(i),
            # Without null fields: a worker of the previous release (extra fields forbidden) still
            # reads a submission that states no envelope recipients.
            "MessageBody": s.model_dump_json(exclude_none=True),
            "MessageAttributes": {
                CORRELATION_ATTRIBUTE: {"DataType": "String", "StringValue": correlation_id},
                "tenant_id": {"DataType": "String", "StringValue": s.tenant_id},
            },
        } for i, s in enumerate(batch)]
        response = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        ok = {e["Id"]: e["MessageId"] for e in response.get("Successful", [])}
        failed = {e["Id"]: e.get("Message", e.get("Code", "failed")) for e in response.get("Failed", [])}
        return [Submitted(s.message_id, ok.get(str(i)), failed.get(str(i))) for i, s in enumerate(batch)]
