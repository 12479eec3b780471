"""`make run`: start the embedded stack, push every sample through SQS, print the verdicts, stop.

Exit code 0 when every submitted message ended with a verdict or (for the deliberately bad
samples) in the DLQ with its reason; 1 otherwise, saying which.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # keep the demo's console to the report

import psycopg
import psycopg.rows
from swordfish.analysis.commands import iter_messages
from swordfish.pipeline.submission import MailboxSource, Submission
from swordfish.pipeline.submitter import Submitter, message_id_for

from devstack.poller import WorkerPool
from devstack.services import REPO_ROOT
from devstack.stack import DEMO_TENANTS, MAILBOX_DIR, EmbeddedStack

SAMPLES = REPO_ROOT / "samples"


def sample_messages(root: Path = SAMPLES) -> list[tuple[str, bytes]]:
    """(label, raw) for every message under root, by the analyser's own walk (which skips licences,
    READMEs and policies; mbox files give one entry per message). Feed files are not mail."""
    out = []
    for source, raw in iter_messages(root):
        rel = Path(source["path"]).resolve().relative_to(root)
        if "feeds" in rel.parts or "mailboxes" in rel.parts:
            continue
        out.append((f"{rel}" + (f"[{source['index']}]" if "index" in source else ""), raw))
    return out


def submit_samples(stack: EmbeddedStack, messages: list[tuple[str, bytes]]) -> dict[str, str]:
    """Round-robin the samples over the demo tenants. Returns message_id → tenant."""
    submitter = Submitter(stack.client("sqs"), stack.info.queue_url, s3=stack.large_mail_objects(), bucket=stack.info.bucket)
    tenants = list(DEMO_TENANTS)
    expected: dict[str, str] = {}
    submissions = []
    for i, (label, raw) in enumerate(messages):
        tenant = tenants[i % len(tenants)]
        message_id = f"{label}#{message_id_for(raw)[:19]}"
        submissions.append(submitter.build(tenant, message_id, raw))
        expected[message_id] = tenant
    # Mail that sits in a connected mailbox travels as a reference, fetched through Nango.
    for path in sorted(MAILBOX_DIR.glob("*/*.eml")):
        tenant = tenants[0]
        message_id = f"mailbox:{path.parent.name}/{path.stem}"
        submissions.append(Submission(
            tenant_id=tenant, message_id=message_id, submitted_at=datetime.now(UTC),
            source=MailboxSource(connection_id=path.parent.name, provider_config_key="microsoft",
                                 provider_message_id=path.stem)))
        expected[message_id] = tenant
    for result in submitter.send(submissions):
        if result.error:
            raise RuntimeError(f"could not submit {result.message_id}: {result.error}")
    return expected


def dlq_count(stack: EmbeddedStack) -> int:
    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.info.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def wait_for_verdicts(stack: EmbeddedStack, expected: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    with psycopg.connect(stack.info.superuser_url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        while True:
            rows = conn.execute("SELECT * FROM verdicts ORDER BY tenant_id, message_id").fetchall()
            if len(rows) + dlq_count(stack) >= expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def print_report(rows: list[dict], expected: dict[str, str], elapsed: float, dead: int) -> None:
    width = max((len(r["message_id"].split("#")[0]) for r in rows), default=20)
    print(f"\n{'tenant':<10} {'message':<{width}} {'verdict':<10} {'score':>6}  top reasons")
    print("-" * (width + 60))
    for r in rows:
        reasons = sorted(r["reasons"], key=lambda x: -abs(x.get("weight", 0)))[:3]
        names = ", ".join(x["name"] for x in reasons) or "-"
        flag = " (degraded)" if r["degraded"] else ""
        print(f"{r['tenant_id']:<10} {r['message_id'].split('#')[0]:<{width}} {r['verdict']:<10} "
              f"{r['score']:>6.1f}  {names}{flag}")
    latencies = [r["e2e_latency_ms"] for r in rows if r["e2e_latency_ms"] is not None]
    mix: dict[str, int] = {}
    for r in rows:
        mix[r["verdict"]] = mix.get(r["verdict"], 0) + 1
    print("\nsummary")
    print(f"  messages submitted : {len(expected)}")
    print(f"  verdicts stored    : {len(rows)}   in DLQ: {dead}")
    print(f"  verdict mix        : {', '.join(f'{k} {v}' for k, v in sorted(mix.items()))}")
    print(f"  throughput         : {len(rows) / elapsed:.1f} messages/s over {elapsed:.2f} s "
          "(submit to last verdict)")
    print(f"  end-to-end latency : p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    args = parser.parse_args(argv)
    from swordfish.monitoring import error_tracker

    error_tracker.install_process_hooks()

    files = sample_messages(args.samples.resolve())
    if not files:
        print(f"no sample mail found under {args.samples}", file=sys.stderr)
        return 1
    print("starting the embedded stack (fauxqs, moto, PostgreSQL, Redis) ...", flush=True)
    try:
        with EmbeddedStack() as stack:
            print(f"stack up; logs and data under {stack.run_dir}", flush=True)
            print(f"starting {args.workers} workers (logs and EMF metrics in {stack.run_dir / 'logs'}) ...",
                  flush=True)
            with WorkerPool(stack.info.env, workers=args.workers, log_dir=stack.run_dir / "logs"):
                started = time.monotonic()
                expected = submit_samples(stack, files)
                print(f"submitted {len(expected)} messages to {stack.info.queue_url}", flush=True)
                rows = wait_for_verdicts(stack, len(expected), args.timeout)
                elapsed = time.monotonic() - started
            dead = dlq_count(stack)
            print_report(rows, expected, elapsed, dead)
            quarantined = sorted(q.message_id for q in stack.nango.quarantined)
            print(f"  auto-quarantined   : {len(quarantined)} through Nango {quarantined} "
                  "(flag auto_quarantine targets acme-corp)")
            missing = set(expected) - {r["message_id"] for r in rows}
            if len(missing) > dead:
                print(f"\nFAILED: {len(missing) - dead} messages have neither a verdict nor a DLQ entry "
                      f"after {args.timeout:.0f} s: {sorted(missing)[:5]}", file=sys.stderr)
                return 1
            print("\nall messages accounted for; stopping the stack.")
            return 0
    except KeyboardInterrupt:
        print("\ninterrupted: stack stopped.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
