"""The backup repository: a folder of encrypted files and plaintext metadata (no row content).

    <root>/base/<backup id>/base.tar.sfenc       the base backup (pg_basebackup tar), encrypted
    <root>/base/<backup id>/manifest.json.sfenc  row counts and per-table checksums, encrypted
    <root>/base/<backup id>/backup.json          status, times, WAL start, file digests (written last)
    <root>/base/<backup id>/backup.json.sfenc    the same, sealed: what a restore believes
    <root>/wal/<segment>.sfenc                   archived WAL segments, encrypted
    <root>/wal/<segment>.partial.sfenc           the segment being written (a few seconds behind)
    <root>/wal/archive_state.json                until when the archive holds the server's WAL
    <root>/wal/archive_state.json.sfenc          the same, sealed

The plaintext JSON files are for people and for health (no key needed to read them); a restore
reads the sealed copies (AES-GCM under the backup key, bound to their names, like every other
file) and names any field where the plaintext was edited, so nothing it acts on is unauthenticated.

A backup is usable only when its backup.json says ``complete``: a failed or interrupted backup
leaves no such file (or one saying ``failed``), and nothing lists it as usable. Every file is
written to a temporary name and renamed, so a crash never leaves a half file under a real name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from swordfish.backup.envelope import DataKeySource, decrypt_stream, encrypt_stream
from swordfish.backup.errors import BackupError, TamperedFile
from swordfish.backup.pgtools import SEGMENT_RE

ENC = ".sfenc"
META = "backup.json"
BASE_FILE = "base.tar" + ENC
MANIFEST_FILE = "manifest.json" + ENC
ARCHIVE_STATE = "archive_state.json"
SEALED_META = META + ENC
SEALED_ARCHIVE_STATE = ARCHIVE_STATE + ENC

WriterFactory = Callable[[Path], BinaryIO]


def _default_writer(path: Path) -> BinaryIO:
    return open(path, "wb")


@dataclass
class BackupInfo:
    backup_id: str
    status: str  # complete | failed | incomplete
    started_at: str | None = None
    finished_at: str | None = None
    timeline: int | None = None
    start_lsn: str | None = None
    end_lsn: str | None = None
    start_segment: str | None = None
    kms_key_id: str | None = None
    files: dict[str, dict] = field(default_factory=dict)  # name -> {"bytes", "sha256", "plaintext_bytes"}
    error: str | None = None
    manifest_cutoff: str | None = None

    @property
    def usable(self) -> bool:
        return self.status == "complete"

    @property
    def finished(self) -> datetime | None:
        return datetime.fromisoformat(self.finished_at) if self.finished_at else None

    @property
    def started(self) -> datetime | None:
        return datetime.fromisoformat(self.started_at) if self.started_at else None


class Repository:
    def __init__(self, root: Path, writer: WriterFactory = _default_writer):
        self.root = Path(root)
        self.writer = writer  # tests inject a failing or size-limited writer (a full disk)
        self.base_dir = self.root / "base"
        self.wal_dir = self.root / "wal"

    def ensure(self) -> Repository:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.wal_dir.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        return self

    # --- writing ---------------------------------------------------------------------------------
    def write_encrypted(self, path: Path, chunks: Iterable[bytes], keys: DataKeySource, name: str) -> dict:
        """Encrypt ``chunks`` to ``path`` atomically; returns the digest record of the written file."""
        tmp = path.with_name(f".tmp-{path.name}")
        try:
            with self.writer(tmp) as out:
                plaintext_bytes = encrypt_stream(chunks, out, keys, name)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return {"bytes": path.stat().st_size, "sha256": file_sha256(path), "plaintext_bytes": plaintext_bytes}

    def write_json(self, path: Path, data: dict) -> None:
        tmp = path.with_name(f".tmp-{path.name}")
        with self.writer(tmp) as out:
            out.write(json.dumps(data, indent=2, sort_keys=True).encode())
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)

    def save_info(self, info: BackupInfo, keys: DataKeySource | None = None) -> None:
        """``keys``: seal it too (every usable backup; a failed one may be on a full disk). The seal
        is written first, so backup.json, written last, still marks a finished backup."""
        folder = self.base_dir / info.backup_id
        folder.mkdir(parents=True, exist_ok=True)
        if keys is not None:
            self.write_encrypted(folder / SEALED_META, [_canonical(asdict(info))], keys, f"{info.backup_id}/{META}")
        self.write_json(folder / META, asdict(info))

    def write_archive_state(self, state: dict, keys: DataKeySource) -> None:
        self.write_encrypted(self.wal_dir / SEALED_ARCHIVE_STATE, [_canonical(state)], keys, f"wal/{ARCHIVE_STATE}")
        self.write_json(self.wal_dir / ARCHIVE_STATE, state)

    # --- reading ---------------------------------------------------------------------------------
    def backups(self) -> list[BackupInfo]:
        """Every backup folder, oldest first; one without metadata is listed as incomplete."""
        found = []
        if not self.base_dir.exists():
            return found
        for folder in sorted(p for p in self.base_dir.iterdir() if p.is_dir()):
            meta = folder / META
            if not meta.exists():
                found.append(BackupInfo(folder.name, "incomplete", error="no backup.json: interrupted or failed"))
                continue
            try:
                found.append(BackupInfo(**json.loads(meta.read_text())))
            except (ValueError, TypeError) as exc:
                found.append(BackupInfo(folder.name, "incomplete", error=f"unreadable backup.json: {exc}"))
        return found

    def authenticated_info(self, info: BackupInfo, keys: DataKeySource) -> BackupInfo:
        """The backup's sealed metadata; TamperedFile naming the fields where backup.json differs."""
        path = self.base_dir / info.backup_id / SEALED_META
        if not path.exists():
            raise TamperedFile(f"backup {info.backup_id}: {META} has no sealed copy ({SEALED_META}), so it "
                               "cannot be authenticated (deleted, or written without the backup key)")
        sealed = json.loads(b"".join(self._decrypt(path, keys, f"{info.backup_id}/{META}")))
        _compare(sealed, asdict(info), f"backup {info.backup_id}: {META}")
        return BackupInfo(**sealed)

    def authenticated_archive_state(self, keys: DataKeySource) -> dict:
        """The WAL archive's sealed state ({} for an archive that never synced)."""
        path, plain = self.wal_dir / SEALED_ARCHIVE_STATE, self.wal_dir / ARCHIVE_STATE
        if not path.exists():
            if plain.exists():
                raise TamperedFile(f"{plain}: no sealed copy ({SEALED_ARCHIVE_STATE}), so it cannot be authenticated")
            return {}
        sealed = json.loads(b"".join(self._decrypt(path, keys, f"wal/{ARCHIVE_STATE}")))
        if plain.exists():
            # Written after the seal: a crash between the two leaves it one sync older, never newer.
            try:
                current = json.loads(plain.read_text())
            except ValueError as exc:
                raise TamperedFile(f"{plain}: unreadable ({exc})") from exc
            if current.get("archived_until", "") > sealed.get("archived_until", ""):
                _compare(sealed, current, str(plain))
        return sealed

    @staticmethod
    def _decrypt(path: Path, keys: DataKeySource, name: str):
        with open(path, "rb") as src:
            yield from decrypt_stream(src, keys, name, str(path))

    def usable_backups(self) -> list[BackupInfo]:
        return [b for b in self.backups() if b.usable]

    def get(self, backup_id: str) -> BackupInfo:
        for info in self.backups():
            if info.backup_id == backup_id:
                return info
        raise BackupError(f"no backup {backup_id!r} in {self.base_dir}")

    def backup_file(self, backup_id: str, name: str) -> Path:
        return self.base_dir / backup_id / name

    def open_decrypted(self, backup_id: str, name: str, keys: DataKeySource, info: BackupInfo | None = None):
        """Iterator over a backup file's plaintext; checks the recorded digest first (cheap tamper check)."""
        path = self.backup_file(backup_id, name)
        if not path.exists():
            raise BackupError(f"backup {backup_id}: {name} is missing from {path.parent}")
        record = (info.files.get(name) if info else None) or {}
        if record.get("sha256") and file_sha256(path) != record["sha256"]:
            size = path.stat().st_size
            what = "truncated" if size < record.get("bytes", 0) else "changed"
            raise TamperedFile(f"backup {backup_id}: {name} was {what} after the backup "
                               f"({size} bytes, recorded {record.get('bytes')}; sha256 differs)")

        def chunks():
            with open(path, "rb") as src:
                yield from decrypt_stream(src, keys, f"{backup_id}/{name}", str(path))
        return chunks()

    # --- WAL archive -----------------------------------------------------------------------------
    def wal_segments(self) -> dict[str, Path]:
        """Archived segment name -> file (complete segments and the current partial one)."""
        found: dict[str, Path] = {}
        if not self.wal_dir.exists():
            return found
        for path in self.wal_dir.iterdir():
            if not path.name.endswith(ENC) or path.name.startswith(".tmp-"):
                continue
            stem = path.name[: -len(ENC)]
            segment = stem.removesuffix(".partial")
            if SEGMENT_RE.match(segment) and (segment not in found or not stem.endswith(".partial")):
                found[segment] = path
        return dict(sorted(found.items()))

    def archive_state(self) -> dict:
        path = self.wal_dir / ARCHIVE_STATE
        return json.loads(path.read_text()) if path.exists() else {}

    def delete_backup(self, backup_id: str) -> None:
        shutil.rmtree(self.base_dir / backup_id)


def _canonical(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True).encode()


def _compare(sealed: dict, plain: dict, what: str) -> None:
    changed = sorted(k for k in set(sealed) | set(plain) if sealed.get(k) != plain.get(k))
    if changed:
        raise TamperedFile(f"{what} was edited after it was written: {', '.join(changed)} "
                           "differ from its sealed copy")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        for block in iter(lambda: src.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def cluster_id(superuser_url: str) -> str:
    """The server's system identifier: backups of different clusters never share WAL names."""
    import psycopg

    with psycopg.connect(superuser_url, autocommit=True, connect_timeout=10) as conn:
        return str(conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0])


def cluster_repository(root: Path, *, superuser_url: str | None = None, cluster: str | None = None,
                       writer: WriterFactory = _default_writer) -> Repository:
    """The repository of one cluster under ``root``: named, the running server's, or the newest one."""
    root = Path(root)
    if cluster is None and superuser_url is not None:
        cluster = cluster_id(superuser_url)
    if cluster is None:
        folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime) \
            if root.exists() else []
        if not folders:
            raise BackupError(f"no backups under {root}: take one with `swordfish backup create`")
        cluster = folders[-1].name
    return Repository(root / cluster, writer)
