"""`swordfish secrets status|rotate`: every secret's versions and who holds which; start a rotation.

With `make serve` running they talk to the embedded stack (moto, its PostgreSQL, its Redis); on AWS
`status` works with credentials that may describe the secrets, and rotations are started with
`aws secretsmanager rotate-secret` (Secrets Manager then calls the rotation function).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

from swordfish import constants

SECRET_NAMES = (constants.DB_APP_SECRET_NAME, constants.DB_ADMIN_SECRET_NAME, constants.DB_MASTER_SECRET_NAME,
                constants.API_KEY_PEPPER_SECRET_NAME, constants.NANGO_SECRET_NAME,
                constants.CONSOLE_TOTP_KEYS_SECRET_NAME)


def _client(settings):
    from swordfish.security.secrets import secretsmanager_client

    return secretsmanager_client(settings.aws_region, settings.secrets_endpoint_url or settings.aws_endpoint_url,
                                 settings.secrets_timeout_seconds)


def _holders(settings) -> dict[str, dict[str, str]]:
    if not settings.redis_url:
        return {}
    import redis

    from swordfish.security.secrets import RedisVersionRegistry

    try:
        return RedisVersionRegistry(redis.Redis.from_url(settings.redis_url, socket_timeout=2)).holders()
    except redis.RedisError:
        return {}


def secret_status(client, name: str, holders: dict[str, dict[str, str]]) -> dict | None:
    try:
        meta = client.describe_secret(SecretId=name)
    except client.exceptions.ResourceNotFoundException:
        return None
    stages = meta.get("VersionIdsToStages", {})

    def with_stage(stage: str) -> str | None:
        return next((v for v, s in stages.items() if stage in s), None)

    current = with_stage("AWSCURRENT")
    last = meta.get("LastRotatedDate")
    if last is None and current:
        created = {v["VersionId"]: v.get("CreatedDate")
                   for v in client.list_secret_version_ids(SecretId=name).get("Versions", [])}
        last = created.get(current) if with_stage("AWSPREVIOUS") else None
    next_rotation = meta.get("NextRotationDate")
    if next_rotation is None and meta.get("RotationEnabled") and last is not None:
        days = (meta.get("RotationRules") or {}).get("AutomaticallyAfterDays", constants.SECRET_ROTATION_DAYS)
        next_rotation = last + timedelta(days=days)
    return {
        "name": name, "current": current, "pending": with_stage("AWSPENDING"), "previous": with_stage("AWSPREVIOUS"),
        "rotation_enabled": bool(meta.get("RotationEnabled")),
        "last_rotation": _iso(last), "next_rotation": _iso(next_rotation),
        "holders": {p: v[name] for p, v in sorted(holders.items()) if name in v},
    }


def _iso(value) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else str(value)


def cmd_status(args) -> int:
    from swordfish.config import get_settings

    settings = get_settings()
    client, holders = _client(settings), _holders(settings)
    rows = [s for s in (secret_status(client, n, holders) for n in SECRET_NAMES) if s is not None]
    if args.json:
        print(json.dumps({"secrets": rows}, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']}")
        print(f"  current {row['current']}  pending {row['pending'] or '-'}  previous {row['previous'] or '-'}")
        print(f"  last rotation {row['last_rotation'] or 'never'}  next {row['next_rotation'] or 'not scheduled'}")
        stale = {p: v for p, v in row["holders"].items() if v != row["current"]}
        for process, version in row["holders"].items():
            mark = "  (not the current version)" if process in stale else ""
            print(f"  held by {process}: {version}{mark}")
    return 0


def cmd_rotate(args) -> int:
    from swordfish.config import get_settings
    from swordfish.security.rotation import RotationError, RotationRefused, Rotator, resume, rotate_now

    settings = get_settings()
    rotator = Rotator(_client(settings), sslmode=settings.db_sslmode)
    try:
        if args.abandon:
            print(rotator.abandon(args.name))
            return 0
        version = resume(rotator, args.name) if args.resume else rotate_now(rotator, args.name)
    except Exception as exc:  # an operator's command: one line saying what failed, never a traceback
        what = "refused" if isinstance(exc, RotationRefused) else "failed"
        detail = (str(exc).strip().splitlines() or [""])[0]
        print(f"rotation of {args.name} {what}: {type(exc).__name__}: {detail}" if not isinstance(exc, RotationError)
              else f"rotation of {args.name} {what}: {detail}")
        return 1
    print(f"{args.name}: AWSCURRENT is now {version}; workers pick it up within "
          f"{settings.secrets_ttl_seconds:.0f} s (at once after a refused login)")
    if rotator.pepper_plan is not None:  # which older peppers stay accepted, for which keys
        print(f"{args.name}: {rotator.pepper_plan.describe()}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("secrets", help="secret versions, holders and rotations")
    sub = parser.add_subparsers(dest="secrets_command", required=True)
    status = sub.add_parser("status", help="each secret's current/pending/previous versions and who holds which")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    rotate = sub.add_parser("rotate", help="rotate a secret now (the four steps, in-process, on the embedded stack)")
    rotate.add_argument("name", help=f"one of {constants.DB_APP_SECRET_NAME}, {constants.DB_ADMIN_SECRET_NAME}, "
                                     f"{constants.API_KEY_PEPPER_SECRET_NAME}")
    killed = rotate.add_mutually_exclusive_group()
    killed.add_argument("--resume", action="store_true", help="finish a pending rotation (one that was killed halfway)")
    killed.add_argument("--abandon", action="store_true",
                        help="drop a pending rotation; a database login's previous version logs in again")
    rotate.set_defaults(func=cmd_rotate)


def main(argv: list[str]) -> int:
    """``swordfish secrets ARGV`` without the rest of the CLI (tests)."""
    parser = argparse.ArgumentParser(prog="swordfish")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["secrets", *argv])
    return int(args.func(args) or 0)
