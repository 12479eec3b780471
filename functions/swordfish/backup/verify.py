"""`swordfish backup verify`: every backup file and WAL segment decrypts and authenticates, the WAL
archive has no gap after any usable backup, and failed backups are reported as not usable."""

from __future__ import annotations

from swordfish.backup.envelope import DataKeySource, decrypt_stream
from swordfish.backup.errors import BackupError
from swordfish.backup.repository import Repository
from swordfish.backup.restore import wal_chain


def verify_repository(repository: Repository, keys: DataKeySource, backup_id: str | None = None) -> dict:
    problems: list[str] = []
    checked: dict[str, str] = {}
    backups = repository.backups()
    if backup_id:
        backups = [b for b in backups if b.backup_id == backup_id]
        if not backups:
            raise BackupError(f"no backup {backup_id!r} in {repository.base_dir}")
    for info in backups:
        if not info.usable:
            checked[info.backup_id] = f"not usable ({info.status}: {info.error})"
            continue
        try:
            info = repository.authenticated_info(info, keys)
            for name in info.files:
                for _ in repository.open_decrypted(info.backup_id, name, keys, info):
                    pass
            wal_chain(repository, info)
            checked[info.backup_id] = "ok"
        except BackupError as exc:
            checked[info.backup_id] = f"FAILED: {exc}"
            problems.append(f"backup {info.backup_id}: {exc}")
    try:
        repository.authenticated_archive_state(keys)
    except BackupError as exc:
        problems.append(str(exc))
    segments = repository.wal_segments()
    for name, path in segments.items():
        try:
            with open(path, "rb") as src:
                for _ in decrypt_stream(src, keys, f"wal/{name}", str(path)):
                    pass
        except BackupError as exc:
            problems.append(str(exc))
    return {"ok": not problems, "repository": str(repository.root), "backups": checked,
            "wal_segments_checked": len(segments), "problems": problems}
