"""The example tenant report the docs quote (docs/reports.md): `make example-report`.

Starts a throwaway PostgreSQL (pgserver, a temporary folder removed at the end), applies the
migrations, creates the demo tenants, seeds the four weeks of analysed sample mail `make serve`
seeds (devstack/demo_history.py, fixed clock and seed: the same history every run), and writes
acme-corp's report for the last two of those weeks (the two before are its trend) as the API returns it (JSON), and its PDF.

    python scripts/example_report.py [--json docs/examples/example-report.json] [--pdf PATH]
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "functions"), str(REPO)]

from swordfish import constants  # noqa: E402
from swordfish.reports.model import parse_period  # noqa: E402
from swordfish.reports.render import report_pdf  # noqa: E402
from swordfish.store.database import Database, proxy_connect  # noqa: E402
from swordfish.store.migrate import bootstrap, migrate  # noqa: E402
from swordfish.store.reports import tenant_report  # noqa: E402
from swordfish.store.tenants import ensure_tenant  # noqa: E402

from devstack.demo_history import demo_samples, seed_report_history  # noqa: E402
from devstack.services import PostgresServer  # noqa: E402
from devstack.stack import DEMO_TENANTS  # noqa: E402

NOW = datetime(2026, 12, 7, tzinfo=UTC)  # the history ends the day before
PERIOD = ("2026-11-23", "2026-12-06")  # two weeks, against the two before
TENANT = "acme-corp"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=REPO / "docs" / "examples" / "example-report.json")
    parser.add_argument("--pdf", type=Path, help="also write the PDF here")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="sfreport-"))
    server = PostgresServer(folder)
    server.start()
    try:
        password = "report-" + secrets.token_hex(8)
        bootstrap(server.superuser_url, password, password)
        owner = server.url_for(constants.ADMIN_DB_ROLE, password, constants.DATABASE_NAME)
        migrate(owner)
        with proxy_connect(owner) as conn:
            for tenant_id, spec in DEMO_TENANTS.items():
                with conn.transaction():
                    ensure_tenant(conn, tenant_id, spec["name"], spec["policy"])
        domains = {t: (spec["policy"].get("domains") or [f"{t}.example"])[0] for t, spec in DEMO_TENANTS.items()}
        written = seed_report_history(owner, domains, demo_samples(), now=NOW)
        pool = Database(server.url_for(constants.APP_DB_ROLE, password, constants.DATABASE_NAME), max_size=1)
        try:
            report = tenant_report(pool, TENANT, parse_period(*PERIOD, today=NOW.date()), now=NOW)
        finally:
            pool.close()
        args.json.write_text(json.dumps(report.model_dump(mode="json", by_alias=True), indent=1) + "\n")
        print(f"{written} verdicts seeded; {TENANT} {PERIOD[0]} to {PERIOD[1]}: {report.total} messages, "
              f"{report.threats} threats -> {args.json}")
        if args.pdf:
            args.pdf.write_bytes(report_pdf(report))
            print(f"PDF -> {args.pdf}")
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
