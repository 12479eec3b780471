"""Validating AWS Backup's weekly restore test: the restored RDS instance gets the integrity checks a
local restore gets, and the verdict goes back to AWS Backup with ``PutRestoreValidationResult``.

Checks on the restored instance: amcheck over every table and index (the extension, through SQL),
every packaged migration applied, per-table row counts and checksums (reported; an AWS snapshot has
no manifest of ours to compare with, so counts must be non-zero where the live system always has
rows), and the heartbeat's age against the recovery point when the heartbeat is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import psycopg

from swordfish.backup import integrity

REQUIRED_NONEMPTY = ("tenants", "tenant_policies")
MAX_MESSAGE = 1000  # PutRestoreValidationResult's ValidationStatusMessage is a short string


@dataclass
class Validation:
    restore_job_id: str
    status: str = "SKIPPED"  # SUCCESSFUL | FAILED | SKIPPED (not a restore-testing job)
    problems: list[str] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)
    heartbeat_lag_seconds: float | None = None

    def message(self) -> str:
        text = ("; ".join(self.problems) if self.problems else
                f"ok: {len(self.tables)} tables, {sum(self.tables.values())} rows, amcheck clean")
        return text[:MAX_MESSAGE]


def connection_url(secret: dict, host: str, port: int, database: str) -> str:
    user, password = quote(secret["username"], safe=""), quote(secret["password"], safe="")
    return f"postgresql://{user}:{password}@{host}:{port}/{database}?sslmode=require&connect_timeout=10"


def check_database(conn: psycopg.Connection, migrations: list[str]) -> list[str]:
    """The integrity checks; returns the problems found (empty: the restore is good)."""
    problems = [f"amcheck: {p}" for p in integrity.amcheck_sql(conn)]
    applied = {r[0] for r in conn.execute("SELECT name FROM schema_migrations").fetchall()}
    missing = [m for m in migrations if m not in applied]
    if missing:
        problems.append(f"migrations missing from the restored database: {', '.join(missing)}")
    return problems


def validate(restore_job_id: str, *, backup, rds, read_secret: Callable[[], dict],
             connect: Callable[[str], psycopg.Connection], database: str = "swordfish",
             migrations: list[str] | None = None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Validation:
    """Validate one restore job and report it to AWS Backup (only jobs a restore-testing plan created)."""
    from swordfish.store.migrate import migration_files

    result = Validation(restore_job_id)
    job = backup.describe_restore_job(RestoreJobId=restore_job_id)
    if not (job.get("CreatedBy") or {}).get("RestoreTestingPlanArn"):
        return result  # an operator's restore: not ours to judge
    migrations = migrations if migrations is not None else [name for name, _ in migration_files()]
    try:
        instance_id = job["CreatedResourceArn"].split(":db:", 1)[1]
        instance = rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]
        endpoint = instance["Endpoint"]
        with connect(connection_url(read_secret(), endpoint["Address"], endpoint.get("Port", 5432), database)) as conn:
            conn.autocommit = True
            result.problems = check_database(conn, migrations)
            cutoff = job.get("RecoveryPointCreationDate") or now()
            manifest = integrity.build_manifest(conn, cutoff)
            result.tables = {t: s.rows for t, s in manifest.tables.items()}
            for table in REQUIRED_NONEMPTY:
                if result.tables.get(table, 0) == 0:
                    result.problems.append(f"table {table} is empty in the restored database "
                                           "(or unreadable: is the master user in pg_read_all_data?)")
            beat = integrity.latest_heartbeat(conn)
            if beat is not None and job.get("RecoveryPointCreationDate"):
                result.heartbeat_lag_seconds = (job["RecoveryPointCreationDate"] - beat).total_seconds()
    except Exception as exc:  # any failure to check is a failed validation, said plainly
        result.problems.append(f"could not check the restored instance: {type(exc).__name__}: {exc}")
    result.status = "FAILED" if result.problems else "SUCCESSFUL"
    backup.put_restore_validation_result(RestoreJobId=restore_job_id, ValidationStatus=result.status,
                                         ValidationStatusMessage=result.message())
    return result


def summary(result: Validation) -> str:
    return json.dumps({"restore_job_id": result.restore_job_id, "status": result.status,
                       "problems": result.problems, "tables": result.tables,
                       "heartbeat_lag_seconds": result.heartbeat_lag_seconds})


def restore_job_id(event: dict[str, Any]) -> str:
    detail = event.get("detail") or {}
    job_id = detail.get("restoreJobId") or detail.get("RestoreJobId")
    if not job_id:
        raise ValueError("the event carries no restoreJobId")
    return job_id
