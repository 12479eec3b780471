"""The one check of free text from callers, for the API's models and the console's forms alike.

What a text field may not hold: NUL (PostgreSQL refuses it: a 500), other C0 and C1 control
characters and DEL (they forge lines in logs, headers and pages), unpaired surrogates (not
encodable), and Unicode format characters (bidi overrides, zero-width characters: text that reads
differently from what it is). A single-line field refuses every line break; a multi-line one keeps
LF, CR and tab. Identifiers that travel through the queue, URLs and logs (``message_id``) are
printable ASCII only: a Message-ID is ASCII (RFC 5322), and every queue and log takes it as is.

A failed check raises ``ValueError`` naming the field and the first offending character, which the
API's pydantic models turn into a 400 and the console shows in its form.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator

_ALWAYS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
_MULTI_LINE_BAD = re.compile(f"[{_ALWAYS}]")
_SINGLE_LINE_BAD = re.compile(f"[{_ALWAYS}\t\n\r\u0085\u2028\u2029]")
_PRINTABLE_ASCII = re.compile(r"[ -~]*")


def _first_format_character(value: str) -> str | None:
    return next((c for c in value if unicodedata.category(c) == "Cf"), None)


def _refuse(field: str, character: str, what: str) -> ValueError:
    return ValueError(f"{field} must not contain {what} (found U+{ord(character):04X})")


def check_text(value: str, field: str = "the text", *, multiline: bool = False) -> str:
    """``value`` unchanged, or ValueError when it holds what no text field may hold."""
    bad = (_MULTI_LINE_BAD if multiline else _SINGLE_LINE_BAD).search(value)
    if bad:
        what = "control characters" if multiline else "control characters or line breaks"
        raise _refuse(field, bad.group(), what)
    format_character = _first_format_character(value)
    if format_character is not None:
        raise _refuse(field, format_character, "invisible formatting characters")
    return value


def check_identifier(value: str, field: str = "the identifier") -> str:
    """``value`` unchanged when it is printable ASCII (space to tilde), else ValueError."""
    if not _PRINTABLE_ASCII.fullmatch(value):
        bad = next(c for c in value if not " " <= c <= "~")
        raise _refuse(field, bad, "anything but printable ASCII")
    return value


def check_message_id(value: str, field: str = "message_id") -> str:
    """A message id: printable ASCII, and not "." or "..", which no URL can carry as a path segment
    (browsers resolve them, so the console could never link to such a verdict)."""
    check_identifier(value, field)
    if value in (".", ".."):
        raise ValueError(f"{field} cannot be {value!r}")
    return value


def visible(value: str, limit: int = 254) -> str:
    """``value`` with every control and format character shown as an escape (\\x0d, \\u202e): for
    text we must record even when it is hostile (who tried to sign in, in the audit log)."""
    return "".join(c if c.isprintable() and unicodedata.category(c) != "Cf"
                   else f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
                   for c in value[:limit])


def text_problem(value: str, field: str, *, multiline: bool = False) -> str | None:
    """The refusal as a sentence, or None: for forms that show it rather than raise."""
    try:
        check_text(value, field, multiline=multiline)
    except ValueError as exc:
        return str(exc)
    return None


# The same rules as JSON Schema patterns for the OpenAPI document, so that generated "valid" requests
# (schemathesis) are valid; the format characters listed are the common ones, the check has them all.
_FORMAT = "\\u00ad\\u061c\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff"
ASCII_PATTERN = "^[ -~]*$"
SINGLE_LINE_PATTERN = f"^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029{_FORMAT}]*$"
MULTI_LINE_PATTERN = f"^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f{_FORMAT}]*$"

# For pydantic models: the validators name the field themselves in the 400 ("analyst: ...").
SingleLineText = Annotated[str, AfterValidator(lambda v: check_text(v, "the value"))]
MultiLineText = Annotated[str, AfterValidator(lambda v: check_text(v, "the value", multiline=True))]
AsciiIdentifier = Annotated[str, AfterValidator(lambda v: check_identifier(v, "the value"))]
MessageIdText = Annotated[str, AfterValidator(lambda v: check_message_id(v, "the value"))]
