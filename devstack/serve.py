"""`make serve`: the embedded stack kept up, with workers and the local API gateway.

Ctrl-C (or SIGTERM) stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from swordfish import constants

from devstack.poller import WorkerPool
from devstack.services import free_port
from devstack.stack import EmbeddedStack
from devstack.state import clear_state, write_state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("SWORDFISH_GATEWAY_PORT", 8080)))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    from swordfish.monitoring import error_tracker

    error_tracker.install_process_hooks()

    print("starting the embedded stack ...", flush=True)
    try:
        with EmbeddedStack() as stack:
            # Raw submissions archived before analysis, for `swordfish backup replay` (not in tests and
            # load runs: moto would hold every batch in memory).
            stack.info.env[f"{constants.ENV_PREFIX}RAW_MAIL_ARCHIVE_BUCKET"] = backup_bucket_name()
            os.environ.update(stack.info.env)
            from handlers.api import handler

            from devstack.gateway import make_server

            try:
                server = make_server(handler, args.port)
            except OSError:
                port = free_port()
                print(f"port {args.port} is busy; using {port}", flush=True)
                server = make_server(handler, port)
            port = server.server_address[1]
            state = write_state({"gateway_url": f"http://127.0.0.1:{port}", "env": stack.info.env,
                                 "owner_url": stack.info.owner_url, "superuser_url": stack.info.superuser_url,
                                 "api_keys": stack.info.api_keys, "run_dir": str(stack.run_dir),
                                 "nango_admin_url": stack.nango.admin_url, "feeds_admin_url": stack.feeds.admin_url})
            backups = start_backups(stack)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                with WorkerPool(stack.info.env, workers=args.workers, log_dir=stack.run_dir / "logs"), \
                        WorkerPool(stack.info.env, workers=1, log_dir=stack.run_dir / "logs", function="remediation"):
                    tenant, key = next(iter(stack.info.api_keys.items()))
                    print(USAGE.format(url=f"http://127.0.0.1:{port}", tenant=tenant, key=key, state=state,
                                       logs=stack.run_dir / "logs", nango_admin=stack.nango.admin_url,
                                       feeds_admin=stack.feeds.admin_url), flush=True)
                    threading.Event().wait()
            finally:
                backups.stop()
                server.shutdown()
                server.server_close()
                clear_state()
    except KeyboardInterrupt:
        print("\nstopped.", file=sys.stderr)
    return 0


def backup_bucket_name() -> str:
    from devstack.stack import ACCOUNT, REGION

    return f"{constants.BACKUP_BUCKET_PREFIX}-{ACCOUNT}-{REGION}"


def start_backups(stack: EmbeddedStack):
    """WAL archiving, the heartbeat and scheduled base backups of the stack's database (issue 13)."""
    from swordfish.config import get_settings

    from devstack.backups import BackupService

    settings = get_settings()
    return BackupService(stack.postgres.superuser_url, stack.client("kms"), backup_dir=Path(settings.backup_dir),
                         schedule_seconds=settings.backup_schedule_seconds,
                         heartbeat_seconds=settings.backup_heartbeat_seconds,
                         retention_days=settings.backup_retention_days, log_dir=stack.run_dir / "logs").start()


USAGE = """
Swordfish is up.  API gateway: {url}   (stack coordinates and demo keys: {state})

  curl -s {url}/health
  KEY='{key}'
  curl -s -X POST {url}/v1/tenants/{tenant}/submissions -H "Authorization: Bearer $KEY" \\
       -H 'content-type: application/json' \\
       -d "{{\\"raw_mime_b64\\": \\"$(base64 -w0 samples/sublime/bec_ceo_impersonation.eml)\\"}}"
  curl -s {url}/v1/tenants/{tenant}/verdicts -H "Authorization: Bearer $KEY"
  .venv/bin/swordfish submit samples/ --tenant {tenant}

Fault injection (see the README's failure drill):
  curl -s -X POST {nango_admin}/_faults -d '{{"mode": "down"}}'     # Nango stand-in: ok | error | hang | down
  curl -s -X POST {feeds_admin}/_faults -d '{{"mode": "error"}}'    # threat-feed server

Backups: WAL archived continuously, a base backup daily; `swordfish backup list | restore | drill`.
Logs: {logs}.  Ctrl-C stops everything.
"""

if __name__ == "__main__":
    sys.exit(main())
