"""`make serve`: the embedded stack kept up, with workers and the local API gateway.

The database is kept between runs under .devstack/data/ (`--clean` starts from an empty one), and
so are what recovery depends on: the raw-submission archive (.devstack/data/raw-archive, the log
of accepted mail), fauxqs's journal of queued messages (.devstack/data/queues: mail still queued at
a stop or a kill is put back when the queues are created again) and the backup key. At start,
every archived submission with no verdict and on no queue is put back on the queue. Everything it started is supervised: a worker,
PostgreSQL, Redis, fauxqs or moto that dies is restarted with backoff (logs/supervisor.log).
Ctrl-C (or SIGTERM) stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
from pathlib import Path

from swordfish import constants

from devstack.poller import WorkerPool
from devstack.schedules import Schedules
from devstack.services import REPO_ROOT, free_port
from devstack.stack import EmbeddedStack
from devstack.state import clear_state, write_state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("SWORDFISH_GATEWAY_PORT", 8080)))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clean", action="store_true", help=f"delete the kept database ({DATA_DIR}) first")
    args = parser.parse_args(argv)
    from swordfish.monitoring import error_tracker

    error_tracker.install_process_hooks()

    if prepare_data_dir(DATA_DIR, clean=args.clean):
        print(f"--clean: deleted the kept database in {DATA_DIR}", flush=True)
    print("starting the embedded stack ...", flush=True)
    try:
        with EmbeddedStack(data_dir=DATA_DIR, supervise=True, raw_archive=True) as stack:
            print(data_note(stack), flush=True)
            # The deep health check expects a heartbeat from every processor worker.
            stack.info.env["SWORDFISH_EXPECTED_WORKERS"] = str(args.workers)
            # Raw submissions archived before analysis (SWORDFISH_RAW_MAIL_ARCHIVE_DIR, set by the
            # stack): on disk beside the database, for `swordfish backup replay` and the start's re-enqueue.
            # Deep health watches the WAL archive, the base backups and the last verify (issue 25).
            stack.info.env[f"{constants.ENV_PREFIX}BACKUP_HEALTH"] = "true"
            # `swordfish backup verify | restore` unwrap with the same key file the service wraps with.
            stack.info.env[f"{constants.ENV_PREFIX}BACKUP_KMS_KEY_ID"] = f"file:{backup_key_file()}"
            os.environ.update(stack.info.env)
            seed_dashboards(stack)
            from handlers.api import handler
            from handlers.console import handler as console_handler

            from devstack.gateway import make_server

            try:
                server = make_server(handler, args.port, console_handler=console_handler)
            except OSError:
                port = free_port()
                print(f"port {args.port} is busy; using {port}", flush=True)
                server = make_server(handler, port, console_handler=console_handler)
            port = server.server_address[1]
            state = write_state({"gateway_url": f"http://127.0.0.1:{port}", "env": stack.info.env,
                                 "owner_url": stack.info.owner_url, "superuser_url": stack.info.superuser_url,
                                 "api_keys": stack.info.api_keys, "run_dir": str(stack.run_dir),
                                 "nango_admin_url": stack.nango.admin_url, "feeds_admin_url": stack.feeds.admin_url})
            backups = start_backups(stack)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            schedules = Schedules()  # the phishing-rate check and the SIEM export
            try:
                with WorkerPool(stack.info.env, workers=args.workers, log_dir=stack.run_dir / "logs") as workers, \
                        WorkerPool(stack.info.env, workers=1, log_dir=stack.run_dir / "logs",
                                   function="remediation") as remediation, \
                        WorkerPool(stack.info.env, workers=1, log_dir=stack.run_dir / "logs",
                                   function="alerts") as alerts, \
                        WorkerPool(stack.info.env, workers=1, log_dir=stack.run_dir / "logs",
                                   function="response") as response:
                    stack.supervise_workers(workers)
                    stack.supervise_workers(remediation)
                    stack.supervise_workers(alerts)
                    stack.supervise_workers(response)
                    schedules.start()
                    tenant, key = next(iter(stack.info.api_keys.items()))
                    print(USAGE.format(url=f"http://127.0.0.1:{port}", tenant=tenant, key=key, state=state,
                                       logs=stack.run_dir / "logs", nango_admin=stack.nango.admin_url,
                                       feeds_admin=stack.feeds.admin_url), flush=True)
                    threading.Event().wait()
            finally:
                schedules.stop()
                backups.stop()
                server.shutdown()
                server.server_close()
                clear_state()
    except KeyboardInterrupt:
        print("\nstopped.", file=sys.stderr)
    return 0


DATA_DIR = REPO_ROOT / ".devstack" / "data"


def seed_dashboards(stack: EmbeddedStack) -> None:
    """Four weeks of analysed sample mail for the demo tenants' dashboards (once per database)."""
    from devstack.demo_history import demo_samples, seed_report_history
    from devstack.stack import DEMO_TENANTS

    domains = {t: (spec["policy"].get("domains") or [f"{t}.example"])[0] for t, spec in DEMO_TENANTS.items()}
    written = seed_report_history(stack.info.owner_url, domains, demo_samples())
    if written:
        print(f"seeded {written} verdicts over the last four weeks for the tenants' dashboards "
              "(console: a tenant's report)", flush=True)


def prepare_data_dir(data_dir: Path, *, clean: bool) -> bool:
    """With ``clean``, delete what earlier runs kept; True when something was deleted."""
    if clean and data_dir.exists():
        shutil.rmtree(data_dir)
        return True
    return False


def data_note(stack: EmbeddedStack) -> str:
    kept = "kept from the last run" if stack.database_kept else "new"
    requeued = (f"; {stack.requeued_at_start} archived submission(s) with no verdict put back on the queue"
                if stack.requeued_at_start else "")
    return (f"database: {kept}, in {stack.postgres.data_dir} (`make serve ARGS=--clean` starts empty). "
            f"Queued mail is journalled in {stack.queue_journal}, the raw archive is in {stack.raw_archive_dir}"
            f"{requeued}.")


def backup_bucket_name() -> str:
    from devstack.stack import ACCOUNT, REGION

    return f"{constants.BACKUP_BUCKET_PREFIX}-{ACCOUNT}-{REGION}"


def backup_key_file() -> Path:
    """Beside the kept database (never in the backup repository): backups outlive moto and restarts."""
    return DATA_DIR / "backup-data-key"


def start_backups(stack: EmbeddedStack):
    """WAL archiving, the heartbeat and scheduled base backups of the stack's database (issue 13)."""
    from swordfish.config import get_settings

    from devstack.backups import BackupService

    settings = get_settings()
    service = BackupService(stack.postgres.superuser_url, stack.client("kms"), backup_dir=Path(settings.backup_dir),
                            schedule_seconds=settings.backup_schedule_seconds,
                            heartbeat_seconds=settings.backup_heartbeat_seconds,
                            retention_days=settings.backup_retention_days, log_dir=stack.run_dir / "logs",
                            key_file=backup_key_file())
    try:
        return service.start()
    except Exception as exc:  # serving mail matters more than the dev stack's backups: say so, go on
        print(f"WARNING: backups are NOT running ({type(exc).__name__}: {exc})", flush=True)
        service.stop()
        return service


USAGE = """
Swordfish is up.  API gateway: {url}   (stack coordinates and demo keys: {state})
Console: {url}/console/  (first MSP admin: .venv/bin/swordfish console create-admin you@example.com --base-url {url})

  curl -s {url}/health
  KEY='{key}'
  curl -s -X POST {url}/v1/tenants/{tenant}/submissions -H "Authorization: Bearer $KEY" \\
       -H 'content-type: application/json' \\
       -d "{{\\"raw_mime_b64\\": \\"$(base64 -w0 samples/sublime/bec_ceo_impersonation.eml)\\"}}"
  curl -s {url}/v1/tenants/{tenant}/verdicts -H "Authorization: Bearer $KEY"
  .venv/bin/swordfish submit samples/ --tenant {tenant}

Fault injection (see the failure drill in docs/health.md):
  curl -s -X POST {nango_admin}/_faults -d '{{"mode": "down"}}'     # Nango stand-in: ok | error | hang | down
  curl -s -X POST {feeds_admin}/_faults -d '{{"mode": "error"}}'    # threat-feed server

Backups: WAL archived continuously, a base backup daily; `swordfish backup list | restore | drill`.
Logs: {logs}.  Ctrl-C stops everything.
"""

if __name__ == "__main__":
    sys.exit(main())
