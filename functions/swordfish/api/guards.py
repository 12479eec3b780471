"""Checks on the raw request before the resolver sees it: the correlation id's form and the body's
content type. Either refusal is an API Gateway proxy response the handler returns as it is."""

from __future__ import annotations

import json
import re

# Stored with the verdict and copied into logs: short, and only characters that need no escaping.
CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
JSON_TYPES = ("application/json",)
BODY_METHODS = ("POST", "PUT", "PATCH")


def _refusal(status: int, message: str) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"statusCode": status, "message": message}), "isBase64Encoded": False}


def precheck(event: dict) -> dict | None:
    """None when the request may go on; else the 400 or 415 response."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    correlation = headers.get("x-correlation-id")
    if correlation is not None and not CORRELATION_ID.match(correlation):
        return _refusal(400, "x-correlation-id must be 1 to 128 letters, digits, '.', '_', ':' or '-'")
    if (event.get("httpMethod") or "").upper() in BODY_METHODS:
        media_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
        if media_type not in JSON_TYPES:
            return _refusal(415, "send the body as JSON with 'Content-Type: application/json'")
    return None
