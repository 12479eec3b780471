"""One value per process, built on first use: the pool, clients and caches a Lambda container keeps
between invocations. Written here because functools.cache may build twice under concurrent first
calls (two pools) and has no way to close what it built."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ProcessSingleton(Generic[T]):
    def __init__(self, build: Callable[[], T], close: Callable[[T], None] | None = None):
        self._build, self._close = build, close
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._build()
            return self._value

    def reset(self) -> None:
        """Forget (and close) the value: after a settings change, and between tests."""
        with self._lock:
            value, self._value = self._value, None
        if value is not None and self._close is not None:
            self._close(value)
