"""`swordfish health`: the deep (or ready/live) health report for the stack the settings point at."""

from __future__ import annotations

import argparse
import json

EXIT_CODES = {"pass": 0, "warn": 1, "fail": 2}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "health", help="print the health report (IETF health+json) for the configured stack",
        description="Runs the same checks as GET /health/deep (or --ready, --live) against the stack the "
        "SWORDFISH_* settings point at, e.g. the embedded stack of `make run`. Exit code: 0 pass, "
        "1 warn, 2 fail.")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--ready", action="store_true", help="critical dependencies only")
    kind.add_argument("--live", action="store_true", help="the process only, no dependencies")
    parser.add_argument("--summary", action="store_true", help="one line per component instead of the JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swordfish import wiring
    from swordfish.api import health_deep

    if args.live:
        _, body = health_deep.live()
    else:
        deps = wiring.build_health_dependencies()
        _, body = health_deep.ready(deps) if args.ready else health_deep.deep(deps, emit_metric=False)
    if args.summary:
        print(f"{body['status'].upper()}  score {body.get('score', 100)}")
        for key, entries in body["checks"].items():
            for e in entries:
                who = f"{key}[{e['componentId']}]" if "componentId" in e else key
                value = f"{e.get('observedValue')} {e.get('observedUnit', '')}".strip()
                print(f"  {e['status']:4}  {who:40} {value:18} {e.get('output', '')}")
    else:
        print(json.dumps(body, indent=2))
    return EXIT_CODES[body["status"]]
