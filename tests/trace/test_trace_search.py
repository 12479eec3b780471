"""Trace rows stored with each verdict, and the search over them across tenants (issue 28):
row-level security decides what a scope sees, whatever the query says; every filter; keyset paging;
the indexes are usable under row-level security (the planner only uses leakproof conditions)."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from swordfish.store.traces import InvalidSearch, TraceSearch, csv_rows, search, search_sql, set_scope

from tests.trace.conftest import record, store


def ids(rows):
    return sorted(r["message_id"] for r in rows)


def test_a_verdict_is_stored_with_its_trace_and_terms_once(app_db):
    r = record("tenant-a", "m1", link_domains=["x.example", "y.example"], attachment_sha256=["a" * 64])
    assert store(app_db, r)[0].inserted
    assert not store(app_db, r)[0].inserted  # a redelivery: the first verdict and trace stand
    with app_db.tenant_transaction("tenant-a") as conn:
        assert conn.execute("SELECT count(*) FROM verdict_traces").fetchone()[0] == 1
        # one recipient (envelope and header the same), two link domains, one URL, one digest
        assert conn.execute("SELECT count(*) FROM verdict_trace_terms").fetchone()[0] == 5
        row = conn.execute("SELECT host(sending_ip), reasons, expires_at - committed_at FROM verdict_traces").fetchone()
    assert row[0] == "203.0.113.9" and row[1] == ["CREDENTIAL_PHISHING_LANGUAGE"] and row[2] == timedelta(days=365)


def test_a_tenant_role_cannot_see_another_tenants_rows_whatever_the_query_says(app_db):
    store(app_db, record("tenant-a", "a1"), record("tenant-b", "b1"), record("tenant-c", "c1"))
    with app_db.connection() as conn, conn.transaction():
        rows, _ = search(conn, TraceSearch(recipient="bob@a.example"), ["tenant-a"])
        assert ids(rows) == ["a1"]
        rows, _ = search(conn, TraceSearch(tenant="tenant-b"), ["tenant-a"])
        assert rows == []
        # A query that forgets the tenant filter altogether: row-level security still holds.
        sql, params = search_sql(TraceSearch(recipient="bob@a.example"), None, limit=50, cursor=None)
        set_scope(conn, ["tenant-a", "tenant-c"])
        assert sorted(r[2] for r in conn.execute(sql, params)) == ["a1", "c1"]
        assert conn.execute("SELECT count(*) FROM verdict_trace_terms WHERE tenant_id = 'tenant-b'").fetchone()[0] == 0
    with app_db.connection() as conn, conn.transaction():  # no scope, no tenant: nothing
        assert conn.execute("SELECT count(*) FROM verdict_traces").fetchone()[0] == 0
    with app_db.connection() as conn, conn.transaction():
        rows, _ = search(conn, TraceSearch(), None)  # MSP staff: every tenant
        assert ids(rows) == ["a1", "b1", "c1"]


def test_a_scope_cannot_write_for_a_tenant_it_may_read(app_db):
    import psycopg

    store(app_db, record("tenant-a", "a1"))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app_db.connection() as conn, conn.transaction():
        set_scope(conn, None)
        conn.execute("INSERT INTO verdict_trace_terms (term, committed_at, trace_id, tenant_id) "
                     "SELECT 1, now(), trace_id, tenant_id FROM verdict_traces")


def test_every_filter_finds_its_message(app_db):
    store(app_db,
          record("tenant-a", "plain", verdict="clean", score=-1.0, reasons=()),
          record("tenant-b", "target", verdict="malware", score=12.5, reasons=("MACRO_ATTACHMENT",),
                 envelope_recipients=["eve@b.example"], header_recipients=["boss@b.example"],
                 header_message_id="<t@evil.example>", sending_ip="2001:db8::7", helo="evil-helo.example",
                 link_domains=["evil.example"], urls=["https://evil.example/login"],
                 attachment_names=["Invoice.DOCM"], attachment_sha256=["b" * 64],
                 sender_domain="evil.example", reply_to_domain="collect.example"))
    filters = [dict(recipient="EVE@b.example"), dict(recipient="boss@b.example"),
               dict(message_id="<t@evil.example>"), dict(sending_ip="2001:DB8::7"), dict(helo="evil-helo.example"),
               dict(link_domain="evil.example"), dict(url="https://EVIL.example/login"),
               dict(attachment_name="invoice.docm"), dict(attachment_sha256="B" * 64),
               dict(sender_domain="evil.example"), dict(reply_to_domain="collect.example"),
               dict(verdict=["malware", "spam"]), dict(min_score=10), dict(reason="MACRO_ATTACHMENT"),
               dict(link_domain="evil.example", attachment_sha256="b" * 64, recipient="eve@b.example")]
    with app_db.connection() as conn, conn.transaction():
        for f in filters:
            rows, _ = search(conn, TraceSearch(**f), None)
            assert ids(rows) == ["target"], f
        rows, _ = search(conn, TraceSearch(max_score=0), None)
        assert ids(rows) == ["plain"]
        rows, _ = search(conn, TraceSearch(link_domain="evil.example", recipient="bob@a.example"), None)
        assert rows == []
        at = rows or search(conn, TraceSearch(tenant="tenant-b"), None)[0]
        t = at[0]["committed_at"]
        assert ids(search(conn, TraceSearch(since=t), None)[0]) == ["target"]
        assert ids(search(conn, TraceSearch(until=t), None)[0]) == ["plain"]


def test_keyset_pages_cover_every_row_once_newest_first(app_db):
    store(app_db, *[record(f"tenant-{'abcd'[i % 4]}", f"m{i:02d}") for i in range(11)])
    seen, cursor, pages = [], None, 0
    with app_db.connection() as conn, conn.transaction():
        while True:
            rows, cursor = search(conn, TraceSearch(link_domain="x.example"), None, limit=4, cursor=cursor)
            seen += rows
            pages += 1
            if cursor is None:
                break
    assert pages == 3 and len(seen) == 11 and len({r["trace_id"] for r in seen}) == 11
    keys = [(r["committed_at"], r["trace_id"]) for r in seen]
    assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize("bad", [dict(verdict=["evil"]), dict(sending_ip="1.2.3"), dict(attachment_sha256="xyz"),
                                 dict(recipient="a\x00b"), dict(reason="lower case"), dict(tenant="../x"),
                                 dict(recipient="x" * 400), dict(unknown="field")])
def test_bad_filters_are_refused_by_the_model(bad):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        TraceSearch(**bad)


def test_bad_cursors_and_ranges_are_refused(app_db):
    with app_db.connection() as conn, conn.transaction():
        for cursor in ("nonsense", "!!!", "MjAyNi0wMS0wMQ"):
            with pytest.raises(InvalidSearch):
                search(conn, TraceSearch(), None, cursor=cursor)
        with pytest.raises(InvalidSearch):
            search(conn, TraceSearch(min_score=5, max_score=1), None)
        with pytest.raises(InvalidSearch):
            search(conn, TraceSearch(url="not a url"), None)
        with pytest.raises(InvalidSearch):
            search(conn, TraceSearch(), None, limit=0)


def test_the_indexes_are_used_under_row_level_security(app_db, database):
    """Array operators are not leakproof, so under RLS a GIN index on the arrays would never be used;
    the hashed terms (int8 equality) and the scalar columns (text equality) are."""
    store(app_db, *[record("tenant-a", f"m{i}", link_domains=[f"d{i}.example"], sender_domain=f"s{i}.example",
                           sending_ip=f"10.{i // 250}.{i % 250}.1") for i in range(1000)])
    with psycopg.connect(database.superuser_url, autocommit=True) as conn:  # statistics, as autovacuum keeps them
        conn.execute("ANALYZE verdict_traces, verdict_trace_terms")
    with app_db.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")  # on a small table the planner would scan anyway
        for query, index in ((TraceSearch(link_domain="d7.example"), "verdict_trace_terms_term"),
                             (TraceSearch(sender_domain="s7.example"), "verdict_traces_sender_domain"),
                             (TraceSearch(sending_ip="10.0.7.1"), "verdict_traces_sending_ip")):
            for scope in (None, ["tenant-a"]):
                sql, params = search_sql(query, scope, limit=50, cursor=None)
                set_scope(conn, scope)
                plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params))
                assert index in plan, plan


def test_csv_cells_cannot_start_a_formula():
    rows = csv_rows([{"tenant_id": "t", "subject": "=HYPERLINK(\"x\")", "sender": "+1", "urls": ["a", "b"]}])
    assert rows[0][6] == "'=HYPERLINK(\"x\")" and rows[0][7] == "'+1" and rows[0][16] == "a b"


def test_traces_past_the_archives_retention_are_purged_with_their_terms(app_db, database):
    from datetime import UTC, datetime

    from swordfish.store.database import proxy_connect
    from swordfish.store.traces import TRACE_RETENTION, purge_expired

    store(app_db, record("tenant-a", "old"), record("tenant-b", "new"))
    with proxy_connect(database.owner_url) as conn:
        with conn.transaction():  # as the command runs it: the owner role, through the pooler
            assert purge_expired(conn, datetime.now(UTC)) == 0
        with conn.transaction():
            assert purge_expired(conn, datetime.now(UTC) + TRACE_RETENTION + timedelta(days=1)) == 2
    with app_db.connection() as conn, conn.transaction():
        set_scope(conn, None)
        assert conn.execute("SELECT count(*) FROM verdict_trace_terms").fetchone()[0] == 0


def test_a_search_past_the_statement_timeout_is_a_clear_refusal(app_db, database):
    store(app_db, record("tenant-a", "m1"))
    # Deterministic: another session holds the table, so the search waits out its 200 ms budget.
    with psycopg.connect(database.superuser_url) as holder, holder.transaction():
        holder.execute("LOCK TABLE verdict_traces IN ACCESS EXCLUSIVE MODE")
        with app_db.connection() as conn, conn.transaction():
            with pytest.raises(InvalidSearch, match="took too long"):
                search(conn, TraceSearch(link_domain="x.example"), None, statement_timeout_ms=200)
            assert conn.execute("SELECT 1").fetchone() == (1,)  # the transaction goes on (a savepoint)


def _expire(database, *message_ids: str) -> None:
    with psycopg.connect(database.superuser_url, autocommit=True) as conn:
        conn.execute("UPDATE verdict_traces SET expires_at = now() - interval '1 day' WHERE message_id = ANY(%s)",
                     (list(message_ids),))


def test_the_scheduled_purge_runs_as_the_app_role_through_the_pooler(app_db, database, monkeypatch):
    """Issue 28: the purge had a CLI only; on AWS a daily schedule runs handlers/trace_purge.py with
    the functions' login (the application role), every tenant in scope."""
    from handlers.trace_purge import handler
    from swordfish import constants, wiring
    from swordfish.config import get_settings

    from devstack.poller import FakeLambdaContext

    store(app_db, record("tenant-a", "old1"), record("tenant-b", "old2"), record("tenant-c", "kept"))
    _expire(database, "old1", "old2")
    monkeypatch.setenv("SWORDFISH_DATABASE_URL", database.app_url)
    monkeypatch.delenv("SWORDFISH_DB_CREDENTIALS_FROM_SECRET", raising=False)
    get_settings.cache_clear()
    wiring.reset()
    try:
        report = handler({}, FakeLambdaContext(function_name=constants.TRACE_PURGE_FUNCTION_NAME,
                                               timeout_seconds=constants.TRACE_PURGE_TIMEOUT_SECONDS))
    finally:
        wiring.reset()
        get_settings.cache_clear()
    assert report == {"deleted": 2, "batches": 1, "complete": True}
    with app_db.connection() as conn, conn.transaction():
        set_scope(conn, None)
        assert [r[0] for r in conn.execute("SELECT message_id FROM verdict_traces")] == ["kept"]


def test_the_purge_stops_within_its_budget_and_the_next_run_goes_on(app_db, database):
    from datetime import UTC, datetime

    from swordfish.store.traces import purge_all_expired

    store(app_db, *(record("tenant-a", f"old{i}") for i in range(3)))
    _expire(database, "old0", "old1", "old2")
    first = purge_all_expired(app_db.connection, datetime.now(UTC), batch=1, time_left=lambda: 10.0)
    assert first == {"deleted": 1, "batches": 1, "complete": False}  # 10 s left < the 30 s reserve
    rest = purge_all_expired(app_db.connection, datetime.now(UTC), batch=1, time_left=lambda: 300.0)
    assert rest == {"deleted": 2, "batches": 3, "complete": True}


def test_the_purge_command_shares_the_loop_and_prints_what_it_deleted(app_db, database, capsys):
    from swordfish.cli import main

    store(app_db, record("tenant-a", "old"), record("tenant-b", "kept"))
    _expire(database, "old")
    assert main(["trace", "purge", "--database-url", database.owner_url]) == 0
    assert capsys.readouterr().out.strip() == '{"deleted": 1}'
