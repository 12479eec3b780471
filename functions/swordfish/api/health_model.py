"""What a health check reports and what it talks to: the statuses, ``Measurement``,
``ComponentResult``, ``HealthDependencies`` and its default probes.

Shared by the gateway-side checks (``health_deep``) and the checks measured where the work happens
(``health_progress``). It imports neither, so the two never import each other in a circle
(an import-linter contract in ``.importlinter`` keeps it so).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from swordfish.config import get_settings

PASS, WARN, FAIL = "pass", "warn", "fail"
STATUS_RANK = {PASS: 0, WARN: 1, FAIL: 2}


@dataclass
class Measurement:
    name: str  # the part after "component:" in the checks key
    value: Any
    unit: str | None
    status: str
    output: str | None = None
    component_id: str | None = None


@dataclass
class ComponentResult:
    name: str
    measurements: list[Measurement]
    output: str | None = None

    @property
    def status(self) -> str:
        return max((m.status for m in self.measurements), key=STATUS_RANK.__getitem__, default=PASS)


# --- default probes -----------------------------------------------------------------------------


def disk_probe(path: str | None = None) -> tuple[int, int]:
    """(free bytes, total bytes) of the writable volume (/tmp on Lambda)."""
    usage = shutil.disk_usage(path or tempfile.gettempdir())
    return usage.free, usage.total


def memory_probe() -> tuple[int, int]:
    """(resident bytes of this process, its memory limit): Lambda's configured size, else the cgroup
    limit, else physical memory. Read from /proc and the environment: psutil is not in the Lambda asset."""
    used = 0
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    used = int(line.split()[1]) * 1024
                    break
    except OSError:
        import resource

        used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    limit = None
    if get_settings().lambda_memory_mb:
        limit = get_settings().lambda_memory_mb * 1024 * 1024
    else:
        try:
            with open("/sys/fs/cgroup/memory.max") as f:
                raw = f.read().strip()
            limit = int(raw) if raw.isdigit() else None
        except OSError:
            limit = None
    if limit is None:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return used, limit


# --- dependencies -------------------------------------------------------------------------------


@dataclass
class HealthDependencies:
    """Everything the checks talk to; a field left None means "not configured" (the check is skipped)."""

    database_url: str | Callable[[], str] | None = None
    # A login refused for its password: the DSN from AWSCURRENT fetched again, as the pool does
    # (store.database.SecretConninfo.after_auth_failure); None with a fixed DSN.
    database_url_after_auth_failure: Callable[[], str] | None = None
    redis_url: str | None = None
    nango_base_url: str | None = None
    nango_health: Callable[[], Any] | None = None  # e.g. NangoClient.health; default: GET {base}/health
    feed_urls: dict[str, str | None] = field(default_factory=dict)
    feed_status: Callable[[], dict[str, Any]] | None = None  # feed -> FeedStatus (refreshed_at / age)
    sqs_client: Any = None
    queue_url: str | None = None
    dlq_url: str | None = None
    queue_age_probe: Callable[[], float | None] | None = None
    breakers: Any = None  # BreakerRegistry
    flag_status: Callable[[], Any] | None = None  # swordfish.features.flags.store_status
    secret_reader: Any = None  # security.secrets.SecretReader: warn when a secret came from the env fallback
    disk_probe: Callable[[], tuple[int, int]] = disk_probe
    memory_probe: Callable[[], tuple[int, int]] = memory_probe
    timeouts: dict[str, float] = field(default_factory=dict)  # component -> seconds
    default_timeout: float = 2.0
    deadline_seconds: float = 4.0
    cache_seconds: float = 5.0
    clock: Callable[[], float] = time.monotonic  # for the cache window (tests move it by hand)
    backlog_warn_seconds: float = 60.0
    release: str = "unknown"
    # Worker heartbeats and progress counters (swordfish.monitoring.progress.ProgressRecorder).
    progress: Any = None
    expected_workers: int | None = None
    worker_stale_seconds: float = 15.0
    pipeline_stall_seconds: float = 30.0
    backlog_fail_seconds: float = 300.0
    # The backups (health_backup.py): a callable returning backup.status.repository_status's fields.
    backup_status: Callable[[], dict] | None = None
    backup_rpo_seconds: float = 60.0
    backup_schedule_seconds: float = 86_400.0
    backup_verify_max_age_seconds: float = 8 * 86_400.0
    wall_clock: Callable[[], datetime] | None = None  # for the backup ages (tests move it by hand)
    # What must not come back empty (the embedded stack's emulators and folders, the backup key):
    # name -> probe returning None when intact, else what was lost (health_deep.check_kept_state).
    kept_state: dict[str, Callable[[], str | None]] = field(default_factory=dict)

    def timeout_for(self, component: str) -> float:
        key = "feed" if component.startswith("feed_") else component
        return min(self.timeouts.get(key, self.default_timeout), self.deadline_seconds)

