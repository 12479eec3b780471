"""A local threat-feed server (URLhaus, OpenPhish, PhishTank files) with fault injection.

In-process (tests, devstack)::

    with FeedServer() as feeds:           # serves samples/feeds/ on 127.0.0.1:<free port>
        feeds.urls                         # {"urlhaus": "http://127.0.0.1:N/urlhaus.csv", ...}
        feeds.set_fault("hang")            # or "error" (500), "down" (listener closed), "ok"
        feeds.set_fault("error", paths=["/openphish.txt"])   # one feed only

As a process::

    python -m devstack.feed_server --port 8701 [--admin-port 8702] [--folder samples/feeds]
    curl -X POST 127.0.0.1:8702/_faults -d '{"mode": "down"}'

``FaultInjectingHTTPServer`` is the shared base of this server and the Nango stand-in: the fault
switch, the request log, the optional admin listener that stays up while the main one is "down".
"""

from __future__ import annotations

import abc
import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from devstack.services import REPO_ROOT, free_port

FAULT_MODES = ("ok", "error", "hang", "down")
_MODE_ALIASES = {"500": "error", "fail": "error", "timeout": "hang", "up": "ok"}
FEED_FILES = {"urlhaus": "urlhaus.csv", "openphish": "openphish.txt", "phishtank": "phishtank.csv"}
DEFAULT_FEED_FOLDER = REPO_ROOT / "samples" / "feeds"


class _Handler(BaseHTTPRequestHandler):
    server_version = "SwordfishStandin/1"
    owner: FaultInjectingHTTPServer  # set on the per-server subclass
    admin_only = False

    def log_message(self, format, *args):
        if self.owner.verbose:
            sys.stderr.write(f"{self.owner.name}: {format % args}\n")

    def do_GET(self):
        self.owner._dispatch(self, self.admin_only)

    do_POST = do_PUT = do_DELETE = do_GET


class FaultInjectingHTTPServer(abc.ABC):
    """A threaded HTTP server on 127.0.0.1 with a fault switch; subclasses implement ``handle``."""

    name = "standin"

    def __init__(self, port: int | None = None, *, admin_port: int | None = None,
                 hang_seconds: float = 120.0, verbose: bool = False):
        self.port = port or free_port()
        self.admin_port = admin_port
        self.hang_seconds = hang_seconds  # a hung request answers nothing for this long, then drops
        self.verbose = verbose
        self.mode = "ok"
        self.fault_paths: frozenset[str] | None = None  # None: the fault applies to every path
        self.requests: list[tuple[str, str]] = []  # (method, path) of every non-admin request
        self._lock = threading.Lock()
        self._release = threading.Event()  # set to end every hanging request at once
        self._main: tuple[ThreadingHTTPServer, threading.Thread] | None = None
        self._admin: tuple[ThreadingHTTPServer, threading.Thread] | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port or self.port}"

    def start(self):
        self._main = self._listen(self.port, admin_only=False)
        if self.admin_port is not None:
            self._admin = self._listen(self.admin_port, admin_only=True)
        return self

    def stop(self) -> None:
        self._release.set()
        for attr in ("_main", "_admin"):
            listener = getattr(self, attr)
            setattr(self, attr, None)
            if listener is not None:
                _close(listener)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _listen(self, port: int, admin_only: bool) -> tuple[ThreadingHTTPServer, threading.Thread]:
        handler = type("Handler", (_Handler,), {"owner": self, "admin_only": admin_only})
        httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        httpd.daemon_threads = True  # a hanging request must not keep the process alive
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"{self.name}:{port}", daemon=True)
        thread.start()
        return httpd, thread

    # --- faults -------------------------------------------------------------------------------
    def set_fault(self, mode: str, paths: list[str] | None = None) -> None:
        """Switch to ``ok``, ``error`` (alias ``500``), ``hang`` or ``down`` (listener closed; the
        admin listener, if any, stays up), optionally for some paths only."""
        mode = _MODE_ALIASES.get(str(mode).lower(), str(mode).lower())
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; use one of {', '.join(FAULT_MODES)}")
        with self._lock:
            if self.mode == "hang" and mode != "hang":
                self._release.set()  # free requests that are hanging now
                self._release = threading.Event()
            self.mode = mode
            self.fault_paths = frozenset(paths) if paths else None
            if mode == "down" and self._main is not None:
                listener, self._main = self._main, None
                _close(listener)
            elif mode != "down" and self._main is None:
                self._main = self._listen(self.port, admin_only=False)

    def request_count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for _, p in self.requests if path is None or p == path)

    # --- dispatch -----------------------------------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler, admin_only: bool) -> None:
        path = h.path.split("?", 1)[0]
        if path == "/_faults":
            return self._admin_route(h)
        if admin_only:
            return send_json(h, 404, {"error": "the admin listener serves /_faults only"})
        with self._lock:
            self.requests.append((h.command, path))
            mode, release = self.mode, self._release
            faulty = self.fault_paths is None or path in self.fault_paths
        if faulty and mode == "error":
            return send_json(h, 500, {"error": {"code": "injected_fault", "message": "fault mode: error"}})
        if faulty and mode == "hang":
            release.wait(self.hang_seconds)
            h.close_connection = True  # answer nothing: the client sees a timeout or a dropped connection
            return None
        if faulty and mode == "down":  # a request already accepted as the listener closed
            h.close_connection = True
            return None
        return self.handle(h, path)

    def _admin_route(self, h: BaseHTTPRequestHandler) -> None:
        if h.command == "POST":
            try:
                body = read_json(h)
                self.set_fault(body.get("mode", ""), body.get("paths"))
            except (ValueError, TypeError) as exc:
                return send_json(h, 400, {"error": str(exc)})
        with self._lock:
            state = {"mode": self.mode, "paths": sorted(self.fault_paths or []), "requests": len(self.requests)}
        return send_json(h, 200, state)

    @abc.abstractmethod
    def handle(self, h: BaseHTTPRequestHandler, path: str) -> None:
        """Answer a request that no fault intercepted."""


def _close(listener: tuple[ThreadingHTTPServer, threading.Thread]) -> None:
    httpd, thread = listener
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def send_json(h: BaseHTTPRequestHandler, status: int, payload) -> None:
    send_bytes(h, status, json.dumps(payload).encode(), "application/json")


def send_bytes(h: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


def read_json(h: BaseHTTPRequestHandler) -> dict:
    length = int(h.headers.get("Content-Length") or 0)
    raw = h.rfile.read(length) if length else b""
    body = json.loads(raw or b"{}")
    if not isinstance(body, dict):
        raise TypeError("expected a JSON object")
    return body


class FeedServer(FaultInjectingHTTPServer):
    """Serves ``<folder>/urlhaus.csv``, ``openphish.txt`` and ``phishtank.csv``, plus ``/health``."""

    name = "feed-server"

    def __init__(self, folder: Path = DEFAULT_FEED_FOLDER, port: int | None = None, **kwargs):
        super().__init__(port, **kwargs)
        self.folder = Path(folder)
        self._overrides: dict[str, bytes] = {}

    @property
    def urls(self) -> dict[str, str]:
        """Feed name → URL, ready for SWORDFISH_URLHAUS_FEED_URL and friends."""
        return {feed: f"{self.url}/{filename}" for feed, filename in FEED_FILES.items()}

    def set_content(self, feed: str, data: bytes | None) -> None:
        """Serve ``data`` for ``feed`` instead of its file (None: back to the file)."""
        path = "/" + FEED_FILES[feed]
        with self._lock:
            if data is None:
                self._overrides.pop(path, None)
            else:
                self._overrides[path] = data

    def handle(self, h: BaseHTTPRequestHandler, path: str) -> None:
        if path == "/health":
            return send_json(h, 200, {"status": "pass"})
        name = path.lstrip("/")
        if h.command not in ("GET", "HEAD") or name not in FEED_FILES.values():
            return send_json(h, 404, {"error": f"no feed at {path}; feeds: {sorted(FEED_FILES.values())}"})
        with self._lock:
            data = self._overrides.get(path)
        if data is None:
            try:
                data = (self.folder / name).read_bytes()
            except OSError as exc:
                return send_json(h, 404, {"error": f"feed file missing: {exc}"})
        return send_bytes(h, 200, data, "text/csv" if name.endswith(".csv") else "text/plain")


def serve_until_signalled(server: FaultInjectingHTTPServer, describe: dict) -> int:
    """Run a stand-in as a process: print where it listens (one JSON line), stop on SIGTERM/SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with server:
        print(json.dumps({"url": server.url, "admin_url": server.admin_url, **describe}), flush=True)
        while not stop.is_set():
            stop.wait(0.5)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.feed_server", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="listen port (default: a free one)")
    parser.add_argument("--admin-port", type=int, default=0,
                        help="port for /_faults that stays up when the feed port is 'down' (default: a free one)")
    parser.add_argument("--folder", type=Path, default=DEFAULT_FEED_FOLDER, help="folder with the feed files")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    server = FeedServer(args.folder, args.port or None, admin_port=args.admin_port or free_port(),
                        verbose=args.verbose)
    return serve_until_signalled(server, {"feeds": server.urls})


if __name__ == "__main__":
    sys.exit(main())
