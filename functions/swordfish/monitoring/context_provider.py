"""The request context (who, which request, which submission) that logs, traces and errors carry.

Public API:

- ``bind_context(**fields)``: context manager; binds fields for the code inside it (nested binds
  merge, inner values win, everything is restored on exit). ``None`` values are ignored. While bound,
  the fields are also Powertools Logger keys, so every log line carries them.
- ``current_context() -> dict``: a copy of what is bound now.
- ``context_of(exc) -> dict | None``: the context bound where an exception was raised. An
  exception leaving a ``bind_context`` block remembers the innermost context it left, so a handler
  wrapper that captures it after the blocks have exited still reports the tenant and record.
- ``remember_on(exc, attribute, value)``: (for the monitoring package) attach a value to an
  exception once, innermost scope first.
- ``clear_context()``: drop everything bound in this execution context (between invocations).
- ``new_correlation_id() -> str``.
- ``CORRELATION_ATTRIBUTE = "correlation_id"``: the SQS message attribute that carries the
  correlation id from the API/submitter to the processor;
  ``correlation_message_attributes(cid)`` builds the ``MessageAttributes`` entry for
  ``send_message(_batch)``, ``correlation_id_from_attributes(attrs)`` reads it back from either a
  Lambda SQS record's ``messageAttributes`` or a boto3 ``receive_message`` ``MessageAttributes``.

Standard fields (CONTEXT_FIELDS): tenant_id, user_id, request_id (Lambda aws_request_id),
api_request_id (API Gateway requestContext.requestId), sqs_message_id, correlation_id. Other
keyword names are accepted (e.g. message_id) so callers are not blocked, but stick to these.

The context lives in a ``contextvars.ContextVar``, so threads and asyncio tasks each see their own.
Logger keys use Powertools' ``thread_safe_append_keys``/``thread_safe_remove_keys`` (themselves
ContextVar based) rather than ``append_keys``/``remove_keys``: the embedded poller runs several
workers as threads in one process, and the plain keys are global to the logger, so one worker's
tenant would leak into another's log lines.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from swordfish.monitoring.observability import logger

CONTEXT_FIELDS = ("tenant_id", "user_id", "request_id", "api_request_id", "sqs_message_id", "correlation_id")
CORRELATION_ATTRIBUTE = "correlation_id"

_EXC_CONTEXT_ATTR = "_swordfish_context"
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, Any]] = ContextVar("swordfish_request_context", default=_EMPTY)


def current_context() -> dict[str, Any]:
    return dict(_context.get())


def new_correlation_id() -> str:
    return str(uuid.uuid4())


@contextlib.contextmanager
def bind_context(**fields: Any) -> Iterator[dict[str, Any]]:
    added = {key: value for key, value in fields.items() if value is not None}
    previous = _context.get()
    merged = MappingProxyType({**previous, **added})
    token = _context.set(merged)
    previous_log_keys = dict(logger.thread_safe_get_current_keys())
    logger.thread_safe_append_keys(**added)
    try:
        yield dict(merged)
    except BaseException as exc:
        remember_on(exc, _EXC_CONTEXT_ATTR, dict(merged))
        raise
    finally:
        _context.reset(token)
        logger.thread_safe_remove_keys(list(added))
        restore = {key: previous_log_keys[key] for key in added if key in previous_log_keys}
        if restore:
            logger.thread_safe_append_keys(**restore)


def identify_caller(user_id: str) -> None:
    """Name the caller once its credential is verified (never from an unverified header), for the
    rest of the enclosing ``bind_context``, which drops it again when it ends."""
    _context.set(MappingProxyType({**_context.get(), "user_id": user_id}))
    logger.thread_safe_append_keys(user_id=user_id)


def forget_caller() -> None:
    logger.thread_safe_remove_keys(["user_id"])


def remember_on(exc: BaseException, attribute: str, value: Any) -> None:
    # The innermost scope an exception leaves is the one that knows most; outer ones keep it.
    if not hasattr(exc, attribute):
        try:
            setattr(exc, attribute, value)
        except (AttributeError, TypeError):  # an exception type without a __dict__: context is lost
            pass


def context_of(exc: BaseException) -> dict[str, Any] | None:
    """The context bound where ``exc`` was raised, if it left a ``bind_context`` block."""
    return getattr(exc, _EXC_CONTEXT_ATTR, None)


def clear_context() -> None:
    bound = list(_context.get())
    _context.set(_EMPTY)
    if bound:
        logger.thread_safe_remove_keys(bound)


def correlation_message_attributes(correlation_id: str) -> dict[str, dict[str, str]]:
    return {CORRELATION_ATTRIBUTE: {"DataType": "String", "StringValue": correlation_id}}


def correlation_id_from_attributes(attributes: Mapping[str, Any] | None) -> str | None:
    entry = (attributes or {}).get(CORRELATION_ATTRIBUTE)
    if not isinstance(entry, Mapping):
        return None
    # Lambda SQS events spell it stringValue; boto3 receive_message spells it StringValue.
    value = entry.get("stringValue", entry.get("StringValue"))
    return str(value) if value else None
