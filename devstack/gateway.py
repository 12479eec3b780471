"""A local API Gateway: HTTP requests in, REST proxy (v1) events to the real API handler, responses out.

Written here because no library turns plain HTTP into API Gateway proxy events for an in-process
handler. Requests are handled one at a time: the Powertools resolver keeps the current event on
the app object, as in a Lambda container that serves one request at a time.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from devstack.poller import FakeLambdaContext

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
# An oversized body is read and thrown away up to this much, so the caller gets its 413 instead of
# a reset (closing a socket with unread data makes the kernel answer with RST); past it we close.
MAX_DRAIN_BYTES = 64 * 1024 * 1024
# Connections waiting to be accepted: socketserver's default (5) dropped or reset a burst of 50.
LISTEN_BACKLOG = 512


def to_proxy_event(method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict:
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    is_text = not body or headers.get("content-type", "").startswith(
        ("application/json", "text/", "application/x-www-form-urlencoded"))
    return {
        "resource": parts.path,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()), "stage": "local", "httpMethod": method, "path": parts.path,
            "resourcePath": parts.path, "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("user-agent", "")},
        },
        "body": (body.decode("utf-8", "replace") if is_text else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": bool(body) and not is_text,
    }


def make_server(handler, port: int = 8080, host: str = "127.0.0.1", *,
                console_handler=None) -> ThreadingHTTPServer:
    """``console_handler``: the console Lambda, for paths under /console (one API Gateway on AWS)."""
    lock = threading.Lock()

    class Gateway(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # the API handler logs each request itself
            pass

        def _serve(self):
            try:
                length = int(self.headers.get("content-length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self._answer(400, '{"message": "Content-Length is not a number"}', close=True)
                return
            if length > MAX_BODY_BYTES:
                if length <= MAX_DRAIN_BYTES:
                    self._drain(length)
                self._answer(413, '{"message": "request body over 10 MB (API Gateway\'s limit)"}', close=True)
                return
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            event = to_proxy_event(self.command, self.path, headers, body, self.client_address[0])
            target, name = handler, "swordfish-api"
            if console_handler is not None and (event["path"] == "/console" or event["path"].startswith("/console/")):
                target, name = console_handler, "swordfish-console"
            try:
                with lock:
                    response = target(event, FakeLambdaContext(function_name=name))
            except Exception:  # as API Gateway answers a crashed Lambda: a status, never a dropped connection
                self._answer(502, '{"message": "Internal server error"}')
                return
            payload = response.get("body") or ""
            data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
            self.send_response(response.get("statusCode", 500))
            for key, value in (response.get("headers") or {}).items():
                self.send_header(key, value)
            for key, values in (response.get("multiValueHeaders") or {}).items():
                for value in values:
                    self.send_header(key, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _drain(self, length: int) -> None:
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 20))
                if not chunk:
                    break
                length -= len(chunk)

        def _answer(self, status: int, body: str, *, close: bool = False) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            if close:
                self.send_header("connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    class Server(ThreadingHTTPServer):
        request_queue_size = LISTEN_BACKLOG
        daemon_threads = True

    return Server((host, port), Gateway)
