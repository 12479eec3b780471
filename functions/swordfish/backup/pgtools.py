"""The PostgreSQL client and server programs the embedded stack ships (pgserver's bin directory).

pgserver runs the server as the OS user ``pgserver`` when we are root; a restored data directory
must then belong to that user, and the server programs (pg_ctl) run as it. Client programs
(pg_basebackup, pg_receivewal, pg_verifybackup, pg_amcheck) run as whoever we are.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

WAL_SEGMENT_BYTES = 16 * 1024 * 1024
SERVER_OS_USER = "pgserver"


def bin_dir() -> Path:
    from swordfish.config import get_settings

    override = get_settings().pg_bin_dir
    if override:
        return Path(override)
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def program(name: str) -> str:
    path = bin_dir() / name
    if not path.exists():
        raise FileNotFoundError(f"{name} not found in {bin_dir()} (set SWORDFISH_PG_BIN_DIR)")
    return str(path)


def server_os_user() -> str | None:
    """The OS user the server runs as: pgserver's when we are root, else ourselves."""
    return SERVER_OS_USER if os.geteuid() == 0 else None


def hand_to_server_user(path: Path) -> None:
    """Give a data directory (and everything in it) to the server's OS user, mode 0700 at the top."""
    user = server_os_user()
    if user is not None:
        from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(user)
        ensure_prefix_permissions(path)
        entry = pwd.getpwnam(user)
        for root, dirs, files in os.walk(path):
            os.chown(root, entry.pw_uid, entry.pw_gid)
            for name in dirs + files:
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    path.chmod(0o700)


@dataclass(frozen=True)
class ConnectionTarget:
    """Where a libpq client program connects: host (or socket dir), port, user, database, password."""

    host: str
    port: int
    user: str
    dbname: str
    password: str = ""

    @classmethod
    def from_url(cls, url: str) -> ConnectionTarget:
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        host = query.get("host", [parsed.hostname or ""])[0]
        port = int(query.get("port", [parsed.port or 5432])[0])
        return cls(host=host, port=port, user=unquote(parsed.username or "postgres"),
                   dbname=(parsed.path or "/postgres").lstrip("/") or "postgres",
                   password=unquote(parsed.password or ""))

    def env(self) -> dict[str, str]:
        # The child inherits our environment (PATH, locale) plus libpq's connection variables.
        env = {**os.environ, "PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user,
               "PGDATABASE": self.dbname, "PGCONNECT_TIMEOUT": "10"}
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def url(self, dbname: str | None = None) -> str:
        auth = self.user + (f":{self.password}" if self.password else ":")
        if self.host.startswith("/"):
            return f"postgresql://{auth}@/{dbname or self.dbname}?host={self.host}&port={self.port}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname or self.dbname}"


_LSN = re.compile(r"([0-9A-F]+)/([0-9A-F]+)", re.I)


def lsn_to_int(lsn: str) -> int:
    match = _LSN.fullmatch(lsn.strip())
    if not match:
        raise ValueError(f"not an LSN: {lsn!r}")
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def segment_name(timeline: int, lsn: int, segment_bytes: int = WAL_SEGMENT_BYTES) -> str:
    segno = lsn // segment_bytes
    per_log = 0x100000000 // segment_bytes
    return f"{timeline:08X}{segno // per_log:08X}{segno % per_log:08X}"


def next_segment(name: str, segment_bytes: int = WAL_SEGMENT_BYTES) -> str:
    timeline, log, seg = int(name[:8], 16), int(name[8:16], 16), int(name[16:24], 16)
    per_log = 0x100000000 // segment_bytes
    seg += 1
    if seg >= per_log:
        log, seg = log + 1, 0
    return f"{timeline:08X}{log:08X}{seg:08X}"


SEGMENT_RE = re.compile(r"^[0-9A-F]{24}$")


def die_with_parent() -> None:  # runs in the child between fork and exec
    """A long-running client (pg_receivewal) must not outlive the process that supervises it."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 3600, as_server_user: bool = False,
        **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, timeout=timeout, capture_output=True, text=True,
                          user=server_os_user() if as_server_user else None, **kwargs)
