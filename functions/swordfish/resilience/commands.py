"""`swordfish breakers`: see every circuit breaker, force one open or closed (audited)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time

from botocore.exceptions import BotoCoreError, ClientError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "breakers", help="list circuit breakers; force one open or closed (audited)",
        description="Circuit breaker state from the shared store (DynamoDB; moto on the embedded stack). "
        "`open` pins a breaker open until `close`; `close` resets it to CLOSED. Both need --reason "
        "and are recorded with who and when.")
    actions = parser.add_subparsers(dest="action")
    listing = actions.add_parser("list", help="state of every breaker (default)")
    listing.add_argument("--json", action="store_true", help="one JSON object per breaker")
    for action, text in (("open", "force a breaker open (pinned until closed)"),
                         ("close", "force a breaker closed (resets its counts)")):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("name", help="breaker name, e.g. nango_fetch")
        sub.add_argument("--reason", required=True, help="why (kept in the audit record)")
        sub.add_argument("--actor", default=None, help="who (default: the OS user)")
    audit = actions.add_parser("audit", help="forced changes, oldest first")
    audit.add_argument("name", nargs="?", help="only this breaker")
    parser.set_defaults(func=run, action=None, json=False)


def _age(opened_at: int | None) -> str:
    return "" if opened_at is None else f"{int(time.time() - opened_at)}s"


def run(args: argparse.Namespace) -> int:
    from swordfish.resilience.circuit_breaker import UnknownBreaker, get_registry
    from swordfish.resilience.fallbacks import FALLBACKS

    registry = get_registry()
    try:
        if args.action in (None, "list"):
            statuses = registry.statuses()
            if args.json:
                for status in statuses:
                    print(json.dumps(status.as_dict()))
            else:
                print(f"{'BREAKER':18} {'STATE':10} {'OPEN FOR':9} {'FALLBACK (SECURITY)':58} FORCED")
                for s in statuses:
                    policy = FALLBACKS.get(s.name)
                    fallback = f"{policy.behaviour[:44]} ({policy.security})" if policy else "-"
                    forced = f"by {s.forced_by}: {s.forced_reason}" if s.forced else (s.error or "")
                    print(f"{s.name:18} {s.state:10} {_age(s.opened_at):9} {fallback:58} {forced}")
            return 1 if any(s.state == "UNKNOWN" for s in statuses) else 0
        if args.action == "audit":
            for entry in registry.audit_log(args.name):
                print(json.dumps(entry.__dict__))
            return 0
        actor = args.actor or getpass.getuser()
        force = registry.force_open if args.action == "open" else registry.force_close
        entry = force(args.name, actor=actor, reason=args.reason)
        print(f"{args.name}: {entry.previous_state} -> {'OPEN (forced)' if args.action == 'open' else 'CLOSED'}"
              f" by {actor} at {entry.at}: {entry.reason}")
        return 0
    except (UnknownBreaker, ValueError) as exc:
        print(f"swordfish breakers: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"swordfish breakers: the breaker store ({registry.table_name}) is unreachable: {exc}. "
              "Check SWORDFISH_AWS_ENDPOINT_URL (embedded stack) or AWS credentials.", file=sys.stderr)
        return 1
