"""`make bench-search`: search and trace at 10 million verdicts across 500 tenants (issue 28).

Starts a throwaway PostgreSQL (pgserver, its own temporary folder, removed at the end), applies the
migrations, seeds the verdicts and their traces server-side (generate_series; the indexes are
dropped while seeding and built afterwards, as a bulk load does), then runs typical searches through
``swordfish.store.traces.search`` as the application role, under row-level security: MSP staff
(every tenant) and tenant roles (their tenant). Prints p50/p95 per kind of search and overall.
Target: p95 under 300 ms.

    python scripts/bench_search.py [--verdicts 10000000] [--tenants 500] [--runs 40] [--keep DIR]
"""

from __future__ import annotations

import argparse
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "functions"), str(Path(__file__).resolve().parents[1])]

import psycopg  # noqa: E402
from swordfish import constants  # noqa: E402
from swordfish.analysis.trace import TERM_KEY_SQL  # noqa: E402
from swordfish.store.migrate import bootstrap, migrate  # noqa: E402
from swordfish.store.traces import TraceSearch, search  # noqa: E402

from devstack.services import PostgresServer  # noqa: E402

SEED_TABLES = ("verdicts", "verdict_traces", "verdict_trace_terms")
CHUNK = 500_000
DAYS = 90
MAILBOXES = 300          # per tenant
SENDER_DOMAINS = 200_000
LINK_DOMAINS = 400_000
IPS = 1_000_000
ATTACHMENTS = 300_000    # distinct attachment digests (lures repeat)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _pick(pool: int, skew: int = 3) -> str:
    """An SQL expression picking 0..pool-1, skewed to small numbers (a few popular values)."""
    return f"floor({pool} * power(random(), {skew}))::int"


def seed(conn: psycopg.Connection, verdicts: int, tenants: int) -> dict:
    conn.execute("SET maintenance_work_mem = '512MB'")
    conn.execute("SET work_mem = '64MB'")
    conn.execute("INSERT INTO tenants (tenant_id, name) SELECT 'bench-' || lpad(i::text, 3, '0'), 'Bench ' || i "
                 "FROM generate_series(0, %s) i", (tenants - 1,))
    # Secondary indexes only (the keys stay: they are constraints).
    indexes = conn.execute("SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                           "JOIN pg_class c ON c.oid = i.indrelid WHERE c.relname = ANY(%s) AND NOT EXISTS "
                           "(SELECT 1 FROM pg_constraint WHERE conindid = i.indexrelid)", (list(SEED_TABLES),)).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    figures = {}
    started = time.monotonic()
    # Without foreign-key triggers while loading (a superuser session; every row is generated to fit).
    conn.execute("SET session_replication_role = replica")
    for low in range(0, verdicts, CHUNK):
        high = min(verdicts, low + CHUNK) - 1
        conn.execute("BEGIN")
        # One row of random draws per verdict, then the verdict and its trace from the same draws.
        conn.execute(f"""
            CREATE TEMP TABLE draw ON COMMIT DROP AS
            SELECT i, 'bench-' || lpad({_pick(tenants, 2)}::text, 3, '0') AS tenant_id,
                   now() - (random() * interval '{DAYS} days') AS at, random() AS v, random() AS s,
                   {_pick(MAILBOXES, 2)} AS mbx, {_pick(SENDER_DOMAINS)} AS sd, {_pick(LINK_DOMAINS)} AS ld1,
                   {_pick(LINK_DOMAINS, 2)} AS ld2, (random() * 3)::int AS nlinks, {_pick(IPS)} AS ip,
                   CASE WHEN random() < 0.15 THEN {_pick(ATTACHMENTS)} END AS att
            FROM generate_series(%s, %s) i""", (low, high))
        conn.execute("""
            INSERT INTO verdicts (tenant_id, message_id, verdict, score, reasons, subject, sender, submitted_at,
                                  committed_at)
            SELECT tenant_id, 'msg-' || i,
                   CASE WHEN v < 0.70 THEN 'clean' WHEN v < 0.85 THEN 'spam' WHEN v < 0.93 THEN 'suspicious'
                        WHEN v < 0.98 THEN 'phishing' ELSE 'malware' END,
                   round((s * 14 - 2)::numeric, 2), '[]', 'Subject ' || (i % 9973), 'user@sd' || sd || '.example',
                   at, at
            FROM draw""")
        conn.execute("""
            INSERT INTO verdict_traces (trace_id, tenant_id, message_id, committed_at, expires_at, verdict, score,
                                        reasons, subject, sender, sender_domain, reply_to_domain, header_message_id,
                                        sending_ip, helo, envelope_recipients, header_recipients, link_domains, urls,
                                        attachment_names, attachment_sha256, content_digest)
            OVERRIDING SYSTEM VALUE
            SELECT i + 1, tenant_id, 'msg-' || i, at, at + interval '365 days',
                   CASE WHEN v < 0.70 THEN 'clean' WHEN v < 0.85 THEN 'spam' WHEN v < 0.93 THEN 'suspicious'
                        WHEN v < 0.98 THEN 'phishing' ELSE 'malware' END,
                   round((s * 14 - 2)::numeric, 2),
                   CASE WHEN v < 0.70 THEN '{}'::text[] WHEN v < 0.85 THEN ARRAY['SPAM_LANGUAGE', 'BULK_SENDER']
                        WHEN v < 0.98 THEN ARRAY['CREDENTIAL_PHISHING_LANGUAGE', 'NEW_LINK_DOMAIN']
                        ELSE ARRAY['MACRO_ATTACHMENT'] END,
                   'Subject ' || (i % 9973), 'user@sd' || sd || '.example', 'sd' || sd || '.example',
                   CASE WHEN i % 20 = 0 THEN 'rt' || (sd % 5000) || '.example' END,
                   '<' || i || '.' || md5(i::text) || '@sd' || sd || '.example>',
                   ('10.0.0.0'::inet + 16777216 + ip), 'mail' || (ip % 50000) || '.sender.example',
                   ARRAY['u' || mbx || '@' || tenant_id || '.example'],
                   ARRAY['u' || mbx || '@' || tenant_id || '.example'],
                   (ARRAY['ld' || ld1 || '.example', 'ld' || ld2 || '.example', 'ld' || (ld1 + ld2) || '.example'])[1:nlinks],
                   (ARRAY['https://ld' || ld1 || '.example/p/' || (i % 1000), 'https://ld' || ld2 || '.example/',
                          'https://ld' || (ld1 + ld2) || '.example/x'])[1:nlinks],
                   CASE WHEN att IS NOT NULL THEN ARRAY['invoice-' || att || '.pdf'] ELSE '{}' END,
                   CASE WHEN att IS NOT NULL THEN ARRAY[encode(sha256(('att' || att)::bytea), 'hex')] ELSE '{}' END,
                   CASE WHEN v >= 0.85 THEN md5('lure' || (sd % 3000)) END
            FROM draw""")
        conn.execute(f"""
            INSERT INTO verdict_trace_terms (term, committed_at, trace_id, tenant_id)
            SELECT DISTINCT {TERM_KEY_SQL.format('x.term')}, t.committed_at, t.trace_id, t.tenant_id
            FROM verdict_traces t, LATERAL (
                SELECT 'r:' || a FROM unnest(t.envelope_recipients || t.header_recipients) a
                UNION ALL SELECT 'd:' || d FROM unnest(t.link_domains) d
                UNION ALL SELECT 'u:' || u FROM unnest(t.urls) u
                UNION ALL SELECT 'n:' || lower(n) FROM unnest(t.attachment_names) n
                UNION ALL SELECT 'h:' || h FROM unnest(t.attachment_sha256) h) AS x(term)
            WHERE t.trace_id BETWEEN %s AND %s""", (low + 1, high + 1))
        conn.execute("COMMIT")
        done = high + 1
        rate = done / (time.monotonic() - started)
        log(f"seeded {done:,} verdicts ({rate:,.0f}/s, {(verdicts - done) / rate / 60:.1f} min to go)")
    conn.execute("SET session_replication_role = DEFAULT")
    figures["seed_seconds"] = round(time.monotonic() - started)
    started = time.monotonic()
    for name, definition in indexes:
        t0 = time.monotonic()
        conn.execute(definition)
        log(f"index {name}: {time.monotonic() - t0:.0f} s")
    conn.execute("ALTER SEQUENCE verdict_traces_trace_id_seq RESTART WITH %d" % (verdicts + 1))
    figures["index_seconds"] = round(time.monotonic() - started)
    t0 = time.monotonic()
    for table in SEED_TABLES:
        conn.execute(f"VACUUM (ANALYZE) {table}")
    figures["analyze_seconds"] = round(time.monotonic() - t0)
    figures["terms"] = conn.execute("SELECT count(*) FROM verdict_trace_terms").fetchone()[0]
    figures["database_bytes"] = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return figures


def sample_values(conn: psycopg.Connection) -> dict:
    """Real values to search for, drawn from the seeded rows (as an analyst pastes them)."""
    rows = conn.execute("SELECT tenant_id, envelope_recipients[1], link_domains[1], attachment_sha256[1], "
                        "sender_domain, host(sending_ip), header_message_id, urls[1] "
                        "FROM verdict_traces TABLESAMPLE SYSTEM (0.5) LIMIT 5000").fetchall()
    pick = {name: [r[i] for r in rows if r[i]] for i, name in enumerate(
        ("tenant", "recipient", "link_domain", "sha", "sender_domain", "ip", "message_id", "url"))}
    return pick


def typical_searches(values: dict) -> list[tuple[str, object]]:
    """(name, function returning (TraceSearch, scope, cursor-needed)) for each kind of search."""
    r = random.Random(28)

    def choose(name):
        return r.choice(values[name])

    return [
        ("MSP: recipient", lambda: (TraceSearch(recipient=choose("recipient")), None)),
        ("tenant: recipient", lambda: (lambda rc: (TraceSearch(recipient=rc), [rc.split("@")[1][:-8]]))(
            choose("recipient"))),
        ("MSP: link domain", lambda: (TraceSearch(link_domain=choose("link_domain")), None)),
        ("MSP: popular link domain, phishing", lambda: (TraceSearch(link_domain="ld0.example",
                                                                    verdict=["phishing"]), None)),
        ("MSP: URL", lambda: (TraceSearch(url=choose("url")), None)),
        ("MSP: attachment SHA-256", lambda: (TraceSearch(attachment_sha256=choose("sha")), None)),
        ("MSP: sender domain", lambda: (TraceSearch(sender_domain=choose("sender_domain")), None)),
        ("MSP: sending IP", lambda: (TraceSearch(sending_ip=choose("ip")), None)),
        ("MSP: Message-ID", lambda: (TraceSearch(message_id=choose("message_id")), None)),
        ("MSP: phishing+malware, last 24 h", lambda: (TraceSearch(verdict=["phishing", "malware"], since=_ago(1)),
                                                      None)),
        ("MSP: reason, score >= 8, last 7 days", lambda: (TraceSearch(reason="MACRO_ATTACHMENT", min_score=8,
                                                                      since=_ago(7)), None)),
        ("tenant: newest page", lambda: (TraceSearch(), [choose("tenant")])),
        ("tenant: phishing, last 30 days", lambda: (TraceSearch(verdict=["phishing"], since=_ago(30)),
                                                    [choose("tenant")])),
    ]


def _ago(days: int):
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(days=days)


def measure(app_url: str, values: dict, runs: int) -> dict:
    results: dict[str, list[float]] = {}
    with psycopg.connect(app_url, prepare_threshold=None) as conn:
        for name, make in typical_searches(values):
            times = []
            for _ in range(runs):
                query, scope = make()
                with conn.transaction():
                    t0 = time.perf_counter()
                    rows, cursor = search(conn, query, scope, limit=50)
                    if cursor and len(times) % 2:  # every other run also reads the next page
                        search(conn, query, scope, limit=50, cursor=cursor)
                    times.append((time.perf_counter() - t0) * 1000)
            results[name] = times
    return results


def measure_grouping(app_url: str, batches: int) -> list[float]:
    """Campaign grouping as the pipeline runs it after a commit: the indicators of a batch of ten
    stored verdicts (drawn from the seeded ones) counted across tenants. Milliseconds per batch."""
    from datetime import UTC, datetime

    from swordfish.analysis.trace import TraceFields
    from swordfish.store.campaigns import Hit, observe
    from swordfish.store.traces import set_scope

    times = []
    with psycopg.connect(app_url, prepare_threshold=None) as conn:
        with conn.transaction():
            set_scope(conn, None)
            rows = conn.execute(
                "SELECT tenant_id, committed_at, link_domains, attachment_sha256, sender_domain, content_digest "
                "FROM verdict_traces TABLESAMPLE SYSTEM (0.2) LIMIT %s", (batches * 10,)).fetchall()
        hits = [Hit(r[0], r[1], TraceFields(link_domains=r[2], attachment_sha256=r[3], sender_domain=r[4],
                                             content_digest=r[5])) for r in rows]
        for i in range(0, len(hits) - 9, 10):
            with conn.transaction():
                t0 = time.perf_counter()
                observe(conn, hits[i:i + 10], datetime.now(UTC))
                times.append((time.perf_counter() - t0) * 1000)
    return times


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verdicts", type=int, default=10_000_000)
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--runs", type=int, default=40, help="searches per kind")
    parser.add_argument("--keep", type=Path, help="keep the database in this folder (seeded once, measured again)")
    args = parser.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="sfbench-"))
    server = PostgresServer(folder)
    seeded = server.initialised if args.keep else False
    server.start()
    try:
        admin_pw = app_pw = "bench-" + secrets.token_hex(8)
        bootstrap(server.superuser_url, admin_pw, app_pw)
        owner = server.url_for(constants.ADMIN_DB_ROLE, admin_pw, constants.DATABASE_NAME)
        migrate(owner)
        superuser = server.url_for("postgres", "", constants.DATABASE_NAME)
        with psycopg.connect(superuser, autocommit=True) as conn:
            have = conn.execute("SELECT count(*) FROM verdict_traces").fetchone()[0]
            if not (seeded and have >= args.verdicts):
                if have:
                    conn.execute("TRUNCATE tenants CASCADE")
                log(f"seeding {args.verdicts:,} verdicts across {args.tenants} tenants")
                figures = seed(conn, args.verdicts, args.tenants)
                log(f"seeded in {figures['seed_seconds']} s, indexes {figures['index_seconds']} s, "
                    f"analyze {figures['analyze_seconds']} s; {figures['terms']:,} terms, "
                    f"{figures['database_bytes'] / 2**30:.1f} GiB")
            values = sample_values(conn)
        app = server.url_for(constants.APP_DB_ROLE, app_pw, constants.DATABASE_NAME)
        measure(app, values, 3)  # warm-up: the first touches of each index
        results = measure(app, values, args.runs)
        everything = [t for times in results.values() for t in times]
        print(f"\n{'search':42} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for name, times in results.items():
            print(f"{name:42} {pct(times, 50):8.1f} {pct(times, 95):8.1f} {max(times):8.1f}")
        p95 = pct(everything, 95)
        print(f"{'all (' + str(len(everything)) + ' searches)':42} {pct(everything, 50):8.1f} {p95:8.1f} "
              f"{max(everything):8.1f}")
        grouping = measure_grouping(app, 100)
        print(f"{'campaign grouping, per batch of 10 verdicts':42} {pct(grouping, 50):8.1f} {pct(grouping, 95):8.1f} "
              f"{max(grouping):8.1f}")
        print(f"\ntarget p95 < 300 ms (searches): {'PASS' if p95 < 300 else 'FAIL'}")
        return 0 if p95 < 300 else 1
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
