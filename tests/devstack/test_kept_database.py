"""`make serve` keeps its database under .devstack/ between runs; `--clean` starts from an empty one."""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg

from devstack.serve import prepare_data_dir
from devstack.services import PostgresServer
from devstack.stack import EmbeddedStack


def test_the_database_survives_a_stack_restart_and_clean_wipes_it():
    # Short path: PostgreSQL's socket lives in the data folder (Unix socket paths are ~100 bytes).
    data_dir = Path(tempfile.mkdtemp(prefix="sfkeep-"))
    try:
        with EmbeddedStack(data_dir=data_dir) as first:
            assert not first.database_kept
            keys = dict(first.info.api_keys)
            with psycopg.connect(first.info.superuser_url, autocommit=True) as conn:
                conn.execute("INSERT INTO verdicts (tenant_id, message_id, verdict, score, submitted_at) "
                             "VALUES ('acme-corp', 'kept-across-restarts', 'clean', 0, now())")
        with EmbeddedStack(data_dir=data_dir) as second:
            assert second.database_kept
            assert second.info.api_keys == keys  # the demo keys of a kept database still work
            with psycopg.connect(second.info.superuser_url, autocommit=True) as conn:
                rows = conn.execute("SELECT message_id FROM verdicts").fetchall()
        assert rows == [("kept-across-restarts",)]

        assert prepare_data_dir(data_dir, clean=True)
        assert not prepare_data_dir(data_dir, clean=True)  # nothing left to delete
        server = PostgresServer(data_dir / "pg")
        assert not server.initialised
    finally:
        prepare_data_dir(data_dir, clean=True)
