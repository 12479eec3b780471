"""Checks on the raw request before the resolver sees it: the correlation id's form, the body's
content type and size, and (after the key check, ``routes.KeyFirstResolver``) how deep its JSON
nests. Each refusal is an API Gateway proxy response the handler returns as it is."""

from __future__ import annotations

import base64
import binascii
import json
import re

# Stored with the verdict and copied into logs: short, and only characters that need no escaping.
CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
JSON_TYPES = ("application/json",)
BODY_METHODS = ("POST", "PUT", "PATCH")
# API Gateway's own payload limit; nothing bigger ever reaches the Lambda on AWS, so nothing bigger
# is parsed locally either.
MAX_BODY_BYTES = 10 * 1024 * 1024
# Our bodies nest four deep ({"messages": [{...}]}); json.loads recurses once per level and raised
# RecursionError at about 1,000 (a 2 KB body), so depth is bounded before anything is parsed.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: linear, no backtracking
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST_PAIR = re.compile(r"\[\]|\{\}")


def _refusal(status: int, message: str) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"statusCode": status, "message": message}), "isBase64Encoded": False}


def request_body(event: dict) -> str:
    """The body as text (API Gateway base64-encodes what it considers binary)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded") and body:
        try:
            return base64.b64decode(body).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return body
    return body


def json_depth_exceeds(body: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``body`` nests more than ``limit`` arrays and objects deep, found without parsing:
    strings are removed, then innermost ``[]``/``{}`` pairs, ``limit`` times, in C (re), so the cost
    is bounded by size x limit whatever the attacker sends. What is left was deeper (or unbalanced,
    which json.loads would refuse anyway)."""
    brackets = _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", body))
    for _ in range(limit):
        if not brackets:
            return False
        brackets, removed = _INNERMOST_PAIR.subn("", brackets)
        if not removed:
            break
    return bool(brackets)


def body_refusal(event: dict) -> dict | None:
    """400 for a body whose JSON nests too deep; None when it may be parsed."""
    if (event.get("httpMethod") or "").upper() in BODY_METHODS and json_depth_exceeds(request_body(event)):
        return _refusal(400, f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
    return None


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
        size = len(event.get("body") or "")  # base64 text when encoded: a bound, not the exact size
        if size > MAX_BODY_BYTES * 4 // 3 + 4 or len(request_body(event).encode()) > MAX_BODY_BYTES:
            return _refusal(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    return None
