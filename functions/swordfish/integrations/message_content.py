"""The raw message behind a verdict, for the console: re-read from the raw-submission archive.

The verdict row points at the archive object and line of its submission (written before analysis,
one object per batch). That submission is resolved the way ``swordfish backup replay`` resolves it:
inline MIME as is, an S3 pointer from the large-mail bucket, a mailbox pointer through Nango (behind
its breaker). Nothing here is kept: each view reads it again, and it is gone when the archive's
retention removes the object (or when the mail it points at is gone).
"""

from __future__ import annotations

from typing import Any

from swordfish.integrations.raw_archive import ArchiveEntryMissing, RawArchiveStore
from swordfish.pipeline.ports import MailLoader, PermanentFailure, RetryLater
from swordfish.pipeline.submission import InvalidSubmission, MailboxSource, Submission, parse_submission


class ContentUnavailable(Exception):
    """The message cannot be shown; the text says why, for the analyst."""


class ArchivedMessageSource:
    def __init__(self, archive: RawArchiveStore, mail: MailLoader):
        self.archive, self.mail = archive, mail

    def load(self, tenant_id: str, message_id: str, key: str | None, line: int | None,
             provider_message_id: str | None = None) -> bytes:
        """``provider_message_id``: where the mailbox message is now, when a quarantine or release
        moved it (Graph may give a moved message a new id); the archived pointer is the original."""
        return self.load_submission(tenant_id, message_id, key, line, provider_message_id)[1]

    def load_submission(self, tenant_id: str, message_id: str, key: str | None, line: int | None,
                        provider_message_id: str | None = None) -> tuple[Submission, bytes]:
        """The archived submission (its envelope recipients, for the trace backfill) and the raw MIME."""
        if not key or line is None:
            raise ContentUnavailable("no archived copy of this message (the raw archive was off or its write "
                                     "failed when it arrived)")
        try:
            entry = self.archive.entry(key, line)
            submission = parse_submission(entry["body"])
        except ArchiveEntryMissing as exc:
            raise ContentUnavailable(str(exc)) from exc
        except (InvalidSubmission, KeyError, ValueError, TypeError, OSError, EOFError) as exc:
            raise ContentUnavailable(f"the archived submission cannot be read: {type(exc).__name__}") from exc
        except Exception as exc:  # S3 unreachable or refusing: the page still shows the verdict
            raise ContentUnavailable(f"the raw archive could not be read: {_short(exc)}") from exc
        # Defence in depth under the row-level security that found the pointer: the entry must be this
        # tenant's message, or nothing is shown.
        if submission.tenant_id != tenant_id or submission.message_id != message_id:
            raise ContentUnavailable("the archived entry is not this message")
        loaded = submission
        if provider_message_id and isinstance(submission.source, MailboxSource):
            loaded = submission.model_copy(update={"source": submission.source.model_copy(
                update={"provider_message_id": provider_message_id})})
        try:
            return submission, self.mail.load(loaded)
        except PermanentFailure as exc:
            raise ContentUnavailable(f"the message is no longer available: {exc.reason}") from exc
        except RetryLater as exc:
            raise ContentUnavailable(f"the mailbox service is unavailable; try again later ({exc.reason})") from exc
        except Exception as exc:  # Nango or S3 failing: the page still shows the verdict
            raise ContentUnavailable(f"the message could not be fetched: {_short(exc)}") from exc


def _short(exc: Any) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
