"""Deep health against real PostgreSQL, Redis, moto (SQS, DynamoDB), the Nango stand-in and the feed server,
with real faults; disk and memory thresholds through injected probes."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import boto3
import pytest
from swordfish import constants
from swordfish.api import health_deep
from swordfish.api.health_deep import HealthDependencies, deep, live, ready
from swordfish.features.evaluator import Source
from swordfish.features.flags import FlagsClient, StoreState, StoreStatus
from swordfish.features.store import AgentStoreProvider
from swordfish.integrations.indicators import IndicatorStore
from swordfish.monitoring.progress import ProgressRecorder
from swordfish.resilience.circuit_breaker import (
    BreakerRegistry,
    create_breaker_table,
    dynamodb_client_from_settings,
)
from swordfish.security.secrets import SecretReader

from devstack.feed_server import FeedServer
from devstack.nango_standin import NangoStandin
from devstack.services import RedisServer, free_port
from tests.resilience.breaker_helpers import stop_redis


@pytest.fixture(scope="module")
def nango():
    with NangoStandin(hang_seconds=3) as server:
        yield server


@pytest.fixture(scope="module")
def feeds():
    with FeedServer(hang_seconds=3) as server:
        yield server


@pytest.fixture(autouse=True)
def faults_cleared(nango, feeds):
    nango.set_fault("ok")
    feeds.set_fault("ok")
    yield
    nango.set_fault("ok")
    feeds.set_fault("ok")


@pytest.fixture()
def sqs(moto_server):
    client = boto3.client("sqs", endpoint_url=moto_server.url, region_name="eu-west-1")
    suffix = uuid.uuid4().hex[:8]
    queue = client.create_queue(QueueName=f"emails-{suffix}")["QueueUrl"]
    dlq = client.create_queue(QueueName=f"emails-dlq-{suffix}")["QueueUrl"]
    return client, queue, dlq


@pytest.fixture()
def breakers(moto_server, settings_env):
    settings = settings_env(aws_endpoint_url=moto_server.url, breaker_table_name=f"breakers-{uuid.uuid4().hex[:8]}")
    create_breaker_table(dynamodb_client_from_settings(settings), settings.breaker_table_name)
    return BreakerRegistry(settings=settings)


def fresh_feeds(redis_url: str) -> IndicatorStore:
    store = IndicatorStore.from_url(redis_url, 1.0)
    for feed in constants.THREAT_FEEDS:
        store.replace(feed, [f"{feed}.example"])
    return store


def flags_ok():
    return StoreStatus(StoreState.OK, Source.LIVE, "7", 1.0, None)


@pytest.fixture()
def deps(database, redis_url, nango, feeds, sqs, breakers):
    client, queue, dlq = sqs
    return HealthDependencies(
        database_url=database.app_url,
        redis_url=redis_url,
        nango_base_url=nango.url,
        feed_urls=feeds.urls,
        feed_status=fresh_feeds(redis_url).status,
        sqs_client=client, queue_url=queue, dlq_url=dlq,
        queue_age_probe=lambda: 3.0,
        breakers=breakers,
        flag_status=flags_ok,
        secret_reader=SecretReader(None),  # nothing read from the environment fallback
        disk_probe=lambda: (50, 100),
        memory_probe=lambda: (30, 100),
        # Nango stays short (its hang test cuts it); the others have room on a loaded machine with three
        # test workers (feeds at 0.5 s timed out there and the weighted score came out 60.7, not 66.7).
        timeouts={"nango": 0.5, "feed": 2.0, "redis": 2.0, "postgresql": 2.0},
        deadline_seconds=3.0,
        cache_seconds=0,
        progress=ProgressRecorder.from_url(redis_url),
    )


def component(body, name):
    return body["components"][name]


def check(body, key):
    return body["checks"][key][0]


def test_everything_up_passes_with_a_full_score_in_health_json(deps):
    code, body = deep(deps)
    assert (code, body["status"], body["score"]) == (200, "pass", 100.0), json.dumps(body, indent=1)
    assert set(body["components"]) == set(health_deep.COMPONENTS) - {"backup", "keptState"}  # backup, keptState: where configured
    for key in ("postgresql:responseTime", "postgresql:connectTime", "redis:responseTime", "nango:responseTime",
                "feed_urlhaus:responseTime", "feed_phishtank:refreshAge", "disk:freeSpace", "memory:utilization",
                "queue:depth", "queue:oldestMessageAge", "queue:dlqDepth", "circuitBreakers:state",
                "featureFlags:store"):
        entry = check(body, key)
        assert entry["status"] == "pass", (key, entry)
        assert {"observedValue", "status", "time", "componentType"} <= set(entry)
    assert check(body, "postgresql:responseTime")["observedUnit"] == "ms"
    assert 0 <= check(body, "feed_openphish:refreshAge")["observedValue"] < 60
    assert {e["componentId"] for e in body["checks"]["circuitBreakers:state"]} >= {"nango_fetch", "redis_indicators"}


def test_postgresql_unreachable_fails_the_whole_report(deps, tmp_path):
    assert deep(deps)[1]["status"] == "pass"
    deps.database_url = f"postgresql://swordfish_app:x@/swordfish?host={tmp_path}/no-such-socket-dir"
    code, body = deep(deps)
    assert (code, body["status"]) == (503, "fail")
    assert component(body, "postgresql") == {"status": "fail", "statusCode": 503, "critical": True, "weight": 30}
    assert "no-such-socket-dir" in check(body, "postgresql:responseTime")["output"]
    assert component(body, "redis")["status"] == "pass"
    assert body["score"] == round(100 * (135 - 30) / 135, 1)  # weights add up to 135; PostgreSQL is 30


def test_redis_stopped_is_a_warning_with_the_redis_check_failing(deps):
    server = RedisServer().start()
    try:
        deps.redis_url = server.url
        assert deep(deps)[1]["status"] == "pass"
        stop_redis(server)
        code, body = deep(deps)
    finally:
        stop_redis(server)
    assert (code, body["status"]) == (200, "warn")
    assert component(body, "redis") == {"status": "fail", "statusCode": 503, "critical": False, "weight": 10}
    assert body["score"] == round(100 * (135 - 10) / 135, 1)


def test_nango_answering_500s_fails_the_nango_check_only(deps, nango):
    nango.set_fault("500")
    code, body = deep(deps)
    assert (code, body["status"]) == (200, "warn")
    assert component(body, "nango")["status"] == "fail"
    assert "HTTP 500" in check(body, "nango:responseTime")["output"]
    assert [n for n, c in body["components"].items() if c["status"] != "pass"] == ["nango"]


def test_a_hanging_nango_is_cut_at_its_own_timeout_and_the_report_still_arrives(deps, nango):
    nango.set_fault("hang")
    started = time.monotonic()
    _, body = deep(deps)
    elapsed = time.monotonic() - started
    assert component(body, "nango")["status"] == "fail"
    assert "within 0.5s" in check(body, "nango:responseTime")["output"]
    assert component(body, "postgresql")["status"] == "pass"
    assert elapsed < deps.deadline_seconds + 1.5  # generous guard: this test exists to catch a hang


def test_the_feed_server_down_fails_every_feed_check(deps, feeds):
    feeds.set_fault("down")
    _, body = deep(deps)
    assert body["status"] == "warn"
    for feed in constants.THREAT_FEEDS:
        entry = check(body, f"feed_{feed}:responseTime")
        assert entry["status"] == "fail" and "unreachable" in entry["output"]
    assert body["score"] == round(100 * (135 - 12) / 135, 1)  # three feeds of 4


def test_a_feed_never_refreshed_is_a_warning(deps, redis_url):
    deps.feed_status = IndicatorStore.from_url(redis_url + "?db=2", 1.0).status  # an empty Redis database
    _, body = deep(deps)
    entry = check(body, "feed_urlhaus:refreshAge")
    assert (entry["status"], entry["observedValue"], entry["output"]) == ("warn", None, "never refreshed successfully")
    assert component(body, "feed_urlhaus")["status"] == "warn"


@pytest.mark.parametrize(("free", "expected"), [(50, "pass"), (11, "pass"), (10, "fail"), (3, "fail")])
def test_disk_needs_more_than_ten_percent_free(deps, free, expected):
    deps.disk_probe = lambda: (free, 100)
    _, body = deep(deps)
    assert check(body, "disk:freeSpace")["observedValue"] == free
    assert component(body, "disk")["status"] == expected


@pytest.mark.parametrize(("used", "expected"), [(30, "pass"), (84, "pass"), (85, "fail"), (97, "fail")])
def test_memory_must_stay_under_85_percent_of_the_limit(deps, used, expected):
    deps.memory_probe = lambda: (used, 100)
    _, body = deep(deps)
    assert check(body, "memory:utilization")["observedValue"] == used
    assert component(body, "memory")["status"] == expected


def test_the_real_disk_and_memory_probes_measure_this_process(deps):
    deps.disk_probe, deps.memory_probe = health_deep.disk_probe, health_deep.memory_probe
    _, body = deep(deps)
    assert 0 < check(body, "disk:freeSpace")["observedValue"] <= 100
    assert 0 < check(body, "memory:utilization")["observedValue"] < 100


def test_an_open_breaker_is_a_warning_naming_the_breaker(deps, breakers):
    breakers.force_open("nango_fetch", actor="test", reason="drill")
    _, body = deep(deps)
    [entry] = [e for e in body["checks"]["circuitBreakers:state"] if e["componentId"] == "nango_fetch"]
    assert (entry["observedValue"], entry["status"]) == ("OPEN", "warn")
    assert "forced open by test: drill" in entry["output"]
    assert body["status"] == "warn"


def test_queue_depth_and_dlq_depth_come_from_sqs_and_a_dlq_entry_warns(deps, sqs):
    client, queue, dlq = sqs
    for i in range(3):
        client.send_message(QueueUrl=queue, MessageBody=f"m{i}")
    client.send_message(QueueUrl=dlq, MessageBody="poison")
    _, body = deep(deps)
    assert check(body, "queue:depth")["observedValue"] == 3
    assert (check(body, "queue:dlqDepth")["observedValue"], check(body, "queue:dlqDepth")["status"]) == (1, "warn")
    assert component(body, "queue")["status"] == "warn"


def test_an_old_backlog_warns(deps):
    deps.queue_age_probe = lambda: deps.backlog_warn_seconds + 60
    _, body = deep(deps)
    assert check(body, "queue:oldestMessageAge")["status"] == "warn"


def test_an_unreachable_queue_fails_the_whole_report(deps):
    deps.sqs_client = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{free_port()}", region_name="eu-west-1")
    code, body = deep(deps)
    assert (code, body["status"], component(body, "queue")["status"]) == (503, "fail", "fail")


def test_the_feature_flag_store_down_is_only_a_warning(deps):
    agent = AgentStoreProvider(f"http://127.0.0.1:{free_port()}", timeout_seconds=0.2)
    deps.flag_status = FlagsClient(agent).store_status
    code, body = deep(deps)
    assert (code, body["status"]) == (200, "warn")
    assert (check(body, "featureFlags:store")["observedValue"], component(body, "featureFlags")["status"]) == (
        "down", "warn")


def test_a_flag_store_check_that_raises_still_never_fails(deps):
    def broken():
        raise ConnectionError("agent refused")

    deps.flag_status = broken
    _, body = deep(deps)
    assert component(body, "featureFlags")["status"] == "warn"


def test_the_aggregate_score_is_weighted_by_criticality(deps, nango, feeds):
    nango.set_fault("500")
    deps.disk_probe = lambda: (5, 100)
    _, body = deep(deps)
    assert body["score"] == round(100 * (135 - 15) / 135, 1)  # nango (10) and disk (5) fail, of 135
    deps.database_url = "postgresql://x:y@/swordfish?host=/nonexistent"
    _, body = deep(deps)
    assert body["score"] == round(100 * (135 - 45) / 135, 1) and body["status"] == "fail"


def test_ready_checks_only_the_critical_dependencies(deps, nango, tmp_path):
    nango.set_fault("down")
    code, body = ready(deps)
    assert (code, body["status"], set(body["components"])) == (200, "pass", {"postgresql", "queue"})
    deps.database_url = f"postgresql://x:y@/swordfish?host={tmp_path}"
    assert ready(deps)[0] == 503


def test_live_touches_no_dependency():
    code, body = live()
    assert (code, body["status"]) == (200, "pass")
    assert body["checks"]["uptime"][0]["observedUnit"] == "s"


def test_results_are_cached_for_a_few_seconds(deps, nango):
    now = [1000.0]
    deps.cache_seconds, deps.clock = 5.0, lambda: now[0]
    before = nango.request_count("/health")
    first = deep(deps)[1]
    # Counted, not assumed to be one: a check slowed past its timeout on a loaded machine may try again.
    after_first = nango.request_count("/health")
    assert after_first > before
    nango.set_fault("500")
    now[0] += 4.9
    assert deep(deps)[1] is first  # within the window: the same report, no new calls
    assert nango.request_count("/health") == after_first
    now[0] += 0.2
    assert deep(deps)[1]["status"] == "warn"
    assert nango.request_count("/health") > after_first


def test_swordfish_health_prints_the_deep_report_for_the_configured_stack(database, redis_url, nango, feeds, sqs,
                                                                          breakers, settings_env, capsys):
    from swordfish.cli import main
    from swordfish.resilience import circuit_breaker

    _, queue, dlq = sqs
    settings_env(database_url=database.app_url, redis_url=redis_url, nango_base_url=nango.url,
                 urlhaus_feed_url=feeds.urls["urlhaus"], openphish_feed_url=feeds.urls["openphish"],
                 phishtank_feed_url=feeds.urls["phishtank"], sqs_endpoint_url=breakers.settings.aws_endpoint_url,
                 emails_queue_url=queue, emails_dlq_url=dlq, appconfig_agent_url=f"http://127.0.0.1:{free_port()}",
                 aws_endpoint_url=breakers.settings.aws_endpoint_url,
                 breaker_table_name=breakers.settings.breaker_table_name,
                 # moto's SQS on a busy test machine can take seconds; what is asserted is the nango fault
                 health_check_timeout_seconds=15.0, health_deadline_seconds=20.0)
    fresh_feeds(redis_url)
    circuit_breaker.reset_registry()
    try:
        nango.set_fault("500")
        code = main(["health"])
    finally:
        circuit_breaker.reset_registry()
    body = json.loads(capsys.readouterr().out)
    failing = {name: [c.get("output") for c in checks if c.get("status") == "fail"]
               for name, checks in body["checks"].items() if any(c.get("status") == "fail" for c in checks)}
    assert code == 1 and body["status"] == "warn", failing
    assert body["components"]["nango"]["status"] == "fail"
    assert body["components"]["postgresql"]["status"] == "pass"
    assert body["components"]["queue"]["status"] == "pass"


# --- heartbeats and queue progress (health_progress.py) ------------------------------------------------


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def send(sqs, count: int) -> None:
    client, queue, _ = sqs
    for start in range(0, count, 10):
        client.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "MessageBody": "{}"} for i in range(min(10, count - start))])


def test_a_worker_whose_heartbeat_goes_stale_turns_the_report_warn_then_fail(deps, redis_url):
    clock = Clock()
    deps.progress = ProgressRecorder.from_url(redis_url)
    deps.progress.clock = clock
    deps.expected_workers, deps.worker_stale_seconds = 2, 15
    deps.progress.beat("processor-0")
    deps.progress.beat("processor-1")
    _, body = deep(deps)
    assert component(body, "workers")["status"] == "pass" and check(body, "workers:alive")["observedValue"] == 2

    clock.now += 10
    deps.progress.beat("processor-0")  # processor-1 stays silent
    clock.now += 10
    code, body = deep(deps)
    assert (code, body["status"], component(body, "workers")["status"]) == (200, "warn", "warn")
    assert "silent: processor-1" in check(body, "workers:alive")["output"]

    clock.now += 10  # now both silent for over 15 s
    code, body = deep(deps)
    assert (code, body["status"], component(body, "workers")["status"]) == (503, "fail", "fail")
    assert body["score"] < 100


def test_a_worker_blocked_on_the_database_pool_is_waiting_not_dead(deps, redis_url, tmp_path):
    """Issue 25: during a long database outage the workers were alive, blocked on the pool, and
    `workers` said fail (no heartbeat). The beat now comes from the worker's own thread with what it
    waits for; a dead worker (no beat) and a stuck one (loop still, waiting on nothing) still fail."""
    import threading

    from swordfish.monitoring.progress import WorkerHeartbeat, current_wait, until_waiting_on
    from swordfish.store.database import Database, DatabaseUnavailable

    clock = Clock()
    deps.progress = ProgressRecorder.from_url(redis_url)
    deps.progress.clock = clock
    deps.expected_workers, deps.worker_stale_seconds = 2, 15
    waiting_worker = WorkerHeartbeat(deps.progress, "processor-0", clock=clock)
    deps.progress.beat("processor-1")
    waiting_worker.beat()

    # PostgreSQL is down: processor-0's batch blocks in the pool (a real pool, a socket nobody serves).
    down = Database(f"postgresql://swordfish_app:x@/swordfish?host={tmp_path}", max_size=1, connect_timeout=1)
    outcome: list[BaseException] = []

    def batch():
        try:
            with down.connection():
                pass
        except DatabaseUnavailable as exc:
            outcome.append(exc)

    blocked = threading.Thread(target=batch)
    blocked.start()
    try:
        assert until_waiting_on("postgresql", timeout=10), "the pool never marked its wait"  # hang guard
        assert current_wait() == "postgresql"
        clock.now += 60  # a minute into the outage; processor-1 died meanwhile (no beat)
        waiting_worker.beat()  # what its heartbeat thread does every second
        _, body = deep(deps)
        assert component(body, "workers")["status"] == "warn"  # not fail: processor-0 lives
        assert check(body, "workers:alive")["observedValue"] == 1
        assert "silent: processor-1" in check(body, "workers:alive")["output"]
        assert "waiting on postgresql" in check(body, "workers:waiting")["output"]
    finally:
        blocked.join(15)
        down.close()
    assert outcome  # the wait ended as the pool's timeout, not a hang

    clock.now += 1
    waiting_worker.beat()  # beating, but its loop has not moved for 61 s and it waits on nothing: stuck
    _, body = deep(deps)
    assert component(body, "workers")["status"] == "fail"
    assert "stuck" in check(body, "workers:alive")["output"]


def test_on_lambda_a_stale_heartbeat_fails_only_while_mail_waits(deps, redis_url, sqs):
    clock = Clock()
    deps.progress = ProgressRecorder.from_url(redis_url)
    deps.progress.clock = clock
    deps.progress.beat("2026/11/29/[$LATEST]abc")
    clock.now += 120
    _, body = deep(deps)
    assert component(body, "workers")["status"] == "pass"  # idle: nothing to do
    send(sqs, 3)
    _, body = deep(deps)
    assert component(body, "workers")["status"] == "fail"
    assert "while 3 message(s) wait" in check(body, "workers:heartbeatAge")["output"]


def test_a_queue_whose_oldest_message_ages_past_the_thresholds_warns_then_fails(deps, redis_url, sqs):
    clock = Clock()
    deps.progress = ProgressRecorder.from_url(redis_url)
    deps.progress.clock = clock
    deps.backlog_warn_seconds, deps.backlog_fail_seconds, deps.pipeline_stall_seconds = 60, 300, 30
    age = {"s": 5.0}
    deps.queue_age_probe = lambda: age["s"]
    send(sqs, 20)
    deps.progress.record_processed(50, "processor-0")
    _, body = deep(deps)
    assert component(body, "pipeline")["status"] == "pass"
    assert check(body, "pipeline:processedLastMinute")["observedValue"] == 50
    assert check(body, "pipeline:backlog")["observedValue"] == 20

    age["s"] = 90.0
    _, body = deep(deps)
    assert (body["status"], check(body, "pipeline:oldestMessageAge")["status"]) == ("warn", "warn")

    age["s"] = 301.0
    code, body = deep(deps)
    assert (code, body["status"], check(body, "pipeline:oldestMessageAge")["status"]) == (503, "fail", "fail")


def test_mail_waiting_with_nothing_processed_for_a_minute_is_a_stall(deps, redis_url, sqs):
    # A time of its own: the session's Redis holds other tests' per-10-second counters at Clock()'s
    # default time, and in some orders one landed in this test's minute (CI saw it pass the stall).
    clock = Clock(now=1_850_000_000.0)
    deps.progress = ProgressRecorder.from_url(redis_url)
    deps.progress.clock = clock
    deps.queue_age_probe = lambda: 45.0
    deps.progress.record_processed(30, "processor-0")
    send(sqs, 5)
    assert component(deep(deps)[1], "pipeline")["status"] == "pass"  # processed within the minute
    clock.now += 70  # the counters age out: nothing committed in the last minute
    code, body = deep(deps)
    assert (code, check(body, "pipeline:processedLastMinute")["status"]) == (503, "fail")
    assert "stalled: 5 message(s) waiting" in check(body, "pipeline:processedLastMinute")["output"]


def test_pipeline_evaluation_on_its_own():
    from swordfish.api.health_progress import evaluate_pipeline

    def status(**kw):
        base = {"backlog": 0, "oldest_age": 0.0, "processed_last_minute": 0, "stall_seconds": 30,
                "warn_seconds": 60, "fail_seconds": 300}
        return evaluate_pipeline(**{**base, **kw}).status

    assert status() == "pass"  # idle
    assert status(backlog=10, oldest_age=5) == "pass"  # just arrived
    assert status(backlog=10, oldest_age=40) == "fail"  # waiting, nothing processed
    assert status(backlog=10_000, oldest_age=20, processed_last_minute=1000) == "warn"  # 10 min to drain
    assert status(backlog=100, oldest_age=None, processed_last_minute=None) == "warn"  # counters unreadable


def test_the_fauxqs_age_route_reports_the_oldest_waiting_message(fauxqs_server):
    from swordfish.api.health_progress import fauxqs_queue_age_probe

    client = boto3.client("sqs", endpoint_url=fauxqs_server.url, region_name="eu-west-1")
    name = f"age-{uuid.uuid4().hex[:8]}"
    url = client.create_queue(QueueName=name)["QueueUrl"]
    probe = fauxqs_queue_age_probe(fauxqs_server.url, name)
    assert probe() == 0  # empty
    client.send_message(QueueUrl=url, MessageBody="{}")
    received = client.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"]
    with urllib.request.urlopen(f"{fauxqs_server.url}/_swordfish/queues/{name}/age") as response:
        state = json.loads(response.read())
    assert received and state["messages"] == 1  # in flight still counts: it is not deleted yet
    assert 0 <= state["oldestAgeSeconds"] < 60 and probe() > 0
    client.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])
    assert probe() == 0
    assert fauxqs_queue_age_probe(fauxqs_server.url, "no-such-queue")() is None


def test_the_postgresql_check_re_reads_rotated_credentials_as_the_pool_does(database, moto_server, settings_env):
    """Issue 25: after login rotations the check kept connecting with its cached, changed login and
    reported postgresql fail for minutes while mail flowed; the pool re-reads on a refused login."""
    import psycopg
    from swordfish import wiring

    role, secret = f"health_{uuid.uuid4().hex[:8]}", f"swordfish/test/health-{uuid.uuid4().hex[:8]}"
    socket_dir = database.superuser_url.split("host=", 1)[1]

    def login(password: str) -> str:
        return json.dumps({"engine": "postgres", "username": role, "password": password, "host": socket_dir,
                           "port": 5432, "dbname": constants.DATABASE_NAME})

    sm = boto3.client("secretsmanager", endpoint_url=moto_server.url, region_name="eu-west-1")
    with psycopg.connect(database.superuser_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'first-password-123'")
    sm.create_secret(Name=secret, SecretString=login("first-password-123"))
    settings = settings_env(aws_endpoint_url=moto_server.url, db_app_secret_name=secret,
                            db_credentials_from_secret="true", db_sslmode="disable", secrets_ttl_seconds=300)
    wiring.reset()
    try:
        deps = wiring.build_health_dependencies(settings)
        assert health_deep.check_postgresql(deps).status == "pass"
        # A rotation: the login's password changes and the secret's AWSCURRENT with it.
        with psycopg.connect(database.superuser_url, autocommit=True) as conn:
            conn.execute(f"ALTER ROLE {role} PASSWORD 'second-password-456'")
        sm.put_secret_value(SecretId=secret, SecretString=login("second-password-456"))
        assert health_deep.check_postgresql(deps).status == "pass"  # within the cache's TTL
    finally:
        wiring.reset()
        with psycopg.connect(database.superuser_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_the_backup_component_fails_past_the_rpo_and_reaches_the_canary(deps, tmp_path):
    """Issue 25: with the WAL archive not writable for 70 s, mail flowed and /health/deep said pass
    100 throughout: it had no backup component. Read from the repository's own files, so the API,
    the canary and the console see what the archiver wrote."""
    from datetime import UTC, datetime, timedelta

    from swordfish.api.health_canary import gauges
    from swordfish.backup.repository import BackupInfo, Repository
    from swordfish.backup.status import record_verification, repository_status

    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    repository = Repository(tmp_path / "backups" / "7301234567890123456").ensure()
    repository.write_json(repository.wal_dir / "archive_state.json",
                          {"archived_until": (now - timedelta(seconds=5)).isoformat(), "receiver_alive": True})
    repository.save_info(BackupInfo("20261207T000000Z", "complete", started_at=(now - timedelta(hours=12)).isoformat(),
                                    finished_at=(now - timedelta(hours=12)).isoformat()))
    record_verification(repository, {"ok": True, "problems": []}, now - timedelta(days=1))
    clock = [now]
    deps.backup_status = lambda: repository_status(tmp_path / "backups")
    deps.wall_clock = lambda: clock[0]
    deps.backup_rpo_seconds = 60

    _, body = deep(deps)
    assert component(body, "backup")["status"] == "pass" and body["status"] == "pass"
    assert check(body, "backup:archiveLag")["observedValue"] == 5.0

    clock[0] = now + timedelta(seconds=70)  # the archive stopped moving: 75 s behind
    _, body = deep(deps)
    assert component(body, "backup")["status"] == "fail" and body["status"] == "warn"  # mail still flows
    assert "75 s behind (RPO target 60 s)" in check(body, "backup:archiveLag")["output"]
    assert body["score"] < 100
    status = {g.dimension_value: g.value for g in gauges(body) if g.name == "ComponentStatus"}
    assert status["backup"] == 2  # what the canary emits and the BackupFailing alarm reads

    repository.write_json(repository.wal_dir / "archive_state.json",
                          {"archived_until": clock[0].isoformat(), "receiver_alive": False})
    _, body = deep(deps)
    assert "receiver is not running" in check(body, "backup:archiveLag")["output"]

    record_verification(repository, {"ok": False, "problems": ["wal/0000000100000000000000A1: tampered"]}, now)
    _, body = deep(deps)
    assert check(body, "backup:lastVerify")["status"] == "fail"


def test_a_dependency_that_came_back_empty_is_reported_for_a_while(deps, redis_url):
    """Issue 25: fauxqs killed, 2,210 accepted emails gone, and health said pass 100 ten seconds later."""
    clock = Clock()
    deps.progress = ProgressRecorder.from_url(redis_url)
    deps.progress.clock = clock
    _, body = deep(deps)
    assert component(body, "restarts")["status"] == "pass"

    deps.progress.came_back_empty("fauxqs", "about 2210 queued message(s) at its last count are lost")
    clock.now += 10
    _, body = deep(deps)
    assert component(body, "restarts")["status"] == "warn" and body["status"] == "warn"
    assert "fauxqs came back empty 10 s ago: about 2210 queued" in check(body, "restarts:cameBackEmpty")["output"]

    clock.now += 900  # after a quarter of an hour it is history (the supervisor log keeps it)
    _, body = deep(deps)
    assert component(body, "restarts")["status"] == "pass"
