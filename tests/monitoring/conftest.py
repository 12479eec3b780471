"""Fixtures for the error-tracking tests: a configured tracker, captured log lines, a Lambda context."""

from __future__ import annotations

import io
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from swordfish.monitoring import error_tracker
from swordfish.monitoring.observability import logger

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FakeLambdaContext:
    """The attributes of a real LambdaContext the tracker and Powertools read."""

    budget_ms: int = 30_000
    function_name: str = "swordfish-test-function"
    memory_limit_in_mb: int = 1_000_000  # far above any test's peak: no memory warning unless asked
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:swordfish-test-function"
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.budget_ms - (time.monotonic() - self.started) * 1000))


class LogCapture:
    def __init__(self, stream: io.StringIO):
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.startswith("{")]

    def error_events(self) -> list[dict]:
        return [record for record in self.records() if record.get("error_event") is True]


@pytest.fixture()
def logs():
    """Everything the shared Powertools logger writes during the test, as parsed JSON lines."""
    handler = logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield LogCapture(stream)
    finally:
        handler.setStream(previous)


@pytest.fixture()
def error_file(tmp_path) -> Path:
    return tmp_path / "errors.jsonl"


@pytest.fixture()
def tracker(error_file):
    """Configure the tracker for one test: a local file, no Redis, no Sentry, a limit that does not
    interfere. Call the fixture's value with overrides to reconfigure: ``tracker(rate_limit=3)``."""
    defaults = {"redis_url": "", "local_file": error_file, "sentry_dsn": "", "release": "test-release",
                "repo_root": REPO_ROOT, "rate_limit": 1000, "rate_window_seconds": 60, "scrub_key": "test-scrub-key"}

    def setup(**overrides):
        return error_tracker.configure(**{**defaults, **overrides})

    setup()
    yield setup
    error_tracker.configure(redis_url="", local_file="", sentry_dsn="", release="test-release", repo_root=REPO_ROOT)


@pytest.fixture()
def make_context():
    """Build a FakeLambdaContext: ``make_context(budget_ms=500)``."""
    return FakeLambdaContext


@pytest.fixture()
def read_error_file(error_file):
    def read() -> list[dict]:
        return [json.loads(line) for line in error_file.read_text().splitlines()] if error_file.exists() else []

    return read
