"""The rotation phase: rotate secrets under full load and count what mail and the API noticed.

`make loadtest-rotation` (``python -m loadtests.rotation_phase``) starts the embedded stack and its
workers, offers 10,000 emails/min through locust for ``--seconds`` (3 minutes by default), and
meanwhile rotates the application's database login three times and the API-key pepper once, with
the same four steps the rotation Lambda runs (in-process: moto cannot invoke a Lambda without
Docker). An API client calls the local gateway with a demo key (hashed with the pepper of before
the rotation) the whole time. It prints and writes (results/<time>-rotation/report.json):
failed emails (submitted without a verdict), DLQ entries, API requests and 5xx, the phase's p95,
the rotations with their new versions, and which version each worker held at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from loadtests.load_runner import P95_TARGET_MS, REPO, LoadRun, Profile


class ApiProbe:
    """The API handler behind the local gateway in this process, called ~``per_second`` times a
    second with a demo key; counts status codes."""

    def __init__(self, env: dict[str, str], api_keys: dict[str, str], per_second: float = 10.0):
        from swordfish import wiring
        from swordfish.config import get_settings

        os.environ.update(env)
        get_settings.cache_clear()
        wiring.reset()
        from handlers import api

        from devstack.gateway import make_server

        self.server = make_server(api.handler, port=0)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.keys = api_keys
        self.interval = 1.0 / per_second
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self.server.serve_forever, daemon=True),
                        threading.Thread(target=self._loop, daemon=True)]

    def start(self) -> ApiProbe:
        for t in self.threads:
            t.start()
        return self

    def _loop(self) -> None:
        tenants = sorted(self.keys)
        i = 0
        while not self.stop_event.wait(self.interval):
            tenant = tenants[i % len(tenants)]
            i += 1
            request = urllib.request.Request(f"{self.url}/v1/tenants/{tenant}/verdicts?limit=5",
                                             headers={"Authorization": f"Bearer {self.keys[tenant]}"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    self.statuses[response.status] += 1
            except urllib.error.HTTPError as exc:
                self.statuses[exc.code] += 1
                if len(self.errors) < 20:
                    self.errors.append(f"{exc.code}: {exc.read()[:200]!r}")
            except Exception as exc:  # noqa: BLE001 - a timeout counts as a failure, named below
                self.statuses[0] += 1
                if len(self.errors) < 20:
                    self.errors.append(f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self.stop_event.set()
        self.threads[1].join(timeout=15)
        self.server.shutdown()
        self.server.server_close()


def rotate_on_schedule(stack, schedule: list[tuple[float, str]], started: float, log: list[dict],
                       stop: threading.Event) -> None:
    from swordfish.security.rotation import rotate_now

    for at, name in schedule:
        if stop.wait(max(0.0, started + at - time.monotonic())):
            return
        t0 = time.monotonic()
        entry = {"at_s": round(t0 - started, 1), "secret": name}
        try:
            entry["new_version"] = rotate_now(stack.rotator(), name)
        except Exception as exc:  # noqa: BLE001 - reported as a failed rotation
            entry["error"] = f"{type(exc).__name__}: {exc}"
        entry["took_s"] = round(time.monotonic() - t0, 2)
        log.append(entry)
        print(f"  rotation at {entry['at_s']:6.1f} s: {name} -> {entry.get('new_version') or entry['error']}",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    from swordfish import constants

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--target-per-minute", type=float, default=10_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--secrets-ttl", type=float, default=20,
                        help="how long workers trust a fetched version (SWORDFISH_SECRETS_TTL_SECONDS)")
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--no-rotations", action="store_true",
                        help="the same load without rotating: a baseline p95 on the same (shared) machine")
    args = parser.parse_args(argv)
    out = args.results / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-rotation{'-baseline' if args.no_rotations else ''}"
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

    from devstack.poller import WorkerPool
    from devstack.stack import EmbeddedStack

    app, pepper = constants.DB_APP_SECRET_NAME, constants.API_KEY_PEPPER_SECRET_NAME
    s = args.seconds
    schedule = [] if args.no_rotations else [(0.15 * s, app), (0.35 * s, pepper), (0.55 * s, app), (0.8 * s, app)]
    profile = Profile("rotation", target_per_minute=args.target_per_minute, sustain_seconds=s, bursts=(),
                      find_capacity=False, overload_seconds=0, workers=args.workers)
    print(f"rotation phase: {args.target_per_minute:,.0f} emails/min for {s:.0f} s, {args.workers} workers; "
          f"rotations {[(round(a), n) for a, n in schedule]}", flush=True)
    with EmbeddedStack() as stack:
        stack.info.env["SWORDFISH_SECRETS_TTL_SECONDS"] = str(args.secrets_ttl)
        stack.info.env["SWORDFISH_DEGRADED_BACKLOG_SECONDS"] = "20"
        with WorkerPool(stack.info.env, workers=args.workers, log_dir=stack.run_dir / "logs") as pool:
            run = LoadRun(profile, out)
            run.start(stack, pool)
            api = ApiProbe(stack.info.env, stack.info.api_keys).start()
            rotations: list[dict] = []
            stop = threading.Event()
            rotator = threading.Thread(target=rotate_on_schedule,
                                       args=(stack, schedule, time.monotonic(), rotations, stop), daemon=True)
            rotator.start()
            try:
                phase = run.sustained("rotation", args.target_per_minute, s)
            finally:
                stop.set()
                rotator.join(timeout=120)
                api.stop()
            run.wait_processed(run.submitted_total, timeout=120)
            run.compute(phase)
            sqs = stack.client("sqs")
            dlq = int(sqs.get_queue_attributes(QueueUrl=stack.info.dlq_url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
                ["ApproximateNumberOfMessages"])
            import redis
            from swordfish.security.commands import secret_status
            from swordfish.security.secrets import RedisVersionRegistry

            holders = RedisVersionRegistry(redis.Redis.from_url(stack.info.env["SWORDFISH_REDIS_URL"])).holders()
            sm = stack.client("secretsmanager")
            status = {n: secret_status(sm, n, holders) for n in (app, pepper)}
            run.collector.stop()
    api_total = sum(api.statuses.values())
    api_5xx = sum(c for code, c in api.statuses.items() if code >= 500 or code == 0)
    report = {
        "finished_at": datetime.now(UTC).isoformat(), "seconds": s, "offered_per_minute": args.target_per_minute,
        "workers": args.workers, "secrets_ttl_seconds": args.secrets_ttl,
        "submitted": phase.submitted, "processed": phase.processed,
        "failed_emails": phase.submitted - phase.processed, "dlq_entries": dlq,
        "p50_ms": phase.latency_p50_ms, "p95_ms": phase.latency_p95_ms, "p99_ms": phase.latency_p99_ms,
        "throughput_per_s": phase.throughput_per_s, "degraded_verdicts": phase.degraded_verdicts,
        "api_requests": api_total, "api_statuses": dict(api.statuses), "api_5xx": api_5xx,
        "api_errors": api.errors, "rotations": rotations, "secrets": status,
    }
    failures = []
    if report["failed_emails"] > 0:
        failures.append(f"{report['failed_emails']} emails without a verdict")
    if dlq:
        failures.append(f"{dlq} DLQ entries")
    if api_5xx or api.statuses.get(401) or api.statuses.get(403):
        failures.append(f"API answered {dict(api.statuses)}")
    if phase.latency_p95_ms is None or phase.latency_p95_ms >= P95_TARGET_MS:
        failures.append(f"p95 {phase.latency_p95_ms} ms is not under {P95_TARGET_MS:.0f} ms")
    if len([r for r in rotations if "new_version" in r]) != len(schedule):
        failures.append(f"rotations: {rotations}")
    report["failures"], report["passed"] = failures, not failures
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: v for k, v in report.items() if k != "secrets"}, indent=2, default=str))
    print("holders at the end:", json.dumps({n: (v or {}).get("holders") for n, v in status.items()}, indent=1))
    print(f"report: {out}/report.json — {'PASS' if report['passed'] else 'FAIL: ' + '; '.join(failures)}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
