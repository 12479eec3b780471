"""Remove secrets from anything the error tracker sends out of the process.

Public API:

- ``scrub(value) -> Any``: a scrubbed deep copy of dicts/lists/tuples/sets/strings/bytes/pydantic
  models/dataclasses. A value under a sensitive key is replaced whole; every string (and every key)
  is searched for secret patterns.
- ``scrub_text(text) -> str``: the pattern pass over one string (exception messages, URLs, source
  lines, breadcrumb messages).
- ``is_sensitive_key(key) -> bool``.
- ``set_hmac_key(key: bytes | str | None)``: the key of the keyed hash; ``None`` draws a random one
  (correlation then holds within one process only; set SWORDFISH_ERROR_SCRUB_KEY to correlate
  across workers).
- ``FILTERED_PREFIX``: every replacement reads ``[Filtered:<hmac8>]``; the 8 hex characters are
  HMAC-SHA256(key, secret), so the same secret yields the same marker and still correlates.

Sensitive keys are matched case-insensitively by substring (``-`` and ``_`` treated alike):
password, passwd, secret, token, api_key, apikey, authorization, cookie, session, credential,
private_key, client_secret, plus the raw email body (keys raw_mime, or with a ``raw``/``body``
word). Values are matched by pattern: JWTs, AWS access key ids (AKIA/ASIA/...), AWS secret keys
next to their name, ``Bearer``/``Basic`` credentials, URL userinfo, secret query parameters,
``name=value`` pairs with a sensitive name, and card numbers that pass the Luhn check.

Powertools data masking: the erase of a value under a sensitive key goes through
``DataMasking(provider=_KeyedHashProvider()).erase`` (our provider returns the keyed marker instead
of a fixed ``*****``). Finding what to erase is our own walk, because DataMasking selects fields by
exact JSONPath and masks with a fixed string or one static regex substitution: it cannot match keys
by substring at any depth, run several value patterns, or check Luhn.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import hashlib
import hmac
import json
import os
import re
import uuid
from typing import Any

from aws_lambda_powertools.utilities.data_masking import DataMasking
from aws_lambda_powertools.utilities.data_masking.provider import BaseProvider

FILTERED_PREFIX = "[Filtered:"

SENSITIVE_KEY_PARTS = (
    "password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "cookie",
    "session", "credential", "private_key", "client_secret", "raw_mime", "rawmime",
)
# Whole words of a key that mark the raw email body ("raw", "body", "raw_body", "mime_body").
BODY_KEY_WORDS = frozenset({"raw", "body"})
SECRET_QUERY_PARAMS = (
    "token", "access_token", "refresh_token", "id_token", "key", "api_key", "apikey", "sig",
    "signature", "x-amz-signature", "x-amz-security-token", "x-amz-credential", "password",
    "passwd", "pwd", "secret", "client_secret", "code", "auth", "session",
)
_MAX_DEPTH = 64  # deeper structures are replaced whole: cheaper than risking a miss or a recursion error

_hmac_key: bytes = os.urandom(32)


def set_hmac_key(key: bytes | str | None) -> None:
    global _hmac_key
    if key is None:
        _hmac_key = os.urandom(32)
    else:
        _hmac_key = key.encode() if isinstance(key, str) else bytes(key)


def marker(secret: Any) -> str:
    raw = secret if isinstance(secret, bytes) else _canonical(secret).encode("utf-8", "surrogatepass")
    return f"{FILTERED_PREFIX}{hmac.new(_hmac_key, raw, hashlib.sha256).hexdigest()[:8]}]"


def _canonical(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr(value)


class _KeyedHashProvider(BaseProvider):
    """DataMasking provider whose erase leaves the keyed hash marker (not a fixed mask)."""

    def erase(self, data: Any, **kwargs: Any) -> str:
        return marker(data)


_masker = DataMasking(provider=_KeyedHashProvider())


def _key_words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)  # camelCase -> camel_Case
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def is_sensitive_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    folded = key.lower().replace("-", "_")
    squashed = folded.replace("_", "")
    if any(part in folded or part.replace("_", "") in squashed for part in SENSITIVE_KEY_PARTS):
        return True
    return any(word in BODY_KEY_WORDS for word in _key_words(key))


# --- value patterns ---------------------------------------------------------
_KEY_WORDS_RE = (
    r"(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization|cookie|session|"
    r"credential|private[_-]?key|client[_-]?secret)"
)
_JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
_AWS_KEY_ID_RE = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])")
_AWS_SECRET_RE = re.compile(
    r"(?i)(aws_?secret_?(?:access_?)?key(?:_id)?[\"']?\s*[:=]\s*[\"']?)([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])")
# Case-sensitive on purpose: header spellings only, so prose like "basic check" is left alone.
_AUTH_SCHEME_RE = re.compile(r"\b(Bearer|Basic|BEARER|BASIC|bearer)(\s+)([A-Za-z0-9._~+/=:-]{4,})")
_URL_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s@?#]+)@")
_QUERY_RE = re.compile(
    r"(?i)([?&;](?:" + "|".join(re.escape(p) for p in SECRET_QUERY_PARAMS) + r")=)([^&#\s\"'<>]+)")
_KEY_VALUE_RE = re.compile(
    r"(?i)(" + _KEY_WORDS_RE + r"[\w-]*[\"']?\s*[:=]\s*[\"']?)(?!\[Filtered:|Bearer\b|Basic\b)([^\s\"'&,;}\]]+)")
_CARD_RUN_RE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,}(?!\d)")
_CARD_PREFIXES = ("2", "3", "4", "5", "6")  # Mastercard 2-series, Amex/Diners, Visa, Mastercard, Discover


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits.startswith(_CARD_PREFIXES) and _luhn_ok(digits)


def _card_in_run(run: str) -> bool:
    # A run may join a card with neighbouring numbers ("order 12 4111 1111 1111 1111"): try every
    # contiguous span of its groups, so the card is found whatever sits next to it.
    groups = re.split(r"[ -]", run)
    for start in range(len(groups)):
        joined = ""
        for group in groups[start:]:
            joined += group
            if len(joined) > 19:
                break
            if _is_card(joined):
                return True
    return False  # a card glued to other digits without a separator cannot be told apart


def scrub_text(text: str) -> str:
    if not text:
        return text
    text = _JWT_RE.sub(lambda m: marker(m.group(0)), text)
    text = _AWS_KEY_ID_RE.sub(lambda m: marker(m.group(0)), text)
    text = _AWS_SECRET_RE.sub(lambda m: m.group(1) + marker(m.group(2)), text)
    text = _URL_USERINFO_RE.sub(lambda m: m.group(1) + marker(m.group(2)) + "@", text)
    text = _QUERY_RE.sub(lambda m: m.group(1) + marker(m.group(2)), text)
    text = _AUTH_SCHEME_RE.sub(lambda m: m.group(1) + m.group(2) + marker(m.group(3)), text)
    text = _KEY_VALUE_RE.sub(lambda m: m.group(1) + marker(m.group(2)), text)
    return _CARD_RUN_RE.sub(lambda m: marker(m.group(0)) if _card_in_run(m.group(0)) else m.group(0), text)


def _scrub_key(key: Any) -> Any:
    return scrub_text(key) if isinstance(key, str) else key


def scrub(value: Any, _depth: int = 0) -> Any:
    if _depth > _MAX_DEPTH:
        return marker(value)
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, (bool, float, datetime.date, datetime.time, datetime.timedelta,
                                           uuid.UUID, decimal.Decimal)):
        return value  # cannot hold a secret; kept typed so serialisers (Sentry's) still recognise them
    if isinstance(value, int):
        return marker(value) if _is_card(str(abs(value))) else value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return scrub_text(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if is_sensitive_key(key):
                out[_scrub_key(key)] = _masker.erase(item)
            else:
                out[_scrub_key(key)] = scrub(item, _depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [scrub(item, _depth + 1) for item in value]
        return tuple(items) if isinstance(value, tuple) else items  # sets become lists: JSON has no sets
    if callable(getattr(value, "model_dump", None)) and not isinstance(value, type):
        return scrub(value.model_dump(mode="json"), _depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return scrub(dataclasses.asdict(value), _depth + 1)
    return scrub_text(repr(value))
