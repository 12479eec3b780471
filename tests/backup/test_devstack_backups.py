"""`make serve`'s backups: the schedule takes a base backup when none is recent, WAL is archived."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
from swordfish.backup.database import drop_replication_slot

from devstack.backups import BACKUP_KEY_ALIAS, BackupService, ensure_backup_key


def test_backup_service_takes_a_base_backup_when_due_and_archives_wal(live_db, moto_server, tmp_path):
    kms = boto3.client("kms", endpoint_url=moto_server.url, region_name="eu-west-1")
    assert ensure_backup_key(kms) == BACKUP_KEY_ALIAS == ensure_backup_key(kms)  # created once, then reused
    service = BackupService(live_db.superuser_url, kms, backup_dir=tmp_path / "backups", schedule_seconds=3600,
                            heartbeat_seconds=0.5)
    try:
        service.start()
        assert service.first_round_done.wait(120)  # hang guard: the first round backs up at once
        assert service.last_error is None
        (first,) = service.repository.usable_backups()
        now = datetime.now(UTC)
        assert not service.due(now)  # a backup finished within the hour
        assert service.due(now + timedelta(hours=2))
        assert service.run_once(now) is None
        service.archiver.sync()
        assert service.repository.wal_segments()
        assert service.repository.root.parent == tmp_path / "backups"  # one folder per cluster
    finally:
        service.stop()
        drop_replication_slot(live_db.superuser_url)


def test_backups_outlive_moto_and_a_restart_takes_a_fresh_base_backup_first(live_db, moto_server, tmp_path,
                                                                            settings_env, capsys):
    """Issue 25: the backups' key lived in moto's memory (a moto restart made a backup taken 6 s
    earlier undecryptable; `make serve` restarted with a new key and `backup restore` failed with
    WrongKey), and a restarted service kept calling the old backup usable for up to a day."""
    import json

    from swordfish.backup.envelope import FileDataKeys
    from swordfish.backup.verify import verify_repository
    from swordfish.cli import main

    kms = boto3.client("kms", endpoint_url=moto_server.url, region_name="eu-west-1")
    key_file = tmp_path / "data" / "backup-data-key"

    def run_service() -> BackupService:
        service = BackupService(live_db.superuser_url, kms, backup_dir=tmp_path / "backups", schedule_seconds=3600,
                                heartbeat_seconds=0.5, key_file=key_file)
        service.start()
        assert service.first_round_done.wait(120)  # hang guard
        assert service.last_error is None
        return service

    try:
        first = run_service()
        first.stop()
        second = run_service()  # `make serve` again: a recent backup exists, a fresh one is taken anyway
        second.stop()
        usable = second.repository.usable_backups()
        assert len(usable) == 2 and second.last_backup == usable[-1].backup_id
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        # Nothing of the key is in moto: a new process with only the file decrypts every backup.
        assert verify_repository(second.repository, FileDataKeys(key_file))["ok"]
        wrong = verify_repository(second.repository, FileDataKeys(tmp_path / "other-key", create=True))
        assert not wrong["ok"] and "another key file" in " ".join(wrong["problems"])
        settings_env(backup_kms_key_id=f"file:{key_file}")
        assert main(["backup", "verify", "--dir", str(tmp_path / "backups")]) == 0
        assert json.loads(capsys.readouterr().out)["ok"]
    finally:
        drop_replication_slot(live_db.superuser_url)
