"""Values made storable by PostgreSQL: the one place every text and JSON value passes before a write.

Mail is hostile: any byte can reach a header, a filename or an evidence string. PostgreSQL refuses
NUL in ``text`` and ``\\u0000`` in ``jsonb``, rejects unpaired UTF-16 surrogates (which Python
strings can hold after ``surrogateescape`` decoding or a JSON ``\\udXXX`` escape), and ``jsonb``
has no NaN or Infinity. One refused value used to fail a whole batch's transaction, other tenants'
mail included, so writers pass their values through here instead of each cleaning its own.
"""

from __future__ import annotations

import math
import re
from typing import Any

REPLACEMENT = "\ufffd"  # visible where a byte was replaced: the evidence that something odd was there
JSON_STRING_LIMIT = 4096  # per string inside a JSON document (evidence, problems): a verdict row stays small

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str | None, limit: int | None = None) -> str | None:
    """``value`` with NUL and lone surrogates replaced by U+FFFD, cut to ``limit`` characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    if _UNSTORABLE.search(value):
        value = _UNSTORABLE.sub(REPLACEMENT, value)
    if limit is not None and len(value) > limit:
        value = value[: limit - 1] + "\u2026"
    return value


def storable_json(value: Any, string_limit: int = JSON_STRING_LIMIT) -> Any:
    """A copy of a JSON-shaped value that ``jsonb`` accepts: strings (keys too) made storable and
    capped, non-finite numbers as null, tuples and sets as lists, anything else as its text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return storable_text(value, string_limit)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {storable_text(str(k), string_limit): storable_json(v, string_limit) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [storable_json(v, string_limit) for v in value]
    return storable_text(str(value), string_limit)
