"""Load tests: short versions of `make loadtest` on the embedded stack (the long ones are marked slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.poller import WorkerPool
from loadtests.load_runner import PROFILES, LoadRun


@pytest.fixture()
def load_run(stack_env, tmp_path):
    """A LoadRun over the shared embedded stack with three workers; stopped afterwards."""
    runs = []

    def start(workers: int = 3, extra_env: dict | None = None, profile: str = "quick") -> LoadRun:
        pool = WorkerPool({**stack_env.info.env, **(extra_env or {})}, workers=workers).start()
        run = LoadRun(PROFILES[profile], Path(tmp_path))
        run.start(stack_env, pool)
        runs.append((run, pool))
        return run

    yield start
    for run, pool in runs:
        if run.collector._thread and run.collector._thread.is_alive():
            run.collector.stop()
        pool.stop()
