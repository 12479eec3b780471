"""The one place an API key is read from a request: ``Authorization: Bearer <key>`` (preferred) or
``x-api-key``. The key's id (never its secret) names the caller in logs and error events."""

from __future__ import annotations

from collections.abc import Mapping

from swordfish.store.tenants import parse_api_key


def presented_api_key(headers: Mapping[str, str] | None) -> str:
    """The key the caller presented, or "" when none (header names are case-insensitive)."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    auth = lowered.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return (lowered.get("x-api-key") or "").strip()


def caller_key_id(headers: Mapping[str, str] | None) -> str | None:
    """``api-key:<key id>`` for a well-formed key, else None."""
    parsed = parse_api_key(presented_api_key(headers))
    return f"api-key:{parsed[1]}" if parsed else None
