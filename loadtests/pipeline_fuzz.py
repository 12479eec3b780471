"""Pipeline fuzz: hostile mail mixed with normal mail of two tenants, through the real queue (fauxqs),
the real processor handler, PostgreSQL and the DLQ.

`make fuzz` runs 10,000 messages on a fresh embedded stack and prints the figures; a short run is
part of `make test` (tests/pipeline/test_pipeline_fuzz.py). What is checked:

- every message ends with a verdict or a DLQ entry with its reason;
- good (unmutated) mail gets its verdict in the batch it arrived in, whatever its batch-mates are;
- analysis time per message (CPU time of parse and score, as the processor measures it): the
  slowest message and its mutation are reported;
- the handler never raises (a raise is a crashed worker).

Mail larger than an SQS message goes by S3 pointer, as the submission contract says (`Submitter`).
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

TENANTS = ("acme-corp", "globex")
GOOD = "good"
VISIBILITY_TIMEOUT = 2  # seconds before a failed record is received again
_ID = re.compile(r"fuzz-[0-9a-f]+-\d{6}-[a-z0-9_]+")

# --- mutations ------------------------------------------------------------------------------------

Mutation = Callable[[random.Random, bytes], bytes]
_HEAD = b"From: Fuzz <fuzz@sender.example>\r\nTo: victim@globex.com\r\nSubject: fuzz\r\nMessage-ID: <f@x>\r\n"
_CONTROLS = bytes([0, 1, 7, 8, 11, 12, 14, 27, 31, 127])
_INVALID_UTF8 = (b"\xff", b"\xfe\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\x80")


def byte_flips(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 60)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def truncation(rng: random.Random, raw: bytes) -> bytes:
    return raw[:rng.randrange(1, max(2, len(raw)))]


def broken_boundary(rng: random.Random, raw: bytes) -> bytes:
    boundary = rng.choice([b"b" * 300, b"a\x00b", b"", b"  ", b"x\x1bq", b"declared-but-absent"])
    used = rng.choice([b"other", boundary[:20], b"declared-but-absen"])
    body = (b"--" + used + b"\r\nContent-Type: text/html\r\n\r\n<a href='http://198.51.100.9/x'>bank</a>\r\n"
            + b"--" + used + b"\r\nContent-Type: application/octet-stream; name=a.exe\r\n\r\nMZ\x90\x00\r\n")
    if rng.random() < 0.5:
        body += b"--" + used + b"--\r\n"
    return _HEAD + b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n' + body + raw[-2000:]


def nested_5000(rng: random.Random, raw: bytes) -> bytes:
    parts = b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1) for i in range(5000))
    return _HEAD + b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + parts + \
        b"--b5000\r\nContent-Type: text/plain\r\n\r\nreset your password at http://login.example.net\r\n"


def parts_5000(rng: random.Random, raw: bytes) -> bytes:
    part = b"--p\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    return _HEAD + b"Content-Type: multipart/mixed; boundary=p\r\n\r\n" + part * 5000 + b"--p--\r\n"


def message_20mb(rng: random.Random, raw: bytes) -> bytes:
    payload = base64.encodebytes(rng.randbytes(1024) * (15 * 1024))  # 15 MB -> 20 MB of base64
    return (_HEAD + b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\n"
            + b"see attached\r\n--z\r\nContent-Type: application/pdf; name=big.pdf\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + payload + b"\r\n--z--\r\n")


def header_line_1mb(rng: random.Random, raw: bytes) -> bytes:
    name = rng.choice([b"X-Junk", b"Subject", b"To", b"Received", b"Content-Type"])
    value = rng.choice([b"a" * 1_000_000, b"x=1; " * 200_000, b"=?utf-8?q?" + b"=41" * 333_000 + b"?="])
    return name + b": " + value + b"\r\n" + raw


def param_flood(rng: random.Random, raw: bytes) -> bytes:
    return _HEAD + b"Content-Type: text/plain" + b"; a=b" * 250_000 + b"\r\n\r\nhello\r\n"


def anchor_flood(rng: random.Random, raw: bytes) -> bytes:
    return _HEAD + b"Content-Type: text/html\r\n\r\n" + b"<a href=" * 35_000


def header_flood(rng: random.Random, raw: bytes) -> bytes:
    return _HEAD + b"X-Flood: v\r\n" * 100_000 + b"\r\nbody\r\n"


def invalid_utf8(rng: random.Random, raw: bytes) -> bytes:
    lines = raw.split(b"\n")
    return b"\n".join(line[:p] + rng.choice(_INVALID_UTF8) + line[p:]
                      for line in lines for p in [rng.randrange(len(line) + 1)])


def subject_100k(rng: random.Random, raw: bytes) -> bytes:
    text = "".join(rng.choice("aé€😀 \t;:<>\"'") for _ in range(100_000)).encode("utf-8")
    if rng.random() < 0.5:
        text = b"=?utf-8?b?" + base64.b64encode(text) + b"?="
    return b"Subject: " + text + b"\r\n" + raw


def nul_and_controls(rng: random.Random, raw: bytes) -> bytes:
    """NULs and control characters in every header and in attachment names, raw and RFC 2047-encoded."""
    head, sep, body = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
    lines = [line + bytes([rng.choice(_CONTROLS)]) if line[:1] not in (b" ", b"\t") else line
             for line in head.split(b"\n")]
    att = (b"--c\r\nContent-Type: application/octet-stream; name=\"inv\x00oice.pdf\x01.exe\"\r\n"
           b"Content-Disposition: attachment; filename=\"=?utf-8?q?invoice=00.exe?=\"\r\n\r\nMZ\r\n"
           b"--c\r\nContent-Type: text/plain; name=\"=?utf-8?q?a=07=1b=7f.txt?=\"\r\n\r\nhi\x00there\r\n--c--\r\n")
    return (b"\n".join(lines) + b"\r\nSubject: =?utf-8?q?pay=00now?=\r\nContent-Type: multipart/mixed; boundary=c"
            + b"\r\n\r\n" + att + (sep + body)[:5000])


def random_bytes(rng: random.Random, raw: bytes) -> bytes:
    return rng.randbytes(rng.randint(1, 5000))


LIGHT: dict[str, Mutation] = {
    "byte_flips": byte_flips, "truncation": truncation, "broken_boundary": broken_boundary,
    "invalid_utf8": invalid_utf8, "nul_controls": nul_and_controls, "random_bytes": random_bytes,
}
# Expensive to build and to send: a fixed number per run instead of a share.
HEAVY: dict[str, Mutation] = {
    "nested_5000": nested_5000, "parts_5000": parts_5000, "message_20mb": message_20mb,
    "header_1mb": header_line_1mb, "param_flood": param_flood, "anchor_flood": anchor_flood,
    "header_flood": header_flood, "subject_100k": subject_100k,
}
# Submissions the processor must refuse (straight to the DLQ with a reason).
BAD_SUBMISSIONS = ("not_json", "unknown_tenant")


def plan(messages: int, rng: random.Random) -> list[str]:
    """Which mutation each message gets: 30% good mail, each heavy kind a few times, a few refused
    submissions, the rest light mutations; shuffled so every batch mixes them."""
    heavy_each = max(1, messages // 1000)
    kinds = [name for name in HEAVY for _ in range(heavy_each if name != "message_20mb" else min(2, heavy_each))]
    kinds += [name for name in BAD_SUBMISSIONS for _ in range(max(1, messages // 200))]
    kinds += [GOOD] * (messages * 3 // 10)
    kinds += [rng.choice(list(LIGHT)) for _ in range(max(0, messages - len(kinds)))]
    rng.shuffle(kinds)
    return kinds[:messages]


# --- the run --------------------------------------------------------------------------------------


@dataclass
class FuzzReport:
    messages: int = 0
    batches: int = 0
    by_kind: Counter = field(default_factory=Counter)
    verdicts: Counter = field(default_factory=Counter)  # verdict kind -> count
    verdicts_by_kind: dict[str, Counter] = field(default_factory=dict)
    dlq: Counter = field(default_factory=Counter)  # failure_code -> count
    dlq_without_reason: list[str] = field(default_factory=list)
    unaccounted: list[str] = field(default_factory=list)  # neither a verdict nor a DLQ entry
    good_delayed: list[str] = field(default_factory=list)  # good mail without a verdict in its own batch
    crashes: list[str] = field(default_factory=list)  # the handler raised
    retried_records: int = 0
    analysis_ms: dict[str, float] = field(default_factory=dict)  # message id -> CPU ms
    budget_exceeded: int = 0
    limited: int = 0  # verdicts naming what the work limits left unexamined (CONTENT_NOT_EXAMINED)
    seconds: float = 0.0

    def slowest(self) -> tuple[str, float]:
        if not self.analysis_ms:
            return "", 0.0
        message_id = max(self.analysis_ms, key=self.analysis_ms.__getitem__)
        return message_id, self.analysis_ms[message_id]

    def lines(self) -> list[str]:
        times = sorted(self.analysis_ms.values()) or [0.0]
        slow_id, slow_ms = self.slowest()
        kind = slow_id.rsplit("-", 1)[-1] if slow_id else "-"
        out = [
            f"messages            {self.messages:,} in {self.batches:,} batches, {self.seconds:.1f} s "
            f"({self.messages / max(self.seconds, 1e-9):.0f}/s)",
            "kinds               " + ", ".join(f"{k} {v}" for k, v in sorted(self.by_kind.items())),
            "verdicts            " + ", ".join(f"{k} {v}" for k, v in sorted(self.verdicts.items())),
            f"DLQ entries         {sum(self.dlq.values())}: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.dlq.items())) or "none")
            + f"; without a reason: {len(self.dlq_without_reason)}",
            f"analysis (CPU)      p50 {statistics.median(times):.2f} ms, p99 {times[int(len(times) * 0.99) - 1]:.2f} ms, "
            f"slowest {slow_ms:.1f} ms ({kind}, {slow_id}); budget exceeded {self.budget_exceeded}, "
            f"cut by the work limits {self.limited}",
            f"retried records     {self.retried_records}",
            f"unaccounted         {len(self.unaccounted)}   good mail delayed {len(self.good_delayed)}   "
            f"worker crashes {len(self.crashes)}",
        ]
        for kind in sorted(self.verdicts_by_kind):
            out.append(f"  {kind:18s}" + ", ".join(f"{k} {v}" for k, v in sorted(self.verdicts_by_kind[kind].items())))
        return out


def _lambda_event(stack: Any, messages: list[dict]) -> dict:
    from swordfish import constants

    from devstack.poller import to_lambda_record

    queue_arn = f"arn:aws:sqs:eu-west-1:000000000000:{constants.EMAILS_QUEUE_NAME}"
    return {"Records": [to_lambda_record(m, queue_arn, "eu-west-1") for m in messages]}


def _receive(sqs: Any, queue_url: str, wanted: int, wait: float) -> list[dict]:
    got: list[dict] = []
    deadline = time.monotonic() + wait
    while len(got) < wanted and time.monotonic() < deadline:
        got += sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=min(10, wanted - len(got)),
                                   WaitTimeSeconds=1, AttributeNames=["All"], MessageAttributeNames=["All"],
                                   VisibilityTimeout=VISIBILITY_TIMEOUT).get("Messages", [])
    return got


def _stored_ids(superuser_url: str, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        rows = conn.execute("SELECT message_id, verdict FROM verdicts WHERE message_id = ANY(%s)", (ids,)).fetchall()
    return dict(rows)


def run_fuzz(stack: Any, messages: int, seed: int = 1, log: Callable[[str], None] | None = None) -> FuzzReport:
    """Run the fuzz against a started embedded stack whose worker environment this process already
    has (as the `stack_env` test fixture or `main` sets up)."""
    import handlers.processor
    from swordfish.pipeline.submission import inline_submission
    from swordfish.pipeline.submitter import Submitter

    from devstack.poller import FakeLambdaContext
    from loadtests.corpus import load_corpus

    rng = random.Random(seed)
    corpus = load_corpus()
    run = uuid.uuid4().hex[:8]
    sqs = stack.client("sqs")
    info = stack.info
    submitter = Submitter(sqs, info.queue_url, s3=stack.large_mail_objects(), bucket=info.bucket)
    report = FuzzReport()
    handler = handlers.processor.handler
    record_metrics = handlers.processor.record_metrics

    def collect(pairs, degraded) -> None:
        """Reads the values the handler's AnalysisTime metric is made of, then records the metrics."""
        for analysed, _stored in pairs:
            report.analysis_ms[analysed.submission.message_id] = analysed.analysis_seconds * 1000
            report.budget_exceeded += analysed.verdict.budget_exceeded
            report.limited += any(r.name == "CONTENT_NOT_EXAMINED" for r in analysed.verdict.reasons)
        record_metrics(pairs, degraded)

    handlers.processor.record_metrics = collect
    kinds = plan(messages, rng)
    all_ids: list[str] = []
    started = time.monotonic()
    try:
        for offset in range(0, len(kinds), 10):
            bodies: list[tuple[str, str]] = []  # (message id, queue body)
            for i, kind in enumerate(kinds[offset:offset + 10], offset):
                message_id = f"fuzz-{run}-{i:06d}-{kind}"
                tenant = TENANTS[i % 2]
                base = corpus[rng.randrange(len(corpus))]
                if kind == "not_json":
                    body = "{not json " + message_id
                elif kind == "unknown_tenant":
                    body = inline_submission("no-such-tenant", message_id, base).model_dump_json()
                else:
                    raw = base if kind == GOOD else {**LIGHT, **HEAVY}[kind](rng, base)
                    body = submitter.build(tenant, message_id, raw).model_dump_json()
                bodies.append((message_id, body))
                report.by_kind[kind] += 1
            sqs.send_message_batch(QueueUrl=info.queue_url, Entries=[
                {"Id": str(j), "MessageBody": body} for j, (_, body) in enumerate(bodies)])
            all_ids += [message_id for message_id, _ in bodies]
            _process(stack, sqs, handler, FakeLambdaContext, report, wanted=10, wait=5)
            if log and (offset // 10) % 100 == 99:
                log(f"{offset + 10:,} messages sent, {len(report.analysis_ms):,} verdicts")
        # Records that failed come back after the visibility timeout, until their last receive.
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < VISIBILITY_TIMEOUT + 3:
            if _process(stack, sqs, handler, FakeLambdaContext, report, wanted=10, wait=1):
                idle_since = time.monotonic()
    finally:
        handlers.processor.record_metrics = record_metrics
    report.seconds = time.monotonic() - started
    report.messages = len(all_ids)
    _account(stack, report, all_ids)
    return report


def _process(stack: Any, sqs: Any, handler: Any, context: Any, report: FuzzReport, wanted: int,
             wait: float) -> int:
    """Receive one batch, run the handler on it, and check its good mail got verdicts at once."""
    messages = _receive(sqs, stack.info.queue_url, wanted, wait)
    if not messages:
        return 0
    report.batches += 1
    event = _lambda_event(stack, messages)
    try:
        response = handler(event, context())
    except Exception as exc:  # noqa: BLE001 - a raise here is a crashed worker: counted, and the run goes on
        report.crashes.append(f"{type(exc).__name__}: {exc}"[:300])
        return len(messages)
    failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    report.retried_records += len(failed)
    done = [m for m in messages if m["MessageId"] not in failed]  # as the event source mapping does
    if done:
        sqs.delete_message_batch(QueueUrl=stack.info.queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
    ids = {}
    for record in event["Records"]:
        found = _ID.search(record["body"])
        if found:
            ids[found.group(0)] = record["messageId"]
    good = [i for i in ids if i.endswith("-" + GOOD)]
    stored = _stored_ids(stack.info.superuser_url, good)
    report.good_delayed += [i for i in good if i not in stored or ids[i] in failed]
    return len(messages)


def _account(stack: Any, report: FuzzReport, all_ids: list[str]) -> None:
    stored: dict[str, str] = {}
    for i in range(0, len(all_ids), 1000):
        stored.update(_stored_ids(stack.info.superuser_url, all_ids[i:i + 1000]))
    for message_id, verdict in stored.items():
        report.verdicts[verdict] += 1
        report.verdicts_by_kind.setdefault(message_id.rsplit("-", 1)[-1], Counter())[verdict] += 1
    dead: set[str] = set()
    sqs = stack.client("sqs")
    while True:
        got = sqs.receive_message(QueueUrl=stack.info.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  MessageAttributeNames=["All"]).get("Messages", [])
        if not got:
            break
        for message in got:
            found = _ID.search(message["Body"])
            attributes = message.get("MessageAttributes", {})
            code = attributes.get("failure_code", {}).get("StringValue", "")
            reason = attributes.get("failure_reason", {}).get("StringValue", "")
            if found and found.group(0) in all_ids:
                dead.add(found.group(0))
                report.dlq[code or "(none)"] += 1
                if not reason:
                    report.dlq_without_reason.append(found.group(0))
            sqs.delete_message(QueueUrl=stack.info.dlq_url, ReceiptHandle=message["ReceiptHandle"])
    report.unaccounted = [i for i in all_ids if i not in stored and i not in dead]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-analysis-ms", type=float, default=100.0,
                        help="fail when a message takes longer than this in analysis (CPU time)")
    args = parser.parse_args(argv)

    from swordfish import wiring
    from swordfish.config import get_settings

    from devstack.stack import EmbeddedStack

    with EmbeddedStack() as stack:
        os.environ.update(stack.info.env)
        get_settings.cache_clear()
        wiring.reset()
        print(f"pipeline fuzz: {args.messages:,} messages, seed {args.seed}, stack in {stack.info.run_dir}", flush=True)
        report = run_fuzz(stack, args.messages, args.seed, log=lambda line: print("  " + line, flush=True))
        wiring.reset()
    for line in report.lines():
        print(line)
    problems = []
    if report.unaccounted:
        problems.append(f"{len(report.unaccounted)} messages with neither a verdict nor a DLQ entry: "
                        f"{report.unaccounted[:5]}")
    if report.dlq_without_reason:
        problems.append(f"{len(report.dlq_without_reason)} DLQ entries without a reason")
    if report.good_delayed:
        problems.append(f"{len(report.good_delayed)} good messages delayed: {report.good_delayed[:5]}")
    if report.crashes:
        problems.append(f"{len(report.crashes)} handler crashes: {report.crashes[:3]}")
    slow_id, slow_ms = report.slowest()
    if slow_ms > args.max_analysis_ms:
        problems.append(f"slowest analysis {slow_ms:.1f} ms > {args.max_analysis_ms:.0f} ms ({slow_id})")
    print("FAIL: " + "; ".join(problems) if problems else "PASS", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
