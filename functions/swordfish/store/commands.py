"""`swordfish db ...` and `swordfish tenants ...`: operator commands on the verdict store.

They connect as the owner role: pass --database-url, or set SWORDFISH_ADMIN_DATABASE_URL, or run
`make serve` and they use the embedded stack.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from swordfish.command_errors import CommandError, one_line_errors
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


def _command(func):
    """One-line errors, not tracebacks, for what the operator typed or what the store refused."""
    from pydantic import ValidationError

    from swordfish.security.operator import UnknownOperator
    from swordfish.store.tenants import TenantExists, UnknownTenant

    def refusal(exc: Exception) -> tuple[int, str] | None:
        if isinstance(exc, (TenantExists, UnknownTenant)):
            return 1, str(exc)
        if isinstance(exc, ValidationError):
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'policy'}: {e['msg']}" for e in exc.errors())
            return 2, f"invalid policy: {problems}"
        return (2, str(exc)) if isinstance(exc, (UnknownOperator, ValueError)) else None

    return one_line_errors(func, refusal)


def _actor(args) -> str:
    from swordfish.security.operator import operator_identity

    return operator_identity(getattr(args, "actor", None))


def _audit(conn, args, action: str, tenant_id: str, *, object_type: str = "tenant", object_id: str | None = None,
           before=None, after=None) -> None:
    from swordfish.store.audit import CLI_ROLE, record

    record(conn, actor=_actor(args), actor_role=CLI_ROLE, action=action, tenant_id=tenant_id,
           object_type=object_type, object_id=object_id or tenant_id, before=before, after=after)


def _read_policy(path: str | None) -> dict:
    if not path:
        return {}
    try:
        document = json.loads(Path(path).read_text())
    except OSError as exc:
        raise CommandError(f"cannot read policy file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CommandError(f"policy file {path} is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise CommandError(f"policy file {path} must hold a JSON object")
    return document


def checked_policy(document: dict) -> dict:
    """The policy as the engine reads it, with every allow and block entry checked: refused entries
    are named, and nothing is stored (``analysis.list_entries`` says what an entry may be)."""
    from swordfish.analysis import TenantPolicy
    from swordfish.analysis.list_entries import check_list

    refusals = []
    for field in ("allow_list", "block_list"):
        if isinstance(document.get(field), list):
            document[field], refused = check_list(document[field])
            refusals += [f"{field} {r}" for r in refused]
    if refusals:
        raise CommandError("refused, nothing changed: " + "; ".join(refusals))
    return TenantPolicy.model_validate(document).model_dump(mode="json")


@_command
def cmd_tenant_create(args) -> int:
    from swordfish.store.tenants import create_tenant, validate_tenant_id

    validate_tenant_id(args.tenant_id)
    _actor(args)  # refuse before anything is written
    policy = checked_policy(_read_policy(args.policy))
    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        create_tenant(conn, args.tenant_id, args.name or args.tenant_id, policy)
        _audit(conn, args, "tenant.create", args.tenant_id, after={"name": args.name or args.tenant_id, **policy})
    usage = sync_usage_key(_owner_url(args), args.tenant_id)
    print(f"tenant {args.tenant_id} created" + (f" (usage plan key {usage})" if usage else ""))
    return 0


@_command
def cmd_tenant_update(args) -> int:
    from swordfish.store.tenants import UnknownTenant, get_tenant, update_tenant

    _actor(args)
    changes = _read_policy(args.policy)
    if args.name is None and not changes:
        raise CommandError("nothing to change: pass --name and/or --policy FILE (its fields replace those stored; "
                           "fields it does not name are kept)")
    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        current = get_tenant(conn, args.tenant_id)
        if current is None:
            raise UnknownTenant(args.tenant_id)
        policy = checked_policy({**(current["policy"] or {}), **changes}) if changes else None
        before, after = update_tenant(conn, args.tenant_id, name=args.name, policy=policy)
        if before or after:
            _audit(conn, args, "tenant.update", args.tenant_id, before=before, after=after)
    if not (before or after):
        print(f"tenant {args.tenant_id}: no change")
    for key in after:
        print(f"{key}: {json.dumps(before[key])} -> {json.dumps(after[key])}")
    return 0


@_command
def cmd_tenant_state(args) -> int:
    from swordfish.store.tenants import set_tenant_disabled

    disable = args.tenants_command == "disable"
    _actor(args)
    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        changed = set_tenant_disabled(conn, args.tenant_id, disable)
        if changed:
            _audit(conn, args, "tenant.disable" if disable else "tenant.enable", args.tenant_id,
                   before={"disabled": not disable}, after={"disabled": disable, "reason": args.reason or ""})
    state = "disabled" if disable else "enabled"
    print(f"tenant {args.tenant_id} {state}" if changed else f"tenant {args.tenant_id} was already {state}")
    if changed and disable:
        print("its API keys are refused and its new mail is dead-lettered (tenant_disabled); its data is kept",
              file=sys.stderr)
    return 0


@_command
def cmd_tenant_list(args) -> int:
    from swordfish.store.tenants import list_tenants

    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        rows = list_tenants(conn)
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
        return 0
    for row in rows:
        state = f"disabled {row['disabled_at']:%Y-%m-%d}" if row["disabled_at"] else "active"
        print(f"{row['tenant_id']:<24} {state:<20} created {row['created_at']:%Y-%m-%d}  {row['name']}")
    return 0


@_command
def cmd_tenant_show(args) -> int:
    from swordfish.store.tenants import UnknownTenant, get_tenant

    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        tenant = get_tenant(conn, args.tenant_id)
    if tenant is None:
        raise UnknownTenant(args.tenant_id)
    if args.json:
        print(json.dumps(tenant, default=str, indent=2))
        return 0
    print(f"{tenant['tenant_id']}  {tenant['name']}")
    print(f"  state   {'disabled since ' + str(tenant['disabled_at']) if tenant['disabled_at'] else 'active'}")
    print(f"  created {tenant['created_at']}, policy changed {tenant['policy_updated_at']}")
    print(json.dumps(tenant["policy"], indent=2, sort_keys=True))
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
              file=sys.stderr)
        return 1
    url = _owner_url(args)
    with proxy_connect(url) as conn, conn.transaction():
        tenants = tenant_ids(conn)
    for tenant_id in tenants:
        print(f"{tenant_id}: usage plan key {sync_usage_key(url, tenant_id)}")
    return 0


def _lifetime(value) -> str:
    if value is None:
        return "never expires"
    days = round(value.total_seconds() / 86400)
    return f"{days} days" if days >= 1 else f"{value}"


@_command
def cmd_create_key(args) -> int:
    from datetime import timedelta

    from swordfish.store.tenants import create_api_key

    if args.expires_days < 0:
        raise CommandError("--expires-days must be 0 (never) or more")
    _actor(args)
    valid_for = timedelta(days=args.expires_days) if args.expires_days else None
    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        key = create_api_key(conn, args.tenant_id, args.label, valid_for=valid_for)
        _audit(conn, args, "api_key.create", args.tenant_id, object_type="api_key", object_id=key.key_id,
               after={"label": args.label, "valid_for": _lifetime(valid_for), "expires_at": key.expires_at})
    print(key.plaintext)
    print(f"(key id {key.key_id} for tenant {key.tenant_id}, {_lifetime(valid_for)}; shown once, stored only "
          "as a hash)", file=sys.stderr)
    return 0


@_command
def cmd_list_keys(args) -> int:
    from swordfish.store.tenants import list_api_keys

    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        keys = list_api_keys(conn, args.tenant_id)
    for key in keys:
        state = "active" if key["active"] else ("revoked" if key["revoked_at"] else "expired")
        links = (f"  replaced by {key['replaced_by_key_id']}" if key["replaced_by_key_id"] else "") + \
                (f"  replaces {key['replaces_key_id']}" if key["replaces_key_id"] else "")
        used = f"last used {key['last_used_at']:%Y-%m-%d %H:%M}" if key["last_used_at"] else "never used"
        expires = f"{key['expires_at']:%Y-%m-%d %H:%M}" if key["expires_at"] else "never"
        print(f"{key['key_id']}  {state:8}  created {key['created_at']:%Y-%m-%d %H:%M}  expires {expires} "
              f"({_lifetime(key['valid_for'])})  {used}{links}  {key['label']}")
    return 0


@_command
def cmd_revoke_key(args) -> int:
    from swordfish.store.tenants import revoke_api_key

    _actor(args)
    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        done = revoke_api_key(conn, args.tenant_id, args.key_id)
        if done:
            _audit(conn, args, "api_key.revoke", args.tenant_id, object_type="api_key", object_id=args.key_id,
                   after={"revoked": True})
    if not done:
        raise CommandError(f"no active key {args.key_id} for tenant {args.tenant_id}", 1)
    print(f"key {args.key_id} revoked: refused from now on")
    return 0


@_command
def cmd_rotate_key(args) -> int:
    from datetime import timedelta

    from swordfish.store.tenants import rotate_api_key

    _actor(args)
    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        key = rotate_api_key(conn, args.tenant_id, args.key_id, overlap=timedelta(hours=args.overlap_hours))
        if key is not None:
            _audit(conn, args, "api_key.rotate", args.tenant_id, object_type="api_key", object_id=args.key_id,
                   after={"replaced_by": key.key_id, "overlap_hours": args.overlap_hours,
                          "new_expires_at": key.expires_at})
    if key is None:
        raise CommandError(f"no active key {args.key_id} for tenant {args.tenant_id}", 1)
    print(key.plaintext)
    expiry = f"expires {key.expires_at:%Y-%m-%d}" if key.expires_at else "never expires"
    print(f"(new key id {key.key_id}, {expiry} like the key it replaces; {args.key_id} keeps working for "
          f"{args.overlap_hours} h)", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    db = subparsers.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    migrate = db.add_parser("migrate", help="apply pending SQL migrations as the owner role")
    migrate.add_argument("--database-url")
    migrate.set_defaults(func=cmd_migrate)

    tenants = subparsers.add_parser("tenants", help="tenants and their API keys").add_subparsers(
        dest="tenants_command", required=True)
    create = tenants.add_parser("create", help="create a tenant and its policy (refuses an existing id)")
    create.add_argument("tenant_id")
    create.add_argument("--name")
    create.add_argument("--policy", help="JSON file with the tenant policy")
    create.set_defaults(func=cmd_tenant_create)
    update = tenants.add_parser("update", help="change a tenant's name or policy (fields not given are kept)")
    update.add_argument("tenant_id")
    update.add_argument("--name")
    update.add_argument("--policy", help="JSON file with the policy fields to replace")
    update.set_defaults(func=cmd_tenant_update)
    for name, help_text in (("disable", "stop a tenant: keys refused, new mail dead-lettered, data kept"),
                            ("enable", "turn a disabled tenant back on")):
        sub = tenants.add_parser(name, help=help_text)
        sub.add_argument("tenant_id")
        sub.add_argument("--reason", default="")
        sub.set_defaults(func=cmd_tenant_state)
    listing = tenants.add_parser("list", help="every tenant: id, state, name")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_tenant_list)
    show = tenants.add_parser("show", help="a tenant's state and policy")
    show.add_argument("tenant_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_tenant_show)
    sync = tenants.add_parser("sync-usage-keys", help="AWS: give every tenant its API Gateway usage-plan key")
    sync.set_defaults(func=cmd_sync_usage_keys)
    key = tenants.add_parser("create-key", help="create an API key for a tenant (printed once)")
    key.add_argument("tenant_id")
    key.add_argument("--label", default="")
    key.add_argument("--expires-days", type=int, default=0,
                     help="expire after this many days (0: never); a rotation keeps the lifetime")
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
        sub.set_defaults(func=func)
    for sub in tenants.choices.values():  # every tenants command: where, and (for changes) who
        sub.add_argument("--database-url")
        sub.add_argument("--actor", help="who makes the change, for the audit trail (default: SWORDFISH_OPERATOR, "
                                         "then the login name behind sudo, then the login name; never root)")
