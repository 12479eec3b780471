"""A PostgreSQL server of its own for the backup tests (they archive its WAL and take backups of it),
moto's KMS for the data keys, and a running WAL archiver."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

import boto3
import psycopg
import pytest
from backup_helpers import LiveDatabase
from swordfish import constants
from swordfish.backup.database import WalArchiver, drop_replication_slot, take_base_backup
from swordfish.backup.envelope import KmsDataKeys
from swordfish.backup.repository import BackupInfo, Repository
from swordfish.store.migrate import bootstrap, migrate
from swordfish.store.tenants import create_tenant

from devstack.services import PostgresServer


@pytest.fixture(scope="session")
def _reachable_tmp_dirs():
    made: list[Path] = []
    yield made
    for path in made:  # at the end of the session, after every restored server has been stopped
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture()
def tmp_path(_reachable_tmp_dirs) -> Path:
    """A folder the PostgreSQL server's OS user can reach. pytest's own lives under
    /tmp/pytest-of-<user>, which pytest keeps at mode 0700 and resets to it whenever another pytest
    session starts, so a server restored there could lose access to its own files mid-test."""
    path = Path(tempfile.mkdtemp(prefix="sfbk-tmp-"))
    _reachable_tmp_dirs.append(path)
    return path


@pytest.fixture(scope="module")
def live_db():
    server = PostgresServer().start()
    try:
        admin_pw, app_pw = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        bootstrap(server.superuser_url, admin_pw, app_pw)
        owner = server.url_for(constants.ADMIN_DB_ROLE, admin_pw, constants.DATABASE_NAME)
        migrate(owner)
        with psycopg.connect(owner) as conn:
            for tenant in ("acme-corp", "globex"):
                with conn.transaction():
                    create_tenant(conn, tenant, tenant, {})
        yield LiveDatabase(server, server.superuser_url, server.url_for("postgres", "", constants.DATABASE_NAME),
                           owner, server.url_for(constants.APP_DB_ROLE, app_pw, constants.DATABASE_NAME))
    finally:
        server.stop()


@pytest.fixture(scope="module")
def kms(moto_server):
    return boto3.client("kms", endpoint_url=moto_server.url, region_name="eu-west-1")


@pytest.fixture(scope="module")
def keys(kms):
    return KmsDataKeys(kms, kms.create_key(Description="backup tests")["KeyMetadata"]["KeyId"])


@pytest.fixture(scope="module")
def repository():
    root = Path(tempfile.mkdtemp(prefix="sfbk-test-"))
    yield Repository(root).ensure()
    import shutil

    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def archiver(live_db, repository, keys):
    # No heartbeat thread: the tests write what they need and archive explicitly (archive_now).
    arch = WalArchiver(live_db.superuser_url, repository, keys, sync_seconds=3600, heartbeat_seconds=0).start()
    yield arch
    arch.stop()
    drop_replication_slot(live_db.superuser_url)


@pytest.fixture(scope="module")
def base_backup(live_db, repository, keys, archiver) -> BackupInfo:
    from backup_helpers import insert_verdicts

    insert_verdicts(live_db, "before-backup", 20)
    return take_base_backup(live_db.superuser_url, repository, keys)


@pytest.fixture()
def restored_servers():
    started = []
    yield started
    for server in started:
        server.remove()
