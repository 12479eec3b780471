"""Large mail on the embedded stack: the objects an S3 pointer names, kept in a folder on disk.

Mail too large for an SQS message goes to the large-mail bucket and the queue message points at it
(``pipeline.submission.S3Source``). On AWS that is S3; on the embedded stack it was moto's S3, which
lives in memory: a moto restart lost every large submission already answered 202 (issue 25). This
store answers the two calls the pipeline makes (``put_object`` by the submitter, ``get_object`` by
the mail loader) from ``<root>/<bucket>/<key>``, so the pointer and the code path stay the same.
Written to a temporary name, fsynced and renamed: a file under its real name is always whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError


def _missing(bucket: str, key: str) -> ClientError:
    return ClientError({"Error": {"Code": "NoSuchKey", "Message": f"{bucket}/{key}: no such object"}}, "GetObject")


class DirLargeMailStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, bucket: str, key: str) -> Path | None:
        """The object's file; None for a name that would leave the folder (a hostile pointer)."""
        root = self.root.resolve()
        path = (root / bucket / key).resolve()
        return path if root in path.parents and not path.name.startswith(".tmp-") else None

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict:  # noqa: N803 - boto3's names
        path = self._path(Bucket, Key)
        if path is None:
            raise ValueError(f"{Bucket}/{Key} is not a large-mail object name")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{path.name}")
        with open(tmp, "wb") as out:
            out.write(Body)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
        return {}  # no VersionId: the pointer names the key only

    def get_object(self, *, Bucket: str, Key: str, **_: Any) -> dict:  # noqa: N803 - boto3's names
        path = self._path(Bucket, Key)
        try:
            if path is None:
                raise FileNotFoundError(Key)
            body = open(path, "rb")  # noqa: SIM115 - the caller closes it, as boto3's StreamingBody
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise _missing(Bucket, Key) from exc
        return {"Body": body, "ContentLength": os.fstat(body.fileno()).st_size}

    def prune(self, older_than_days: float, *, now: float | None = None) -> int:
        """Delete objects last written more than ``older_than_days`` ago (the bucket's lifecycle rule)."""
        import time

        cutoff = (time.time() if now is None else now) - older_than_days * 86_400
        removed = 0
        if self.root.is_dir():
            for path in self.root.rglob("*"):
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def count(self) -> int:
        """How many objects the store holds (deep health compares it with what was written)."""
        if not self.root.is_dir():
            return 0
        return sum(1 for p in self.root.rglob("*") if p.is_file() and not p.name.startswith(".tmp-"))
