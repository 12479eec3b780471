"""The fault phase of the load runner: parts of the embedded stack killed under load, and what it cost.

At the profile's rate (10,000 emails/min by default), one fault at a time:

  worker-kill        a processor worker SIGKILLed mid-batch; the supervisor starts a new one. Its
                     batch stays invisible for the visibility timeout (180 s, as on Lambda), then
                     is redelivered.
  postgresql-stop    the postmaster SIGKILLed ("stopped hard"), kept down for ``outage_seconds``,
                     then restarted by the supervisor on the same data folder.
  redis-stop         redis-server SIGKILLed, kept down, restarted (and the feeds reloaded).
  postmaster-restart-kill   a supervisor fault: the postmaster SIGKILLed, then SIGKILLed again while
                     the supervisor's restart brings it up (a partial postmaster.pid wedged it for
                     good once); the supervisor must come back from its own failed restart.
  archive-stall      the backup repository refuses every write (a full or hung archive disk) for
                     ``outage_seconds``: WAL archiving fails, mail must not notice, and the archive
                     must catch up.
  moto-kill          moto (S3, Secrets Manager, DynamoDB, AppConfig) SIGKILLed and restarted empty:
                     secrets come back with their labels, the raw archive is on disk.
  fauxqs-kill        the queue emulator SIGKILLed with mail queued: its journal puts every accepted
                     message back (the generator's sends fail while it is down: not accepted).

After the faults every backup must still be restorable: ``swordfish backup verify`` on the
repository, then a restore to the latest point whose verdicts are exactly the live database's.

For each: emails lost (sent − verdicts − DLQ entries: must be 0), duplicates (a message with two
verdicts, or with a verdict and a DLQ entry: must be 0), DLQ entries, how long until the workers
resumed after the dependency came back, how long until the backlog was back to normal with the
deep health check passing, and what ``/health/deep`` said during and after.

``account`` and ``recovery`` are pure, so they are tested on synthetic data.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import psycopg


@dataclass(frozen=True)
class FaultSpec:
    name: str  # worker-kill | postgresql-stop | redis-stop
    load_seconds: float = 60
    lead_in_seconds: float = 15  # load before the fault: the baseline backlog
    outage_seconds: float = 0  # how long a dependency stays down (a killed worker is restarted at once)
    settle_seconds: float = 90  # at most this long after the load for the backlog to drain

    @property
    def phase(self) -> str:
        return f"fault-{self.name}"


# The killed worker goes last: its batch stays invisible for the 180 s visibility timeout, and that
# wait (which the oldest-message age shows as a warn) must not overlap the other faults.
DEFAULT_FAULTS = (
    FaultSpec("postgresql-stop", load_seconds=60, outage_seconds=20),
    FaultSpec("postmaster-restart-kill", load_seconds=45, outage_seconds=5),
    FaultSpec("redis-stop", load_seconds=60, outage_seconds=10),
    FaultSpec("archive-stall", load_seconds=60, outage_seconds=40),  # past half the 60 s RPO: a warn
    FaultSpec("moto-kill", load_seconds=45, outage_seconds=3),
    FaultSpec("fauxqs-kill", load_seconds=45, outage_seconds=3),
    FaultSpec("worker-kill", load_seconds=45),
)
# The health component each fault breaks: recovered means it passes again.
# Not the queue for fauxqs-kill: its journal brings the messages back with their first sent time, so
# the queue component warns about the backlog's age until the backlog is gone, which the backlog
# criterion already measures (the first run held its recovery back past the end of the phase while
# the queue answered again 2 s after its restart, health back from fail to warn).
FAULT_COMPONENT = {"postgresql-stop": "postgresql", "postmaster-restart-kill": "postgresql", "redis-stop": "redis",
                   "worker-kill": "workers", "archive-stall": "backup"}
# Killed and kept down by holding the supervisor: the stack's attribute and the supervisor's name.
KILLED_SERVICE = {"postgresql-stop": ("postgres", "postgresql"), "redis-stop": ("redis", "redis"),
                  "moto-kill": ("moto", "moto"), "fauxqs-kill": ("fauxqs", "fauxqs"),
                  "postmaster-restart-kill": ("postgres", "postgresql")}


def account(sent: int, verdict_ids: list[str], dlq_ids: list[str]) -> dict:
    """Lost, duplicated and dead-lettered emails of one fault, from what was sent and what came out."""
    verdicts, dead = set(verdict_ids), set(dlq_ids)
    duplicates = (len(verdict_ids) - len(verdicts)) + (len(dlq_ids) - len(dead)) + len(verdicts & dead)
    return {"sent": sent, "verdicts": len(verdicts), "dlq": len(dead), "duplicates": duplicates,
            "lost": max(0, sent - len(verdicts | dead))}


def recovery(samples: list[dict], health: list[dict], *, injected_at: float, back_at: float,
             baseline_backlog: float, component: str | None = None, slack: int = 200) -> dict:
    """Figures of one fault from the collector's samples (t, processed_in_interval, queue_visible,
    queue_in_flight) and the health samples (t, status, not_passing); times in the same clock.

    Recovered: the backlog is back to its level before the fault (plus ``slack``) and a health
    sample after the dependency's return has no failure and ``component`` (the part the fault
    broke) passing. A full ``pass`` can come later (an old backlog keeps the age check warning);
    that time is reported too."""
    after_back = [s for s in samples if s["t"] >= back_at]
    resumed = next((s["t"] for s in after_back if s["processed_in_interval"] > 0), None)
    limit = baseline_backlog + slack
    backlog_ok = next((s["t"] for s in after_back
                       if s["queue_visible"] + s["queue_in_flight"] <= limit), None)
    health_ok = next((h["t"] for h in health if h["t"] >= back_at and h["status"] in ("pass", "warn")
                      and component not in h.get("not_passing", [])), None)
    recovered_at = max(backlog_ok, health_ok) if backlog_ok is not None and health_ok is not None else None
    full_pass = next((h["t"] for h in health if h["t"] >= back_at and h["status"] == "pass"), None)
    window_end = recovered_at if recovered_at is not None else float("inf")
    during = [h for h in health if injected_at <= h["t"] < window_end]
    statuses: list[str] = []
    for h in during:
        if h["status"] not in statuses:
            statuses.append(h["status"])
    not_passing = sorted({c for h in during for c in h.get("not_passing", [])})
    after = next((h for h in health if recovered_at is not None and h["t"] >= recovered_at), None)
    peak = max((s["queue_visible"] + s["queue_in_flight"] for s in samples if s["t"] >= injected_at
                and (recovered_at is None or s["t"] <= recovered_at)), default=None)
    return {
        "down_seconds": round(back_at - injected_at, 1),
        "resumed_after_back_seconds": None if resumed is None else round(resumed - back_at, 1),
        "recovered_seconds": None if recovered_at is None else round(recovered_at - injected_at, 1),
        "health_pass_seconds": None if full_pass is None else round(full_pass - injected_at, 1),
        "peak_backlog": peak,
        "health_during": statuses or ["(no sample)"],
        "components_not_passing_during": not_passing,
        "health_after": after["status"] if after else None,
        "not_passing_after": after.get("not_passing", []) if after else None,
    }


@dataclass
class HealthSampler:
    """``deep()`` every ``interval`` seconds in a thread, as a canary would call /health/deep."""

    now: callable
    interval: float = 2.0
    samples: list[dict] = field(default_factory=list)

    def start(self) -> HealthSampler:
        from swordfish.config import get_settings
        from swordfish.wiring import build_health_dependencies

        get_settings.cache_clear()
        self.deps = build_health_dependencies()
        self.deps.cache_seconds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="health-sampler")
        self._thread.start()
        return self

    def _loop(self) -> None:
        from swordfish.api.health_deep import deep

        while not self._stop.is_set():
            t = self.now()
            try:
                _, body = deep(self.deps, emit_metric=False)
                self.samples.append({"t": round(t, 2), "status": body["status"], "score": body["score"],
                                     "not_passing": sorted(n for n, c in body["components"].items()
                                                           if c["status"] != "pass")})
            except Exception as exc:  # noqa: BLE001 - the health check itself broke: that is a finding too
                self.samples.append({"t": round(t, 2), "status": "error", "not_passing": [repr(exc)[:200]]})
            self._stop.wait(self.interval)

    def stop(self) -> list[dict]:
        self._stop.set()
        self._thread.join(15)
        return self.samples


def dlq_message_ids(fauxqs_url: str, dlq_name: str) -> list[str]:
    """Message ids of the submissions in the DLQ, read without receiving them (fauxqs inspection)."""
    with urllib.request.urlopen(f"{fauxqs_url}/_fauxqs/queues/{dlq_name}", timeout=10) as response:
        state = json.loads(response.read())
    messages = state["messages"]
    bodies = [m["body"] for m in messages["ready"] + messages["delayed"]]
    bodies += [entry["message"]["body"] for entry in messages["inflight"]]
    ids = []
    for body in bodies:
        try:
            ids.append(json.loads(body)["message_id"])
        except (ValueError, KeyError, TypeError):
            continue
    return ids


class _RefusingWriter:
    """The backup repository's writer while the archive stalls: every write fails as a full disk."""

    def __init__(self, *_args):
        import errno

        raise OSError(errno.ENOSPC, "No space left on device (archive-stall fault)")


class FaultPhase:
    def __init__(self, run, specs=DEFAULT_FAULTS, per_minute: float = 10_000):
        self.run, self.specs, self.per_minute = run, specs, per_minute
        self.stack, self.pool = run.stack, run.pool
        self.supervisor = run.stack.supervisor
        if self.supervisor is None:
            raise RuntimeError("the fault phase needs a supervised stack (EmbeddedStack(supervise=True))")
        self.timeline: dict[str, dict] = {}
        self.backups = None
        self.restorable: dict = {}

    def _start_backups(self) -> None:
        """WAL archiving and a base backup of the stack's database, as `make serve` runs them: the
        faults must leave every backup restorable."""
        from devstack.backups import BackupService

        run_dir = self.stack.run_dir
        self.backups = BackupService(self.stack.postgres.superuser_url, self.stack.client("kms"),
                                     backup_dir=run_dir / "backups", key_file=run_dir / "backup-data-key",
                                     heartbeat_seconds=2.0, log_dir=run_dir / "logs").start()
        if not self.backups.first_round_done.wait(300) or self.backups.last_error:
            raise RuntimeError(f"the first base backup failed: {self.backups.last_error}")
        # Verified once, as an operator's `swordfish backup verify` does: the backup component then
        # passes before the faults (it warns "never verified" otherwise), so the archive stall shows.
        from swordfish.backup.status import record_verification
        from swordfish.backup.verify import verify_repository

        record_verification(self.backups.repository, verify_repository(self.backups.repository, self.backups.keys),
                            datetime.now(UTC))
        os.environ["SWORDFISH_BACKUP_DIR"] = str(run_dir / "backups")  # the health sampler's backup component
        os.environ["SWORDFISH_BACKUP_HEALTH"] = "true"

    def execute(self) -> list[dict]:
        self._start_backups()
        sampler = HealthSampler(self.run.now).start()
        try:
            for spec in self.specs:
                print(f"fault {spec.name} at {self.per_minute:,.0f}/min ...", flush=True)
                self.timeline[spec.name] = self._one(spec)
            self._wait_all_accounted(timeout=240)
        finally:
            health = sampler.stop()
        try:
            self.restorable = self.check_restorable()
        finally:
            self.backups.stop()
        print(f"  backups after the faults: {self.restorable}", flush=True)
        samples = [asdict(s) for s in self.run.collector.samples]
        dlq_ids = dlq_message_ids(self.stack.fauxqs.url, self._dlq_name())
        results = []
        for spec in self.specs:
            marks = self.timeline[spec.name]
            phase = next(p for p in self.run.phases if p.name == spec.phase)
            with psycopg.connect(self.stack.info.superuser_url, autocommit=True) as conn:
                rows = conn.execute("SELECT message_id, committed_at FROM verdicts WHERE message_id LIKE %s",
                                    (f"{spec.phase}-%",)).fetchall()
            verdict_ids = [r[0] for r in rows]
            last_commit = max((r[1] for r in rows), default=None)
            mine = [i for i in dlq_ids if i.startswith(f"{spec.phase}-")]
            result = {"fault": spec.name, **account(phase.submitted, verdict_ids, mine),
                      **recovery(samples, health, injected_at=marks["injected_at"], back_at=marks["back_at"],
                                 baseline_backlog=marks["baseline_backlog"], component=FAULT_COMPONENT.get(spec.name)),
                      # the fault's last email (a killed worker's batch: after the visibility timeout)
                      "last_verdict_seconds": None if last_commit is None else
                      round((last_commit - marks["injected_wall"]).total_seconds(), 1),
                      "restart": marks.get("restart")}
            results.append(result)
            print(f"  {spec.name:<16} sent {result['sent']}  lost {result['lost']}  duplicates "
                  f"{result['duplicates']}  DLQ {result['dlq']}  down {result['down_seconds']} s  resumed "
                  f"{result['resumed_after_back_seconds']} s after  recovered {result['recovered_seconds']} s  "
                  f"last verdict {result['last_verdict_seconds']} s  "
                  f"health during {'/'.join(result['health_during'])} "
                  f"({', '.join(result['components_not_passing_during']) or '-'}), after {result['health_after']}",
                  flush=True)
        self.health_samples = health
        return results

    def _dlq_name(self) -> str:
        return self.stack.info.dlq_url.rstrip("/").rsplit("/", 1)[1]

    def _backlog(self) -> int:
        samples = self.run.collector.samples[-5:]
        return round(sum(s.queue_visible + s.queue_in_flight for s in samples) / len(samples)) if samples else 0

    def _one(self, spec: FaultSpec) -> dict:
        load = threading.Thread(target=self.run.sustained, args=(spec.phase, self.per_minute, spec.load_seconds),
                                kwargs={"wait": False}, name=f"load-{spec.name}")
        load.start()
        time.sleep(spec.lead_in_seconds)  # the load reaches its steady state before the fault
        baseline = self._backlog()
        events_before = len(self.supervisor.events)
        injected_at = self.run.now()
        marks: dict = {"injected_at": injected_at, "injected_wall": datetime.now(UTC), "baseline_backlog": baseline}
        if spec.name == "worker-kill":
            pid = self.pool.processes[0].pid
            os.kill(pid, signal.SIGKILL)
            marks["killed_pid"] = pid
            event = self._wait_restart("processor-0", events_before)
        elif spec.name == "archive-stall":
            repository = self.backups.repository
            writer, repository.writer = repository.writer, _RefusingWriter
            try:
                time.sleep(spec.outage_seconds)
            finally:
                repository.writer = writer
            event = None
        else:
            attribute, name = KILLED_SERVICE[spec.name]
            server = getattr(self.stack, attribute)
            self.supervisor.hold(name)
            first_pid = server.pid()
            os.kill(first_pid, signal.SIGKILL)
            time.sleep(spec.outage_seconds)  # the outage itself: how long the dependency stays away
            if spec.name == "postmaster-restart-kill":
                marks["killed_during_restart"] = self._kill_postmaster_while_it_starts(name, first_pid)
            else:
                self.supervisor.release(name)
            event = self._wait_restart(name, events_before, last=spec.name == "postmaster-restart-kill")
        marks["back_at"] = self.run.now()
        marks["restart"] = asdict(event) if event else None
        load.join()
        deadline = time.monotonic() + spec.settle_seconds
        while time.monotonic() < deadline and self._backlog() > baseline + 200:
            time.sleep(1)
        return marks

    def _kill_postmaster_while_it_starts(self, name: str, dead_pid: int, guard: float = 30) -> dict:
        """Release the supervisor, and SIGKILL the new postmaster as soon as its pid file names it:
        while pg_ctl is still waiting for it to accept connections, or just after."""
        from devstack.services import _pid_alive

        postgres = self.stack.postgres
        pid_file = postgres.data_dir / "postmaster.pid"
        self.supervisor.release(name)
        deadline = time.monotonic() + guard
        while time.monotonic() < deadline:
            try:
                lines = pid_file.read_text().splitlines()
                pid = int(lines[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.005)
                continue
            if pid == dead_pid or not _pid_alive(pid):  # the stale file of the first kill
                time.sleep(0.005)
                continue
            status = lines[7].strip() if len(lines) > 7 else "(pid file still being written)"
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                time.sleep(0.005)
                continue
            return {"pid": pid, "postmaster_status": status}
        return {"pid": None, "postmaster_status": "no new postmaster within the guard"}

    def _wait_restart(self, name: str, events_before: int, guard: float = 120, *, last: bool = False):
        """The supervisor's restart of ``name``; ``last``: the restart after any later death (a
        postmaster killed during its restart dies again, and the supervisor must notice)."""
        deadline = time.monotonic() + guard
        found = None
        while time.monotonic() < deadline:
            for event in self.supervisor.events[events_before:]:
                if event.name == name and event.ok:
                    found = event
            if found is not None and (not last or self._alive(name)):
                return found
            time.sleep(0.1)
        print(f"  {name} was not restarted within {guard:.0f} s", flush=True)
        return found

    def _alive(self, name: str) -> bool:
        try:
            with psycopg.connect(self.stack.info.superuser_url, autocommit=True, connect_timeout=3) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.Error:
            return False

    def check_restorable(self) -> dict:
        """Every backup verifies, and a restore to the latest point holds exactly the live verdicts."""
        import tempfile
        from pathlib import Path

        from swordfish.backup.restore import restore
        from swordfish.backup.verify import verify_repository

        repository, keys = self.backups.repository, self.backups.keys
        time.sleep(max(3.0, 3 * self.backups.archiver.sync_seconds))  # the archive catches up with the last commit
        with psycopg.connect(self.stack.info.superuser_url, autocommit=True) as conn:
            live = conn.execute("SELECT count(*), md5(string_agg(tenant_id || '/' || message_id, ',' "
                                "ORDER BY tenant_id, message_id)) FROM verdicts").fetchone()
        self.backups.archiver.sync()
        report = verify_repository(repository, keys)
        started = time.monotonic()
        server = restore(repository, keys, Path(tempfile.mkdtemp(prefix="sffault-restore-")))
        try:
            with psycopg.connect(server.url(), autocommit=True) as conn:
                restored = conn.execute("SELECT count(*), md5(string_agg(tenant_id || '/' || message_id, ',' "
                                        "ORDER BY tenant_id, message_id)) FROM verdicts").fetchone()
        finally:
            server.remove()
        return {"verify_ok": report["ok"], "verify_problems": report["problems"][:5],
                "backups_checked": len(report["backups"]), "wal_segments_checked": report["wal_segments_checked"],
                "live_verdicts": live[0], "restored_verdicts": restored[0], "same_verdicts": live == restored,
                "restore_seconds": round(time.monotonic() - started, 1)}

    def _wait_all_accounted(self, timeout: float) -> None:
        """Every fault email has a verdict or a DLQ entry (the killed worker's batch comes back after
        the visibility timeout), or the timeout passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.run.processed_or_dead() >= self.run.submitted_total:
                return
            time.sleep(1)
