"""A local stand-in for Nango's proxy to Microsoft Graph, with fixture mailboxes and fault injection.

Routes (as the real Nango proxy exposes Graph):

- ``GET  /health``                                       → 200 ``{"result": "ok"}`` (no auth)
- ``GET  /proxy/v1.0/me/messages/{id}/$value``           → the raw MIME of the message
- ``POST /proxy/v1.0/me/messages/{id}/move``             → JSON ``{"destinationId": ...}``: the message
  moves to that folder (``folder_of``); a move to ``junkemail`` is recorded in ``quarantined``, one
  back to ``inbox`` from Junk Email in ``released``. Every message starts in ``inbox``. Ids stay
  the same across moves (as Graph's immutable ids do), unless ``new_ids_on_move`` is set: then,
  like Graph's default ids, a moved message gets a new id (answered as ``id``) and the old one is 404.
- ``DELETE /proxy/v1.0/me/messages/{id}``                → 204: the message is gone from the mailbox
  (recorded in ``deleted``; Graph moves it to Deleted Items, where this stand-in does not keep it)
- ``POST /_faults`` ``{"mode": "ok"|"500"|"hang"|"down"}`` → switch faults (also ``set_fault()``)

Proxy calls need ``Authorization: Bearer <secret>`` (else 401), ``Connection-Id`` and
``Provider-Config-Key`` (else 400); an unknown connection or message is 404.

Mailboxes are a dict ``connection_id → {message_id: raw bytes}``, or a folder with one subfolder per
connection id holding ``<message_id>.eml`` files.

In-process::

    with NangoStandin(secret_key="s", mailboxes={"conn-1": {"msg-1": raw}}) as nango:
        NangoClient(nango.url, "s", timeout=1).fetch_message("conn-1", "microsoft", "msg-1")
        nango.quarantined      # [Quarantine(connection_id="conn-1", ...)]
        nango.folder_of("conn-1", "msg-1")   # "junkemail" after a quarantine, "inbox" after a release
        nango.set_fault("hang")

As a process::

    python -m devstack.nango_standin --port 8703 [--admin-port 8704] [--mailboxes DIR] [--secret S]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote

from devstack.feed_server import (
    FaultInjectingHTTPServer,
    read_json,
    send_bytes,
    send_json,
    serve_until_signalled,
)
from devstack.services import free_port

DEFAULT_SECRET = "local-nango-secret"
_PREFIX = "/proxy/v1.0/me/messages/"


@dataclass(frozen=True)
class Quarantine:
    connection_id: str
    provider_config_key: str
    message_id: str
    destination: str


def load_mailboxes(folder: Path) -> dict[str, dict[str, bytes]]:
    """``folder/<connection_id>/<message_id>.eml`` → ``{connection_id: {message_id: raw}}``."""
    mailboxes: dict[str, dict[str, bytes]] = {}
    for box in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        mailboxes[box.name] = {f.stem if f.suffix == ".eml" else f.name: f.read_bytes()
                               for f in sorted(box.iterdir()) if f.is_file()}
    return mailboxes


class NangoStandin(FaultInjectingHTTPServer):
    name = "nango-standin"

    def __init__(self, secret_key: str = DEFAULT_SECRET, mailboxes: dict[str, dict[str, bytes]] | None = None,
                 *, mailbox_dir: Path | None = None, port: int | None = None, new_ids_on_move: bool = False,
                 **kwargs):
        super().__init__(port, **kwargs)
        self.new_ids_on_move = new_ids_on_move
        self._moves = 0
        self.secret_key = secret_key
        self.mailboxes: dict[str, dict[str, bytes]] = {c: dict(m) for c, m in (mailboxes or {}).items()}
        if mailbox_dir is not None:
            for connection, messages in load_mailboxes(mailbox_dir).items():
                self.mailboxes.setdefault(connection, {}).update(messages)
        self.quarantined: list[Quarantine] = []
        self.released: list[Quarantine] = []
        self.deleted: list[Quarantine] = []
        self._folders: dict[tuple[str, str], str] = {}  # (connection, message) -> folder; default inbox
        self._mail_lock = threading.Lock()

    def folder_of(self, connection_id: str, message_id: str) -> str:
        with self._mail_lock:
            return self._folders.get((connection_id, message_id), "inbox")

    def add_message(self, connection_id: str, message_id: str, raw: bytes) -> None:
        with self._mail_lock:
            self.mailboxes.setdefault(connection_id, {})[message_id] = raw

    def handle(self, h: BaseHTTPRequestHandler, path: str) -> None:
        if path == "/health" and h.command == "GET":
            return send_json(h, 200, {"result": "ok"})
        if not path.startswith(_PREFIX):
            return _graph_error(h, 404, "route_not_found", f"no route {h.command} {path}")
        if h.headers.get("Authorization") != f"Bearer {self.secret_key}":
            return _graph_error(h, 401, "unknown_account", "missing or wrong Nango secret key")
        connection_id = h.headers.get("Connection-Id", "")
        provider_config_key = h.headers.get("Provider-Config-Key", "")
        if not connection_id or not provider_config_key:
            return _graph_error(h, 400, "missing_headers", "Connection-Id and Provider-Config-Key are required")
        message_id, _, action = path[len(_PREFIX):].partition("/")
        message_id = unquote(message_id)
        with self._mail_lock:
            mailbox = self.mailboxes.get(connection_id)
            raw = None if mailbox is None else mailbox.get(message_id)
        if mailbox is None:
            return _graph_error(h, 404, "unknown_connection", f"no connection {connection_id!r}")
        if raw is None:
            return _graph_error(h, 404, "ErrorItemNotFound", "The specified object was not found in the store.")
        if action == "" and h.command == "DELETE":
            with self._mail_lock:
                self.mailboxes[connection_id].pop(message_id, None)
                before = self._folders.pop((connection_id, message_id), "inbox")
                self.deleted.append(Quarantine(connection_id, provider_config_key, message_id, before))
            return send_bytes(h, 204, b"", "application/json")
        if action == "$value" and h.command == "GET":
            return send_bytes(h, 200, raw, "message/rfc822")
        if action == "move" and h.command == "POST":
            try:
                destination = read_json(h).get("destinationId")
            except (ValueError, TypeError) as exc:
                return _graph_error(h, 400, "ErrorInvalidRequest", f"body is not JSON: {exc}")
            if not destination:
                return _graph_error(h, 400, "ErrorInvalidRequest", "destinationId is required")
            move = Quarantine(connection_id, provider_config_key, message_id, destination)
            with self._mail_lock:
                before = self._folders.pop((connection_id, message_id), "inbox")
                new_id = message_id
                if self.new_ids_on_move:
                    self._moves += 1
                    new_id = f"{message_id.split('~')[0]}~{self._moves}"
                    self.mailboxes[connection_id][new_id] = self.mailboxes[connection_id].pop(message_id)
                self._folders[(connection_id, new_id)] = destination
                if destination == "junkemail":
                    self.quarantined.append(move)
                elif before == "junkemail":
                    self.released.append(move)
            return send_json(h, 201, {"id": new_id, "parentFolderId": destination})
        return _graph_error(h, 405, "ErrorInvalidRequest", f"{h.command} {action or '(none)'} not supported")


def _graph_error(h: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
    send_json(h, status, {"error": {"code": code, "message": message}})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.nango_standin", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="listen port (default: a free one)")
    parser.add_argument("--admin-port", type=int, default=0,
                        help="port for /_faults that stays up when the main port is 'down' (default: a free one)")
    parser.add_argument("--mailboxes", type=Path, help="folder of <connection_id>/<message_id>.eml fixtures")
    parser.add_argument("--secret", default=os.environ.get("SWORDFISH_NANGO_SECRET_KEY", DEFAULT_SECRET),
                        help="bearer secret to accept (default: $SWORDFISH_NANGO_SECRET_KEY or a local one)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    server = NangoStandin(args.secret, mailbox_dir=args.mailboxes, port=args.port or None,
                          admin_port=args.admin_port or free_port(), verbose=args.verbose)
    return serve_until_signalled(server, {"connections": sorted(server.mailboxes)})


if __name__ == "__main__":
    sys.exit(main())
