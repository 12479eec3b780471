"""`swordfish db ...` and `swordfish tenants ...`: operator commands on the verdict store.

They connect as the owner role: pass --database-url, or set SWORDFISH_ADMIN_DATABASE_URL, or run
`make serve` and they use the embedded stack.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg


def _owner_url(args) -> str:
    if getattr(args, "database_url", None):
        return args.database_url
    from swordfish.config import get_settings

    if get_settings().admin_database_url:
        return get_settings().admin_database_url
    raise SystemExit("no owner database: pass --database-url, set SWORDFISH_ADMIN_DATABASE_URL, "
                     "or start `make serve` (the swordfish command then uses its stack)")


def cmd_migrate(args) -> int:
    from swordfish.store.migrate import migrate

    applied = migrate(_owner_url(args))
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def cmd_tenant_create(args) -> int:
    from swordfish.analysis import TenantPolicy
    from swordfish.store.tenants import create_tenant

    policy = TenantPolicy.model_validate(json.loads(Path(args.policy).read_text()) if args.policy else {})
    with psycopg.connect(_owner_url(args)) as conn, conn.transaction():
        create_tenant(conn, args.tenant_id, args.name or args.tenant_id, policy.model_dump(mode="json"))
    print(f"tenant {args.tenant_id} ready")
    return 0


def cmd_create_key(args) -> int:
    from swordfish import wiring
    from swordfish.store.tenants import create_api_key

    peppers = wiring.api_key_pepper_provider()()  # hashed with the current pepper (none: plain SHA-256)
    with psycopg.connect(_owner_url(args)) as conn, conn.transaction():
        key = create_api_key(conn, args.tenant_id, args.label, pepper=peppers[0] if peppers else None)
    print(key.plaintext)
    print(f"(key id {key.key_id} for tenant {key.tenant_id}; shown once, stored only as a hash)",
          file=__import__("sys").stderr)
    return 0


def register(subparsers) -> None:
    db = subparsers.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    migrate = db.add_parser("migrate", help="apply pending SQL migrations as the owner role")
    migrate.add_argument("--database-url")
    migrate.set_defaults(func=cmd_migrate)

    tenants = subparsers.add_parser("tenants", help="tenants and their API keys").add_subparsers(
        dest="tenants_command", required=True)
    create = tenants.add_parser("create", help="create or update a tenant and its policy")
    create.add_argument("tenant_id")
    create.add_argument("--name")
    create.add_argument("--policy", help="JSON file with the tenant policy")
    create.add_argument("--database-url")
    create.set_defaults(func=cmd_tenant_create)
    key = tenants.add_parser("create-key", help="create an API key for a tenant (printed once)")
    key.add_argument("tenant_id")
    key.add_argument("--label", default="")
    key.add_argument("--database-url")
    key.set_defaults(func=cmd_create_key)
