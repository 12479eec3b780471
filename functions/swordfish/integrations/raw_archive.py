"""The raw-submission archive on S3: every batch's submissions, written before analysis, so a
database restored to an earlier point can be brought forward by replaying them (`swordfish backup
replay --since T`); verdicts are idempotent on (tenant_id, message_id), so replaying twice is harmless.

One gzipped JSON-lines object per batch under ``raw-submissions/YYYY/MM/DD/HH/`` (the hour it was
received, UTC): one PUT per batch, and a replay lists only the hours it needs. The bucket encrypts
at rest with KMS (SSE-KMS on AWS); the body is the SQS message body as received (inline MIME, or the
S3 / mailbox pointer, which the replay resolves again).
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from swordfish.constants import RAW_MAIL_ARCHIVE_PREFIX as PREFIX

# One batch is at most 10 SQS bodies of 256 KB: a bigger object is not one of ours.
MAX_OBJECT_BYTES = 8 * 1024 * 1024


class ArchiveEntryMissing(LookupError):
    """The archived submission a verdict points at cannot be read (expired, or not an entry)."""


def _now() -> datetime:
    return datetime.now(UTC)


class RawArchiveStore:
    """The archive's layout and format; subclasses store objects (S3 on AWS, a folder locally)."""

    prefix: str
    clock: Callable[[], datetime]

    def _put(self, key: str, body: bytes) -> None: ...
    def _get(self, key: str, max_bytes: int) -> bytes: ...  # ArchiveEntryMissing when gone
    def _keys(self, prefix: str) -> list[str]: ...
    def _folders(self, prefix: str) -> list[str]: ...  # the next level's names under prefix ("2026", ...)

    def archive(self, records: Iterable[Any]) -> str | None:
        """Write one object for these records (``IncomingRecord``s); returns its key (None if empty)."""
        received = self.clock()
        lines = [json.dumps({"received_at": received.isoformat(), "queue_message_id": r.queue_message_id,
                             "sent_at": r.sent_at.isoformat() if r.sent_at else None,
                             "correlation_id": r.correlation_id, "body": r.body}) for r in records]
        if not lines:
            return None
        key = f"{self.prefix}{received:%Y/%m/%d/%H}/{received:%Y%m%dT%H%M%S.%f}Z-{uuid.uuid4().hex[:12]}.jsonl.gz"
        self._put(key, gzip.compress("\n".join(lines).encode(), 1))
        return key

    def entry(self, key: str, line: int, *, max_bytes: int = MAX_OBJECT_BYTES) -> dict:
        """One archived submission: line ``line`` of object ``key`` (what a verdict row points at).
        Raises ``ArchiveEntryMissing`` when the object is gone (retention) or has no such line."""
        if not key.startswith(self.prefix) or line < 0:
            raise ArchiveEntryMissing(f"{key!r} line {line} is not an archive entry")
        data = self._get(key, max_bytes)
        if len(data) > max_bytes:
            raise ArchiveEntryMissing(f"archive object {key} is over {max_bytes} bytes: not read")
        lines = gzip.decompress(data).decode("utf-8", "replace").splitlines()
        if line >= len(lines):
            raise ArchiveEntryMissing(f"archive object {key} has no line {line}")
        return json.loads(lines[line])

    def since(self, since: datetime, until: datetime | None = None) -> Iterator[dict]:
        """Archived entries received at or after ``since`` (and before ``until``), oldest object first."""
        until = until or self.clock()
        hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        while hour <= until:
            for key in sorted(self._keys(f"{self.prefix}{hour:%Y/%m/%d/%H}/")):
                try:
                    body = self._get(key, MAX_OBJECT_BYTES)
                except ArchiveEntryMissing:  # pruned between the listing and the read
                    continue
                for line in gzip.decompress(body).decode().splitlines():
                    entry = json.loads(line)
                    received = datetime.fromisoformat(entry["received_at"])
                    if since <= received and (until is None or received <= until):
                        yield entry
            hour += timedelta(hours=1)


    def keys_from(self, since: datetime | None = None, *, after: str | None = None) -> Iterator[str]:
        """Every object key from ``since``'s hour on (and after the key ``after``), in key (= time)
        order: the year, month, day and hour folders that exist are listed one level at a time, so a
        year of archive is not walked hour by hour and memory holds one hour's listing."""
        floors = []
        if since is not None:
            floors.append(f"{since.astimezone(UTC):%Y/%m/%d/%H}")
        if after is not None and after.startswith(self.prefix):
            floors.append("/".join(after[len(self.prefix):].split("/")[:4]))
        floor = max(floors).split("/") if floors else None

        def walk(prefix: str, depth: int, bounded: bool) -> Iterator[str]:
            for name in sorted(self._folders(prefix)):
                if bounded and name < floor[depth]:
                    continue
                inner = bounded and name == floor[depth]
                if depth == 3:
                    yield from (k for k in sorted(self._keys(f"{prefix}{name}/")) if after is None or k > after)
                else:
                    yield from walk(f"{prefix}{name}/", depth + 1, inner)

        yield from walk(self.prefix, 0, floor is not None)

    def keyed_entries(self, since: datetime | None = None, *, after: str | None = None) -> Iterator[tuple[str, dict]]:
        """(object key, entry) of every entry received at or after ``since`` in objects after ``after``."""
        for key in self.keys_from(since, after=after):
            try:
                body = self._get(key, MAX_OBJECT_BYTES)
            except ArchiveEntryMissing:  # pruned between the listing and the read
                continue
            for line in gzip.decompress(body).decode("utf-8", "replace").splitlines():
                entry = json.loads(line)
                if since is None or datetime.fromisoformat(entry["received_at"]) >= since:
                    yield key, entry

    def entries(self, since: datetime | None = None) -> Iterator[dict]:
        """Every archived entry received at or after ``since`` (all when None), oldest object first."""
        for _, entry in self.keyed_entries(since):
            yield entry


class S3RawMailArchive(RawArchiveStore):
    def __init__(self, s3_client: Any, bucket: str, *, prefix: str = PREFIX, clock: Callable[[], datetime] = _now):
        self.s3, self.bucket, self.prefix, self.clock = s3_client, bucket, prefix, clock

    def _put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson",
                           ContentEncoding="gzip")

    def _get(self, key: str, max_bytes: int) -> bytes:
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise ArchiveEntryMissing(f"the archived copy is gone ({code}): past the archive's retention") from exc
            raise
        with obj["Body"] as body:
            return body.read(max_bytes + 1)

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def _folders(self, prefix: str) -> list[str]:
        names: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix,
                                                                       Delimiter="/"):
            names.extend(p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes", []))
        return names


class DirRawMailArchive(RawArchiveStore):
    """The same objects as files under a folder: the embedded stack's archive, which must outlive
    moto (its S3 lives in memory: a restart emptied the archive, so replay had nothing to replay)
    and a restart of `make serve`. Written to a temporary name, fsynced and renamed: a file under
    its real name is always whole."""

    def __init__(self, root: Any, *, prefix: str = PREFIX, clock: Callable[[], datetime] = _now):
        from pathlib import Path

        self.root, self.prefix, self.clock = Path(root), prefix, clock

    def _path(self, key: str):
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ArchiveEntryMissing(f"{key!r} is not an archive entry")
        return path

    def _put(self, key: str, body: bytes) -> None:
        import os

        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{path.name}")
        with open(tmp, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)

    def _get(self, key: str, max_bytes: int) -> bytes:
        try:
            with open(self._path(key), "rb") as src:
                return src.read(max_bytes + 1)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ArchiveEntryMissing("the archived copy is gone: past the archive's retention") from exc

    def _keys(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return [f"{prefix}{p.name}" for p in folder.iterdir() if p.is_file() and not p.name.startswith(".tmp-")]

    def _folders(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return [p.name for p in folder.iterdir() if p.is_dir()]
