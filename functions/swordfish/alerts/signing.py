"""The webhook signature: HMAC-SHA256 over ``<timestamp>.<body>`` with the rule's secret.

Headers on every request: ``X-Swordfish-Timestamp`` (Unix seconds) and ``X-Swordfish-Signature``
(``v1=<hex>``). A receiver recomputes the HMAC over the timestamp it was sent, a dot and the raw
body, compares in constant time, and refuses a timestamp older than a few minutes (a replay).
``verify`` is that check, for receivers written in Python and for our tests.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Swordfish-Timestamp"
SIGNATURE_HEADER = "X-Swordfish-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(int(timestamp)).encode() + b"." + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(int(timestamp)), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: str, body: bytes, timestamp: str | None, presented: str | None, *, now: float,
           tolerance: float = DEFAULT_TOLERANCE_SECONDS) -> bool:
    """True when ``presented`` signs ``body`` at ``timestamp`` and the timestamp is recent."""
    try:
        sent = int(timestamp or "")
    except ValueError:
        return False
    if abs(now - sent) > tolerance or not presented:
        return False
    return hmac.compare_digest(signature(secret, sent, body).encode(), presented.strip().encode())
