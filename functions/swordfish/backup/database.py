"""Taking backups of a PostgreSQL server: encrypted base backups and continuous WAL archiving.

- ``take_base_backup``: ``pg_basebackup`` streams a tar (with its backup_manifest and the WAL
  needed to make it consistent) straight into the encryptor: no plaintext copy touches the disk.
  Then a manifest of row counts and per-table checksums is written, and only then backup.json
  with status ``complete``; any failure on the way (a full disk included) records ``failed``.
- ``WalArchiver``: ``pg_receivewal`` streams WAL from the server as it is written (through a
  replication slot, so the server keeps what was not yet received) into a staging folder in memory
  (tmpfs); every ``sync_seconds`` completed segments, and the segment being written, are encrypted
  into the repository. With the heartbeat row updated every few seconds, the archive is never more
  than a few seconds behind. The staged segment is plaintext for as long as it is being written
  (up to 16 MB of WAL, however long that takes to fill), which is why it is never on a disk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from swordfish.backup import integrity, pgtools
from swordfish.backup.envelope import DataKeySource
from swordfish.backup.errors import BackupError, BackupFailed
from swordfish.backup.repository import BASE_FILE, MANIFEST_FILE, BackupInfo, Repository

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
REPLICATION_SLOT = "swordfish_wal_archive"
_START = re.compile(r"write-ahead log start point: ([0-9A-F]+/[0-9A-F]+) on timeline (\d+)", re.I)
_END = re.compile(r"write-ahead log end point: ([0-9A-F]+/[0-9A-F]+)", re.I)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_backup_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _read_pipe(stream, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    while True:
        data = stream.read(chunk)
        if not data:
            return
        yield data


def _wait_for_older_transactions(conn: psycopg.Connection, cutoff: datetime, timeout: float = 60.0) -> None:
    # Rows stamped before the cutoff by a transaction still open would appear after the manifest.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_older = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE xact_start <= %s AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'", (cutoff,)).fetchone()[0]
        if not open_older:
            return
        time.sleep(0.2)
    raise BackupFailed(f"transactions opened before {cutoff.isoformat()} are still open after {timeout:.0f}s; "
                       "cannot write a consistent manifest")


def take_base_backup(superuser_url: str, repository: Repository, keys: DataKeySource, *,
                     clock: Clock = utc_now) -> BackupInfo:
    """Take one encrypted base backup. Raises BackupFailed (and records it) on any failure."""
    repository.ensure()
    started = clock()
    info = BackupInfo(new_backup_id(started), "failed", started_at=started.isoformat(), kms_key_id=keys.key_id)
    folder = repository.base_dir / info.backup_id
    folder.mkdir(parents=True)
    target = pgtools.ConnectionTarget.from_url(superuser_url)
    try:
        proc = subprocess.Popen(
            [pgtools.program("pg_basebackup"), "-D", "-", "-Ft", "-X", "fetch", "--checkpoint=fast", "--verbose",
             "--label", f"swordfish {info.backup_id}"],
            env=target.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stderr_lines: list[str] = []
        reader = threading.Thread(target=lambda: stderr_lines.extend(
            line.decode(errors="replace") for line in proc.stderr), daemon=True)
        reader.start()
        try:
            info.files[BASE_FILE] = repository.write_encrypted(
                folder / BASE_FILE, _read_pipe(proc.stdout), keys, f"{info.backup_id}/{BASE_FILE}")
        except BaseException:
            proc.kill()
            raise
        finally:
            rc = proc.wait()
            reader.join(10)
        stderr = "".join(stderr_lines)
        if rc != 0:
            raise BackupFailed(f"pg_basebackup exited with {rc}: {stderr.strip()[-800:]}")
        start, end = _START.search(stderr), _END.search(stderr)
        if not start or not end:
            raise BackupFailed(f"pg_basebackup did not report its WAL range: {stderr.strip()[-400:]}")
        info.start_lsn, info.timeline, info.end_lsn = start.group(1), int(start.group(2)), end.group(1)
        info.start_segment = pgtools.segment_name(info.timeline, pgtools.lsn_to_int(info.start_lsn))
        info.finished_at = clock().isoformat()

        with psycopg.connect(_with_db(superuser_url), autocommit=True) as conn:
            _wait_for_older_transactions(conn, started)
            manifest = integrity.build_manifest(conn, started)
        import json

        info.manifest_cutoff = manifest.cutoff
        info.files[MANIFEST_FILE] = repository.write_encrypted(
            folder / MANIFEST_FILE, [json.dumps(manifest.as_dict()).encode()], keys,
            f"{info.backup_id}/{MANIFEST_FILE}")
        info.status = "complete"
        info.error = None
        repository.save_info(info, keys)
        return info
    except BaseException as exc:
        info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
        # Drop the partial files; keep only the record that this backup failed.
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
        with contextlib.suppress(Exception):  # the disk may be full: the folder alone still says "not usable"
            repository.save_info(info)
        if isinstance(exc, BackupError | KeyboardInterrupt):
            raise
        raise BackupFailed(f"base backup {info.backup_id} failed: {type(exc).__name__}: {exc}") from exc


def _with_db(url: str, database: str = "swordfish") -> str:
    from swordfish.store.migrate import _with_database

    return _with_database(url, database)


@dataclass
class ArchiverStatus:
    segments_archived: int = 0
    partial_uploads: int = 0
    last_sync: str | None = None
    last_error: str | None = None


MEMORY_FILESYSTEMS = ("tmpfs", "ramfs")


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding ``path`` (the longest mount point above it)."""
    path = Path(path).resolve()
    best, kind = "", ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) < 3:
                continue
            mount_point = Path(fields[1].replace("\\040", " "))
            if (path == mount_point or mount_point in path.parents) and len(str(mount_point)) > len(best):
                best, kind = str(mount_point), fields[2]
    return kind


def memory_staging_root() -> Path:
    """A folder in memory for plaintext WAL: /dev/shm, else the user's runtime folder, when tmpfs."""
    for candidate in ("/dev/shm", os.environ.get("XDG_RUNTIME_DIR") or ""):
        if candidate and Path(candidate).is_dir() and filesystem_type(Path(candidate)) in MEMORY_FILESYSTEMS:
            return Path(candidate)
    raise BackupError("no memory filesystem (tmpfs at /dev/shm or $XDG_RUNTIME_DIR) to stage plaintext WAL in; "
                      "pass staging_dir with allow_disk_staging=True to accept plaintext WAL on a disk")


class WalArchiver:
    """pg_receivewal into a private staging folder, encrypted into the repository every ``sync_seconds``.

    pg_receivewal can only write files, and the segment being written is plaintext until it fills
    (16 MB of WAL: minutes or hours on a quiet server, not seconds), so the staging folder is in
    memory (tmpfs), never on a disk: the only plaintext WAL on disk is PostgreSQL's own pg_wal. A
    disk folder is refused unless ``allow_disk_staging``. ``heartbeat_seconds`` > 0 also writes the
    heartbeat row.
    """

    def __init__(self, superuser_url: str, repository: Repository, keys: DataKeySource, *,
                 staging_dir: Path | None = None, sync_seconds: float = 1.0, heartbeat_seconds: float = 2.0,
                 database_url: str | None = None, log_path: Path | None = None, allow_disk_staging: bool = False):
        if staging_dir is not None and not allow_disk_staging and \
                filesystem_type(Path(staging_dir).parent) not in MEMORY_FILESYSTEMS:
            raise ValueError(f"{staging_dir} is on a disk: plaintext WAL would be written there "
                             "(stage in memory, or pass allow_disk_staging=True)")
        self.target = pgtools.ConnectionTarget.from_url(superuser_url)
        self.repository = repository.ensure()
        self.keys = keys
        self.staging = Path(staging_dir or tempfile.mkdtemp(prefix="sfwal-", dir=memory_staging_root()))
        self._owns_staging = staging_dir is None
        self.sync_seconds, self.heartbeat_seconds = sync_seconds, heartbeat_seconds
        self.database_url = database_url or _with_db(superuser_url)
        self.log_path = log_path
        self.status = ArchiverStatus()
        self._stop = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._threads: list[threading.Thread] = []
        self._partial_seen: tuple[str, int, int] | None = None
        self._lock = threading.Lock()
        self.target_url = superuser_url
        self._status_conn: psycopg.Connection | None = None
        self._archived_until: datetime | None = None  # a restart: what the archive held then
        with contextlib.suppress(Exception):
            self._archived_until = datetime.fromisoformat(self.repository.archive_state()["archived_until"])

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> WalArchiver:
        self.staging.mkdir(parents=True, exist_ok=True)
        self.staging.chmod(0o700)
        created = pgtools.run([pgtools.program("pg_receivewal"), "--create-slot", "--if-not-exists",
                               "--slot", REPLICATION_SLOT], env=self.target.env(), timeout=60)
        if created.returncode != 0:
            raise BackupError(f"cannot create the replication slot {REPLICATION_SLOT}: {created.stderr.strip()}")
        log_file = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            [pgtools.program("pg_receivewal"), "-D", str(self.staging), "--slot", REPLICATION_SLOT,
             "--synchronous", "--no-password"],
            env=self.target.env(), stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=pgtools.die_with_parent)
        self._threads = [threading.Thread(target=self._sync_loop, name="wal-archiver", daemon=True)]
        if self.heartbeat_seconds > 0:
            self._threads.append(threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, *, final_sync: bool = True) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        if final_sync:
            with contextlib.suppress(Exception):
                self.sync()
        with contextlib.suppress(Exception):
            if self._status_conn is not None:
                self._status_conn.close()
        if self._owns_staging:
            shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> WalArchiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def receiver_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # --- work -----------------------------------------------------------------------------------
    def _receiver_caught_up(self) -> bool:
        """True when the receiver reported flushing all the WAL the server has flushed (then the
        staging folder holds everything written before this call). False when it lags, is stopped
        (SIGSTOP: alive, silent) or gone, or the server cannot be asked."""
        try:
            if self._status_conn is None or self._status_conn.closed:
                self._status_conn = psycopg.connect(self.target_url, autocommit=True, connect_timeout=3)
            row = self._status_conn.execute(
                "SELECT r.flush_lsn >= pg_current_wal_flush_lsn() FROM pg_stat_replication r "
                "JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = %s",
                (REPLICATION_SLOT,)).fetchone()
            return bool(row and row[0])
        except Exception:  # noqa: BLE001 - the server may be down (a drill): not known to be caught up
            with contextlib.suppress(Exception):
                self._status_conn.close()
            self._status_conn = None
            return False

    def sync(self) -> int:
        """Encrypt what pg_receivewal wrote since the last call. Returns files written.

        ``archived_until`` is what the archive really holds (issue 25: a SIGSTOPped receiver is
        alive, so liveness kept it at "now" while nothing arrived): the time of this sync when the
        receiver had everything the server flushed, else the newest staged write archived."""
        with self._lock:
            synced_at = utc_now()
            caught_up = self._receiver_caught_up()
            newest_write: float | None = None
            written = 0
            names = sorted(os.listdir(self.staging))
            for name in names:
                if pgtools.SEGMENT_RE.match(name):
                    path = self.staging / name
                    with contextlib.suppress(OSError):
                        newest_write = max(newest_write or 0.0, path.stat().st_mtime)
                    self.repository.write_encrypted(self.repository.wal_dir / f"{name}.sfenc",
                                                    _read_file(path), self.keys, f"wal/{name}")
                    (self.repository.wal_dir / f"{name}.partial.sfenc").unlink(missing_ok=True)
                    path.unlink()
                    self.status.segments_archived += 1
                    written += 1
            for name in names:
                if name.endswith(".partial") and pgtools.SEGMENT_RE.match(name[:-8]):
                    path = self.staging / name
                    try:
                        stat = path.stat()
                    except FileNotFoundError:  # became a complete segment meanwhile: next round
                        continue
                    seen = (name, stat.st_size, stat.st_mtime_ns)
                    if seen != self._partial_seen:
                        newest_write = max(newest_write or 0.0, stat.st_mtime)
                        segment = name[:-8]
                        self.repository.write_encrypted(self.repository.wal_dir / f"{segment}.partial.sfenc",
                                                        _read_file(path), self.keys, f"wal/{segment}")
                        self._partial_seen = seen
                        self.status.partial_uploads += 1
                        written += 1
            if caught_up:
                self._archived_until = synced_at
            elif newest_write is not None:
                written_at = datetime.fromtimestamp(newest_write, UTC)
                self._archived_until = max(self._archived_until or written_at, written_at)
            self.status.last_sync = synced_at.isoformat()
            if self._archived_until is not None:
                self.repository.write_archive_state({"archived_until": self._archived_until.isoformat(),
                                                     "receiver_alive": self.receiver_alive}, self.keys)
            return written

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.sync_seconds):
            try:
                self.sync()
                self.status.last_error = None
            except Exception as exc:  # keep archiving; the status and the log say what failed
                self.status.last_error = f"{type(exc).__name__}: {exc}"
                log.error("WAL archiving failed: %s", exc)

    def _heartbeat_loop(self) -> None:
        conn = None
        while True:  # a beat at once, then every heartbeat_seconds
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)
                integrity.beat(conn)
            except Exception as exc:  # the server may be down (a drill): try again next beat
                log.warning("heartbeat failed: %s", exc)
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
            if self._stop.wait(self.heartbeat_seconds):
                break
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def _read_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as src:
        yield from _read_pipe(src)


def drop_replication_slot(superuser_url: str) -> None:
    """When archiving stops for good: the slot would otherwise keep WAL on the server forever."""
    with psycopg.connect(_with_db(superuser_url, "postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                     (REPLICATION_SLOT,))
