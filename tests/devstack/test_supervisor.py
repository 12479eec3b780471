"""The embedded stack restarts what dies, with backoff, as Lambda, ElastiCache and RDS would."""

from __future__ import annotations

import os
import signal
import sys
import time

import psycopg
import pytest

from devstack.services import ChildProcess, PgBouncerServer, PostgresServer, RedisServer
from devstack.supervisor import Backoff, Supervisor

HANG_GUARD_SECONDS = 60


def wait_until(predicate, what: str, guard: float = HANG_GUARD_SECONDS):
    """Poll until ``predicate()`` is truthy; the guard only catches a hang."""
    deadline = time.monotonic() + guard
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {guard} s")


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    """A watched item whose liveness the test sets."""

    def __init__(self):
        self.up = True
        self.restarts = 0
        self.fail_next = False

    def alive(self) -> bool:
        return self.up

    def restart(self) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("port still in use")
        self.restarts += 1
        self.up = True


def test_backoff_doubles_up_to_its_cap():
    backoff = Backoff(initial=0.5, factor=2, cap=4)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]


def test_restart_waits_for_the_backoff_and_grows_while_the_item_keeps_dying():
    clock, item, log = FakeClock(), Flaky(), []
    sup = Supervisor(backoff=Backoff(initial=1, factor=2, cap=8, reset_after=60), clock=clock, log=log.append)
    sup.watch("worker-0", item.alive, item.restart)

    item.up = False
    sup.tick()  # death noticed: restart #1 due in 1 s
    assert item.restarts == 0
    clock.now += 0.9
    sup.tick()
    assert item.restarts == 0
    clock.now += 0.2
    events = sup.tick()
    assert item.restarts == 1 and events[0].ok and events[0].attempt == 1

    clock.now += 5  # dies again soon after: the second restart waits 2 s
    item.up = False
    sup.tick()
    clock.now += 1.5
    sup.tick()
    assert item.restarts == 1
    clock.now += 0.6
    sup.tick()
    assert item.restarts == 2
    assert any("restarted worker-0" in line for line in log)


def test_a_failed_restart_is_retried_after_a_longer_wait():
    clock, item = FakeClock(), Flaky()
    sup = Supervisor(backoff=Backoff(initial=1, factor=2, cap=8), clock=clock, log=lambda _: None)
    sup.watch("postgresql", item.alive, item.restart)
    item.up, item.fail_next = False, True
    sup.tick()
    clock.now += 1
    events = sup.tick()
    assert not events[0].ok and "port still in use" in events[0].error
    clock.now += 1.5  # the next try waits 2 s, not 1
    sup.tick()
    assert item.restarts == 0
    clock.now += 0.6
    sup.tick()
    assert item.restarts == 1 and not sup.events[-1].error


def test_the_backoff_resets_after_the_item_stays_up():
    clock, item = FakeClock(), Flaky()
    sup = Supervisor(backoff=Backoff(initial=1, factor=2, cap=8, reset_after=30), clock=clock, log=lambda _: None)
    sup.watch("redis", item.alive, item.restart)
    for _ in range(3):  # three quick deaths: the next delay would be 8 s
        item.up = False
        sup.tick()
        clock.now += 8
        sup.tick()
    clock.now += 31
    sup.tick()  # up for over 30 s: forgiven
    item.up = False
    sup.tick()
    clock.now += 1.01
    sup.tick()
    assert item.restarts == 4


def test_a_held_item_stays_down_until_released():
    clock, item = FakeClock(), Flaky()
    sup = Supervisor(backoff=Backoff(initial=1), clock=clock, log=lambda _: None)
    sup.watch("postgresql", item.alive, item.restart)
    sup.hold("postgresql")
    item.up = False
    sup.tick()
    clock.now += 100
    sup.tick()
    assert item.restarts == 0
    sup.release("postgresql")
    sup.tick()
    assert item.restarts == 1


class Sleeper(ChildProcess):
    def __init__(self):
        super().__init__("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"])

    def start(self):
        self.spawn()
        return self


def test_a_killed_process_is_restarted():
    proc = Sleeper().start()
    sup = Supervisor(backoff=Backoff(initial=0.05), interval=0.02, log=lambda _: None)
    sup.watch("sleeper", proc.alive, proc.restart)
    try:
        with sup:
            first = proc.proc.pid
            os.kill(first, signal.SIGKILL)
            wait_until(lambda: proc.alive() and proc.proc.pid != first, "sleeper restarted")
        assert sup.events and sup.events[-1].ok and sup.events[-1].name == "sleeper"
    finally:
        proc.stop()


def test_postgresql_killed_hard_comes_back_with_its_data_and_the_pooler_follows():
    """RDS failing over behind RDS Proxy, and the proxy itself replaced: the data is kept and logins
    through the pooler work again."""
    server = PostgresServer().start()
    pooler = PgBouncerServer(server).start()
    sup = Supervisor(backoff=Backoff(initial=0.05), interval=0.05, log=lambda _: None)
    sup.watch("postgresql", server.alive, server.restart)
    sup.watch("pgbouncer", pooler.alive, pooler.restart)
    try:
        with psycopg.connect(server.superuser_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
            conn.execute("CREATE ROLE reader LOGIN PASSWORD 'pw'")
            conn.execute("GRANT SELECT ON kept TO reader")

        def answers():
            try:
                with psycopg.connect(pooler.url_for("reader", "pw", "postgres"), autocommit=True,
                                     connect_timeout=2) as conn:
                    return conn.execute("SELECT v FROM kept").fetchone()
            except psycopg.OperationalError:
                return None

        assert answers() == ("still here",)
        with sup:
            for name, pid_of in (("postgresql", server.pid), ("pgbouncer", pooler.pid)):
                pid = pid_of()
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda: pid_of() not in (None, pid), f"{name} restarted")  # noqa: B023 - called at once
                assert wait_until(answers, f"answers through the pooler after {name} was killed") == ("still here",)
        assert {e.name for e in sup.events if e.ok} == {"postgresql", "pgbouncer"}
    finally:
        pooler.stop()
        server.stop()


def test_redis_killed_comes_back_on_the_same_socket():
    import redis

    server = RedisServer().start()
    sup = Supervisor(backoff=Backoff(initial=0.05), interval=0.05, log=lambda _: None)
    sup.watch("redis", server.alive, server.restart)
    client = redis.Redis.from_url(server.url, socket_timeout=1)
    try:
        assert client.ping()
        with sup:
            pid = server.pid()
            os.kill(pid, signal.SIGKILL)

            def pings():
                try:
                    return client.ping()
                except redis.RedisError:
                    return False

            wait_until(lambda: server.pid() not in (None, pid) and pings(), "Redis restarted")
        assert any(e.name == "redis" and e.ok for e in sup.events)
    finally:
        client.close()
        server.stop()


@pytest.mark.usefixtures("stack_env")
def test_a_killed_worker_is_replaced_and_beats_again(embedded_stack):
    from swordfish.monitoring.progress import ProgressRecorder

    from devstack.poller import WorkerPool

    recorder = ProgressRecorder.from_url(embedded_stack.info.env["SWORDFISH_REDIS_URL"])
    sup = Supervisor(backoff=Backoff(initial=0.05), interval=0.05, log=lambda _: None)
    with WorkerPool(embedded_stack.info.env, workers=1) as pool:
        pool.supervise(sup)
        with sup:
            first = pool.pids()[0]
            wait_until(lambda: any(b.worker == "processor-0" for b in recorder.heartbeats()), "first heartbeat")
            os.kill(first, signal.SIGKILL)
            wait_until(lambda: pool.processes[0].is_alive() and pool.pids()[0] != first, "worker replaced")
            recorder.forget("processor-0")  # only a beat from the new process counts now
            wait_until(lambda: any(b.worker == "processor-0" for b in recorder.heartbeats()), "new worker beats")
        assert [e.name for e in sup.events if e.ok] == ["processor-0"]


@pytest.mark.parametrize("leftover", ["partial", "pid_of_another_process"])
def test_postgresql_comes_back_over_a_stale_or_partial_pid_file(leftover):
    """Issue 25: a postmaster killed while starting left a partial postmaster.pid, and every restart
    failed in pgserver's parser (AssertionError: _lines) until someone moved the file by hand."""
    import subprocess

    server = PostgresServer().start()
    bystander = subprocess.Popen(["sleep", "60"])  # alive, and not a postmaster
    try:
        pid = server.pid()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: server.pid() is None, "postmaster gone")
        pid_file = server.data_dir / "postmaster.pid"
        if leftover == "partial":  # killed while writing it: two of its eight lines
            pid_file.write_text(f"{pid}\n{server.data_dir}\n")
        else:  # the dead postmaster's pid now belongs to another process
            lines = pid_file.read_text().splitlines()
            pid_file.write_text("\n".join([str(bystander.pid), *lines[1:]]) + "\n")
        server.restart()
        with psycopg.connect(server.superuser_url, autocommit=True, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert server.alive() and server.pid() not in (pid, bystander.pid)
    finally:
        bystander.kill()
        bystander.wait()
        server.stop()


@pytest.mark.slow  # its own embedded stack (~30-40 s on a shared 2-core machine)
def test_moto_and_fauxqs_come_back_with_what_rotations_set_and_say_what_they_lost():
    """Issue 25: after login rotations moto's restart brought the database secret back with a
    password a rotation had already changed (0 of 600 mails got a verdict), looped on
    BucketAlreadyOwnedByYou, and fauxqs's restart lost queued mail with health at pass and no count."""
    import json as jsonlib

    from swordfish import constants
    from swordfish.monitoring.progress import ProgressRecorder
    from swordfish.security.rotation import rotate_now

    from devstack.stack import EmbeddedStack

    # keep_queues=False: fauxqs without its journal, the case that must still say what it lost
    # (test_accepted_mail_survives.py has the journal keep it).
    with EmbeddedStack(seed=False, keep_queues=False) as stack:
        for _ in range(2):  # swordfish_app -> its clone -> swordfish_app with a new password
            rotate_now(stack.rotator(), constants.DB_APP_SECRET_NAME)
        sm = stack.client("secretsmanager")
        before = sm.get_secret_value(SecretId=constants.DB_APP_SECRET_NAME, VersionStage="AWSCURRENT")
        # A pepper rotation that keeps the old pepper for the live keys hashed under it (KEPT-<id>):
        # moto's restart brought back AWSCURRENT and AWSPREVIOUS only, locking those keys out.
        pepper = constants.API_KEY_PEPPER_SECRET_NAME
        old_pepper = sm.get_secret_value(SecretId=pepper, VersionStage="AWSCURRENT")["VersionId"]
        sm.put_secret_value(SecretId=pepper, SecretString="second-pepper-" + "x" * 40)
        sm.update_secret_version_stage(SecretId=pepper, VersionStage=f"KEPT-{old_pepper}", MoveToVersionId=old_pepper)
        sm.put_secret_value(SecretId=pepper, SecretString="third-pepper-" + "y" * 40)
        pepper_stages = sm.describe_secret(SecretId=pepper)["VersionIdsToStages"]
        assert f"KEPT-{old_pepper}" in pepper_stages[old_pepper]
        assert stack._moto_alive()  # the supervisor's liveness probe also remembers the secrets
        sqs = stack.client("sqs")
        sqs.send_message_batch(QueueUrl=stack.info.queue_url, Entries=[
            {"Id": str(i), "MessageBody": "{}"} for i in range(3)])
        assert stack._fauxqs_alive()

        os.kill(stack.moto.pid(), signal.SIGKILL)
        wait_until(lambda: not stack.moto.alive(), "moto gone")
        stack._restart_moto()
        stack._create_moto_resources()  # a retried restart: idempotent, no BucketAlreadyOwnedByYou
        after = stack.client("secretsmanager").get_secret_value(SecretId=constants.DB_APP_SECRET_NAME,
                                                                VersionStage="AWSCURRENT")
        assert after["VersionId"] == before["VersionId"]
        restored = stack.client("secretsmanager").describe_secret(SecretId=pepper)["VersionIdsToStages"]
        assert {v: sorted(st) for v, st in restored.items() if st} == {v: sorted(st) for v, st in pepper_stages.items() if st}
        assert stack.client("secretsmanager").get_secret_value(SecretId=pepper, VersionId=old_pepper)["SecretString"]
        login = jsonlib.loads(after["SecretString"])
        with psycopg.connect(host=login["host"], dbname=login["dbname"], user=login["username"],
                             password=login["password"], connect_timeout=5) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == login["username"]

        os.kill(stack.fauxqs.pid(), signal.SIGKILL)
        wait_until(lambda: not stack.fauxqs.alive(), "fauxqs gone")
        stack._restart_fauxqs()
        returns = {name: lost for name, _age, lost in ProgressRecorder.from_url(stack.redis.url).empty_returns()}
        assert "about 3 queued message(s)" in returns["fauxqs"]
        assert constants.DB_APP_SECRET_NAME in returns["moto"]
