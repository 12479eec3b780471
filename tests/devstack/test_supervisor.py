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
