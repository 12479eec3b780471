"""Monthly AWS cost of Swordfish at given email rates, computed from the CDK settings (cdk.json) and the
measured per-email CPU, plus the reserved concurrency the functions claim.

    .venv/bin/python scripts/cost_estimate.py                  # prod, 10,000 and 100,000 emails/min
    .venv/bin/python scripts/cost_estimate.py --env dev --rates 1000 10000 --cpu-ms-per-email 1.5
    .venv/bin/python scripts/cost_estimate.py --write-docs     # refresh the generated blocks in docs/

Prices are eu-west-1 on-demand list prices in USD as we read them when writing this (PRICES below);
check them with the AWS Pricing Calculator before relying on the figure. Every assumption is a named
constant below and is printed with the figure it feeds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "functions")]

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App  # noqa: E402
from swordfish import constants  # noqa: E402

from stacks.constructs.alerts import ALERTS_RESERVED_CONCURRENCY, SCHEDULED_RESERVED_CONCURRENCY  # noqa: E402
from stacks.constructs.health_canary import HEALTH_CANARY_RESERVED_CONCURRENCY  # noqa: E402
from stacks.constructs.response_jobs import RESPONSE_RESERVED_CONCURRENCY  # noqa: E402
from stacks.pipeline_stack import (  # noqa: E402
    FEED_REFRESHER_RESERVED_CONCURRENCY,
    REMEDIATION_RESERVED_CONCURRENCY,
    TRACE_PURGE_RESERVED_CONCURRENCY,
)
from stacks.settings import EnvSettings, load_settings  # noqa: E402

# The pages that hold the generated blocks: the reserved concurrency in the deploy guide's
# prerequisites, the cost table on its own page.
DOC_PAGES = (REPO / "docs" / "deploy.md", REPO / "docs" / "cost.md")
HOURS_PER_MONTH = 730
MINUTES_PER_MONTH = HOURS_PER_MONTH * 60
LAMBDA_MB_PER_VCPU = 1769  # Lambda gives one full vCPU at 1,769 MB, proportionally less below
LAMBDA_UNRESERVED_MINIMUM = 100  # Lambda keeps this much of the account quota unreserved

# --- measured -----------------------------------------------------------------------------------
# loadtests/example-summary.md, phase burst-1000: 900 emails/s processed with both cores of the test
# machine busy (3 workers, PostgreSQL, Redis, the SQS emulator and locust on the same 2 cores), no
# degraded mode. 2 cores / 900 per s = 2.2 ms of CPU per email: an upper bound for the processor
# alone, whose database, cache and queue run elsewhere on AWS. (`make bench`: the analysis engine
# alone takes 0.42 ms per email on one core.)
MEASURED_EMAILS_PER_SECOND = 900
MEASURED_CORES = 2
MEASURED_CPU_MS_PER_EMAIL = 1000 * MEASURED_CORES / MEASURED_EMAILS_PER_SECOND

# --- assumptions ----------------------------------------------------------------------------------
SUBMISSION_KB = 50  # average inline submission (base64 MIME) on the queue
SQS_CHUNK_KB = 64  # SQS bills each 64 KB chunk of a payload as one request
PROCESSOR_IO_MS_PER_BATCH = 30  # waiting on Redis, the commit through RDS Proxy, EMF flush
API_EMAILS_PER_REQUEST = 10  # submitters send batches of 10 through the API
API_MS_PER_REQUEST = 60  # decode and validate 10 submissions, one SendMessageBatch, at 1 GB
API_MEMORY_GB = 1.0
CANARY_SECONDS, CANARY_MEMORY_GB = 1.0, 0.5  # one deep health check per minute
FEED_REFRESH_SECONDS, FEED_REFRESH_MEMORY_GB = 30.0, 1.0
VALKEY_ECPU_PER_EMAIL = 20  # the pipelined indicator lookup, counters, error-rate limits
VALKEY_STORED_GB = 1.0  # indicator sets and counters (capped by cache_max_data_storage_gb)
NAT_GB_PER_MONTH = 50  # threat feeds and Nango calls; inline mail does not cross the NAT
WAF_RULES = 4

PRICES = {  # eu-west-1, USD, on demand
    "lambda_gb_second_arm": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "sqs_request": 0.40 / 1e6,
    "rds_instance_hour": {"t4g.medium": 0.072, "m7g.large": 0.182},
    "rds_gp3_gb_month": 0.127,
    "rds_proxy_vcpu_hour": 0.015,
    "rds_vcpus": {"t4g.medium": 2, "m7g.large": 2},
    "valkey_gb_hour": 0.0906,
    "valkey_ecpu": 0.0025 / 1e6,
    "nat_hour": 0.048,
    "nat_gb": 0.048,
    "apigw_request": 3.50 / 1e6,
    "waf_acl_month": 5.0,
    "waf_rule_month": 1.0,
    "waf_request": 0.60 / 1e6,
}


@dataclass(frozen=True)
class Line:
    item: str
    basis: str
    usd: float


def settings_for(env_name: str) -> EnvSettings:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    context.update(env=env_name)
    return load_settings(App(context=context).node).env


def reserved_concurrency(settings: EnvSettings) -> dict[str, int]:
    """What each function reserves, from the same settings and constants the stacks use."""
    return {
        "processor": settings.processor_reserved_concurrency,
        "API": settings.api_reserved_concurrency,
        "remediation": REMEDIATION_RESERVED_CONCURRENCY,
        "feed refresher": FEED_REFRESHER_RESERVED_CONCURRENCY,
        "health canary": HEALTH_CANARY_RESERVED_CONCURRENCY,
        "alerts": ALERTS_RESERVED_CONCURRENCY,
        "phishing-rate check": SCHEDULED_RESERVED_CONCURRENCY,
        "SIEM export": SCHEDULED_RESERVED_CONCURRENCY,
        "response jobs": RESPONSE_RESERVED_CONCURRENCY,
        "trace purge": TRACE_PURGE_RESERVED_CONCURRENCY,
    }


def processor_batch_seconds(settings: EnvSettings, cpu_ms_per_email: float) -> float:
    vcpu = min(1.0, settings.processor_memory_mb / LAMBDA_MB_PER_VCPU)
    cpu_ms = constants.PROCESSOR_BATCH_SIZE * cpu_ms_per_email / vcpu
    return (cpu_ms + PROCESSOR_IO_MS_PER_BATCH) / 1000


def estimate(settings: EnvSettings, emails_per_minute: int, cpu_ms_per_email: float) -> tuple[list[Line], list[str]]:
    """Cost lines for one rate, and warnings where the rate runs into a setting's limit."""
    p = PRICES
    warnings = []
    emails = emails_per_minute * MINUTES_PER_MONTH
    batches = emails / constants.PROCESSOR_BATCH_SIZE
    batch_s = processor_batch_seconds(settings, cpu_ms_per_email)
    memory_gb = settings.processor_memory_mb / 1024
    processor_gbs = batches * batch_s * memory_gb
    concurrency = emails_per_minute / 60 / constants.PROCESSOR_BATCH_SIZE * batch_s
    if concurrency > settings.processor_max_concurrency:
        warnings.append(f"{emails_per_minute:,}/min needs ~{concurrency:.0f} concurrent processors, over "
                        f"processor_max_concurrency {settings.processor_max_concurrency}")
    api_requests = emails / API_EMAILS_PER_REQUEST
    small_gbs = (MINUTES_PER_MONTH * CANARY_SECONDS * CANARY_MEMORY_GB
                 + MINUTES_PER_MONTH / constants.FEED_REFRESH_MINUTES * FEED_REFRESH_SECONDS * FEED_REFRESH_MEMORY_GB)
    api_gbs = api_requests * API_MS_PER_REQUEST / 1000 * API_MEMORY_GB

    chunks = max(1, math.ceil(SUBMISSION_KB / SQS_CHUNK_KB))
    # send + receive carry the body (per 64 KB chunk); deletes go 10 at a time.
    sqs_requests = emails * (2 * chunks + 1 / constants.PROCESSOR_BATCH_SIZE)

    db_class = settings.db_instance_class
    if db_class not in p["rds_instance_hour"]:
        raise SystemExit(f"no price for db.{db_class}: add it to PRICES in {Path(__file__).name}")
    copies = 2 if settings.db_multi_az else 1
    rds = copies * (p["rds_instance_hour"][db_class] * HOURS_PER_MONTH
                    + settings.db_allocated_storage_gb * p["rds_gp3_gb_month"])
    proxy = p["rds_vcpus"][db_class] * p["rds_proxy_vcpu_hour"] * HOURS_PER_MONTH

    ecpu_per_second = emails_per_minute / 60 * VALKEY_ECPU_PER_EMAIL
    if ecpu_per_second > settings.cache_max_ecpu_per_second:
        warnings.append(f"{emails_per_minute:,}/min needs ~{ecpu_per_second:,.0f} ECPU/s, over "
                        f"cache_max_ecpu_per_second {settings.cache_max_ecpu_per_second:,} (Valkey would throttle)")
    stored_gb = min(VALKEY_STORED_GB, settings.cache_max_data_storage_gb)
    valkey = stored_gb * p["valkey_gb_hour"] * HOURS_PER_MONTH + emails * VALKEY_ECPU_PER_EMAIL * p["valkey_ecpu"]

    nat = settings.nat_gateways * p["nat_hour"] * HOURS_PER_MONTH + NAT_GB_PER_MONTH * p["nat_gb"]
    edge = (api_requests * (p["apigw_request"] + p["waf_request"]) + p["waf_acl_month"] + WAF_RULES * p["waf_rule_month"])

    lines = [
        Line("Lambda processor",
             f"{batches / 1e6:,.1f} M batches x {batch_s * 1000:.0f} ms x {memory_gb:g} GB "
             f"(10 x {cpu_ms_per_email:.2f} ms CPU at {min(1.0, settings.processor_memory_mb / LAMBDA_MB_PER_VCPU):.2f} "
             f"vCPU + {PROCESSOR_IO_MS_PER_BATCH} ms I/O); ~{concurrency:.0f} concurrent",
             processor_gbs * p["lambda_gb_second_arm"] + batches * p["lambda_request"]),
        Line("Lambda API, canary, feed refresher",
             f"{api_requests / 1e6:,.1f} M API requests x {API_MS_PER_REQUEST} ms x {API_MEMORY_GB:g} GB; "
             "1 canary run/min; 1 refresh per 15 min",
             (api_gbs + small_gbs) * p["lambda_gb_second_arm"]
             + (api_requests + MINUTES_PER_MONTH * (1 + 1 / constants.FEED_REFRESH_MINUTES)) * p["lambda_request"]),
        Line("SQS", f"{sqs_requests / 1e6:,.0f} M requests (send + receive per 64 KB chunk of "
                    f"{SUBMISSION_KB} KB, deletes by 10)", sqs_requests * p["sqs_request"]),
        Line(f"RDS db.{db_class}{' Multi-AZ' if settings.db_multi_az else ''} + proxy",
             f"{copies} x {HOURS_PER_MONTH} h + {settings.db_allocated_storage_gb} GB gp3"
             f"{' x 2' if copies == 2 else ''}; proxy {p['rds_vcpus'][db_class]} vCPU", rds + proxy),
        Line("ElastiCache Serverless (Valkey)",
             f"{stored_gb:g} GB stored + {emails * VALKEY_ECPU_PER_EMAIL / 1e9:,.1f} G ECPU "
             f"({VALKEY_ECPU_PER_EMAIL}/email)", valkey),
        Line("NAT gateways", f"{settings.nat_gateways} x {HOURS_PER_MONTH} h + {NAT_GB_PER_MONTH} GB", nat),
        Line("API Gateway + WAF", f"{api_requests / 1e6:,.1f} M requests ({API_EMAILS_PER_REQUEST} emails each)", edge),
    ]
    return lines, warnings


def render_reserved(settings: EnvSettings) -> str:
    reserved = reserved_concurrency(settings)
    total = sum(reserved.values())
    parts = ", ".join(f"{name} {n}" for name, n in reserved.items())
    return (f"The functions reserve **{total}** in `{settings.name}` ({parts}); Lambda keeps "
            f"{LAMBDA_UNRESERVED_MINIMUM} unreserved, so the account needs a concurrency quota of at least "
            f"{total + LAMBDA_UNRESERVED_MINIMUM}.")


def render_cost(settings: EnvSettings, rates: list[int], cpu_ms_per_email: float) -> str:
    results = [estimate(settings, rate, cpu_ms_per_email) for rate in rates]
    header = "| item | what it rests on (at the first rate) | " + " | ".join(f"{r:,}/min" for r in rates) + " |"
    rows = [header, "|---|---|" + "---:|" * len(rates)]
    for i, line in enumerate(results[0][0]):
        rows.append(f"| {line.item} | {line.basis} | " + " | ".join(f"{lines[i].usd:,.0f}" for lines, _ in results) + " |")
    rows.append("| **total (USD/month)** | | " + " | ".join(f"**{sum(x.usd for x in lines):,.0f}**" for lines, _ in results)
                + " |")
    notes = [w for _, warnings in results for w in warnings]
    text = "\n".join(rows)
    text += (f"\n\n`{settings.name}` settings from `cdk.json`; {cpu_ms_per_email:.2f} ms of CPU per email (measured: "
             f"{MEASURED_EMAILS_PER_SECOND} emails/s on {MEASURED_CORES} cores in `loadtests/example-summary.md`, "
             "an upper bound); eu-west-1 on-demand list prices (Lambda arm64 "
             f"${PRICES['lambda_gb_second_arm']:.10f}/GB-s, SQS $0.40/M, db.{settings.db_instance_class} "
             f"${PRICES['rds_instance_hour'][settings.db_instance_class]}/h, Valkey ${PRICES['valkey_gb_hour']}/GB-h "
             f"and $0.0025/M ECPU, NAT $0.048/h and /GB); free tiers ignored.")
    if notes:
        text += "\n\nLimits reached: " + "; ".join(notes) + "."
    return text


# <!-- cost_estimate:NAME --> ... <!-- /cost_estimate --> in DOC_PAGES; the body takes the marker's indent.
BLOCK = re.compile(r"^(?P<indent>[ ]*)(?P<open><!-- cost_estimate:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)\n"
                   r"(?P<close>[ ]*<!-- /cost_estimate -->)", re.S | re.M)


def readme_blocks(settings: EnvSettings, rates: list[int], cpu_ms_per_email: float) -> dict[str, str]:
    return {"reserved": render_reserved(settings), "cost": render_cost(settings, rates, cpu_ms_per_email)}


def refresh_page(text: str, blocks: dict[str, str]) -> str:
    """``text`` with every generated block it holds rewritten from ``blocks``."""
    unknown = {m.group("name") for m in BLOCK.finditer(text)} - set(blocks)
    if unknown:
        raise SystemExit(f"unknown generated blocks {sorted(unknown)}: this script writes {sorted(blocks)}")

    def body(match: re.Match) -> str:
        indent = match.group("indent")
        lines = [indent + line if line else line for line in blocks[match.group("name")].splitlines()]
        return f"{indent}{match.group('open')}" + "\n".join(lines) + f"\n{match.group('close')}"

    return BLOCK.sub(body, text)


def refreshed_pages(blocks: dict[str, str]) -> dict[Path, tuple[str, str]]:
    """page -> (its text now, its text with the blocks refreshed); every block must be on some page."""
    pages = {page: page.read_text() for page in DOC_PAGES}
    found = {m.group("name") for text in pages.values() for m in BLOCK.finditer(text)}
    if found != set(blocks):
        raise SystemExit(f"{', '.join(p.name for p in DOC_PAGES)} must hold the generated blocks "
                         f"{sorted(blocks)}, found {sorted(found)}")
    return {page: (text, refresh_page(text, blocks)) for page, text in pages.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="prod")
    parser.add_argument("--rates", type=int, nargs="+", default=[10_000, 100_000], help="emails per minute")
    parser.add_argument("--cpu-ms-per-email", type=float, default=MEASURED_CPU_MS_PER_EMAIL)
    parser.add_argument("--write-docs", "--write-readme", dest="write_docs", action="store_true",
                        help="refresh the generated blocks in docs/deploy.md and docs/cost.md")
    args = parser.parse_args(argv)
    settings = settings_for(args.env)
    blocks = readme_blocks(settings, args.rates, args.cpu_ms_per_email)
    if args.write_docs:
        for page, (_, refreshed) in refreshed_pages(blocks).items():
            page.write_text(refreshed)
    print(blocks["reserved"] + "\n\n" + blocks["cost"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
