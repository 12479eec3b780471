"""Integrity checks on a database: per-table row counts and checksums, amcheck, the heartbeat.

Pure psycopg, no PostgreSQL programs: the same checks run after a local restore and in the AWS
restore-test validator (a Lambda function connected to the restored RDS instance).

A manifest is written at backup time. Rows that can still change or arrive after the backup would
make any later comparison fail, so each table is compared "as of" a cutoff where it has a time
column that is set once (verdicts.committed_at, ...): a restore to any point after the backup must
hold exactly those rows. Small tables without such a column are compared whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

HEARTBEAT_TABLE = "backup_heartbeat"
# Columns set once at insert: rows at or before the cutoff are final.
CUTOFF_COLUMNS = {"verdicts": "committed_at", "flag_audit": "changed_at", "tenants": "created_at",
                  "api_keys": "created_at",
                  # a verdict's trace and its terms are written in the verdict's transaction (issue 28)
                  "verdict_traces": "committed_at", "verdict_trace_terms": "committed_at"}
# Columns an operator or a retry may change later on an old row: not part of the checksum.
MUTABLE_COLUMNS = {"verdicts": {"deferred_work"}, "api_keys": {"revoked_at"}}
SKIPPED_TABLES = {HEARTBEAT_TABLE}


@dataclass
class TableSummary:
    table: str
    rows: int
    checksum: str
    cutoff_column: str | None


@dataclass
class Manifest:
    cutoff: str  # ISO time: rows of cutoff tables at or before it
    tables: dict[str, TableSummary] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"cutoff": self.cutoff, "tables": {t: vars(s) for t, s in self.tables.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        return cls(data["cutoff"], {t: TableSummary(**s) for t, s in data["tables"].items()})


@dataclass
class IntegrityReport:
    ok: bool
    tables_checked: int = 0
    rows_checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    amcheck_problems: list[str] = field(default_factory=list)
    heartbeat_at: str | None = None
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(vars(self))


def _session(conn: psycopg.Connection) -> None:
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute("SET extra_float_digits = 1")
    conn.execute("SET statement_timeout = 0")


def user_tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()
    return [r[0] for r in rows if r[0] not in SKIPPED_TABLES]


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attnum", (f"public.{table}",)).fetchall()
    return [r[0] for r in rows if r[0] not in MUTABLE_COLUMNS.get(table, set())]


def summarise_table(conn: psycopg.Connection, table: str, cutoff: datetime) -> TableSummary:
    columns = _columns(conn, table)
    cutoff_column = CUTOFF_COLUMNS.get(table) if CUTOFF_COLUMNS.get(table) in columns else None
    # An order-independent checksum: the sum of a 64-bit hash of each row's text form.
    query = sql.SQL("SELECT count(*), coalesce(sum(hashtextextended(r::text, 0)::numeric), 0)::text "
                    "FROM (SELECT {cols} FROM {table} {where}) r").format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        table=sql.Identifier("public", table),
        where=sql.SQL("WHERE {} <= %s").format(sql.Identifier(cutoff_column)) if cutoff_column else sql.SQL(""))
    rows, checksum = conn.execute(query, (cutoff,) if cutoff_column else None).fetchone()
    return TableSummary(table, int(rows), checksum, cutoff_column)


def build_manifest(conn: psycopg.Connection, cutoff: datetime) -> Manifest:
    """Summarise every table. The connection must see every tenant's rows (superuser, or a member of
    pg_read_all_data, which migration 0013 lets read through row-level security)."""
    _session(conn)
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        manifest = Manifest(cutoff.isoformat())
        for table in user_tables(conn):
            manifest.tables[table] = summarise_table(conn, table, cutoff)
    return manifest


def compare_manifest(conn: psycopg.Connection, manifest: Manifest) -> IntegrityReport:
    current = build_manifest(conn, datetime.fromisoformat(manifest.cutoff))
    report = IntegrityReport(ok=True)
    for table, expected in manifest.tables.items():
        got = current.tables.get(table)
        report.tables_checked += 1
        if got is None:
            report.mismatches.append(f"table {table} is missing after the restore")
            continue
        report.rows_checked += got.rows
        if got.rows != expected.rows:
            report.mismatches.append(f"table {table}: {got.rows} rows, the backup's manifest says {expected.rows}")
        elif got.checksum != expected.checksum:
            report.mismatches.append(f"table {table}: checksum differs from the backup's manifest "
                                     f"(same {got.rows} rows, different content)")
    report.details["tables"] = {t: {"rows": s.rows, "cutoff_column": s.cutoff_column} for t, s in current.tables.items()}
    report.ok = not report.mismatches
    return report


def amcheck_sql(conn: psycopg.Connection) -> list[str]:
    """amcheck through SQL (the extension; RDS has it): every heap and every B-tree index of public."""
    problems: list[str] = []
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
    except psycopg.errors.FeatureNotSupported:  # this build lacks the extension (pgserver): scan instead
        return scan_check(conn)
    for (relname,) in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1").fetchall():
        for blkno, offnum, msg in conn.execute(
                "SELECT blkno, offnum, msg FROM verify_heapam(%s::regclass)", (f"public.{relname}",)).fetchall():
            problems.append(f"table {relname} block {blkno} item {offnum}: {msg}")
    for (indexname,) in conn.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam "
            "WHERE n.nspname = 'public' AND a.amname = 'btree' ORDER BY 1").fetchall():
        try:
            conn.execute("SELECT bt_index_check(%s::regclass, true)", (f"public.{indexname}",))
        except psycopg.Error as exc:
            problems.append(f"index {indexname}: {exc}")
    return problems


def latest_heartbeat(conn: psycopg.Connection) -> datetime | None:
    exists = conn.execute("SELECT to_regclass(%s)", (f"public.{HEARTBEAT_TABLE}",)).fetchone()[0]
    if not exists:
        return None
    row = conn.execute(f"SELECT max(beat_at) FROM {HEARTBEAT_TABLE}").fetchone()
    return row[0] if row else None


def beat(conn: psycopg.Connection, source: str = "archiver") -> datetime:
    """Write the heartbeat row (one row, updated in place): its time in a restore measures the RPO."""
    row = conn.execute(
        f"INSERT INTO {HEARTBEAT_TABLE} (id, beat_at, source) VALUES (1, clock_timestamp(), %s) "
        "ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at, source = excluded.source RETURNING beat_at",
        (source,)).fetchone()
    return row[0]


def scan_check(conn: psycopg.Connection) -> list[str]:
    """What we can check where the amcheck extension is missing (pgserver's build ships the
    pg_amcheck program but not the extension): every heap read in full, every value detoasted, and
    every B-tree index walked in full and counted against its table."""
    problems: list[str] = []
    _session(conn)
    for table in [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()]:
        ident = sql.Identifier("public", table)
        try:
            heap_rows = conn.execute(sql.SQL("SELECT count(*), sum(length(r::text)) FROM {} r").format(ident)).fetchone()[0]
        except psycopg.Error as exc:
            problems.append(f"table {table}: reading every row failed: {exc}")
            continue
        for index, columns, predicate in conn.execute(
                "SELECT c.relname, (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) "
                "  FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a "
                "  ON a.attrelid = i.indrelid AND a.attnum = k.attnum), pg_get_expr(i.indpred, i.indrelid) "
                "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
                "WHERE i.indrelid = %s::regclass AND am.amname = 'btree' AND 0 <> ALL (i.indkey)",
                (f"public.{table}",)).fetchall():
            if predicate:  # a partial index holds a subset: nothing to count it against
                continue
            try:
                with conn.transaction():
                    for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort", "enable_hashagg"):
                        conn.execute(f"SET LOCAL {setting} = off")
                    query = sql.SQL("SELECT count(*) FROM (SELECT {cols} FROM {t} ORDER BY {cols}) s").format(
                        cols=sql.SQL(columns), t=ident)
                    plan = "\n".join(r[0] for r in conn.execute(sql.SQL("EXPLAIN ") + query).fetchall())
                    index_rows = conn.execute(query).fetchone()[0]
            except psycopg.Error as exc:
                problems.append(f"index {index}: walking it failed: {exc}")
                continue
            if index in plan and index_rows != heap_rows:
                problems.append(f"index {index}: {index_rows} entries for {heap_rows} rows of {table}")
    return problems
