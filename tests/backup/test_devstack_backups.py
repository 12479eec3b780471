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
