"""`swordfish errors`: error groups from the embedded stack's local error file.

Reads the JSON-lines file the error tracker writes (``--file``, else SWORDFISH_ERROR_LOG_FILE) and
prints one row per fingerprint (events, suppressed repeats, first and last seen, type, message),
newest group first, then for each group the latest sample with its context, breadcrumbs and stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_MESSAGE_WIDTH = 60
_SAMPLE_BREADCRUMBS = 10


@dataclass
class ErrorGroup:
    fingerprint: str
    count: int = 0
    suppressed: int = 0
    first_seen: str = ""
    last_seen: str = ""
    sample: dict[str, Any] = field(default_factory=dict)

    def add(self, event: dict[str, Any]) -> None:
        seen = str(event.get("occurred_at", ""))
        self.count += 1
        self.suppressed += int(event.get("suppressed_count") or 0)
        if not self.first_seen or seen < self.first_seen:
            self.first_seen = seen
        if seen >= self.last_seen:
            self.last_seen, self.sample = seen, event


def load_groups(path: Path) -> tuple[list[ErrorGroup], int]:
    """Groups, newest last-seen first, and the number of unreadable lines skipped."""
    groups: dict[str, ErrorGroup] = {}
    skipped = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
                fingerprint = str(event["fingerprint"])
            except (ValueError, KeyError, TypeError):
                skipped += 1
                continue
            groups.setdefault(fingerprint, ErrorGroup(fingerprint)).add(event)
    return sorted(groups.values(), key=lambda g: g.last_seen, reverse=True), skipped


def _one_line(text: Any, width: int) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _print_sample(group: ErrorGroup, out: Any) -> None:
    sample = group.sample
    print(f"\n== {group.fingerprint}  {sample.get('exception_type', '?')}  "
          f"({group.count} events, {group.suppressed} suppressed; release {sample.get('release', '?')})", file=out)
    print(f"message: {sample.get('error_message', '')}", file=out)
    context = sample.get("context") or {}
    print("context: " + (" ".join(f"{k}={v}" for k, v in sorted(context.items())) or "(none)"), file=out)
    if sample.get("extra"):
        print(f"extra: {json.dumps(sample['extra'], default=str, sort_keys=True)}", file=out)
    crumbs = sample.get("breadcrumbs") or []
    if crumbs:
        print(f"breadcrumbs (last {min(len(crumbs), _SAMPLE_BREADCRUMBS)} of {len(crumbs)}):", file=out)
        for crumb in crumbs[-_SAMPLE_BREADCRUMBS:]:
            data = f" {json.dumps(crumb.get('data'), default=str, sort_keys=True)}" if crumb.get("data") else ""
            print(f"  {crumb.get('timestamp', '')} [{crumb.get('scope', '')}] {crumb.get('kind', '')}: "
                  f"{crumb.get('message', '')}{data}", file=out)
    print("stack:", file=out)
    for line in str(sample.get("stack", "")).splitlines():
        print(f"  {line}", file=out)


def run(args: argparse.Namespace) -> int:
    from swordfish.config import get_settings

    path = args.file or get_settings().error_log_file
    if path is None:
        print("swordfish errors: no error file; pass --file PATH or set SWORDFISH_ERROR_LOG_FILE", file=sys.stderr)
        return 2
    path = Path(path)
    if not path.exists():
        print(f"no errors recorded: {path} does not exist")
        return 0
    groups, skipped = load_groups(path)
    if args.fingerprint:
        groups = [g for g in groups if g.fingerprint.startswith(args.fingerprint)]
    groups = groups[: args.limit]
    if skipped:
        print(f"swordfish errors: skipped {skipped} unreadable line(s) in {path}", file=sys.stderr)
    if args.json:
        print(json.dumps([vars(g) for g in groups], default=str, indent=2))
        return 0
    total = sum(g.count for g in groups)
    print(f"{len(groups)} error group(s), {total} event(s) in {path}")
    if not groups:
        return 0
    header = f"{'FINGERPRINT':<16}  {'COUNT':>5}  {'SUPPR':>5}  {'FIRST SEEN':<29}  {'LAST SEEN':<29}  TYPE: MESSAGE"
    print(header)
    for g in groups:
        summary = _one_line(f"{g.sample.get('exception_type', '?')}: {g.sample.get('error_message', '')}", _MESSAGE_WIDTH)
        print(f"{g.fingerprint:<16}  {g.count:>5}  {g.suppressed:>5}  {g.first_seen:<29}  {g.last_seen:<29}  {summary}")
    if not args.no_samples:
        for g in groups:
            _print_sample(g, sys.stdout)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("errors", help="list error groups recorded by the embedded stack",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, help="the JSON-lines error file (default: SWORDFISH_ERROR_LOG_FILE)")
    parser.add_argument("--fingerprint", help="only the group(s) whose fingerprint starts with this")
    parser.add_argument("--limit", type=int, default=20, help="at most this many groups (default 20)")
    parser.add_argument("--no-samples", action="store_true", help="the table only, no sample per group")
    parser.add_argument("--json", action="store_true", help="groups as JSON (with their latest sample)")
    parser.set_defaults(func=run)
