"""`swordfish db ...` and `swordfish tenants ...`: operator commands on the verdict store.

They connect as the owner role: pass --database-url, or set SWORDFISH_ADMIN_DATABASE_URL, or run
`make serve` and they use the embedded stack.
"""

from __future__ import annotations

import json
from pathlib import Path

from swordfish.store.database import proxy_connect


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
    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        create_tenant(conn, args.tenant_id, args.name or args.tenant_id, policy.model_dump(mode="json"))
    usage = sync_usage_key(_owner_url(args), args.tenant_id)
    print(f"tenant {args.tenant_id} ready" + (f" (usage plan key {usage})" if usage else ""))
    return 0


def sync_usage_key(owner_url: str, tenant_id: str) -> str | None:
    """On AWS (SWORDFISH_USAGE_PLAN_ID set, from the API stack's output): create or find the tenant's
    API Gateway key, put it in the usage plan and record it for the authorizer; the key's id, or None
    locally, where the API's Redis limits are the only per-tenant limits."""
    from swordfish import wiring
    from swordfish.config import get_settings
    from swordfish.integrations.usage_plans import ensure_usage_key
    from swordfish.store.tenants import set_usage_key

    plan_id = get_settings().usage_plan_id
    if not plan_id:
        return None
    key = ensure_usage_key(wiring.aws_client("apigateway"), plan_id, tenant_id)
    with proxy_connect(owner_url) as conn, conn.transaction():
        set_usage_key(conn, tenant_id, key.key_id, key.value)
    return key.key_id


def cmd_sync_usage_keys(args) -> int:
    """Every tenant gets its usage-plan key (tenants made before usage plans, or a plan re-created)."""
    from swordfish.config import get_settings
    from swordfish.store.tenants import tenant_ids

    if not get_settings().usage_plan_id:
        print("SWORDFISH_USAGE_PLAN_ID is not set (the API stack's UsagePlanId output): nothing to do locally",
              file=__import__("sys").stderr)
        return 1
    url = _owner_url(args)
    with proxy_connect(url) as conn, conn.transaction():
        tenants = tenant_ids(conn)
    for tenant_id in tenants:
        print(f"{tenant_id}: usage plan key {sync_usage_key(url, tenant_id)}")
    return 0


def cmd_create_key(args) -> int:
    from swordfish.store.tenants import create_api_key

    expires = None
    if args.expires_days:
        from datetime import UTC, datetime, timedelta

        expires = datetime.now(UTC) + timedelta(days=args.expires_days)
    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        key = create_api_key(conn, args.tenant_id, args.label, expires_at=expires)
    print(key.plaintext)
    print(f"(key id {key.key_id} for tenant {key.tenant_id}; shown once, stored only as a hash)",
          file=__import__("sys").stderr)
    return 0


def cmd_list_keys(args) -> int:
    from swordfish.store.tenants import list_api_keys

    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        keys = list_api_keys(conn, args.tenant_id)
    for key in keys:
        state = "active" if key["active"] else ("revoked" if key["revoked_at"] else "expired")
        print(f"{key['key_id']}  {state:8}  created {key['created_at']:%Y-%m-%d %H:%M}  "
              f"expires {key['expires_at'] or 'never'}  {key['label']}")
    return 0


def cmd_revoke_key(args) -> int:
    from swordfish.store.tenants import revoke_api_key

    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        done = revoke_api_key(conn, args.tenant_id, args.key_id)
    print(f"key {args.key_id} revoked" if done else f"no active key {args.key_id} for tenant {args.tenant_id}")
    return 0 if done else 1


def cmd_rotate_key(args) -> int:
    from datetime import timedelta

    from swordfish.store.tenants import rotate_api_key

    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        key = rotate_api_key(conn, args.tenant_id, args.key_id, overlap=timedelta(hours=args.overlap_hours))
    if key is None:
        print(f"no active key {args.key_id} for tenant {args.tenant_id}", file=__import__("sys").stderr)
        return 1
    print(key.plaintext)
    print(f"(new key id {key.key_id}; {args.key_id} keeps working for {args.overlap_hours} h)",
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
    sync = tenants.add_parser("sync-usage-keys", help="AWS: give every tenant its API Gateway usage-plan key")
    sync.add_argument("--database-url")
    sync.set_defaults(func=cmd_sync_usage_keys)
    key = tenants.add_parser("create-key", help="create an API key for a tenant (printed once)")
    key.add_argument("tenant_id")
    key.add_argument("--label", default="")
    key.add_argument("--expires-days", type=int, default=0, help="expire after this many days (0: never)")
    key.add_argument("--database-url")
    key.set_defaults(func=cmd_create_key)
    for name, func, help_text in (("list-keys", cmd_list_keys, "list a tenant's API keys (never their secrets)"),
                                  ("revoke-key", cmd_revoke_key, "revoke an API key at once"),
                                  ("rotate-key", cmd_rotate_key, "a new key; the old one works for an overlap")):
        sub = tenants.add_parser(name, help=help_text)
        sub.add_argument("tenant_id")
        if name != "list-keys":
            sub.add_argument("key_id")
        if name == "rotate-key":
            sub.add_argument("--overlap-hours", type=int, default=24)
        sub.add_argument("--database-url")
        sub.set_defaults(func=func)
