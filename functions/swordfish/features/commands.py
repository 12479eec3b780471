"""`swordfish flags`: list, get, set, target, rollout, rollback, history, stale [--cleanup].

Every change is audited (who, when, before/after, configuration version) in the append-only
``flag_audit`` table through the application role.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from swordfish.config import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("flags", help="feature flags on AppConfig (audited)")
    parser.add_argument("--actor", default=None, help="who makes the change (default: SWORDFISH_OPERATOR, then "
                        "the login name behind sudo, then the login name; never root)")
    parser.add_argument(
        "--database-url", default=None, help="audit database (default: SWORDFISH_DATABASE_URL)"
    )
    sub = parser.add_subparsers(dest="flags_command", required=True)

    p = sub.add_parser("list", help="the deployed flags with owner, kind and rules")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("get", help="a flag's definition, and its value for a tenant / user")
    p.add_argument("name")
    p.add_argument("--tenant")
    p.add_argument("--user")

    p = sub.add_parser("set", help="set a flag's default value (creates a declared flag)")
    p.add_argument("name")
    p.add_argument("value", help='JSON: true, false, 3, "text", {...}')
    p.add_argument("--create", action="store_true", help="create a flag that is not declared in the registry")

    p = sub.add_parser("target", help="turn a flag on (or off, or a value) for tenants / users")
    p.add_argument("name")
    p.add_argument("--tenant", action="append", default=[])
    p.add_argument("--user", action="append", default=[])
    group = p.add_mutually_exclusive_group()
    group.add_argument("--off", action="store_true", help="exclude them instead")
    group.add_argument("--value", help="JSON value for them (non-boolean flags)")
    group.add_argument("--remove", action="store_true", help="stop targeting them")

    p = sub.add_parser("rollout", help="turn a flag on for a percentage of tenants or users (0.01 steps)")
    p.add_argument("name")
    p.add_argument("percent", type=float)
    p.add_argument("--by", choices=("tenant", "user"), default="tenant")

    p = sub.add_parser("rollback", help="restore a flag as it was before its last change, or at a version")
    p.add_argument("name")
    p.add_argument("--to-version")

    p = sub.add_parser("history", help="the audit log")
    p.add_argument("name", nargs="?")
    p.add_argument("--limit", type=int, default=20)

    p = sub.add_parser("stale", help="flags to clean up")
    p.add_argument("--cleanup", action="store_true", help="remove stale flags the code no longer references")
    p.add_argument("--constant-days", type=int, default=30)
    p.add_argument("--unused-days", type=int, default=30)
    p.add_argument("--code-root", type=Path, default=None, help="code to scan (default: functions/)")
    p.add_argument("--json", action="store_true")

    for action in ("set", "target", "rollout", "rollback", "stale"):
        sub.choices[action].add_argument("--reason", default=None, help="why (recorded in the audit log)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swordfish.features.admin import FlagChangeError
    from swordfish.features.repository import FlagStoreError
    from swordfish.security.operator import UnknownOperator

    try:
        return COMMANDS[args.flags_command](args)
    except (FlagChangeError, FlagStoreError, UnknownOperator, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _repository():
    from swordfish.features.repository import repository_from_settings

    return repository_from_settings()


def _database_url(args: argparse.Namespace) -> str:
    if args.database_url:
        return args.database_url
    settings = get_settings()
    if not settings.db_credentials_from_secret:
        return settings.database_url or ""  # empty: FlagAdmin names SWORDFISH_DATABASE_URL
    from swordfish import wiring

    return wiring.database_url(settings)  # the embedded stack: the login's current version


def _admin(args: argparse.Namespace):
    from swordfish.features.admin import FlagAdmin
    from swordfish.security.operator import operator_identity

    return FlagAdmin(_repository(), _database_url(args), operator_identity(args.actor))


def _print_result(result) -> int:
    if not result.changed:
        print(f"{result.flag}: no change (version {result.version})")
        return 0
    print(
        f"{result.flag}: {result.action} deployed as version {result.version} (was {result.previous_version})"
    )
    print(f"  before: {json.dumps(result.before, sort_keys=True)}")
    print(f"  after:  {json.dumps(result.after, sort_keys=True)}")
    return 0


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ValueError(f"{text!r} is not JSON: write true, false, a number, or a quoted string") from None


def cmd_list(args: argparse.Namespace) -> int:
    from swordfish.features.registry import declaration

    deployed = _repository().deployed()
    rows = []
    for name, feature in sorted(deployed.document.items()):
        decl = declaration(name)
        rows.append(
            {
                "name": name,
                "default": feature.get("default"),
                "rules": list(feature.get("rules") or {}),
                "owner": decl.owner if decl else None,
                "kind": decl.kind.value if decl else None,
                "expires": str(decl.expires) if decl and decl.expires else None,
            }
        )
    if args.json:
        print(json.dumps({"version": deployed.version, "flags": rows}, indent=2))
        return 0
    print(f"configuration version {deployed.version}")
    for r in rows:
        print(
            f"  {r['name']:<32} default={json.dumps(r['default']):<7} kind={r['kind'] or '?':<12} "
            f"owner={r['owner'] or '?':<18} rules={', '.join(r['rules']) or '-'}"
        )
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    from swordfish.features.evaluator import Configuration, FlagSnapshot, Source

    deployed = _repository().deployed()
    snapshot = FlagSnapshot(Configuration.build(deployed.document, deployed.version, Source.LIVE))
    definition = deployed.document.get(args.name)
    print(json.dumps({"version": deployed.version, "definition": definition}, indent=2, sort_keys=True))
    if args.tenant or args.user:
        r = snapshot.evaluate(args.name, tenant_id=args.tenant, user_id=args.user, default=None)
        print(
            f"value={json.dumps(r.value)} reason={r.reason.value} variant={r.variant} version={r.version}"
            + (f" error={r.error_code.value}: {r.error_message}" if r.error_code else "")
        )
    return 0 if definition is not None else 1


def cmd_set(args: argparse.Namespace) -> int:
    return _print_result(
        _admin(args).set_default(args.name, _parse_value(args.value), create=args.create, reason=args.reason)
    )


def cmd_target(args: argparse.Namespace) -> int:
    value: Any = False if args.off else _parse_value(args.value) if args.value is not None else True
    return _print_result(
        _admin(args).target(
            args.name,
            tenants=args.tenant,
            users=args.user,
            value=value,
            remove=args.remove,
            reason=args.reason,
        )
    )


def cmd_rollout(args: argparse.Namespace) -> int:
    return _print_result(_admin(args).rollout(args.name, args.percent, by=args.by, reason=args.reason))


def cmd_rollback(args: argparse.Namespace) -> int:
    return _print_result(_admin(args).rollback(args.name, to_version=args.to_version, reason=args.reason))


def cmd_history(args: argparse.Namespace) -> int:
    from swordfish.features import audit

    admin = _admin(args)
    with admin.connect() as conn:
        rows = audit.history(conn, admin.repository.key, args.name, args.limit)
    for row in rows:
        print(
            f"{row.changed_at:%Y-%m-%d %H:%M:%S%z} v{row.config_version:<5} {row.actor:<16} {row.action:<10} "
            f"{row.flag_name or '*'}: {json.dumps(row.before, sort_keys=True)} -> "
            f"{json.dumps(row.after, sort_keys=True)}" + (f"  ({row.reason})" if row.reason else "")
        )
    return 0


def cmd_stale(args: argparse.Namespace) -> int:
    import redis

    from swordfish.features import audit
    from swordfish.features.counters import read_usage
    from swordfish.features.stale import CODE_ROOT, Thresholds, find_stale, referenced_flags

    admin = _admin(args)
    deployed = admin.repository.deployed()
    with admin.connect() as conn:
        last_changes = audit.last_changes(conn, admin.repository.key)
    settings = get_settings()
    usage = None
    if settings.redis_url:
        try:
            client = redis.Redis.from_url(
                settings.redis_url,
                socket_timeout=settings.redis_timeout_seconds,
                socket_connect_timeout=settings.redis_timeout_seconds,
            )
            usage = read_usage(client)
        except redis.RedisError as exc:
            print(
                f"warning: evaluation counters unavailable ({exc}); skipping the 'not evaluated' check",
                file=sys.stderr,
            )
    references = referenced_flags(args.code_root or CODE_ROOT)
    stale = find_stale(
        deployed.document,
        references,
        usage=usage,
        last_changes=last_changes,
        thresholds=Thresholds(args.constant_days, args.unused_days),
    )
    if args.json:
        print(
            json.dumps(
                [{"name": s.name, "reasons": s.reasons, "removable": s.removable} for s in stale], indent=2
            )
        )
    else:
        print(f"configuration version {deployed.version}: {len(stale)} stale flag(s)")
        for s in stale:
            print(
                f"  {s.name}"
                + ("" if s.removable or not s.defined else "  (referenced: remove the code first)")
            )
            for reason in s.reasons:
                print(f"    - {reason}")
    if args.cleanup:
        for s in stale:
            if s.removable:
                result = admin.remove(s.name, reason=args.reason or "stale: " + "; ".join(s.reasons))
                print(f"removed {s.name} (version {result.version})")
    return 0


COMMANDS = {
    "list": cmd_list,
    "get": cmd_get,
    "set": cmd_set,
    "target": cmd_target,
    "rollout": cmd_rollout,
    "rollback": cmd_rollback,
    "history": cmd_history,
    "stale": cmd_stale,
}
