"""Samples the system under load once a second.

- processed count and end-to-end latencies (commit time − SQS sent time) from the verdicts table;
- queue depth (visible and in flight), DLQ depth, and the age of the oldest message;
- resident memory of each worker process;
- PostgreSQL connections by state (pg_stat_activity, including 'idle in transaction');
- Redis connected clients.

The age of the oldest message comes from the data, not from CloudWatch (which the embedded stack
does not have): the oldest SQS sent time among verdicts committed in the last interval, or, while
the queue holds messages and nothing completes, the previous age plus the time since.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field

import psutil
import psycopg
import redis


@dataclass
class Sample:
    t: float  # seconds since the collector started
    processed_total: int
    processed_in_interval: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: float | None
    queue_visible: int
    queue_in_flight: int
    dlq_depth: int
    oldest_age_s: float
    degraded_in_interval: int
    worker_rss_mb: dict[str, float] = field(default_factory=dict)
    pg_connections: dict[str, int] = field(default_factory=dict)
    redis_clients: int | None = None
    locust_cpu_percent: float | None = None
    system_cpu_percent: float | None = None


def percentile(sorted_values: list[float], pct: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


class MetricsCollector:
    def __init__(self, *, superuser_url: str, sqs_client, queue_url: str, dlq_url: str, redis_url: str | None,
                 worker_pids, locust_pid=None, interval: float = 1.0):
        self.superuser_url = superuser_url
        self.sqs, self.queue_url, self.dlq_url = sqs_client, queue_url, dlq_url
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=1) if redis_url else None
        self.worker_pids = worker_pids  # callable returning the current pids
        self.locust_pid = locust_pid  # callable returning the locust pid, or None
        self.interval = interval
        self.samples: list[Sample] = []
        self.latencies_ms: list[tuple[float, float]] = []  # (t, latency) for every verdict seen
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._procs: dict[int, psutil.Process] = {}

    def start(self) -> MetricsCollector:
        self._conn = psycopg.connect(self.superuser_url, autocommit=True)
        self._start = time.monotonic()
        self._last_commit = self._conn.execute("SELECT coalesce(max(committed_at), now()) FROM verdicts").fetchone()[0]
        self._total = self._conn.execute("SELECT count(*) FROM verdicts").fetchone()[0]
        self._age = 0.0
        psutil.cpu_percent(None)
        self._thread = threading.Thread(target=self._loop, daemon=True, name="metrics-collector")
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        self._conn.close()
        return self.samples

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.samples.append(self.sample())
            except Exception as exc:  # a sample lost is a gap in the chart, not a failed run
                print(f"metrics collector: sample failed: {exc}", flush=True)
                if self._conn.closed or self._conn.broken:  # PostgreSQL restarted (a fault drill): reconnect
                    try:
                        self._conn = psycopg.connect(self.superuser_url, autocommit=True, connect_timeout=2)
                    except psycopg.OperationalError:
                        pass

    def sample(self) -> Sample:
        t = time.monotonic() - self._start
        rows = self._conn.execute(
            "SELECT committed_at, e2e_latency_ms, degraded FROM verdicts WHERE committed_at > %s "
            "ORDER BY committed_at", (self._last_commit,)).fetchall()
        if rows:
            self._last_commit = rows[-1][0]
        latencies = sorted(r[1] for r in rows if r[1] is not None)
        self.latencies_ms.extend((t, v) for v in latencies)
        self._total += len(rows)
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        visible = int(attrs.get("ApproximateNumberOfMessages", 0))
        in_flight = int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
        dlq = int(self.sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=[
            "ApproximateNumberOfMessages"])["Attributes"].get("ApproximateNumberOfMessages", 0))
        if latencies:
            self._age = latencies[-1] / 1000
        elif visible + in_flight > 0:
            self._age += self.interval
        else:
            self._age = 0.0
        pg = dict(self._conn.execute(
            "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1").fetchall())
        clients = None
        if self.redis is not None:
            try:
                clients = int(self.redis.info("clients")["connected_clients"])
            except redis.RedisError:
                clients = None
        return Sample(
            t=round(t, 2), processed_total=self._total, processed_in_interval=len(rows),
            latency_p50_ms=percentile(latencies, 50), latency_p95_ms=percentile(latencies, 95),
            latency_p99_ms=percentile(latencies, 99), latency_max_ms=latencies[-1] if latencies else None,
            queue_visible=visible, queue_in_flight=in_flight, dlq_depth=dlq, oldest_age_s=round(self._age, 2),
            degraded_in_interval=sum(1 for r in rows if r[2]),
            worker_rss_mb=self._rss(), pg_connections=pg, redis_clients=clients,
            locust_cpu_percent=self._locust_cpu(), system_cpu_percent=psutil.cpu_percent(None),
        )

    def _process(self, pid: int) -> psutil.Process | None:
        proc = self._procs.get(pid)
        if proc is None:
            try:
                proc = self._procs[pid] = psutil.Process(pid)
                proc.cpu_percent(None)
            except psutil.NoSuchProcess:
                return None
        return proc

    def _rss(self) -> dict[str, float]:
        out = {}
        for pid in self.worker_pids():
            proc = self._process(pid)
            try:
                out[str(pid)] = round(proc.memory_info().rss / 2**20, 1) if proc else None
            except psutil.NoSuchProcess:
                continue
        return {k: v for k, v in out.items() if v is not None}

    def _locust_cpu(self) -> float | None:
        pid = self.locust_pid() if self.locust_pid else None
        proc = self._process(pid) if pid else None
        if proc is None:
            return None
        try:
            total = proc.cpu_percent(None)
            for child in proc.children(recursive=True):
                child_proc = self._process(child.pid)
                total += child_proc.cpu_percent(None) if child_proc else 0
            return round(total, 1)
        except psutil.NoSuchProcess:
            return None

    def as_dicts(self) -> list[dict]:
        return [asdict(s) for s in self.samples]
