"""Error tracking: every error captured with its context and stack, grouped, rate-limited, scrubbed.

Public API (called by handlers, the pipeline and the devstack):

- ``configure(redis_url=None, local_file=None, sentry_dsn=None, release=None, repo_root=None, *,
  environment=None, rate_limit=None, rate_window_seconds=None, scrub_key=None,
  deadline_margin_ms=None) -> TrackerConfig``: once at cold start. ``None`` means "from the
  environment" (SWORDFISH_REDIS_URL, SWORDFISH_ERROR_LOG_FILE, SENTRY_DSN, SWORDFISH_RELEASE,
  SWORDFISH_ENVIRONMENT, SWORDFISH_ERROR_RATE_LIMIT, SWORDFISH_ERROR_RATE_WINDOW_SECONDS,
  SWORDFISH_ERROR_SCRUB_KEY, SWORDFISH_DEADLINE_WARNING_MS); an empty string turns a sink off.
  Capturing before configure() configures from the environment.
- ``capture_exception(exc, *, level="error", fingerprint=None, **extra) -> str | None``: the event
  id, or None when rate-limited. Never raises.
- ``capture_message(message, *, level="warning", fingerprint=None, **extra) -> str | None``.
- ``track_errors(handler)``: decorator for Lambda handlers ``(event, context)``. Clears context and
  breadcrumbs per invocation, binds ``request_id`` (aws_request_id), captures an unhandled
  exception (level fatal) and re-raises it, warns shortly before the deadline (threading.Timer on
  ``context.get_remaining_time_in_millis()``, with the breadcrumbs so far), warns when peak memory
  nears ``context.memory_limit_in_mb``, and flushes Sentry before returning. Order with Powertools::

      @logger.inject_lambda_context
      @tracer.capture_lambda_handler
      @metrics.log_metrics
      @track_errors
      def handler(event, context): ...

- ``FingerprintedError(*args, fingerprint=[...])``: raise it (or subclass it with a class-level
  ``fingerprint``) to choose the group at the raise site; any exception with a ``fingerprint``
  attribute works, and ``fingerprint=`` on capture_exception wins over both. ``"{{ default }}"`` in
  a fingerprint list stands for the computed one.
- ``install_process_hooks()``: for long-running devstack processes: sys/threading excepthooks.
- ``flush(timeout=2.0)``; ``compute_fingerprint(exc) -> (fingerprint, parts)``;
  ``normalise_message(text)``.

An error event is one JSON log line through the shared Powertools logger with ``error_event: true``,
``fingerprint``, ``exception_type``, ``error_message``, ``event_id``, ``exceptions`` (the chain,
outermost first, each with frames: repo-relative ``path``, ``module``, ``function``, ``lineno``,
``source``, ``in_app``), ``stack`` (text), ``context``, ``breadcrumbs``, ``extra``, ``release``,
``environment`` and ``suppressed_count``. Errors (levels error and fatal) also emit the EMF metric
``Errors`` with dimension ``exception_type`` (single_metric: flushed at once, apart from the
handler's metrics). The same event goes to the JSON-lines local file when configured, and to
Sentry when a DSN is set (our scrubber and fingerprint applied in ``before_send``).

Everything leaving the process is scrubbed (see scrubber.py). Rate limit: at most ``rate_limit``
events per fingerprint per window, counted in-process and, when Redis is configured, across all
workers (INCR + EXPIRE on one key per fingerprint and window); suppressed events are counted and
the next event that goes out carries ``suppressed_count``. A Redis failure never stops capture: it
falls back to the in-process count and retries Redis after a pause.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import linecache
import os
import re
import resource
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, ClassVar, TypeVar

import redis
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from swordfish.config import get_settings
from swordfish.monitoring import scrubber
from swordfish.monitoring.breadcrumbs import (
    all_breadcrumbs,
    breadcrumbs_of,
    current_breadcrumbs,
    reset_breadcrumbs,
    trail_dropped,
)
from swordfish.monitoring.context_provider import (
    bind_context,
    clear_context,
    context_of,
    current_context,
    remember_on,
)
from swordfish.monitoring.observability import logger, metrics

ERROR_METRIC_NAME = "Errors"
ERROR_METRIC_DIMENSION = "exception_type"
REDIS_KEY_PREFIX = "swordfish:errors"
DEFAULT_FINGERPRINT = "{{ default }}"
_REDIS_RETRY_AFTER_SECONDS = 30.0
_MEMORY_WARNING_RATIO = 0.9
_LEVELS = ("info", "warning", "error", "fatal")
_METRIC_LEVELS = ("error", "fatal")
_THIS_MODULE = __name__
_EXC_EVENT_ID_ATTR = "_swordfish_event_id"
_MAX_STRING = 2048  # per string in extra/breadcrumb data: keeps an event well under CloudWatch's 256 KiB
_MAX_MESSAGE = 8192


class FingerprintedError(Exception):
    """An exception that names its own group: ``raise FingerprintedError("...", fingerprint=["db", "down"])``."""

    fingerprint: ClassVar[Sequence[str] | None] = None

    def __init__(self, *args: object, fingerprint: Iterable[str] | None = None):
        super().__init__(*args)
        if fingerprint is not None:
            self.fingerprint = [str(part) for part in fingerprint]  # type: ignore[misc]


@dataclass
class TrackerConfig:
    repo_root: Path
    release: str
    environment: str
    local_file: Path | None
    sentry_enabled: bool
    rate_limit: int
    rate_window_seconds: float
    deadline_margin_ms: int
    limiter: _RateLimiter = field(repr=False)
    file_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Builds the deadline watch (threading.Timer's signature); tests pass one they fire by hand.
    deadline_timer: Callable[..., threading.Timer] = field(default=threading.Timer, repr=False)


# --- rate limiting ------------------------------------------------------------
class _RateLimiter:
    """Fixed-window count per fingerprint: in-process first (cheap, protects Redis), then Redis."""

    def __init__(self, limit: int, window_seconds: float, client: redis.Redis | None,
                 clock: Callable[[], float] = time.time):
        self.limit = limit
        self.window_seconds = window_seconds
        self.client = client
        self.clock = clock  # wall-clock seconds: windows line up across workers (tests inject their own)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._counts_window = -1
        self._suppressed: dict[str, int] = {}
        self._redis_retry_at = 0.0

    def check(self, fingerprint: str) -> tuple[bool, int]:
        """(allowed, suppressed since the last event that went out)."""
        window = int(self.clock() // self.window_seconds)
        with self._lock:
            if window != self._counts_window:
                self._counts, self._counts_window = {}, window
            count = self._counts[fingerprint] = self._counts.get(fingerprint, 0) + 1
        locally_allowed = count <= self.limit
        remote = self._check_redis(fingerprint, window, locally_allowed)
        allowed = locally_allowed if remote is None else remote[0]
        with self._lock:
            if not allowed:
                if remote is None:  # Redis counted it otherwise
                    self._suppressed[fingerprint] = self._suppressed.get(fingerprint, 0) + 1
                return False, 0
            suppressed = self._suppressed.pop(fingerprint, 0)
        return True, suppressed + (remote[1] if remote else 0)

    def _check_redis(self, fingerprint: str, window: int, locally_allowed: bool) -> tuple[bool, int] | None:
        if self.client is None or time.monotonic() < self._redis_retry_at:
            return None
        count_key = f"{REDIS_KEY_PREFIX}:rate:{fingerprint}:{window}"
        suppressed_key = f"{REDIS_KEY_PREFIX}:suppressed:{fingerprint}"
        try:
            if not locally_allowed:
                self._count_suppressed(suppressed_key)
                return False, 0
            pipe = self.client.pipeline(transaction=True)
            pipe.incr(count_key)
            pipe.expire(count_key, int(self.window_seconds * 2) + 1)
            count = int(pipe.execute()[0])
            if count > self.limit:
                self._count_suppressed(suppressed_key)
                return False, 0
            return True, int(self.client.getdel(suppressed_key) or 0)
        except (redis.RedisError, OSError) as exc:
            self._redis_retry_at = time.monotonic() + _REDIS_RETRY_AFTER_SECONDS
            logger.warning("error tracker: Redis unavailable, rate limiting in-process only for %ss: %s",
                           _REDIS_RETRY_AFTER_SECONDS, scrubber.scrub_text(str(exc)))
            return None

    def _count_suppressed(self, key: str) -> None:
        pipe = self.client.pipeline(transaction=True)  # type: ignore[union-attr]
        pipe.incr(key)
        pipe.expire(key, 86_400)
        pipe.execute()


# --- configuration --------------------------------------------------------------
_config: TrackerConfig | None = None
_config_lock = threading.Lock()


def _default_repo_root() -> Path:
    package_dir = Path(__file__).resolve().parents[1]  # .../swordfish
    for candidate in package_dir.parents:
        if (candidate / ".git").exists() or (candidate / "cdk.json").exists():
            return candidate
    return package_dir.parent  # the Lambda asset root (/var/task)


def configure(
    redis_url: str | None = None,
    local_file: Path | str | None = None,
    sentry_dsn: str | None = None,
    release: str | None = None,
    repo_root: Path | None = None,
    *,
    environment: str | None = None,
    rate_limit: int | None = None,
    rate_window_seconds: float | None = None,
    scrub_key: str | None = None,
    deadline_margin_ms: int | None = None,
    clock: Callable[[], float] | None = None,
    deadline_timer: Callable[..., threading.Timer] | None = None,
) -> TrackerConfig:
    global _config
    env = app = get_settings()
    redis_url = app.redis_url if redis_url is None else redis_url
    local_file = env.error_log_file if local_file is None else local_file
    sentry_dsn = env.sentry_dsn if sentry_dsn is None else sentry_dsn
    client = None
    if redis_url:
        timeout = app.redis_timeout_seconds
        client = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
    limit = rate_limit if rate_limit is not None else env.error_rate_limit
    window = rate_window_seconds or env.error_rate_window_seconds
    config = TrackerConfig(
        repo_root=Path(repo_root or _default_repo_root()).resolve(),
        release=release or app.release,
        environment=environment or env.sentry_environment or app.environment,
        local_file=Path(local_file) if local_file else None,
        sentry_enabled=bool(sentry_dsn),
        rate_limit=limit,
        rate_window_seconds=window,
        deadline_margin_ms=deadline_margin_ms if deadline_margin_ms is not None else env.deadline_warning_ms,
        limiter=_RateLimiter(limit, window, client, clock or time.time),
        deadline_timer=deadline_timer or threading.Timer,
    )
    scrubber.set_hmac_key(scrub_key or env.error_scrub_key)
    with _config_lock:
        previous, _config = _config, config
    if previous is not None and previous.limiter.client is not None:
        previous.limiter.client.close()
    _init_sentry(sentry_dsn, config, had_sentry=previous is not None and previous.sentry_enabled)
    return config


def _state() -> TrackerConfig:
    config = _config
    return config if config is not None else configure()


def _init_sentry(dsn: str | None, config: TrackerConfig, had_sentry: bool) -> None:
    import sentry_sdk  # imported here: a process without a DSN never pays for it

    if had_sentry:
        sentry_sdk.get_client().close(timeout=2)
    if not dsn:
        return
    sentry_sdk.init(
        dsn=dsn,
        release=config.release,
        environment=config.environment,
        before_send=_before_send,
        before_breadcrumb=lambda crumb, hint: scrubber.scrub(crumb),
        # Our own capture is the only source: no logging/excepthook integrations that would send
        # unscrubbed copies of the same errors, no local variables, no PII, no sessions.
        default_integrations=False,
        auto_enabling_integrations=False,
        auto_session_tracking=False,
        send_client_reports=False,
        include_local_variables=False,
        send_default_pii=False,
        max_breadcrumbs=200,
        project_root=str(config.repo_root),
        in_app_include=["swordfish", "handlers", "devstack", "scripts"],
        shutdown_timeout=2,
    )


def _before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    if not event.get("fingerprint"):  # captured outside capture_exception: still group our way
        exc_info = hint.get("exc_info")
        if exc_info and exc_info[1] is not None:
            event["fingerprint"] = [compute_fingerprint(exc_info[1])[0]]
    return scrubber.scrub(event)


# --- frames and fingerprints ------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _resolve_path(filename: str, repo_root: Path) -> tuple[str, bool]:
    if filename.startswith("<"):
        return filename, False
    path = Path(os.path.realpath(filename))
    try:
        relative = path.relative_to(repo_root)
    except ValueError:
        return str(path), False
    library = any(part in ("site-packages", "dist-packages") for part in relative.parts)
    return relative.as_posix(), not library


def _frame_dict(frame: FrameType, lineno: int, repo_root: Path) -> dict[str, Any]:
    code = frame.f_code
    module = str(frame.f_globals.get("__name__", "?"))
    path, in_app = _resolve_path(code.co_filename, repo_root)
    source = linecache.getline(code.co_filename, lineno, frame.f_globals).strip()
    return {
        "path": path,
        "module": module,
        "function": code.co_qualname,
        "lineno": lineno,
        "source": scrubber.scrub_text(source),
        "in_app": in_app and module != _THIS_MODULE,  # our wrapper frame says nothing about the error
    }


def _tb_frames(tb: TracebackType | None, repo_root: Path) -> list[dict[str, Any]]:
    return [_frame_dict(frame, lineno, repo_root) for frame, lineno in traceback.walk_tb(tb)]


def _exception_chain(exc: BaseException) -> list[tuple[BaseException, str]]:
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    relation = "raised"
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, relation))
        if current.__cause__ is not None:
            current, relation = current.__cause__, "cause"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, relation = current.__context__, "context"
        else:
            current = None
    return chain


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


_WS = re.compile(r"\s+")
_NORMALISERS = [
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){2,7}(?::|[0-9a-fA-F]{1,4})(?![\w:])|::1\b"), "<ip>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
]


def normalise_message(text: str) -> str:
    for pattern, replacement in _NORMALISERS:
        text = pattern.sub(replacement, text)
    return _WS.sub(" ", text).strip()


def _default_parts(exc: BaseException, repo_root: Path) -> list[str]:
    parts: list[str] = []
    any_in_app = False
    for item, _relation in _exception_chain(exc):
        parts.append(_type_name(item))
        for frame in _tb_frames(item.__traceback__, repo_root):
            if frame["in_app"]:
                any_in_app = True
                parts.append(f"{frame['module']}:{frame['function']}:{_WS.sub(' ', frame['source'])}")
    if not any_in_app:
        parts.append(normalise_message(scrubber.scrub_text(str(exc))))
    return parts


def _hash_parts(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _explicit(fingerprint: Iterable[str] | str | None, default: Callable[[], list[str]]) -> list[str] | None:
    if fingerprint is None:
        return None
    items = [fingerprint] if isinstance(fingerprint, str) else [str(p) for p in fingerprint]
    parts: list[str] = ["custom"]
    for item in items:
        parts.extend(default() if item == DEFAULT_FINGERPRINT else [item])
    return parts


def _raise_site_fingerprint(exc: BaseException) -> Sequence[str] | str | None:
    # Only a str or a sequence of str counts: a library exception may have an unrelated
    # ``fingerprint`` attribute (a certificate's, a hash's).
    value = getattr(exc, "fingerprint", None)
    if isinstance(value, str) or (isinstance(value, (list, tuple)) and all(isinstance(p, str) for p in value)):
        return value
    return None


def compute_fingerprint(exc: BaseException, fingerprint: Iterable[str] | None = None) -> tuple[str, list[str]]:
    repo_root = _state().repo_root
    chosen = fingerprint if fingerprint is not None else _raise_site_fingerprint(exc)
    parts = _explicit(chosen, lambda: _default_parts(exc, repo_root))
    if parts is None:
        parts = _default_parts(exc, repo_root)
    return _hash_parts(parts), parts


# --- event building ---------------------------------------------------------------
def _format_stack(exceptions: list[dict[str, Any]]) -> str:
    # Own formatting (not traceback.format_exception): repo-relative paths, in-app marks, and only
    # scrubbed messages and source lines.
    blocks = []
    for item in reversed(exceptions):  # Python's order: root cause first
        lines = ["Traceback (most recent call last):"]
        for frame in item["frames"]:
            mark = "" if frame["in_app"] else " [library]"
            lines.append(f'  File "{frame["path"]}", line {frame["lineno"]}, in {frame["function"]}{mark}')
            if frame["source"]:
                lines.append(f"    {frame['source']}")
        lines.append(f"{item['type']}: {item['message']}" if item["message"] else item["type"])
        blocks.append("\n".join(lines))
        if item["relation"] == "cause":
            blocks.append("\nThe above exception was the direct cause of the following exception:\n")
        elif item["relation"] == "context":
            blocks.append("\nDuring handling of the above exception, another exception occurred:\n")
    return "\n".join(blocks)


def _exceptions_payload(exc: BaseException, repo_root: Path) -> list[dict[str, Any]]:
    payload = []
    for item, relation in _exception_chain(exc):
        payload.append({
            "type": _type_name(item),
            "message": scrubber.scrub_text(str(item)),
            # "raised": the captured exception; "cause"/"context": the __cause__/__context__ of the
            # entry before it in this list.
            "relation": relation,
            "frames": _tb_frames(item.__traceback__, repo_root),
        })
    return payload


def _stack_frames_here(repo_root: Path, skip: int) -> list[dict[str, Any]]:
    frame: FrameType | None = sys._getframe(skip + 1)
    frames = []
    while frame is not None:
        frames.append(_frame_dict(frame, frame.f_lineno, repo_root))
        frame = frame.f_back
    return list(reversed(frames))


def _emit(config: TrackerConfig, event: dict[str, Any], exc: BaseException | None) -> None:
    level = event["level"]
    summary = f"{event['exception_type']}: {event['error_message']}"
    log_fields = {key: value for key, value in event.items() if key not in ("level", "service")}
    log = {"fatal": logger.critical, "error": logger.error, "warning": logger.warning}.get(level, logger.info)
    for name, sink in (
        ("log", lambda: _log_with_context(log, summary, log_fields, event["context"])),
        ("metric", lambda: _emit_metric(event) if level in _METRIC_LEVELS else None),
        ("file", lambda: _write_local_file(config, event)),
        ("sentry", lambda: _send_to_sentry(event, exc) if config.sentry_enabled else None),
    ):
        try:
            sink()
        except Exception as sink_error:  # noqa: BLE001 - one broken sink must not cost the others the event
            logger.warning("error tracker: %s sink failed: %s", name, scrubber.scrub_text(repr(sink_error)))


def _log_with_context(log: Callable[..., Any], summary: str, fields: dict[str, Any], context: dict[str, Any]) -> None:
    # An unhandled error is captured after its bind_context blocks have exited: bind the context it
    # was raised in again, so the line carries the same top-level keys as the request's other lines.
    with bind_context(**context):
        log(summary, extra=fields)


def _emit_metric(event: dict[str, Any]) -> None:
    with single_metric(name=ERROR_METRIC_NAME, unit=MetricUnit.Count, value=1, namespace=metrics.namespace,
                       default_dimensions={"service": logger.service}) as metric:
        metric.add_dimension(name=ERROR_METRIC_DIMENSION, value=event["exception_type"])


def _write_local_file(config: TrackerConfig, event: dict[str, Any]) -> None:
    if config.local_file is None:
        return
    line = (json.dumps(event, default=str, ensure_ascii=False) + "\n").encode("utf-8", "replace")
    with config.file_lock:
        config.local_file.parent.mkdir(parents=True, exist_ok=True)
        # One write() per line on an O_APPEND descriptor keeps lines whole when several worker
        # processes share the file; 0600 because events carry tenant context.
        fd = os.open(config.local_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def _send_to_sentry(event: dict[str, Any], exc: BaseException | None) -> None:
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.fingerprint = [event["fingerprint"]]
        scope.level = event["level"]
        scope.set_tag("fingerprint", event["fingerprint"])
        scope.set_tag("swordfish_event_id", event["event_id"])
        for key in ("tenant_id", "correlation_id"):
            if event["context"].get(key):
                scope.set_tag(key, event["context"][key])
        scope.set_context("swordfish", event["context"])
        scope.set_extra("suppressed_count", event["suppressed_count"])
        for key, value in event["extra"].items():
            scope.set_extra(key, value)
        for crumb in event["breadcrumbs"]:
            scope.add_breadcrumb(category=crumb["kind"], message=crumb["message"], data=crumb["data"],
                                 type="default", level="info")
        if exc is not None:
            sentry_sdk.capture_exception(exc)
        else:
            sentry_sdk.capture_message(event["error_message"], level=event["level"])


def _truncate(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _MAX_STRING:
        return value[:_MAX_STRING] + f"...[{len(value) - _MAX_STRING} more chars]"
    if isinstance(value, dict):
        return {key: _truncate(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_truncate(item) for item in value]
    return value


def _pick_breadcrumbs(exc: BaseException | None, given: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if given is not None:
        return given
    remembered = breadcrumbs_of(exc) if exc is not None else None
    return remembered if remembered is not None else current_breadcrumbs()


def _capture(
    *,
    exc: BaseException | None,
    message: str | None,
    level: str,
    fingerprint: Iterable[str] | None,
    extra: dict[str, Any],
    exception_type: str = "Message",
    breadcrumbs: list[dict[str, Any]] | None = None,
) -> str | None:
    try:
        if level not in _LEVELS:
            raise ValueError(f"level must be one of {_LEVELS}, got {level!r}")
        config = _state()
        if exc is not None:
            fp, parts = compute_fingerprint(exc, fingerprint)
            exceptions = _exceptions_payload(exc, config.repo_root)
            exception_type = _type_name(exc)
            error_message = scrubber.scrub_text(str(exc))
        else:
            error_message = scrubber.scrub_text(str(message))
            default = ["message", exception_type, normalise_message(error_message)]
            parts = _explicit(fingerprint, lambda: default) or default
            fp = _hash_parts(parts)
            frames = _stack_frames_here(config.repo_root, skip=2)
            exceptions = [{"type": exception_type, "message": error_message, "relation": "raised", "frames": frames}]
        allowed, suppressed = config.limiter.check(fp)
        if not allowed:
            return None
        event_id = uuid.uuid4().hex
        event = scrubber.scrub({
            "error_event": True,
            "event_id": event_id,
            "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "fingerprint": fp,
            "fingerprint_parts": parts,
            "exception_type": exception_type,
            "error_message": error_message[:_MAX_MESSAGE],
            "exceptions": exceptions,
            "stack": _format_stack(exceptions),
            "context": (exc is not None and context_of(exc)) or current_context(),
            "breadcrumbs": _truncate(_pick_breadcrumbs(exc, breadcrumbs)),
            "breadcrumbs_dropped": trail_dropped(),
            "extra": _truncate(extra),
            "release": config.release,
            "environment": config.environment,
            "service": logger.service,
            "suppressed_count": suppressed,
        })
        _emit(config, event, exc)
        return event_id
    except Exception as tracker_error:  # noqa: BLE001 - the tracker must never turn one error into two
        with contextlib.suppress(Exception):  # nothing left to report a failing logger with
            logger.error("error tracker failed to capture an error: %s", scrubber.scrub_text(repr(tracker_error)))
        return None


def capture_exception(
    exc: BaseException, *, level: str = "error", fingerprint: list[str] | None = None, **extra: Any
) -> str | None:
    already = getattr(exc, _EXC_EVENT_ID_ATTR, None)
    if already is not None:  # reported where it was handled, then re-raised: one event, not two
        return already
    event_id = _capture(exc=exc, message=None, level=level, fingerprint=fingerprint, extra=extra)
    if event_id is not None:
        remember_on(exc, _EXC_EVENT_ID_ATTR, event_id)
    return event_id


def capture_message(
    message: str, *, level: str = "warning", fingerprint: list[str] | None = None, **extra: Any
) -> str | None:
    return _capture(exc=None, message=message, level=level, fingerprint=fingerprint, extra=extra)


def flush(timeout: float = 2.0) -> None:
    config = _config
    if config is not None and config.sentry_enabled:
        import sentry_sdk

        sentry_sdk.flush(timeout=timeout)


# --- Lambda handlers -----------------------------------------------------------------
def _warn_deadline(context: Any, budget_ms: int) -> None:
    function_name = str(getattr(context, "function_name", "unknown"))
    try:
        remaining = int(context.get_remaining_time_in_millis())
    except (AttributeError, TypeError, ValueError):  # a context without a usable clock
        remaining = -1
    _capture(
        exc=None,
        message=f"Lambda {function_name} is about to time out ({remaining} ms left of {budget_ms} ms)",
        level="error",
        fingerprint=["lambda-deadline", function_name],
        extra={"remaining_ms": remaining, "budget_ms": budget_ms, "function_name": function_name},
        exception_type="LambdaDeadlineWarning",
        breadcrumbs=all_breadcrumbs(),
    )
    flush(timeout=1.0)  # the runtime may be killed before the handler's own flush


def _start_deadline_watch(context: Any, config: TrackerConfig) -> threading.Timer | None:
    get_remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(get_remaining):
        return None
    remaining = int(get_remaining())
    margin = config.deadline_margin_ms
    delay_ms = remaining - margin if remaining > 2 * margin else remaining / 2
    # The timer thread runs in a copy of this context: it sees request_id and the (shared, mutable)
    # breadcrumb trail of this invocation.
    timer = config.deadline_timer(max(delay_ms, 0) / 1000, contextvars.copy_context().run,
                                  args=(_warn_deadline, context, remaining))
    timer.daemon = True
    timer.start()
    return timer


def _check_memory(context: Any) -> None:
    limit_mb = getattr(context, "memory_limit_in_mb", None)
    try:
        limit_kb = int(limit_mb) * 1024
    except (TypeError, ValueError):
        return
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    if limit_kb and peak_kb >= limit_kb * _MEMORY_WARNING_RATIO:
        function_name = str(getattr(context, "function_name", "unknown"))
        _capture(
            exc=None,
            message=f"Lambda {function_name} peak memory {peak_kb // 1024} MB of {limit_mb} MB",
            level="warning",
            fingerprint=["lambda-memory", function_name],
            extra={"peak_mb": peak_kb // 1024, "limit_mb": int(limit_mb)},
            exception_type="LambdaMemoryWarning",
        )


F = TypeVar("F", bound=Callable[..., Any])


def track_errors(handler: F) -> F:
    @functools.wraps(handler)
    def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        clear_context()
        reset_breadcrumbs()
        config = _state()
        with bind_context(request_id=getattr(context, "aws_request_id", None)):
            watch = _start_deadline_watch(context, config)
            try:
                return handler(event, context, *args, **kwargs)
            except Exception as exc:
                capture_exception(exc, level="fatal", mechanism="unhandled", handler=handler.__qualname__)
                raise
            finally:
                if watch is not None:
                    watch.cancel()
                _check_memory(context)
                flush()
                reset_breadcrumbs()

    return wrapper  # type: ignore[return-value]


def install_process_hooks() -> None:
    """Capture unhandled exceptions of a long-running process (devstack) and its threads."""
    previous_hook = sys.excepthook
    previous_thread_hook = threading.excepthook

    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if isinstance(exc, Exception):
            capture_exception(exc, level="fatal", mechanism="excepthook")
            flush()
        previous_hook(exc_type, exc, tb)

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if isinstance(args.exc_value, Exception):
            thread_name = args.thread.name if args.thread else None
            capture_exception(args.exc_value, level="fatal", mechanism="threading.excepthook", thread=thread_name)
        previous_thread_hook(args)

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


__all__ = [
    "FingerprintedError", "TrackerConfig", "capture_exception", "capture_message",
    "compute_fingerprint", "configure", "flush", "install_process_hooks", "normalise_message", "track_errors",
]
