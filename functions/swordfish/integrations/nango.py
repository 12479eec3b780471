"""Nango client: mailbox mail and remediation through Nango's proxy to Microsoft Graph.

Each public method is exactly one HTTP request with a timeout, so a circuit breaker can wrap one
method per operation. Failures are typed:

- NangoUnavailable (NangoTimeout for timeouts): connection refused/reset, timeouts, 5xx, 429 —
  transient, retry later;
- NangoAuthError: 401/403 — our secret key or the user's connection grant is wrong;
- NangoNotFound: 404 — unknown connection or message (deleted, already moved);
- NangoRequestError: any other 4xx — our request is wrong;
- NangoMessageTooLarge: the message is bigger than we analyse.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import urllib3

from swordfish import constants
from swordfish.pipeline.ports import MessageGone

JUNK_FOLDER = "junkemail"  # Graph's well-known folder name for Junk Email
INBOX_FOLDER = "inbox"  # and for the Inbox (where a release puts the message back)
_READ_CHUNK = 64 * 1024


class NangoError(RuntimeError):
    def __init__(self, message: str, *, operation: str, status: int | None = None):
        super().__init__(message)
        self.operation = operation
        self.status = status


class NangoUnavailable(NangoError):
    """Nango (or the provider behind it) is down, slow, overloaded or unreachable."""


class NangoTimeout(NangoUnavailable):
    """No complete answer within the client's timeout."""


class NangoNotFound(NangoError, MessageGone):
    """The connection or the message does not exist (any more)."""


class NangoAuthError(NangoError):
    """The Nango secret key was rejected, or the connection's grant lacks the permission."""


class NangoRequestError(NangoError):
    """Nango rejected the request itself (4xx other than 401/403/404/429)."""


class NangoMessageTooLarge(NangoError):
    """The raw message exceeds the size limit; it was not downloaded in full."""


class NangoClient:
    def __init__(self, base_url: str, secret_key: str, timeout: float, *,
                 max_message_bytes: int = constants.MAX_MESSAGE_BYTES):
        if not base_url or not secret_key:
            raise ValueError("Nango needs a base URL and a secret key (SWORDFISH_NANGO_BASE_URL, "
                             "SWORDFISH_NANGO_SECRET_KEY)")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.max_message_bytes = max_message_bytes
        self._secret_key = secret_key
        # One pool per client, reused across Lambda invocations. No retries here: retrying is the
        # caller's decision (queue redelivery, circuit breaker), and a hidden retry doubles latency.
        self._http = urllib3.PoolManager(num_pools=2, maxsize=8, retries=False, block=False)

    def __repr__(self) -> str:  # never show the secret
        return f"NangoClient({self.base_url!r}, timeout={self.timeout})"

    # --- operations (one request each) ---------------------------------------------------------
    def fetch_message(self, connection_id: str, provider_config_key: str, provider_message_id: str) -> bytes:
        """Raw MIME of one mailbox message (Graph ``GET /v1.0/me/messages/{id}/$value``)."""
        path = f"/proxy/v1.0/me/messages/{_segment(provider_message_id)}/$value"
        return self._request("fetch_message", "GET", path, connection_id, provider_config_key,
                             limit=self.max_message_bytes)

    def quarantine(self, connection_id: str, provider_config_key: str, provider_message_id: str) -> str | None:
        """Move a mailbox message to Junk Email (Graph ``POST /v1.0/me/messages/{id}/move``).
        Returns the message's id in Junk Email (Graph may give a moved message a new id)."""
        return self._move("quarantine", connection_id, provider_config_key, provider_message_id, JUNK_FOLDER)

    def release(self, connection_id: str, provider_config_key: str, provider_message_id: str) -> str | None:
        """Move a quarantined message back to the Inbox (the same Graph move); returns its new id."""
        return self._move("release", connection_id, provider_config_key, provider_message_id, INBOX_FOLDER)

    def delete(self, connection_id: str, provider_config_key: str, provider_message_id: str) -> None:
        """Delete a mailbox message (Graph ``DELETE /v1.0/me/messages/{id}``: it goes to Deleted Items,
        where its owner can still get it back, as Graph's own delete does). 404: already gone."""
        path = f"/proxy/v1.0/me/messages/{_segment(provider_message_id)}"
        self._request("delete", "DELETE", path, connection_id, provider_config_key)

    def _move(self, operation: str, connection_id: str, provider_config_key: str, provider_message_id: str,
              destination: str) -> str | None:
        path = f"/proxy/v1.0/me/messages/{_segment(provider_message_id)}/move"
        data = self._request(operation, "POST", path, connection_id, provider_config_key,
                             body={"destinationId": destination})
        try:
            moved = json.loads(data or b"{}")
        except ValueError:
            return None  # moved (2xx) but the answer is not JSON: the caller keeps the id it had
        new_id = moved.get("id") if isinstance(moved, dict) else None
        return new_id if isinstance(new_id, str) and new_id else None

    def health(self) -> None:
        """Raises NangoUnavailable unless Nango's ``/health`` answers 2xx in time."""
        self._request("health", "GET", "/health", None, None, limit=64 * 1024)

    # --- the one HTTP call ---------------------------------------------------------------------
    def _request(self, operation: str, method: str, path: str, connection_id: str | None,
                 provider_config_key: str | None, *, body: dict | None = None,
                 limit: int = 1024 * 1024) -> bytes:
        headers = {"Accept": "*/*"}
        if operation != "health":
            if not connection_id or not provider_config_key:
                raise ValueError(f"Nango {operation} needs a connection id and a provider config key")
            headers.update({"Authorization": f"Bearer {self._secret_key}", "Connection-Id": connection_id,
                            "Provider-Config-Key": provider_config_key})
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        url = self.base_url + path
        where = f"Nango {operation} ({method} {path})"
        deadline = time.monotonic() + self.timeout
        try:
            response = self._http.request(
                method, url, body=payload, headers=headers, redirect=False, preload_content=False,
                timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
            )
            try:
                data = _read_limited(response, limit, deadline)
            finally:
                response.release_conn()
        except _TooLarge:
            raise NangoMessageTooLarge(f"{where}: response larger than {limit} bytes; not downloaded",
                                       operation=operation) from None
        except _Late:
            raise NangoTimeout(f"{where}: no complete answer within {self.timeout:g}s",
                               operation=operation) from None
        except urllib3.exceptions.NewConnectionError as exc:  # a ConnectTimeoutError subclass: refused
            raise NangoUnavailable(f"{where}: cannot connect to {self.base_url}: {_reason(exc)}",
                                   operation=operation) from exc
        except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            raise NangoTimeout(f"{where}: no answer within {self.timeout:g}s", operation=operation) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise NangoUnavailable(f"{where}: cannot reach {self.base_url}: {_reason(exc)}",
                                   operation=operation) from exc
        _raise_for_status(operation, where, response.status, data)
        return data


class _TooLarge(Exception):
    pass


class _Late(Exception):
    pass


def _read_limited(response: urllib3.BaseHTTPResponse, limit: int, deadline: float) -> bytes:
    # urllib3's read timeout is per socket read; the deadline also stops a server that trickles bytes.
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit and response.status < 300:
        raise _TooLarge
    chunks, size = [], 0
    for chunk in response.stream(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        if time.monotonic() > deadline:
            raise _Late
        chunks.append(chunk)
    return b"".join(chunks)


def _raise_for_status(operation: str, where: str, status: int, data: bytes) -> None:
    if 200 <= status < 300:
        return
    detail = _error_detail(data)
    if status in (401, 403):
        raise NangoAuthError(f"{where}: {status} — Nango rejected the secret key or the connection lacks "
                             f"permission: {detail}", operation=operation, status=status)
    if status == 404:
        raise NangoNotFound(f"{where}: 404 — unknown connection or message: {detail}",
                            operation=operation, status=status)
    if status == 429 or status >= 500:
        raise NangoUnavailable(f"{where}: {status} — Nango or the mail provider is failing or throttling: "
                               f"{detail}", operation=operation, status=status)
    raise NangoRequestError(f"{where}: {status} — request rejected: {detail}", operation=operation,
                            status=status)


def _error_detail(data: bytes) -> str:
    text = data[:500].decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
        error = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
        if isinstance(error, dict):
            text = " ".join(str(error[k]) for k in ("code", "message") if k in error) or text
        elif isinstance(error, str):
            text = error
    except ValueError:
        pass
    return text[:300] or "(empty body)"


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return f"{type(reason).__name__}: {reason}"


def _segment(value: str) -> str:
    if not value:
        raise ValueError("provider message id is empty")
    return quote(value, safe="")  # Graph ids contain '=', '+', '/' and must stay one path segment
