"""Fetching the raw MIME a submission points at: inline, an S3 object, or a mailbox via Nango."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from swordfish.pipeline.ports import PermanentFailure
from swordfish.pipeline.submission import InlineSource, MailboxSource, S3Source, Submission


class MailSourceLoader:
    def __init__(self, *, s3_client: Any | None, mailbox_fetch: Any | None, max_bytes: int):
        self.s3 = s3_client
        self.mailbox_fetch = mailbox_fetch  # callable(MailboxSource) -> bytes, breaker-wrapped
        self.max_bytes = max_bytes

    def load(self, submission: Submission) -> bytes:
        source = submission.source
        if isinstance(source, InlineSource):
            return source.raw()
        if isinstance(source, S3Source):
            return self._from_s3(source)
        if isinstance(source, MailboxSource):
            if self.mailbox_fetch is None:
                raise PermanentFailure("mailbox sources need Nango, which is not configured "
                                       "(set SWORDFISH_NANGO_BASE_URL)", "mailbox_unconfigured")
            return self.mailbox_fetch(source)
        raise PermanentFailure(f"unknown source kind {source!r}", "invalid_submission")

    def _from_s3(self, source: S3Source) -> bytes:
        if self.s3 is None:
            raise PermanentFailure("S3 sources need a bucket client, which is not configured", "s3_unconfigured")
        kwargs = {"Bucket": source.bucket, "Key": source.key}
        if source.version_id:
            kwargs["VersionId"] = source.version_id
        try:
            obj = self.s3.get_object(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "NoSuchBucket", "NoSuchVersion", "404", "AccessDenied"):
                raise PermanentFailure(f"s3://{source.bucket}/{source.key}: {code}", "mail_not_found") from exc
            raise  # throttling, 5xx: let SQS redeliver
        size = obj.get("ContentLength") or 0
        if size > self.max_bytes:
            obj["Body"].close()
            raise PermanentFailure(f"s3://{source.bucket}/{source.key} is {size} bytes, over the "
                                   f"{self.max_bytes}-byte limit", "message_too_large")
        with obj["Body"] as body:
            return body.read(self.max_bytes + 1)

