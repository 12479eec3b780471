"""Disaster recovery under `make serve`: continuous WAL archiving, the heartbeat, and base backups on
a schedule (daily by default, SWORDFISH_BACKUP_SCHEDULE_SECONDS), each followed by a prune.

Separate functions so the process supervisor can start and stop them like any other service:
``ensure_backup_key`` (the KMS key in moto), ``BackupService`` (archiver + scheduler).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from devstack.services import REPO_ROOT, Service

log = logging.getLogger(__name__)
BACKUP_KEY_ALIAS = "alias/swordfish/backup"


def ensure_backup_key(kms_client, alias: str = BACKUP_KEY_ALIAS) -> str:
    """The KMS key the backups' data keys come from (created once; an existing alias is reused)."""
    for entry in kms_client.list_aliases().get("Aliases", []):
        if entry["AliasName"] == alias and entry.get("TargetKeyId"):
            return alias
    key_id = kms_client.create_key(Description="Swordfish backups (embedded stack)")["KeyMetadata"]["KeyId"]
    kms_client.create_alias(AliasName=alias, TargetKeyId=key_id)
    return alias


class BackupService(Service):
    name = "backups"

    def __init__(self, superuser_url: str, kms_client, *, backup_dir: Path | None = None,
                 schedule_seconds: float = 86_400.0, heartbeat_seconds: float = 2.0, retention_days: int = 30,
                 log_dir: Path | None = None, key_file: Path | None = None):
        self.superuser_url, self.kms = superuser_url, kms_client
        self.backup_dir = Path(backup_dir or REPO_ROOT / ".devstack" / "backups")
        self.schedule_seconds, self.heartbeat_seconds = schedule_seconds, heartbeat_seconds
        self.retention_days = retention_days
        self.log_dir = log_dir
        # The data-key wrapping key: a file beside the kept database when given (it outlives moto and
        # `make serve`), else moto's KMS (gone with moto: only for throwaway stacks and tests).
        self.key_file = Path(key_file) if key_file else None
        self.archiver = None
        self.last_backup: str | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self.first_round_done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> BackupService:
        from swordfish.backup.database import WalArchiver
        from swordfish.backup.envelope import FileDataKeys, KmsDataKeys
        from swordfish.backup.repository import cluster_repository

        self.keys = (FileDataKeys(self.key_file, create=True) if self.key_file
                     else KmsDataKeys(self.kms, ensure_backup_key(self.kms)))
        self.repository = cluster_repository(self.backup_dir, superuser_url=self.superuser_url).ensure()
        self.archiver = WalArchiver(self.superuser_url, self.repository, self.keys,
                                    heartbeat_seconds=self.heartbeat_seconds,
                                    log_path=self.log_dir / "pg_receivewal.log" if self.log_dir else None).start()
        self._thread = threading.Thread(target=self._schedule, name="backup-schedule", daemon=True)
        self._thread.start()
        return self

    def due(self, now: datetime) -> bool:
        """A base backup is due when no usable one finished within the schedule period."""
        usable = self.repository.usable_backups()
        return not usable or (now - usable[-1].finished).total_seconds() >= self.schedule_seconds

    def run_once(self, now: datetime | None = None, *, force: bool = False) -> str | None:
        from swordfish.backup.database import take_base_backup
        from swordfish.backup.retention import prune

        now = now or datetime.now(UTC)
        if not force and not self.due(now):
            return None
        info = take_base_backup(self.superuser_url, self.repository, self.keys)
        self.last_backup = info.backup_id
        prune(self.repository, retention_days=self.retention_days, clock=lambda: datetime.now(UTC))
        return info.backup_id

    def _schedule(self) -> None:
        # After any (re)start a fresh base backup comes first: one from an earlier run may rest on a
        # key, a WAL chain or a server state this run cannot vouch for (issue 25).
        fresh_taken = False
        while not self._stop.is_set():
            try:
                if self.run_once(force=not fresh_taken):
                    log.info("base backup %s taken", self.last_backup)
                fresh_taken = True
                self.last_error = None
            except Exception as exc:  # logged and retried next round; the archive keeps running
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("scheduled base backup failed: %s", exc)
            self.first_round_done.set()
            self._stop.wait(min(self.schedule_seconds, 300))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        if self.archiver is not None:
            with contextlib.suppress(Exception):
                self.archiver.stop()
