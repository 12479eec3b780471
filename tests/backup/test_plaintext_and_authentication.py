"""Issue 25 item 8: no plaintext where the backups are encrypted.

- WAL staging: pg_receivewal's folder (the segment being written, in plaintext) lives in memory,
  never on a disk, and the embedded stack's archiver uses it;
- a restored server requires passwords (scram-sha-256) for every role, postgres included, over
  TCP and over its socket, and the restore itself still works;
- every file the restore reads is authenticated: an edit to backup.json or to the WAL archive's
  state is detected and named.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
from backup_helpers import archive_now, insert_verdicts, message_ids
from swordfish.backup.database import WalArchiver, memory_staging_root
from swordfish.backup.errors import TamperedFile
from swordfish.backup.repository import ARCHIVE_STATE, META, Repository
from swordfish.backup.restore import restore
from swordfish.backup.verify import verify_repository


def _filesystem_type(path: Path) -> str:
    """The type of the filesystem holding ``path`` (longest matching mount point)."""
    path = Path(path).resolve()
    best, fstype = "", ""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _device, mount_point, kind, *_ = line.split()
        mount_point = mount_point.replace("\\040", " ")
        if (path == Path(mount_point) or Path(mount_point) in path.parents) and len(mount_point) > len(best):
            best, fstype = mount_point, kind
    return fstype


def test_wal_staging_lives_in_memory_not_on_disk(live_db, repository, keys, archiver):
    assert _filesystem_type(memory_staging_root()) in ("tmpfs", "ramfs")
    # The archiver of the tests (and of make serve, which passes no folder either) stages in memory.
    assert _filesystem_type(archiver.staging) in ("tmpfs", "ramfs"), (
        f"pg_receivewal stages plaintext WAL in {archiver.staging}, on a {_filesystem_type(archiver.staging)} disk")
    # It really is where pg_receivewal writes: the segment being written is there.
    insert_verdicts(live_db, "staged", 1)
    archive_now(live_db, archiver)
    assert any(p.name.endswith(".partial") for p in archiver.staging.iterdir())


def test_staging_refuses_a_disk_folder_unless_told(live_db, repository, keys, tmp_path):
    with pytest.raises(ValueError, match="plaintext WAL"):
        WalArchiver(live_db.superuser_url, repository, keys, staging_dir=tmp_path / "staging")


def test_a_restored_server_requires_passwords_and_the_restore_still_works(
        live_db, repository, keys, archiver, base_backup, restored_servers, tmp_path):
    insert_verdicts(live_db, "pw-after", 3)
    archive_now(live_db, archiver)
    server = restore(repository, keys, tmp_path / "restores")
    restored_servers.append(server)
    assert message_ids(server.url(), "pw-after") == {f"pw-after-{i}" for i in range(1, 4)}
    assert server.integrity["ok"]

    for url in (f"postgresql://postgres@127.0.0.1:{server.port}/swordfish",
                f"postgresql://postgres@/swordfish?host={server.socket_dir}&port={server.port}",
                f"postgresql://postgres:wrong@127.0.0.1:{server.port}/swordfish"):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(url, connect_timeout=5).close()
    hba = (server.data_dir / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert rules and all(rule[-1] == "scram-sha-256" for rule in rules), hba
    with psycopg.connect(server.url(), autocommit=True) as conn:
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'").fetchone()[0]
    assert stored.startswith("SCRAM-SHA-256$")
    # The operator finds the password in a file only they can read, not in restore.json.
    password_file = Path(server.as_dict()["password_file"])
    assert password_file.stat().st_mode & 0o077 == 0 and password_file.read_text().strip() == server.password
    assert server.password not in (server.data_dir.parent / "restore.json").read_text()


def _copy(repository: Repository, tmp_path: Path) -> Repository:
    shutil.copytree(repository.root, tmp_path / "repo")
    return Repository(tmp_path / "repo")


def test_an_edit_to_backup_json_is_detected_and_named(live_db, repository, keys, archiver, base_backup, tmp_path):
    archive_now(live_db, archiver)
    copy = _copy(repository, tmp_path)
    newest = copy.usable_backups()[-1]
    meta = copy.base_dir / newest.backup_id / META
    data = json.loads(meta.read_text())
    data["end_lsn"] = "0/1000000"  # an edit that decides where replay may start, nothing else notices
    meta.write_text(json.dumps(data, indent=2, sort_keys=True))

    with pytest.raises(TamperedFile, match=rf"{newest.backup_id}.*backup\.json.*end_lsn"):
        restore(copy, keys, tmp_path / "restores")
    report = verify_repository(copy, keys)
    assert not report["ok"] and any("backup.json" in p and "end_lsn" in p for p in report["problems"])
    assert not (tmp_path / "restores").exists() or not any((tmp_path / "restores").iterdir())


def test_a_deleted_seal_or_an_edited_archive_state_is_detected(live_db, repository, keys, archiver, base_backup,
                                                               tmp_path):
    archive_now(live_db, archiver)
    copy = _copy(repository, tmp_path)
    newest = copy.usable_backups()[-1]
    (copy.base_dir / newest.backup_id / (META + ".sfenc")).unlink()
    with pytest.raises(TamperedFile, match="backup.json"):
        restore(copy, keys, tmp_path / "restores")

    copy2 = Repository(tmp_path / "repo2")
    shutil.copytree(repository.root, copy2.root)
    state = copy2.wal_dir / ARCHIVE_STATE
    data = json.loads(state.read_text())
    data["archived_until"] = "2999-01-01T00:00:00+00:00"
    state.write_text(json.dumps(data))
    with pytest.raises(TamperedFile, match="archive_state.json"):
        restore(copy2, keys, tmp_path / "restores")


def _plaintext_wal(root: Path, magic: bytes, *, skip: tuple[Path, ...]) -> list[str]:
    """Files under ``root`` that start like a WAL page of this server (its page magic), outside ``skip``."""
    found = []
    for path in root.rglob("*"):
        if not path.is_file() or any(path == s or s in path.parents for s in skip):
            continue
        with open(path, "rb") as src:
            if src.read(2) == magic and path.stat().st_size >= 8192:
                found.append(str(path))
    return found


def test_no_decrypted_wal_sits_on_disk_during_a_restore(live_db, repository, keys, archiver, base_backup,
                                                        restored_servers, tmp_path, monkeypatch):
    """Issue 25: the decrypted WAL chain waited in the restore's own folder (on disk) until replayed.
    Scanned while the restored server starts and replays; its own pg_wal is PostgreSQL's, as live."""
    from swordfish.backup import restore as restore_module
    from swordfish.backup.database import filesystem_type

    live_segment = next(p for p in sorted((live_db.server.data_dir / "pg_wal").iterdir())
                        if p.is_file() and len(p.name) == 24)
    magic = live_segment.read_bytes()[:2]
    insert_verdicts(live_db, "no-plain-wal", 3)
    archive_now(live_db, archiver)
    restores = tmp_path / "restores"
    found: list[str] = []
    wal_sources: list[str] = []
    start_server = restore_module._start_server

    def scanning_start(data_dir, *args, **kwargs):
        found.extend(_plaintext_wal(restores, magic, skip=(data_dir / "pg_wal",)))
        conf = (data_dir / "postgresql.auto.conf").read_text()
        wal_sources.extend(line for line in conf.splitlines() if line.startswith("restore_command"))
        return start_server(data_dir, *args, **kwargs)

    monkeypatch.setattr(restore_module, "_start_server", scanning_start)
    server = restore(repository, keys, restores)
    restored_servers.append(server)
    found.extend(_plaintext_wal(restores, magic, skip=(server.data_dir / "pg_wal",)))
    assert message_ids(server.url(), "no-plain-wal") == {f"no-plain-wal-{i}" for i in range(1, 4)}
    assert not found, f"decrypted WAL on disk during the restore: {found}"
    # Where the server read the WAL from is memory, and it is gone once replayed.
    (command,) = wal_sources
    folder = Path(command.split('"')[1]).parent
    assert not folder.exists()
    assert filesystem_type(folder.parent) in ("tmpfs", "ramfs"), command
