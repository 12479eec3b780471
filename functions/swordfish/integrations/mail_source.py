"""Fetching the raw MIME a submission points at: inline, an S3 object, or a mailbox via Nango."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from swordfish.integrations.nango import (
    NangoAuthError,
    NangoClient,
    NangoMessageTooLarge,
    NangoNotFound,
    NangoUnavailable,
)
from swordfish.pipeline.processor import PermanentFailure, RetryLater
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
        except BotoCoreError:
            raise
        size = obj.get("ContentLength") or 0
        if size > self.max_bytes:
            obj["Body"].close()
            raise PermanentFailure(f"s3://{source.bucket}/{source.key} is {size} bytes, over the "
                                   f"{self.max_bytes}-byte limit", "message_too_large")
        with obj["Body"] as body:
            return body.read(self.max_bytes + 1)


class NangoMailbox:
    """Mailbox fetch and quarantine through the Nango proxy, with Nango's errors mapped to outcomes:
    gone or too large → the DLQ with the reason; Nango down → back on the queue later."""

    def __init__(self, client: NangoClient, retry_delay_seconds: int = 60):
        self.client, self.retry_delay_seconds = client, retry_delay_seconds

    @classmethod
    def from_settings(cls, settings) -> NangoMailbox | None:
        if not settings.nango_base_url:
            return None
        return cls(NangoClient(settings.nango_base_url, settings.nango_secret_key or "", settings.nango_timeout_seconds,
                               max_message_bytes=settings.max_message_bytes))

    def fetch(self, source: MailboxSource) -> bytes:
        try:
            return self.client.fetch_message(source.connection_id, source.provider_config_key,
                                             source.provider_message_id)
        except NangoNotFound as exc:
            raise PermanentFailure(f"mailbox message not found: {exc}", "mail_not_found") from exc
        except NangoMessageTooLarge as exc:
            raise PermanentFailure(str(exc), "message_too_large") from exc
        except NangoAuthError as exc:
            # The connection's OAuth grant was revoked or expired: retrying will not fix it, an admin must.
            raise PermanentFailure(f"Nango refused the connection {source.connection_id}: {exc}",
                                   "mailbox_auth") from exc
        except NangoUnavailable as exc:
            raise RetryLater(f"Nango unavailable: {exc}", self.retry_delay_seconds) from exc

    def quarantine(self, submission: Submission) -> None:
        source = submission.source
        self.client.quarantine(source.connection_id, source.provider_config_key, source.provider_message_id)
