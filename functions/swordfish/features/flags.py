"""Feature flags for the pipeline: one snapshot per email or batch, never down.

    snapshot = flags_client().snapshot()          # one configuration version for the whole batch
    r = snapshot.evaluate(AUTO_QUARANTINE, tenant_id=t, default=False)
    r.value, r.reason, r.variant, r.version, r.stale

Tiers when the store (AppConfig agent) is unreachable or serves an invalid document:
live -> last known good (marked stale) -> the snapshot bundled with the code (flags.json) -> the
caller's default. Overrides win over all of them: ``override_flags(...)`` (tests), then
``SWORDFISH_FLAG_OVERRIDES`` (JSON), then the file named by ``SWORDFISH_FLAG_OVERRIDES_FILE``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from swordfish.config import get_settings
from swordfish.features.counters import EvaluationCounter
from swordfish.features.evaluator import Configuration, FlagSnapshot, Source, empty_configuration
from swordfish.features.store import AgentStoreProvider
from swordfish.lazy import ProcessSingleton
from swordfish.monitoring.observability import logger

BUNDLED_RESOURCE = "flags.json"


def load_bundled() -> tuple[dict[str, Any], str] | None:
    """The flags.json shipped with the code and its version label (``bundled-<sha256 prefix>``)."""
    try:
        text = resources.files("swordfish.features").joinpath(BUNDLED_RESOURCE).read_text()
        return json.loads(text), "bundled-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    except (OSError, ValueError) as exc:
        logger.error("bundled flag snapshot unreadable", extra={"error": repr(exc)})
        return None


# --- overrides ---------------------------------------------------------------
_override_lock = threading.Lock()
_override_stack: list[dict[str, Any]] = []  # process-wide, so worker threads see test overrides too


@contextmanager
def override_flags(**values: Any) -> Iterator[None]:
    """Force flag values (for every tenant and user) inside the block; nested blocks win."""
    layer = dict(values)
    with _override_lock:
        _override_stack.append(layer)
    try:
        yield
    finally:
        with _override_lock:
            for i in range(len(_override_stack) - 1, -1, -1):
                if _override_stack[i] is layer:
                    del _override_stack[i]
                    break


def _context_overrides() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    with _override_lock:
        for layer in _override_stack:
            merged.update(layer)
    return merged


def _parse_overrides(text: str, origin: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        logger.error("flag overrides ignored: not valid JSON", extra={"origin": origin, "error": str(exc)})
        return {}
    if not isinstance(value, dict):
        logger.error("flag overrides ignored: not a JSON object", extra={"origin": origin})
        return {}
    return value


# --- status ------------------------------------------------------------------
class StoreState(StrEnum):
    OK = "ok"  # the last fetch succeeded
    STALE = "stale"  # the store is unreachable; serving the last known good configuration
    DOWN = "down"  # the store is unreachable and nothing was ever fetched: bundled snapshot / defaults


@dataclass(frozen=True)
class StoreStatus:
    state: StoreState
    source: Source
    version: str
    age_seconds: float | None  # since the last successful fetch; None if never
    error: str | None

    @property
    def warning(self) -> bool:
        """An outage is a warning for the health check, never a failure: the mail flow goes on."""
        return self.state is not StoreState.OK

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "state": self.state.value,
            "source": self.source.value,
            "warning": self.warning,
        }


class FlagsClient:
    def __init__(
        self,
        store: AgentStoreProvider,
        *,
        cache_seconds: float = 5.0,
        counter: EvaluationCounter | None = None,
        env_overrides: str | None = None,
        overrides_file: Path | None = None,
        bundled: tuple[dict[str, Any], str] | None = None,
    ):
        self.store = store
        self.cache_seconds = cache_seconds
        self.counter = counter
        self._env_overrides = (
            _parse_overrides(env_overrides, "SWORDFISH_FLAG_OVERRIDES") if env_overrides else {}
        )
        self._overrides_file = overrides_file
        self._file_cache: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._current: Configuration | None = None
        self._checked_at = float("-inf")  # monotonic time of the last fetch attempt
        self._last_good: Configuration | None = None
        self._last_error: str | None = None
        self._bundled = self._build_bundled(bundled)

    @staticmethod
    def _build_bundled(bundled: tuple[dict[str, Any], str] | None) -> Configuration | None:
        if bundled is None:
            return None
        try:
            return Configuration.build(bundled[0], bundled[1], Source.BUNDLED)
        except Exception as exc:  # noqa: BLE001 - an invalid bundled file must not stop the pipeline
            logger.error("bundled flag snapshot invalid", extra={"error": repr(exc)})
            return None

    def snapshot(self) -> FlagSnapshot:
        """The configuration to use for one email or batch. Never raises."""
        config = self._configuration()
        if self.counter is not None:
            self.counter.maybe_flush()
        recorder = self.counter.record if self.counter is not None else None
        return FlagSnapshot(config, self._overrides(), recorder)

    def _configuration(self) -> Configuration:
        with self._lock:
            if self._current is not None and time.monotonic() - self._checked_at < self.cache_seconds:
                return self._current
            self._checked_at = time.monotonic()
            try:
                fetched = self.store.fetch()
                config = Configuration.build(fetched.document, fetched.version, Source.LIVE, time.time())
            except Exception as exc:  # noqa: BLE001 - any store failure falls through to the next tier
                self._last_error = str(exc)
                fallback = self._fallback()
                if self._current is None or self._current.source is Source.LIVE:
                    logger.warning(
                        "flag store unavailable; using fallback configuration",
                        extra={
                            "error": str(exc),
                            "source": fallback.source.value,
                            "version": fallback.version,
                        },
                    )
                self._current = fallback
                return fallback
            self._last_error = None
            self._last_good = config
            self._current = config
            return config

    def _fallback(self) -> Configuration:
        if self._last_good is not None:
            lkg = self._last_good
            return Configuration(
                lkg.document, lkg.version, Source.LAST_KNOWN_GOOD, lkg.fetched_at, lkg._probe
            )
        return self._bundled or empty_configuration()

    def _overrides(self) -> dict[str, Any]:
        merged = dict(self._file_overrides())
        merged.update(self._env_overrides)
        merged.update(_context_overrides())
        return merged

    def _file_overrides(self) -> dict[str, Any]:
        path = self._overrides_file
        if path is None:
            return {}
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return {}
        if self._file_cache is None or self._file_cache[0] != mtime:
            try:
                self._file_cache = (mtime, _parse_overrides(path.read_text(), str(path)))
            except OSError as exc:
                logger.error("flag override file unreadable", extra={"path": str(path), "error": str(exc)})
                return {}
        return self._file_cache[1]

    def store_status(self) -> StoreStatus:
        config = self._configuration()
        last_good = self._last_good
        if config.source is Source.LIVE:
            state = StoreState.OK
        elif config.source is Source.LAST_KNOWN_GOOD:
            state = StoreState.STALE
        else:
            state = StoreState.DOWN
        age = time.time() - last_good.fetched_at if last_good is not None else None
        return StoreStatus(state, config.source, config.version, age, self._last_error)

    def flush(self) -> None:
        if self.counter is not None:
            self.counter.flush()


def build_flags_client(agent_url: str | None = None, redis_url: str | None = None) -> FlagsClient:
    settings = flag_settings = get_settings()
    store = AgentStoreProvider(
        agent_url or settings.appconfig_agent_url, timeout_seconds=flag_settings.flags_timeout_seconds
    )
    counter = EvaluationCounter.from_url(
        redis_url or settings.redis_url,
        settings.redis_timeout_seconds,
        flag_settings.flags_counter_flush_seconds,
    )
    return FlagsClient(
        store,
        cache_seconds=flag_settings.flags_cache_seconds,
        counter=counter,
        env_overrides=flag_settings.flag_overrides,
        overrides_file=flag_settings.flag_overrides_file,
        bundled=load_bundled(),
    )


# The process-wide client (reused across Lambda invocations, so last known good survives);
# resetting it (tests, or after changing settings) flushes its evaluation counts first.
_client = ProcessSingleton(build_flags_client, close=FlagsClient.flush)
flags_client = _client.get
reset_flags_client = _client.reset


def store_status() -> StoreStatus:
    """For the health check: ok / stale / down with the age of the last good configuration."""
    return flags_client().store_status()
