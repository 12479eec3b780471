"""Retention: base backups older than the window go, with the WAL no kept backup needs; never the
newest usable backup, whatever its age. Failed or interrupted backups are removed once they are
older than a grace period (a backup still running looks like an interrupted one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from swordfish.backup.repository import Repository

FAILED_GRACE = timedelta(hours=6)


@dataclass
class PruneResult:
    kept: list[str] = field(default_factory=list)
    removed_backups: list[str] = field(default_factory=list)
    removed_failed: list[str] = field(default_factory=list)
    removed_wal: list[str] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict:
        return dict(vars(self))


def _backup_time(backup_id: str) -> datetime | None:
    try:
        return datetime.strptime(backup_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def prune(repository: Repository, *, retention_days: int, clock: Callable[[], datetime], dry_run: bool = False) -> PruneResult:
    now = clock()
    cutoff = now - timedelta(days=retention_days)
    result = PruneResult(dry_run=dry_run)
    usable = repository.usable_backups()
    newest = usable[-1].backup_id if usable else None
    for info in repository.backups():
        if info.usable:
            if info.backup_id == newest or info.finished >= cutoff:
                result.kept.append(info.backup_id)
            else:
                result.removed_backups.append(info.backup_id)
        else:
            started = info.started or _backup_time(info.backup_id) or now
            if now - started > FAILED_GRACE:
                result.removed_failed.append(info.backup_id)
    kept_infos = [b for b in usable if b.backup_id in result.kept]
    oldest_needed = min((b.start_segment for b in kept_infos if b.start_segment), default=None)
    if oldest_needed is not None:
        for name in repository.wal_segments():
            # Segment names sort in WAL order within a timeline (and timelines in creation order).
            if name < oldest_needed:
                result.removed_wal.append(name)
    if not dry_run:
        for backup_id in result.removed_backups + result.removed_failed:
            repository.delete_backup(backup_id)
        segments = repository.wal_segments()
        for name in result.removed_wal:
            segments[name].unlink(missing_ok=True)
            (repository.wal_dir / f"{name}.partial.sfenc").unlink(missing_ok=True)
    return result
