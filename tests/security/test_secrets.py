"""Secrets: one reader with versions, a TTL and an audit trail; rotation that no query notices.

These tests rotate the application role's password, so they run against their own PostgreSQL and
moto (the session database's fixed passwords stay valid for every other test). As on AWS, the
rotation logs in to the server itself and the pools connect through the pooler (PgBouncer here,
RDS Proxy there), which must accept the new password at once.
"""

from __future__ import annotations

import json
import secrets as stdlib_secrets
import socket
import threading
import uuid

import psycopg
import pytest
from swordfish import constants
from swordfish.security.rotation import (
    RotationError,
    RotationInProgress,
    RotationSuperseded,
    RotationTestFailed,
    Rotator,
    rotate_now,
)
from swordfish.security.secrets import (
    AWSCURRENT,
    AWSPREVIOUS,
    FileAccessAudit,
    MalformedSecret,
    RedisVersionRegistry,
    SecretReader,
    SecretUnavailable,
    database_credentials,
    secretsmanager_client,
)
from swordfish.store.database import Database, SecretConninfo, proxy_connect
from swordfish.store.migrate import bootstrap, migrate
from swordfish.store.tenants import authenticate_api_key, create_api_key, create_tenant

from devstack.services import MotoServer, PgBouncerServer, PostgresServer, ServiceGroup

APP, MASTER, PEPPER = constants.DB_APP_SECRET_NAME, constants.DB_MASTER_SECRET_NAME, constants.API_KEY_PEPPER_SECRET_NAME


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def vault_and_db():
    """Its own moto and PostgreSQL (passwords enforced) behind PgBouncer, bootstrapped, migrated."""
    group = ServiceGroup()
    try:
        postgres = group.add(PostgresServer())
        pooler = group.add(PgBouncerServer(postgres))
        moto = group.add(MotoServer())
        admin_pw, app_pw = stdlib_secrets.token_urlsafe(16), stdlib_secrets.token_urlsafe(16)
        bootstrap(postgres.superuser_url, admin_pw, app_pw)
        owner_url = pooler.url_for(constants.ADMIN_DB_ROLE, admin_pw, constants.DATABASE_NAME)
        migrate(owner_url)
        socket_dir = postgres.superuser_url.split("host=", 1)[1]
        yield {"postgres": postgres, "moto": moto, "owner_url": owner_url, "socket_dir": socket_dir,
               "pooler": pooler,
               "superuser_url": postgres.url_for("postgres", "", constants.DATABASE_NAME), "app_pw": app_pw}
    finally:
        group.stop()


@pytest.fixture()
def vault(vault_and_db):
    """Fresh secrets for this test: the master, the app login (reset to swordfish_app), the pepper."""
    env = vault_and_db
    client = secretsmanager_client("eu-west-1", env["moto"].url, 2.0)
    for name in (APP, MASTER, PEPPER):
        try:
            client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        except client.exceptions.ResourceNotFoundException:
            pass
    password = stdlib_secrets.token_urlsafe(16)
    with psycopg.connect(env["superuser_url"], autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {constants.APP_DB_ROLE} PASSWORD '{password}'")
        conn.execute(f"ALTER ROLE {constants.APP_DB_CLONE_ROLE} PASSWORD NULL")
        conn.execute("TRUNCATE tenants CASCADE")

    def login(user: str, pw: str) -> str:
        return json.dumps({"engine": "postgres", "username": user, "password": pw, "host": env["socket_dir"],
                           "port": 5432, "dbname": constants.DATABASE_NAME})

    client.create_secret(Name=MASTER, SecretString=login("postgres", ""))
    client.create_secret(Name=APP, SecretString=login(constants.APP_DB_ROLE, password))
    client.create_secret(Name=PEPPER, SecretString=stdlib_secrets.token_urlsafe(48))
    return {**env, "client": client, "login": login}


# Reads name VersionStage=AWSCURRENT explicitly: moto's default (no stage) keeps answering the first
# version after update_secret_version_stage; AWS's default is AWSCURRENT, so both agree this way.


def reader_for(vault, tmp_path, clock=None, **kwargs) -> SecretReader:
    return SecretReader(vault["client"], ttl_seconds=60, clock=clock or Clock(), principal="test-worker-1",
                        audits=[FileAccessAudit(tmp_path / "audit.jsonl")], **kwargs)


def through_pooler(reader, vault) -> SecretConninfo:
    """The application login from its secret, connecting through the pooler (SWORDFISH_DB_HOST/_PORT)."""
    return SecretConninfo(reader, APP, host="127.0.0.1", port=vault["pooler"].port, sslmode="disable")


def rotator(vault) -> Rotator:
    return Rotator(vault["client"], sslmode="disable")


def can_log_in(vault, version_json: str) -> bool:
    data = json.loads(version_json)
    try:
        with psycopg.connect(host=vault["socket_dir"], dbname=constants.DATABASE_NAME, user=data["username"],
                             password=data["password"], connect_timeout=5):
            return True
    except psycopg.OperationalError:
        return False


# --- reading -----------------------------------------------------------------------------------------

def test_retrieves_a_secret_with_its_version_and_stages(vault, tmp_path):
    reader = reader_for(vault, tmp_path)
    version = reader.get(APP)
    expected = vault["client"].describe_secret(SecretId=APP)["VersionIdsToStages"]
    assert version.version_id in expected and AWSCURRENT in version.stages
    assert database_credentials(version).username == constants.APP_DB_ROLE
    assert "password" not in repr(version) and json.loads(version.value)["password"] not in repr(version)


def test_caches_secrets_for_the_ttl(vault, tmp_path):
    clock = Clock()
    reader = reader_for(vault, tmp_path, clock)
    audit = FileAccessAudit(tmp_path / "audit.jsonl")
    first = reader.get(APP)
    clock.advance(59)
    assert reader.get(APP) is first
    assert [e["reason"] for e in audit.entries()] == ["cache_miss"]  # one fetch within the TTL
    clock.advance(2)
    assert reader.get(APP).version_id == first.version_id
    assert [e["reason"] for e in audit.entries()] == ["cache_miss", "ttl"]


def test_detects_rotation_when_the_version_changes_at_refresh(vault, tmp_path):
    clock = Clock()
    reader = reader_for(vault, tmp_path, clock)
    seen = []
    reader.on_rotation(APP, lambda old, new: seen.append((old.version_id, new.version_id)))
    before = reader.get(APP)
    new_version = rotate_now(rotator(vault), APP)
    assert reader.get(APP).version_id == before.version_id  # still inside the TTL
    clock.advance(61)
    after = reader.get(APP)
    assert after.version_id == new_version and seen == [(before.version_id, new_version)]
    assert database_credentials(after).username == constants.APP_DB_CLONE_ROLE
    reasons = [e["reason"] for e in FileAccessAudit(tmp_path / "audit.jsonl").entries()]
    assert reasons[-2:] == ["ttl", "rotation_detected"]


# --- rotation ----------------------------------------------------------------------------------------

def test_handles_rotation_without_downtime(vault, tmp_path):
    """A real pool under concurrent queries while three real rotations run: zero failed queries."""
    clock = Clock()
    reader = reader_for(vault, tmp_path, clock)
    db = Database(through_pooler(reader, vault), max_size=4, connect_timeout=5)
    with proxy_connect(vault["owner_url"]) as conn, conn.transaction():
        create_tenant(conn, "rot-tenant", "Rotation", {})
    failures: list[BaseException] = []
    queries, users = [0], set()
    stop = threading.Event()
    lock = threading.Lock()

    def worker():
        while not stop.is_set():
            try:
                with db.tenant_transaction("rot-tenant") as conn:
                    user, count = conn.execute("SELECT current_user, count(*) FROM tenants").fetchone()
                    assert count == 1  # row-level security holds for either login
                with lock:
                    queries[0] += 1
                    users.add(user)
            except BaseException as exc:  # noqa: BLE001 - every failure counts
                failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        versions = []
        for _ in range(3):
            versions.append(rotate_now(rotator(vault), APP))
            clock.advance(61)  # the next checkout refreshes, sees the new version, drains the pool
            done_before = queries[0]
            while queries[0] < done_before + 50 and not failures:
                stop.wait(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        db.close()
    assert failures == []
    assert queries[0] >= 150
    assert users == {constants.APP_DB_ROLE, constants.APP_DB_CLONE_ROLE}
    assert reader.versions_held()[APP] == versions[-1]


def test_a_login_refused_after_rotation_fetches_the_current_version_and_retries_once(vault, tmp_path):
    reader = reader_for(vault, tmp_path)  # its clock never moves: the TTL never expires
    db = Database(through_pooler(reader, vault), max_size=2, connect_timeout=5)
    try:
        with db.connection() as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == constants.APP_DB_ROLE
        rotate_now(rotator(vault), APP)  # -> clone
        rotate_now(rotator(vault), APP)  # -> swordfish_app with a new password: the cached one is stale
        db.pool.drain()  # every new connection logs in again
        with db.connection() as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == constants.APP_DB_ROLE
    finally:
        db.close()
    reasons = [e["reason"] for e in FileAccessAudit(tmp_path / "audit.jsonl").entries()]
    assert "auth_failed" in reasons


def test_the_clone_has_the_application_roles_grants_and_no_bypassrls(vault, tmp_path):
    rotate_now(rotator(vault), APP)
    current = vault["client"].get_secret_value(SecretId=APP, VersionStage=AWSCURRENT)["SecretString"]
    data = json.loads(current)
    assert data["username"] == constants.APP_DB_CLONE_ROLE
    with proxy_connect(vault["owner_url"]) as conn, conn.transaction():
        create_tenant(conn, "tenant-a", "A", {})
        create_tenant(conn, "tenant-b", "B", {})
    with psycopg.connect(host=vault["socket_dir"], dbname=constants.DATABASE_NAME, user=data["username"],
                         password=data["password"]) as conn:
        assert conn.execute("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user"
                            ).fetchone() == (False, False)
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', 'tenant-a', true)")
            assert [r[0] for r in conn.execute("SELECT tenant_id FROM tenants")] == ["tenant-a"]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM tenants")


def test_every_step_is_idempotent(vault):
    r, token = rotator(vault), str(uuid.uuid4())
    for step in ("createSecret", "createSecret", "setSecret", "setSecret", "testSecret", "testSecret",
                 "finishSecret", "finishSecret"):
        r.step(APP, token, step)
    stages = vault["client"].describe_secret(SecretId=APP)["VersionIdsToStages"]
    assert stages[token] == [AWSCURRENT]
    assert sum(AWSPREVIOUS in s for s in stages.values()) == 1
    assert can_log_in(vault, vault["client"].get_secret_value(SecretId=APP, VersionStage=AWSCURRENT)["SecretString"])
    previous = vault["client"].get_secret_value(SecretId=APP, VersionStage=AWSPREVIOUS)["SecretString"]
    assert can_log_in(vault, previous)  # the old login still works until the next rotation


def test_the_pepper_rotates_and_both_peppers_are_accepted_during_the_overlap(vault, settings_env):
    from swordfish.security.secrets import reset_process_secret_reader
    from swordfish.store.tenants import list_api_keys

    settings_env(aws_endpoint_url=vault["moto"].url, secrets_ttl_seconds=0)  # every read asks the vault
    reset_process_secret_reader()
    try:
        first = vault["client"].get_secret_value(SecretId=PEPPER, VersionStage=AWSCURRENT)["VersionId"]
        with proxy_connect(vault["owner_url"]) as conn, conn.transaction():
            create_tenant(conn, "tenant-p", "P", {})
            old_key = create_api_key(conn, "tenant-p")
        second = rotate_now(rotator(vault), PEPPER)
        with proxy_connect(vault["owner_url"]) as conn, conn.transaction():
            new_key = create_api_key(conn, "tenant-p")
            versions = {k["key_id"]: k["pepper_version"] for k in list_api_keys(conn, "tenant-p")}
            assert versions == {old_key.key_id: first, new_key.key_id: second}  # VersionIds, not stage names
            assert authenticate_api_key(conn, old_key.plaintext) == "tenant-p"  # AWSPREVIOUS: the overlap
            assert authenticate_api_key(conn, new_key.plaintext) == "tenant-p"
        rotate_now(rotator(vault), PEPPER)  # the first pepper is now neither current nor previous
        with proxy_connect(vault["owner_url"]) as conn, conn.transaction():
            assert authenticate_api_key(conn, old_key.plaintext) is None
            assert authenticate_api_key(conn, new_key.plaintext) == "tenant-p"
    finally:
        reset_process_secret_reader()


# --- versions and audit ------------------------------------------------------------------------------

def test_tracks_secret_versions(vault, tmp_path, redis_url, capsys, monkeypatch):
    import redis

    registry = RedisVersionRegistry(redis.Redis.from_url(redis_url))
    clock = Clock()
    reader = reader_for(vault, tmp_path, clock, registry=registry)
    first = reader.get(APP)
    assert registry.holders()["test-worker-1"][APP] == first.version_id
    new_version = rotate_now(rotator(vault), APP)
    clock.advance(61)
    reader.get(APP)
    assert registry.holders()["test-worker-1"][APP] == new_version

    from swordfish.security import commands

    monkeypatch.setenv("SWORDFISH_AWS_ENDPOINT_URL", vault["moto"].url)
    monkeypatch.setenv("SWORDFISH_REDIS_URL", redis_url)
    from swordfish.config import get_settings

    get_settings.cache_clear()
    try:
        assert commands.main(["status", "--json"]) == 0
    finally:
        get_settings.cache_clear()
    status = {s["name"]: s for s in json.loads(capsys.readouterr().out)["secrets"]}
    app = status[APP]
    assert app["current"] == new_version and app["previous"] == first.version_id and app["pending"] is None
    assert app["holders"] == {"test-worker-1": new_version}


def test_audit_logs_access_and_never_the_value(vault, tmp_path):
    reader = reader_for(vault, tmp_path)
    value = reader.get(APP).value
    reader.refresh(APP, reason="auth_failed")
    text = (tmp_path / "audit.jsonl").read_text()
    entries = FileAccessAudit(tmp_path / "audit.jsonl").entries()
    assert [(e["principal"], e["secret"], e["reason"]) for e in entries] == [
        ("test-worker-1", APP, "cache_miss"), ("test-worker-1", APP, "auth_failed")]
    assert all(e["version_id"] and e["at"] for e in entries)
    assert json.loads(value)["password"] not in text


# --- fallback ----------------------------------------------------------------------------------------

def _unreachable_client():
    return secretsmanager_client("eu-west-1", "http://127.0.0.1:9", 0.5)


def test_falls_back_to_environment_variables_where_the_settings_allow(tmp_path, settings_env):
    settings = settings_env(environment="dev", secrets_fallback=json.dumps({PEPPER: "x" * 40}))
    assert settings.env_fallback_allowed
    reader = SecretReader(_unreachable_client(), fallback=settings.secrets_fallback,
                          fallback_allowed=settings.env_fallback_allowed,
                          audits=[FileAccessAudit(tmp_path / "a.jsonl")])
    version = reader.get(PEPPER)
    assert version.source == "env" and version.value == "x" * 40 and reader.fallbacks_used == {PEPPER}
    assert FileAccessAudit(tmp_path / "a.jsonl").entries()[0]["reason"] == "env_fallback"

    from swordfish.api.health_deep import check_secrets

    assert check_secrets(reader).status == "warn"


def test_refuses_the_environment_fallback_where_the_settings_forbid_it(settings_env):
    prod = settings_env(environment="prod", secrets_env_fallback="true", secrets_fallback=json.dumps({PEPPER: "x" * 40}))
    assert not prod.env_fallback_allowed
    reader = SecretReader(_unreachable_client(), fallback=prod.secrets_fallback, fallback_allowed=False)
    with pytest.raises(SecretUnavailable, match="fallback is off"):
        reader.get(PEPPER)
    assert settings_env(environment="prod", secrets_break_glass="true").env_fallback_allowed
    assert not settings_env(environment="dev", secrets_env_fallback="false", secrets_break_glass="false").env_fallback_allowed


# --- bad input ---------------------------------------------------------------------------------------

def test_a_malformed_new_version_leaves_the_current_credentials_working(vault, tmp_path):
    clock = Clock()
    reader = reader_for(vault, tmp_path, clock)
    conninfo = through_pooler(reader, vault)
    db = Database(conninfo, max_size=1)
    try:
        with db.connection() as conn:
            conn.execute("SELECT 1")
        vault["client"].put_secret_value(SecretId=APP, SecretString=json.dumps({"username": "swordfish_app"}))
        clock.advance(61)
        with pytest.raises(MalformedSecret, match="lacks password"):
            database_credentials(reader.get(APP))
        db.pool.drain()
        with db.connection() as conn:  # the last good credentials keep being used
            assert conn.execute("SELECT current_user").fetchone()[0] == constants.APP_DB_ROLE
    finally:
        db.close()
    with pytest.raises(MalformedSecret, match="lacks password"):
        rotate_now(rotator(vault), APP)


def test_a_pending_version_that_fails_its_test_leaves_the_current_version_in_place(vault):
    r, token = rotator(vault), str(uuid.uuid4())
    current = vault["client"].get_secret_value(SecretId=APP, VersionStage=AWSCURRENT)
    r.step(APP, token, "createSecret")
    with pytest.raises(RotationTestFailed, match="cannot log in"):
        r.step(APP, token, "testSecret")  # setSecret skipped: the clone has no password
    after = vault["client"].get_secret_value(SecretId=APP, VersionStage=AWSCURRENT)
    assert after["VersionId"] == current["VersionId"] and can_log_in(vault, after["SecretString"])
    with pytest.raises(RotationError, match="not rotated by Swordfish"):
        rotate_now(r, constants.NANGO_SECRET_NAME)


def test_a_rotation_started_while_another_runs_is_refused(vault):
    r, first = rotator(vault), str(uuid.uuid4())
    r.step(APP, first, "createSecret")  # the first rotation is under way
    with pytest.raises(RotationInProgress, match="already in progress"):
        rotate_now(rotator(vault), APP)
    for step in ("setSecret", "testSecret", "finishSecret"):
        r.step(APP, first, step)
    current = vault["client"].get_secret_value(SecretId=APP, VersionStage=AWSCURRENT)
    assert current["VersionId"] == first and can_log_in(vault, current["SecretString"])


def test_two_rotations_started_at_once_leave_one_working_current_version(vault):
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        try:
            outcomes.append(rotate_now(rotator(vault), APP))
        except Exception as exc:  # noqa: BLE001 - the assertions below name what was raised
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    succeeded = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if not isinstance(o, str)]
    assert len(outcomes) == 2 and succeeded, outcomes
    assert all(isinstance(o, RotationInProgress | RotationSuperseded) for o in refused), refused
    current = vault["client"].get_secret_value(SecretId=APP, VersionStage=AWSCURRENT)
    assert current["VersionId"] in succeeded and can_log_in(vault, current["SecretString"])


def test_a_vault_that_times_out_leaves_the_cached_version_working(vault, tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        clock = Clock()
        reader = reader_for(vault, tmp_path, clock)
        held = reader.get(APP)
        reader.client = secretsmanager_client("eu-west-1", f"http://127.0.0.1:{silent.getsockname()[1]}", 0.3)
        clock.advance(61)
        assert reader.get(APP) is held  # the vault timed out: the version we hold keeps working
        cold = SecretReader(reader.client, fallback_allowed=False)
        with pytest.raises(SecretUnavailable, match="unreachable"):
            cold.get(APP)
    finally:
        silent.close()


def test_the_rotation_handler_runs_a_step_from_a_secrets_manager_event(vault, settings_env):
    from handlers import rotate_secret
    from swordfish import wiring

    settings_env(aws_endpoint_url=vault["moto"].url, db_sslmode="disable")
    wiring.reset()
    token = str(uuid.uuid4())
    arn = vault["client"].describe_secret(SecretId=PEPPER)["ARN"]
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        result = rotate_secret.handler({"SecretId": arn, "ClientRequestToken": token, "Step": step}, _context())
        assert result["step"] == step
    assert vault["client"].get_secret_value(SecretId=PEPPER, VersionStage=AWSCURRENT)["VersionId"] == token
    with pytest.raises(RotationError, match="unknown rotation step"):
        rotate_secret.handler({"SecretId": arn, "ClientRequestToken": token, "Step": "dropSecret"}, _context())


def _context():
    class Context:
        function_name, memory_limit_in_mb, invoked_function_arn, aws_request_id = "rotate", 256, "arn", "req"
    return Context()



def test_the_nango_secret_and_the_sentry_dsn_are_read_through_the_secret_reader(vault, settings_env, tmp_path):
    from swordfish import wiring

    dsn = "https://public@o1.ingest.sentry.example/42"
    for name, value in ((constants.SENTRY_DSN_SECRET_NAME, json.dumps({"dsn": dsn})),
                        (constants.NANGO_SECRET_NAME, json.dumps({"base_url": "http://127.0.0.1:9", "secret_key": "k"}))):
        try:
            vault["client"].delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        except vault["client"].exceptions.ResourceNotFoundException:
            pass
        vault["client"].create_secret(Name=name, SecretString=value)
    settings_env(aws_endpoint_url=vault["moto"].url, sentry_dsn_secret_name=constants.SENTRY_DSN_SECRET_NAME,
                 nango_secret_name=constants.NANGO_SECRET_NAME, secrets_audit_file=tmp_path / "audit.jsonl")
    wiring.reset()
    try:
        assert wiring.sentry_dsn() == dsn
        assert wiring.nango_client() is not None
        assert wiring.secret_reader().versions_held().keys() == {constants.SENTRY_DSN_SECRET_NAME,
                                                                 constants.NANGO_SECRET_NAME}
        audited = {e["secret"] for e in FileAccessAudit(tmp_path / "audit.jsonl").entries()}
        assert audited == {constants.SENTRY_DSN_SECRET_NAME, constants.NANGO_SECRET_NAME}
        vault["client"].put_secret_value(SecretId=constants.SENTRY_DSN_SECRET_NAME,
                                         SecretString=json.dumps({"dsn": ""}))  # the deploy-time placeholder
        assert wiring.secret_reader().refresh(constants.SENTRY_DSN_SECRET_NAME)
        assert wiring.sentry_dsn() is None
    finally:
        wiring.reset()


def test_the_operator_token_is_read_through_the_one_secret_reader_outside_local(vault, settings_env):
    from swordfish import wiring
    from swordfish.security.secrets import reset_process_secret_reader

    name = constants.OPERATOR_TOKEN_SECRET_NAME
    vault["client"].create_secret(Name=name, SecretString="operator-token-v1")
    try:
        settings = settings_env(environment="dev", aws_endpoint_url=vault["moto"].url, secrets_ttl_seconds=0)
        reset_process_secret_reader()
        assert wiring.operator_token(settings) == "operator-token-v1"
        vault["client"].put_secret_value(SecretId=name, SecretString="operator-token-v2")  # replaced on demand
        assert wiring.operator_token(settings) == "operator-token-v2"
    finally:
        vault["client"].delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        reset_process_secret_reader()


def test_the_console_signing_key_is_read_through_the_one_secret_reader_outside_local(vault, settings_env):
    from swordfish import wiring
    from swordfish.security.secrets import reset_process_secret_reader

    name = constants.CONSOLE_SECRET_NAME
    vault["client"].create_secret(Name=name, SecretString="console-signing-key-v1")
    try:
        settings = settings_env(environment="dev", aws_endpoint_url=vault["moto"].url, secrets_ttl_seconds=0)
        reset_process_secret_reader()
        assert wiring.console_secret_key(settings) == "console-signing-key-v1"
        assert name in wiring.secret_reader().versions_held()  # audited and cached like every other secret
    finally:
        vault["client"].delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        reset_process_secret_reader()
