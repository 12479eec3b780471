"""Restoring: always into a NEW data directory, on a free port, never touching the running server.

``restore`` picks the newest usable base backup that ends before the target, checks that the WAL
archive holds every segment from that backup onwards, decrypts the base backup into the new
folder, checks it with ``pg_verifybackup``, starts PostgreSQL there in recovery (to the target
time, or to the end of the archive), waits for it to finish and promote, then runs ``pg_amcheck``
and compares row counts and checksums with the backup's manifest. Pointing the stack at the new
server is a separate, explicit step (the runbook's "re-point").
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from swordfish.backup import integrity, pgtools
from swordfish.backup.envelope import DataKeySource, decrypt_stream
from swordfish.backup.errors import (
    BackupError,
    IntegrityError,
    InvalidRestoreTarget,
    MissingWal,
)
from swordfish.backup.repository import BASE_FILE, MANIFEST_FILE, BackupInfo, Repository

Clock = Callable[[], datetime]
# pgserver's own bookkeeping inside a data directory: meaningless for a new server.
_LEFTOVERS = (".handle_pids.json", "postmaster.pid", "postmaster.opts", "log")
PASSWORD_FILE = "superuser.password"
_IDENT_MAP = "swordfish_restore"
# A restored server takes no login without a password (the live embedded server trusts local
# logins as postgres; its pg_hba.conf comes back with the base backup and is replaced).
_HBA_SCRAM = ("# written by swordfish backup restore: a password for every login\n"
              "local all all scram-sha-256\n"
              "host all all 127.0.0.1/32 scram-sha-256\n"
              "host all all ::1/128 scram-sha-256\n")


def _now() -> datetime:
    return datetime.now(UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RestoredServer:
    """A restored PostgreSQL, running on 127.0.0.1:port until ``stop``."""

    data_dir: Path
    port: int
    socket_dir: Path
    log_file: Path
    backup_id: str
    target: str | None
    superuser_url: str
    timings: dict[str, float] = field(default_factory=dict)
    integrity: dict = field(default_factory=dict)
    heartbeat_at: str | None = None
    password: str = ""  # the superuser's, set by the restore (the server takes no login without one)

    @property
    def password_file(self) -> Path:
        return self.data_dir.parent / PASSWORD_FILE

    def url(self, user: str = "postgres", password: str | None = None, database: str = "swordfish") -> str:
        if password is None:
            password = self.password if user == "postgres" else ""
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        pgtools.run([pgtools.program("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                    timeout=120, as_server_user=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def as_dict(self) -> dict:
        return {"data_dir": str(self.data_dir), "port": self.port, "backup_id": self.backup_id, "target": self.target,
                "url": self.url(password=""), "password_file": str(self.password_file),
                "log_file": str(self.log_file), "timings_seconds": self.timings,
                "integrity": self.integrity, "heartbeat_at": self.heartbeat_at}


# --- planning ------------------------------------------------------------------------------------
def choose_backup(repository: Repository, target: datetime | None, clock: Clock = _now,
                  archive_state: dict | None = None) -> BackupInfo:
    usable = repository.usable_backups()
    if not usable:
        raise BackupError(f"no usable base backup in {repository.base_dir} (take one: swordfish backup create)")
    if target is None:
        return usable[-1]
    now = clock()
    if target > now:
        raise InvalidRestoreTarget(f"restore target {target.isoformat()} is in the future (now {now.isoformat()})")
    earliest = min(b.finished for b in usable)
    if target < earliest:
        raise InvalidRestoreTarget(
            f"restore target {target.isoformat()} is before the oldest usable backup; the earliest restorable "
            f"point is {earliest.isoformat()} (backup {usable[0].backup_id})")
    archived_until = (repository.archive_state() if archive_state is None else archive_state).get("archived_until")
    if archived_until and target > datetime.fromisoformat(archived_until):
        raise InvalidRestoreTarget(
            f"restore target {target.isoformat()} is after the newest archived WAL ({archived_until}); "
            "restore to the latest point instead, or wait for the archiver to catch up")
    candidates = [b for b in usable if b.finished <= target]
    return candidates[-1]


def wal_chain(repository: Repository, backup: BackupInfo) -> list[tuple[str, Path]]:
    """Every archived segment from the backup's start, contiguous; a gap raises MissingWal."""
    archived = {name: path for name, path in repository.wal_segments().items()
                if name[:8] == backup.start_segment[:8] and name >= backup.start_segment}
    chain: list[tuple[str, Path]] = []
    name = backup.start_segment
    remaining = set(archived)
    while remaining:
        if name not in archived:
            later = min(remaining)
            raise MissingWal(
                f"WAL segment {name} is missing from the archive ({repository.wal_dir}); segments from {later} "
                f"onwards cannot be replayed, so no point after segment {name} can be restored from backup "
                f"{backup.backup_id}")
        chain.append((name, archived[name]))
        remaining.discard(name)
        name = pgtools.next_segment(name)
    return chain


# --- materialising -------------------------------------------------------------------------------
class _IterReader:
    """A read()-able view of an iterator of byte chunks (for tarfile's streaming mode)."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks, self.buffer = chunks, bytearray()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.buffer) < size:
            try:
                self.buffer += next(self.chunks)
            except StopIteration:
                break
        if size < 0:
            size = len(self.buffer)
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out


def extract_base(repository: Repository, backup: BackupInfo, keys: DataKeySource, data_dir: Path) -> None:
    chunks = repository.open_decrypted(backup.backup_id, BASE_FILE, keys, backup)
    with tarfile.open(fileobj=_IterReader(chunks), mode="r|") as tar:
        tar.extractall(data_dir, filter="data")


def remove_leftovers(data_dir: Path) -> None:
    for name in _LEFTOVERS:
        path = data_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def decrypt_wal(chain: list[tuple[str, Path]], keys: DataKeySource, wal_dir: Path) -> None:
    wal_dir.mkdir(parents=True, exist_ok=True)
    for name, path in chain:
        with open(path, "rb") as src, open(wal_dir / name, "wb") as out:
            for chunk in decrypt_stream(src, keys, f"wal/{name}", str(path)):
                out.write(chunk)
        if path.name.endswith(".partial.sfenc"):  # pg_receivewal pads it to a whole segment already
            size = (wal_dir / name).stat().st_size
            if size < pgtools.WAL_SEGMENT_BYTES:
                with open(wal_dir / name, "ab") as out:
                    out.write(b"\0" * (pgtools.WAL_SEGMENT_BYTES - size))


def load_manifest(repository: Repository, backup: BackupInfo, keys: DataKeySource) -> integrity.Manifest:
    raw = b"".join(repository.open_decrypted(backup.backup_id, MANIFEST_FILE, keys, backup))
    return integrity.Manifest.from_dict(json.loads(raw))


def verify_base(data_dir: Path) -> None:
    result = pgtools.run([pgtools.program("pg_verifybackup"), "--exit-on-error", str(data_dir)], timeout=3600)
    if result.returncode != 0:
        raise IntegrityError(f"pg_verifybackup failed on the restored base backup {data_dir}: "
                             f"{(result.stderr or result.stdout).strip()[-800:]}")


def _log_tail(log_file: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _start_server(data_dir: Path, port: int, socket_dir: Path, log_file: Path, timeout: int) -> None:
    result = pgtools.run(
        [pgtools.program("pg_ctl"), "-D", str(data_dir), "-l", str(log_file), "-w", "-t", str(timeout),
         "-o", f"-p {port} -h 127.0.0.1 -k {socket_dir}", "start"],
        timeout=timeout + 30, as_server_user=True)
    if result.returncode != 0:
        tail = _log_tail(log_file)
        if "recovery ended before configured recovery target was reached" in tail:
            raise InvalidRestoreTarget("the archived WAL ends before the restore target: restore to an earlier "
                                       f"point or to the latest one.\n{tail}")
        raise BackupError(f"the restored server did not start (pg_ctl exit {result.returncode}); its log:\n{tail}")


def _wait_promoted(url: str, log_file: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    return
        except psycopg.OperationalError as exc:
            last = exc
        time.sleep(0.2)
    raise BackupError(f"the restored server did not finish recovery in {timeout:.0f}s ({last}); "
                      f"its log:\n{_log_tail(log_file)}")


def run_amcheck(port: int, database: str = "swordfish", password: str = "") -> tuple[str, list[str]]:
    """pg_amcheck on every table and index; where the server lacks the amcheck extension (pgserver's
    build), the scan checks instead. Returns (which check ran, problems)."""
    import os

    result = pgtools.run([pgtools.program("pg_amcheck"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                          "--install-missing", "--no-password", database], timeout=3600,
                         env={**os.environ, "PGPASSWORD": password} if password else None)
    output = result.stdout + result.stderr
    if result.returncode == 0:
        return "pg_amcheck", []
    if 'extension "amcheck" is not available' in output:
        auth = f"postgres:{password}" if password else "postgres"
        with psycopg.connect(f"postgresql://{auth}@127.0.0.1:{port}/{database}", autocommit=True) as conn:
            return "scan_check (this PostgreSQL build has no amcheck extension)", integrity.scan_check(conn)
    return "pg_amcheck", [line for line in output.splitlines() if line.strip()][:50] or [
        f"pg_amcheck exited with {result.returncode}"]


def restore(repository: Repository, keys: DataKeySource, restore_root: Path, *, target: datetime | None = None,
            clock: Clock = _now, verify: bool = True, start_timeout: int = 1800) -> RestoredServer:
    """Restore into ``restore_root/<id>/data`` on a free port and verify it. The caller stops it."""
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    if target is not None and target.tzinfo is None:
        target = target.replace(tzinfo=UTC)
    # Nothing the restore acts on is unauthenticated: the archive's state and the chosen backup's
    # metadata are read from their sealed copies (an edit to the plaintext is named).
    archive_state = repository.authenticated_archive_state(keys)
    backup = repository.authenticated_info(choose_backup(repository, target, clock, archive_state), keys)
    chain = wal_chain(repository, backup)
    manifest = load_manifest(repository, backup, keys)
    restore_root = Path(restore_root).resolve()  # the server runs in its data directory: absolute paths
    restore_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"restore-{clock().strftime('%Y%m%dT%H%M%SZ')}-", dir=restore_root))
    data_dir = folder / "data"
    # The decrypted WAL waits for replay in memory (tmpfs), never in the restore's folder on a disk
    # (issue 25); the restored server's own pg_wal is PostgreSQL's, as on the live server.
    wal_dir = _memory_wal_dir(chain)
    socket_dir = Path(tempfile.mkdtemp(prefix="sfrs-"))
    log_file = folder / "postgresql.log"
    port = free_port()
    server = RestoredServer(data_dir, port, socket_dir, log_file, backup.backup_id,
                            target.isoformat() if target else None, "")
    started = False
    try:
        data_dir.mkdir()
        extract_base(repository, backup, keys, data_dir)
        decrypt_wal(chain, keys, wal_dir)
        timings["decrypt_seconds"] = time.monotonic() - t0
        if verify:
            t = time.monotonic()
            verify_base(data_dir)
            timings["verifybackup_seconds"] = time.monotonic() - t
        remove_leftovers(data_dir)
        settings = [f"restore_command = 'cp \"{wal_dir}/%f\" \"%p\"'", "recovery_target_action = 'promote'",
                    "archive_mode = off", "listen_addresses = '127.0.0.1'", "password_encryption = 'scram-sha-256'"]
        _write_bootstrap_auth(data_dir)
        if target is not None:
            settings.append(f"recovery_target_time = '{target.isoformat()}'")
        with open(data_dir / "postgresql.auto.conf", "a") as conf:
            conf.write("\n# swordfish backup restore\n" + "\n".join(settings) + "\n")
        (data_dir / "recovery.signal").touch()
        pgtools.hand_to_server_user(data_dir)
        pgtools.hand_to_server_user(wal_dir)
        pgtools.hand_to_server_user(socket_dir)
        socket_dir.chmod(0o777)
        folder.chmod(0o755)
        log_file.touch()
        _chown_file(log_file)
        t = time.monotonic()
        started = True
        _start_server(data_dir, port, socket_dir, log_file, start_timeout)
        local_url = f"postgresql://postgres@/postgres?host={socket_dir}&port={port}"
        _wait_promoted(local_url, log_file, start_timeout)
        server.password = _require_passwords(local_url, data_dir, folder)
        server.superuser_url = server.url()
        timings["recovery_seconds"] = time.monotonic() - t
        with psycopg.connect(server.url(), autocommit=True) as conn:
            beat = integrity.latest_heartbeat(conn)
            server.heartbeat_at = beat.isoformat() if beat else None
        if verify:
            t = time.monotonic()
            amcheck_method, problems = run_amcheck(port, password=server.password)
            timings["amcheck_seconds"] = time.monotonic() - t
            t = time.monotonic()
            with psycopg.connect(server.url(), autocommit=True) as conn:
                report = integrity.compare_manifest(conn, manifest)
            timings["manifest_seconds"] = time.monotonic() - t
            report.amcheck_problems = problems
            report.heartbeat_at = server.heartbeat_at
            report.details["amcheck"] = amcheck_method
            report.ok = report.ok and not problems
            server.integrity = report.as_dict()
            if not report.ok:
                raise IntegrityError("the restored database fails its integrity checks: "
                                     + "; ".join(report.mismatches + problems))
        timings["total_seconds"] = time.monotonic() - t0
        server.timings = timings
        (folder / "restore.json").write_text(json.dumps(server.as_dict(), indent=2, default=str))
        return server
    except BaseException:
        if started:
            with contextlib.suppress(Exception):
                server.stop()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(socket_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(wal_dir, ignore_errors=True)


def _memory_wal_dir(chain: list[tuple[str, Path]]) -> Path:
    """A private folder in memory for the decrypted chain; refused when the chain would not fit."""
    from swordfish.backup.database import memory_staging_root

    root = memory_staging_root()
    needed = len(chain) * pgtools.WAL_SEGMENT_BYTES
    free = shutil.disk_usage(root).free
    if needed > free * 0.9:
        raise BackupError(f"the WAL chain to replay ({needed / 2**20:.0f} MiB) does not fit in memory at {root} "
                          f"({free / 2**20:.0f} MiB free): decrypted WAL is never written to a disk; "
                          "enlarge the tmpfs or restore from a newer base backup")
    return Path(tempfile.mkdtemp(prefix="sfrestore-wal-", dir=root))


def _write_bootstrap_auth(data_dir: Path) -> None:
    """Until the superuser has a password, only we log in as postgres: peer authentication on the
    private socket, mapped from our OS user (the kernel vouches for it; no trust line, no TCP)."""
    import os
    import pwd

    me = pwd.getpwuid(os.geteuid()).pw_name
    (data_dir / "pg_ident.conf").write_text(f"# written by swordfish backup restore\n{_IDENT_MAP} {me} postgres\n")
    (data_dir / "pg_hba.conf").write_text(f"local all postgres peer map={_IDENT_MAP}\n" + _HBA_SCRAM)


def _require_passwords(local_url: str, data_dir: Path, folder: Path) -> str:
    """Give postgres a new random password (stored SCRAM), then take every login to scram-sha-256.
    The password goes to a 0600 file beside the data directory, for the operator."""
    import os
    import secrets

    from psycopg import sql

    password = secrets.token_urlsafe(24)
    fd = os.open(folder / PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    with psycopg.connect(local_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute(sql.SQL("ALTER ROLE postgres WITH PASSWORD {}").format(sql.Literal(password)))
        (data_dir / "pg_hba.conf").write_text(_HBA_SCRAM)
        (data_dir / "pg_ident.conf").write_text("# written by swordfish backup restore: no mapping\n")
        if not conn.execute("SELECT pg_reload_conf()").fetchone()[0]:
            raise BackupError("the restored server did not reload its authentication rules")
    # The postmaster reloads asynchronously: hand the server over only once a login without the
    # password is refused.
    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(local_url, connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            if "password" in str(exc):
                return password
            raise
        if time.monotonic() > deadline:
            raise BackupError("the restored server still takes logins without a password after a reload")
        time.sleep(0.05)


def _chown_file(path: Path) -> None:
    import os
    import pwd

    user = pgtools.server_os_user()
    if user:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def restorable_window(repository: Repository) -> dict:
    usable = repository.usable_backups()
    state = repository.archive_state()
    return {"earliest": usable[0].finished_at if usable else None,
            "latest": state.get("archived_until"),
            "backups": len(usable)}


def parse_target(value: str | None, clock: Clock = _now) -> datetime | None:
    """'latest' / None, an ISO time, or '-15m' / '-2h' relative to now."""
    if value in (None, "", "latest"):
        return None
    if value.startswith("-") and value[-1] in "smhd":
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[value[-1]]
        return clock() - timedelta(**{unit: float(value[1:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRestoreTarget(f"restore target {value!r} is not 'latest', an ISO time or -<n>[smhd]") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
