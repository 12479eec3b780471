"""The SIEM export: verdicts (OCSF Email Activity) and the audit trail (OCSF API Activity) as JSON
lines, to S3 (one object per run and stream, ``ocsf/<stream>/YYYY/MM/DD/HH/<first>-<id>.jsonl``)
and/or to a webhook (one signed POST per run and stream, ``application/x-ndjson``, signed like the
alerts: ``alerts.signing``).

Each sink keeps its own position per stream (``export_cursors``): verdicts per tenant by commit time
and message id, the audit trail by its id. A run reads what is new, writes it, and only then moves
the positions, in one transaction: a failed write is read again next run (at-least-once; each line's
``metadata.uid`` lets the SIEM drop a repeat). Rows younger than ``lag_seconds`` wait for the next
run, so a transaction that committed late (its rows stamped earlier) is not skipped.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg.rows
import urllib3

from swordfish.alerts.channels import post_signed
from swordfish.alerts.ocsf import audit_event, verdict_event
from swordfish.monitoring.observability import logger
from swordfish.store.database import Database

STREAMS = ("verdicts", "audit")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ExportSink(Protocol):
    name: str

    def write(self, stream: str, lines: list[str], first: datetime) -> None: ...


class S3Sink:
    name = "s3"

    def __init__(self, s3_client: Any, bucket: str, prefix: str = "ocsf"):
        self.s3, self.bucket, self.prefix = s3_client, bucket, prefix.strip("/")

    def write(self, stream: str, lines: list[str], first: datetime) -> None:
        key = (f"{self.prefix}/{stream}/{first:%Y/%m/%d/%H}/"
               f"{int(first.timestamp() * 1000)}-{uuid.uuid4().hex[:12]}.jsonl")
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=("\n".join(lines) + "\n").encode(),
                           ContentType="application/x-ndjson")


class WebhookSink:
    name = "webhook"

    def __init__(self, url: str, secret: str, *, clock: Callable[[], float] = time.time, timeout: float = 10.0,
                 http: urllib3.PoolManager | None = None):
        self.url, self.secret, self.clock, self.timeout = url, secret, clock, timeout
        self.http = http or urllib3.PoolManager(num_pools=2, maxsize=2, retries=False, block=False)

    def write(self, stream: str, lines: list[str], first: datetime) -> None:
        post_signed(self.http, self.url, self.secret, ("\n".join(lines) + "\n").encode(), now=self.clock(),
                    timeout=self.timeout, headers={"Content-Type": "application/x-ndjson",
                                                   "X-Swordfish-Stream": stream,
                                                   "X-Swordfish-Ocsf-Version": "1.5.0"})


@dataclass
class SiemExporter:
    database: Database
    sinks: list[ExportSink]
    clock: Callable[[], float] = time.time
    lag_seconds: float = 120.0
    max_rows: int = 5000
    release: str = "unknown"
    last_report: dict = field(default_factory=dict, repr=False)

    def run(self) -> dict:
        """Export what is new to every sink; returns rows written per sink and stream (or the error)."""
        report: dict[str, dict] = {}
        for sink in self.sinks:
            report[sink.name] = {}
            for stream in STREAMS:
                try:
                    report[sink.name][stream] = self._export(sink, stream)
                except Exception as exc:  # one sink's outage must not stop the other's export
                    logger.warning("SIEM export failed: read again next run",
                                   extra={"sink": sink.name, "stream": stream, "error": str(exc)[:500]})
                    report[sink.name][stream] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
        self.last_report = report
        return report

    def _horizon(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC) - timedelta(seconds=self.lag_seconds)

    def _cursors(self, sink: str, stream: str) -> dict[str, tuple[datetime, str]]:
        with self.database.connection() as conn, conn.transaction():
            rows = conn.execute("SELECT tenant_id, position_at, position_id FROM export_cursors "
                                "WHERE sink = %s AND stream = %s", (sink, stream)).fetchall()
        return {t: (at or EPOCH, pid) for t, at, pid in rows}

    def _tenants(self) -> list[str]:
        with self.database.connection() as conn, conn.transaction():
            conn.execute("SELECT set_config('app.tenant_directory', 'on', true)")
            return [r[0] for r in conn.execute("SELECT tenant_id FROM tenants ORDER BY tenant_id")]

    def _export(self, sink: ExportSink, stream: str) -> int:
        horizon = self._horizon()
        cursors = self._cursors(sink.name, stream)
        lines: list[str] = []
        moved: dict[str, tuple[datetime | None, str]] = {}
        first: datetime | None = None
        if stream == "verdicts":
            for tenant_id in self._tenants():
                room = self.max_rows - len(lines)
                if room <= 0:
                    break
                after_at, after_id = cursors.get(tenant_id, (EPOCH, ""))
                with self.database.tenant_transaction(tenant_id) as conn, \
                        conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                    rows = cur.execute(
                        "SELECT * FROM verdicts WHERE tenant_id = %s AND committed_at < %s "
                        "AND (committed_at, message_id) > (%s, %s) ORDER BY committed_at, message_id LIMIT %s",
                        (tenant_id, horizon, after_at, after_id, room)).fetchall()
                if rows:
                    lines += [json.dumps(verdict_event(r, release=self.release), default=str) for r in rows]
                    moved[tenant_id] = (rows[-1]["committed_at"], rows[-1]["message_id"])
                    first = min(first or rows[0]["committed_at"], rows[0]["committed_at"])
        else:
            _, after_id = cursors.get("", (EPOCH, "0"))
            with self.database.connection() as conn, conn.transaction(), \
                    conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                rows = cur.execute("SELECT * FROM console_audit WHERE audit_id > %s AND at < %s ORDER BY audit_id "
                                   "LIMIT %s", (int(after_id or 0), horizon, self.max_rows)).fetchall()
            if rows:
                lines = [json.dumps(audit_event(r, release=self.release), default=str) for r in rows]
                moved[""] = (rows[-1]["at"], str(rows[-1]["audit_id"]))
                first = rows[0]["at"]
        if not lines:
            return 0
        sink.write(stream, lines, first)
        with self.database.connection() as conn, conn.transaction():
            for tenant_id, (at, pid) in moved.items():
                conn.execute("INSERT INTO export_cursors (sink, stream, tenant_id, position_at, position_id) "
                             "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (sink, stream, tenant_id) DO UPDATE SET "
                             "position_at = excluded.position_at, position_id = excluded.position_id, "
                             "updated_at = clock_timestamp()", (sink.name, stream, tenant_id, at, pid))
        return len(lines)
