"""What can go wrong with a backup or a restore: every error names the file, segment or time at fault."""

from __future__ import annotations


class BackupError(Exception):
    """Base class: a backup, archive or restore operation failed; the message says what and where."""


class WrongKey(BackupError):
    """The file's data key cannot be unwrapped with the configured KMS key, or does not fit the file."""


class TamperedFile(BackupError):
    """A backup or WAL file fails authentication: a changed byte, a swapped or renamed file."""


class TruncatedFile(TamperedFile):
    """A backup or WAL file ends before its final authenticated chunk."""


class BackupFailed(BackupError):
    """Taking a base backup failed (pg_basebackup, a full disk, a failing writer); nothing is listed usable."""


class MissingWal(BackupError):
    """A WAL segment needed to reach the restore target is not in the archive."""


class InvalidRestoreTarget(BackupError):
    """The restore target is in the future, before the oldest usable backup, or after the archived WAL."""


class IntegrityError(BackupError):
    """A restored database fails pg_verifybackup, pg_amcheck, or its row counts and checksums."""
