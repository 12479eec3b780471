"""`swordfish backup drill`: a disaster, measured. Self-contained: it starts its own PostgreSQL and
moto (KMS, S3), never the running stack's, so it can destroy its database without harm. It lives in
the devstack because it starts servers; the `swordfish` command installed by `make install`
(devstack.cli) adds it under `swordfish backup`, and the Lambda asset never ships it.

1. Seed the database (``generate_series`` inside each tenant's row-level-security scope).
2. Start WAL archiving and the heartbeat, and mail flowing through the real pipeline (raw
   submissions archived to S3 before analysis, verdicts committed a batch at a time).
3. Take a base backup while mail flows; keep writing for a while.
4. Disaster: delete the data directory (or drop the verdicts table).
5. Detect it (a health probe), restore to the latest point (or to just before the drop) into a new
   server, verify integrity, replay the archived submissions received since the restored heartbeat.
6. Report RTO (detection -> verified, replayed service) and RPO (database: disaster time minus the
   restored heartbeat; verdicts: committed before the disaster but absent, before and after the
   replay), and every verdict whose verdict, score or reasons after the replay differ from what
   was stored before the disaster, with its cause, as JSON and Markdown.

The mail flow and the replay are both the processor's pipeline from the wiring, with threat
indicators in a Redis of the drill's own (some sample links are listed in a feed), so a replay that
lost the indicators shows as differences instead of passing on presence alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from swordfish import constants, wiring
from swordfish.backup import pgtools
from swordfish.backup.database import WalArchiver, take_base_backup
from swordfish.backup.envelope import KmsDataKeys
from swordfish.backup.replay import compare_verdicts, replay, stored_verdicts
from swordfish.backup.repository import Repository
from swordfish.backup.restore import restore

from devstack.services import LOCAL_AWS_ENV, MotoServer, PostgresServer, RedisServer

TENANTS = ("acme-corp", "globex")
REPLAY_MARGIN = timedelta(minutes=5)  # longer than any batch takes from archive to commit


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DrillOptions:
    verdicts: int = 10_000
    write_seconds: float = 10.0
    destroy: str = "datadir"  # datadir | table
    report_dir: Path | None = None
    batch_pause_seconds: float = 0.02
    samples_dir: Path = Path(__file__).resolve().parents[1] / "samples" / "sublime"


@dataclass
class DrillReport:
    options: dict
    seeded_verdicts: int = 0
    seed_seconds: float = 0.0
    database_bytes: int = 0
    backup_id: str = ""
    backup_seconds: float = 0.0
    backup_bytes: int = 0
    wal_segments_archived: int = 0
    mail_batches_committed: int = 0
    verdicts_committed_live: int = 0
    verdicts_failed_during_outage: int = 0
    disaster_at: str = ""
    detected_at: str = ""
    detection_seconds: float = 0.0
    restore: dict = field(default_factory=dict)
    replay: dict = field(default_factory=dict)
    rpo_database_seconds: float | None = None
    verdicts_missing_after_restore: int = 0
    verdicts_missing_after_replay: int = 0
    verdicts_compared: int = 0  # committed through the pipeline before the disaster, compared after replay
    verdicts_with_feed_hits: int = 0  # of those, verdicts that had URL_IN_THREAT_FEED
    replay_differences: list = field(default_factory=list)  # every one, with its cause
    rto_seconds: float = 0.0
    verified_at: str = ""
    passed: bool = False
    targets: dict = field(default_factory=lambda: {"rto_seconds": 900, "rpo_database_seconds": 60,
                                                   "verdicts_missing_after_replay": 0, "replay_differences": 0})

    def as_dict(self) -> dict:
        return json.loads(json.dumps(vars(self), default=str))

    def markdown(self) -> str:
        r = self.restore.get("timings_seconds", {})
        integrity = self.restore.get("integrity", {})
        lines = [
            f"# Disaster-recovery drill: {'PASS' if self.passed else 'FAIL'}",
            "",
            f"- Database: {self.seeded_verdicts:,} seeded verdicts ({self.database_bytes / 1e6:,.0f} MB), "
            f"{self.verdicts_committed_live:,} more through the pipeline while the drill ran",
            f"- Disaster: `{self.options['destroy']}` at {self.disaster_at}; detected after "
            f"{self.detection_seconds:.1f} s",
            f"- Base backup `{self.backup_id}`: {self.backup_seconds:.1f} s, {self.backup_bytes / 1e6:,.1f} MB "
            f"encrypted; {self.wal_segments_archived} WAL segments archived",
            "",
            "| measure | value | target |",
            "|---|---|---|",
            f"| RTO (detection -> verified, replayed) | {self.rto_seconds:.1f} s | <= 900 s |",
            f"| RPO database (disaster - restored heartbeat) | {self.rpo_database_seconds:.1f} s | <= 60 s |",
            f"| verdicts missing after restore | {self.verdicts_missing_after_restore} | (replayed next) |",
            f"| verdicts missing after replay | {self.verdicts_missing_after_replay} | 0 |",
            f"| verdicts differing after replay (verdict, score or reasons; of {self.verdicts_compared:,} compared, "
            f"{self.verdicts_with_feed_hits:,} with threat-feed hits) | {len(self.replay_differences)} | 0 |",
            "",
            "Restore steps (s): " + ", ".join(f"{k.removesuffix('_seconds')} {v:.1f}" for k, v in r.items()),
            "",
            f"Integrity: {'ok' if integrity.get('ok') else 'FAILED'}; {integrity.get('tables_checked', 0)} tables, "
            f"{integrity.get('rows_checked', 0):,} rows compared with the backup's manifest; "
            f"heap/index check: {integrity.get('details', {}).get('amcheck', 'n/a')}; pg_verifybackup ok.",
            f"Replay: {self.replay.get('read', 0)} archived submissions read, {self.replay.get('inserted', 0)} verdicts "
            f"re-created, {self.replay.get('already_present', 0)} already present.",
        ]
        if self.replay_differences:
            lines += ["", "Differences after replay (before -> after: cause):", ""]
            lines += [f"- {d['tenant_id']}/{d['message_id']}: {d['before']['verdict']} {d['before']['score']:.2f} -> "
                      + (f"{d['after']['verdict']} {d['after']['score']:.2f}" if d["after"] else "absent")
                      + f": {d['cause']}" for d in self.replay_differences]
        return "\n".join(lines) + "\n"


def _sample_mail(samples_dir: Path) -> list[bytes]:
    mail = [p.read_bytes() for p in sorted(samples_dir.glob("*.eml"))]
    return mail or [b"From: a@example.com\r\nTo: b@example.com\r\nSubject: drill\r\n\r\nhello\r\n"]


def seed_verdicts(owner_url: str, total: int) -> None:
    """Insert ``total`` verdicts split over the tenants, as the owner role inside each tenant's RLS scope."""
    per_tenant = [total // len(TENANTS) + (1 if i < total % len(TENANTS) else 0) for i in range(len(TENANTS))]
    with psycopg.connect(owner_url) as conn:
        for tenant, count in zip(TENANTS, per_tenant, strict=True):
            with conn.transaction():
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant,))
                conn.execute(
                    """INSERT INTO verdicts (tenant_id, message_id, verdict, score, reasons, subject, sender,
                                             submitted_at, sqs_sent_at, committed_at)
                       SELECT %s, 'seed-' || g, (ARRAY['clean','spam','suspicious','phishing','malware'])[1 + g %% 5],
                              (g %% 1000) / 10.0,
                              jsonb_build_array(jsonb_build_object('name', 'SEEDED', 'weight', g %% 7, 'evidence', 'drill')),
                              'drill message ' || g, 'sender' || (g %% 977) || '@example.com',
                              now() - interval '1 day' + g * interval '1 millisecond',
                              now() - interval '1 day' + g * interval '1 millisecond',
                              now() - interval '1 day' + g * interval '1 millisecond'
                       FROM generate_series(1, %s) g""", (tenant, count))


class MailFlow:
    """Mail flowing through the real pipeline, in a thread, until stopped."""

    def __init__(self, app_url: str, archive, mail: list[bytes], pause: float, settings):
        from swordfish.pipeline.processor import IncomingRecord
        from swordfish.pipeline.submission import inline_submission

        self._record, self._submission = IncomingRecord, inline_submission
        # The processor's analysis (indicators, link-domain history, flags) from the wiring; its
        # queue port only collects, as the drill has no SQS.
        self.pipeline, self.queue, self.database = wiring.build_replay_pipeline(app_url, settings)
        self.pipeline.raw_archive = archive
        self.pipeline.degraded_backlog_seconds = settings.degraded_backlog_seconds
        self.mail, self.pause = mail, pause
        self.committed: dict[tuple[str, str], datetime] = {}
        self.stored: dict[tuple[str, str], dict] = {}  # what was stored, to compare after the replay
        self.failed = 0
        self.batches = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mail-flow", daemon=True)
        self._n = 0

    def start(self) -> MailFlow:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        with contextlib.suppress(Exception):
            self.database.close()

    def _next_batch(self) -> list:
        records = []
        for _ in range(10):
            self._n += 1
            tenant = TENANTS[self._n % len(TENANTS)]
            sub = self._submission(tenant, f"drill-{self._n}", self.mail[self._n % len(self.mail)])
            records.append(self._record(queue_message_id=f"q-{self._n}", body=sub.model_dump_json(),
                                        sent_at=_now(), correlation_id=f"drill-{self._n}"))
        return records

    def _run(self) -> None:
        while not self._stop.is_set():
            records = self._next_batch()
            try:
                batch = self.pipeline.new_batch(records)  # archives the raw submissions first
                for record in records:
                    batch.add(record)
                committed = batch.commit()
                at = _now()
                for analysed, s in committed.stored:
                    self.committed[(s.tenant_id, s.message_id)] = at
                    if s.inserted:
                        v = analysed.verdict
                        self.stored[(s.tenant_id, s.message_id)] = {
                            "verdict": str(v.verdict), "score": v.score, "flags_version": batch.flags.version,
                            "reasons": [r.model_dump(mode="json") for r in v.reasons],
                            "degraded": batch.degraded or analysed.indicators_degraded}
                self.batches += 1
            except Exception as exc:  # the database is gone: the submissions stay in the archive
                self.failed += len(records)
                if len(self.errors) < 5:
                    self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                time.sleep(0.2)
            time.sleep(self.pause)


def _drill_settings(redis_url: str, moto_url: str, app_url: str):
    """The drill's own services, whatever a running stack put in the environment."""
    from swordfish.config import Settings

    return Settings(environment="local", redis_url=redis_url, aws_endpoint_url=moto_url, sqs_endpoint_url=None,
                    aws_region=LOCAL_AWS_ENV["AWS_DEFAULT_REGION"], database_url=app_url,
                    db_credentials_from_secret=False, nango_base_url=None, nango_secret_name=None,
                    raw_mail_archive_bucket=None)


def _list_some_links_in_a_feed(redis_url: str, mail: list[bytes]) -> int:
    """One link of every other sample goes into a threat feed, so URL_IN_THREAT_FEED decides some verdicts."""
    from swordfish.analysis import TenantPolicy, parse_message
    from swordfish.integrations.indicators import IndicatorStore

    listed = []
    for raw in mail[::2]:
        links = sorted(link.url for link in parse_message(raw, TenantPolicy()).links)
        listed += links[:1]
    if listed:
        store = IndicatorStore.from_url(redis_url, 5.0)
        store.replace("openphish", listed, min_keep_ratio=0)
        store.client.close()
    return len(listed)


def _database_size(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def _missing(url: str, expected: set[tuple[str, str]]) -> int:
    if not expected:
        return 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE expected (tenant_id text, message_id text)")
        with conn.cursor().copy("COPY expected FROM STDIN") as copy:
            for row in expected:
                copy.write_row(row)
        return conn.execute("SELECT count(*) FROM expected e WHERE NOT EXISTS (SELECT 1 FROM verdicts v "
                            "WHERE v.tenant_id = e.tenant_id AND v.message_id = e.message_id)").fetchone()[0]


def _kill_server(data_dir: Path) -> None:
    pgtools.run([pgtools.program("pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "stop"],
                timeout=60, as_server_user=True)


def run_drill(options: DrillOptions, progress=print) -> DrillReport:
    from swordfish.integrations.raw_archive import S3RawMailArchive
    from swordfish.store.migrate import bootstrap, migrate
    from swordfish.store.tenants import create_tenant

    for key, value in LOCAL_AWS_ENV.items():
        os.environ.setdefault(key, value)
    import boto3

    # The pool reports every failed reconnect while the database is gone: expected here, and noise.
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    report = DrillReport(options={k: str(v) for k, v in vars(options).items()})
    work = Path(tempfile.mkdtemp(prefix="sfdrill-"))
    moto = MotoServer(log_path=work / "moto.log").start()
    live = PostgresServer().start()
    redis_server = RedisServer().start()
    archiver = flow = restored = None
    try:
        admin_pw, app_pw = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        bootstrap(live.superuser_url, admin_pw, app_pw)
        owner_url = live.url_for(constants.ADMIN_DB_ROLE, admin_pw, constants.DATABASE_NAME)
        app_url = live.url_for(constants.APP_DB_ROLE, app_pw, constants.DATABASE_NAME)
        superuser_db = live.url_for("postgres", "", constants.DATABASE_NAME)
        migrate(owner_url)
        policy = json.loads((Path(__file__).resolve().parents[1] / "samples" / "demo-policy.json").read_text()) \
            if (Path(__file__).resolve().parents[1] / "samples" / "demo-policy.json").exists() else {}
        with psycopg.connect(owner_url) as conn:
            for tenant in TENANTS:
                with conn.transaction():
                    create_tenant(conn, tenant, tenant, policy)

        def client(service: str):
            return boto3.client(service, endpoint_url=moto.url, region_name=LOCAL_AWS_ENV["AWS_DEFAULT_REGION"])

        key_id = client("kms").create_key(Description="swordfish drill backups")["KeyMetadata"]["KeyId"]
        keys = KmsDataKeys(client("kms"), key_id)
        s3 = client("s3")
        bucket = "swordfish-drill-archive"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        archive = S3RawMailArchive(s3, bucket)
        repository = Repository(work / "backups").ensure()

        progress(f"seeding {options.verdicts:,} verdicts ...")
        t = time.monotonic()
        seed_verdicts(owner_url, options.verdicts)
        report.seed_seconds = round(time.monotonic() - t, 1)
        report.seeded_verdicts = options.verdicts
        report.database_bytes = _database_size(superuser_db)

        archiver = WalArchiver(live.superuser_url, repository, keys, sync_seconds=1.0, heartbeat_seconds=2.0,
                               log_path=work / "pg_receivewal.log").start()
        mail = _sample_mail(options.samples_dir)
        settings = _drill_settings(redis_server.url, moto.url, app_url)
        _list_some_links_in_a_feed(settings.redis_url, mail)
        flow = MailFlow(app_url, archive, mail, options.batch_pause_seconds, settings).start()
        progress("mail flowing; taking a base backup ...")
        t = time.monotonic()
        backup = take_base_backup(live.superuser_url, repository, keys)
        report.backup_seconds = round(time.monotonic() - t, 1)
        report.backup_id = backup.backup_id
        report.backup_bytes = sum(f["bytes"] for f in backup.files.values())
        progress(f"backup {backup.backup_id} in {report.backup_seconds} s; writing for {options.write_seconds} s more ...")
        time.sleep(options.write_seconds)

        committed_before = dict(flow.committed)
        disaster = _now()
        progress(f"disaster: {options.destroy} at {disaster.isoformat()}")
        if options.destroy == "table":
            with psycopg.connect(superuser_db, autocommit=True) as conn:
                conn.execute("DROP TABLE verdicts CASCADE")
        else:
            _kill_server(live.data_dir)
            shutil.rmtree(live.data_dir, ignore_errors=True)
        report.disaster_at = disaster.isoformat()

        detected = _detect(superuser_db, options.destroy)
        report.detected_at = detected.isoformat()
        report.detection_seconds = round((detected - disaster).total_seconds(), 2)
        rto_start = time.monotonic()
        flow.stop()  # in production the queue holds new mail while the database is down
        committed_before = {k: v for k, v in flow.committed.items() if v <= disaster} | committed_before
        report.verdicts_committed_live = len(flow.committed)
        report.mail_batches_committed = flow.batches
        report.verdicts_failed_during_outage = flow.failed
        archiver.stop(final_sync=True)
        report.wal_segments_archived = archiver.status.segments_archived

        target = disaster - timedelta(milliseconds=1) if options.destroy == "table" else None
        progress("restoring " + ("to just before the drop" if target else "to the latest point") + " ...")
        restored = restore(repository, keys, work / "restores", target=target)
        report.restore = restored.as_dict()
        heartbeat = datetime.fromisoformat(restored.heartbeat_at) if restored.heartbeat_at else None
        reference = target or disaster
        report.rpo_database_seconds = round((reference - heartbeat).total_seconds(), 2) if heartbeat else None
        expected = set(committed_before)
        report.verdicts_missing_after_restore = _missing(restored.url(), expected)

        progress("replaying archived submissions ...")
        since = (heartbeat or datetime.fromisoformat(backup.started_at)) - REPLAY_MARGIN
        app_on_restored = restored.url(constants.APP_DB_ROLE, app_pw)
        pipeline, queue, database = wiring.build_replay_pipeline(app_on_restored, settings)
        try:
            result = replay(archive.since(since), pipeline, queue)
        finally:
            database.close()
        report.replay = result.as_dict() | {"since": since.isoformat()}
        report.verdicts_missing_after_replay = _missing(restored.url(), expected | set(flow.committed))
        with psycopg.connect(restored.url(), autocommit=True) as conn:
            after = stored_verdicts(conn, flow.stored)
        report.verdicts_compared = len(flow.stored)
        report.verdicts_with_feed_hits = sum(1 for v in flow.stored.values()
                                             if any(r["name"] == "URL_IN_THREAT_FEED" for r in v["reasons"]))
        report.replay_differences = compare_verdicts(flow.stored, after)
        report.rto_seconds = round(time.monotonic() - rto_start, 1)
        report.verified_at = _now().isoformat()
        report.passed = (bool(restored.integrity.get("ok")) and report.verdicts_missing_after_replay == 0
                         and not report.replay_differences
                         and report.rto_seconds <= report.targets["rto_seconds"]
                         and report.rpo_database_seconds is not None
                         and report.rpo_database_seconds <= report.targets["rpo_database_seconds"])
        if options.report_dir:
            _write_report(report, Path(options.report_dir))
        return report
    finally:
        for stop in (lambda: flow and flow.stop(), lambda: archiver and archiver.stop(final_sync=False),
                     lambda: restored and restored.remove(), live.stop, redis_server.stop, moto.stop):
            with contextlib.suppress(Exception):
                stop()
        shutil.rmtree(work, ignore_errors=True)


def _detect(url: str, mode: str, timeout: float = 120.0) -> datetime:
    """The health probe an operator's alarm rests on: the database answers, with its verdicts table."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
                if conn.execute("SELECT to_regclass('public.verdicts')").fetchone()[0] is None:
                    return _now()
        except psycopg.OperationalError:
            return _now()
        time.sleep(0.25)
    raise RuntimeError(f"the {mode} disaster was not detected within {timeout:.0f}s")


def _write_report(report: DrillReport, folder: Path) -> Path:
    folder = folder / f"drill-{_now():%Y%m%dT%H%M%SZ}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report.as_dict(), indent=2))
    (folder / "summary.md").write_text(report.markdown())
    return folder


def register(backup_subcommands) -> None:
    """Add `drill` to `swordfish backup` (called by devstack.cli)."""
    from swordfish.backup.commands import reporting_errors

    drill = backup_subcommands.add_parser("drill", help="backup, disaster, restore, verify, replay: print RTO and RPO")
    drill.add_argument("--verdicts", type=int, default=10_000)
    drill.add_argument("--write-seconds", type=float, default=10.0)
    drill.add_argument("--destroy", choices=["datadir", "table"], default="datadir")
    drill.add_argument("--report-dir", default="results")
    drill.set_defaults(func=reporting_errors(cmd_drill))


def cmd_drill(args) -> int:
    import sys

    report = run_drill(DrillOptions(verdicts=args.verdicts, write_seconds=args.write_seconds, destroy=args.destroy,
                                    report_dir=Path(args.report_dir) if args.report_dir else None),
                       progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(report.markdown())
    return 0 if report.passed else 1
