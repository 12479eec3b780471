"""The submission contract: the body of every message on the emails queue.

Versioned by ``schema_version`` so the format can change while old messages are still queued:
``parse_submission`` accepts every version we ever wrote and returns the newest model.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from swordfish import constants

TenantId = Annotated[str, Field(pattern=constants.TENANT_ID_REGEX)]
_UNPRINTABLE_ID = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def _printable_id(value: str) -> str:
    # The idempotency key is stored and compared exactly as sent, so it may not hold what the
    # database refuses (NUL, lone surrogates) or what logs and headers mangle (control characters).
    if _UNPRINTABLE_ID.search(value):
        raise ValueError("message_id must not contain control characters or unpaired surrogates")
    return value


# An SMTP address in its ASCII form (printable, no spaces; an IDN domain as punycode): it travels in
# the queue message and into a trace row, and SQS refuses control characters and lone surrogates.
EnvelopeAddress = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[!-?A-~]{1,64}@[!-?A-~]{1,255}$")]
MessageId = Annotated[str, Field(min_length=1, max_length=512), AfterValidator(_printable_id)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InlineSource(_Strict):
    """Raw MIME carried in the message body (mail up to the SQS size limit)."""

    kind: Literal["inline"] = "inline"
    raw_mime_b64: str

    @field_validator("raw_mime_b64")
    @classmethod
    def _is_base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"raw_mime_b64 is not valid base64: {exc}") from exc
        return value

    def raw(self) -> bytes:
        return base64.b64decode(self.raw_mime_b64)


class S3Source(_Strict):
    """A pointer to raw MIME in S3, for mail too large for an SQS message."""

    kind: Literal["s3"] = "s3"
    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    version_id: str | None = None


class MailboxSource(_Strict):
    """A message in a connected mailbox, fetched through the Nango proxy."""

    kind: Literal["mailbox"] = "mailbox"
    connection_id: str = Field(min_length=1, max_length=256)
    provider_config_key: str = Field(min_length=1, max_length=128)
    provider_message_id: str = Field(min_length=1, max_length=1024)


Source = Annotated[InlineSource | S3Source | MailboxSource, Field(discriminator="kind")]


class SubmissionV1(_Strict):
    schema_version: Literal[1] = 1
    tenant_id: TenantId
    message_id: MessageId  # the idempotency key, unique within the tenant
    submitted_at: datetime
    source: Source
    # The SMTP RCPT TO addresses, when the submitter knows them (a gateway, a journaling rule): the
    # trace's envelope recipients (issue 28). Absent from older submissions.
    envelope_recipients: list[EnvelopeAddress] | None = Field(
        default=None, max_length=1000)

    @field_validator("submitted_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


Submission = SubmissionV1  # the newest version; older ones are upgraded in parse_submission
# When a SubmissionV2 exists: Annotated[SubmissionV1 | SubmissionV2, Field(discriminator="schema_version")]
# and an upgrade from V1 in parse_submission.
_ANY_VERSION = TypeAdapter(SubmissionV1)


class InvalidSubmission(ValueError):
    """The body is not JSON or not a submission of any known version. Retrying cannot help."""


def parse_submission(body: str | bytes) -> Submission:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidSubmission(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidSubmission(f"body must be a JSON object, got {type(data).__name__}")
    data.setdefault("schema_version", 1)  # bodies written before versioning
    try:
        return _ANY_VERSION.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidSubmission(f"not a valid submission: {problems}") from exc


def inline_submission(tenant_id: str, message_id: str, raw: bytes, submitted_at: datetime | None = None,
                      envelope_recipients: list[str] | None = None) -> Submission:
    return Submission(tenant_id=tenant_id, message_id=message_id,
                      submitted_at=submitted_at or datetime.now(UTC),
                      source=InlineSource(raw_mime_b64=base64.b64encode(raw).decode()),
                      envelope_recipients=envelope_recipients or None)
