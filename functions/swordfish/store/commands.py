"""`swordfish db ...`, `swordfish tenants ...` and `swordfish lists ...`: operator commands on the verdict store.

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
    from swordfish.analysis.list_entries import check_extra_brands, check_list

    refusals = []
    for field in ("allow_list", "block_list"):
        if isinstance(document.get(field), list):
            document[field], refused = check_list(document[field])
            refusals += [f"{field} {r}" for r in refused]
    if "extra_brands" in document:  # the console's check: known brands, registered domains
        document["extra_brands"], refused = check_extra_brands(document["extra_brands"])
        refusals += [f"extra_brands {r}" for r in refused]
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


@_command
def cmd_trace_backfill(args) -> int:
    """Traces for verdicts that have a raw archive entry and no trace yet (resumable, idempotent)."""
    from swordfish import wiring
    from swordfish.config import get_settings
    from swordfish.store.database import Database
    from swordfish.store.traces import backfill

    build = wiring.message_source_factory(get_settings())
    if build is None:
        raise CommandError("no raw archive configured (SWORDFISH_RAW_MAIL_ARCHIVE_BUCKET): nothing to read traces from")
    source = build()

    def load(tenant_id, message_id, key, line):
        submission, raw = source.load_submission(tenant_id, message_id, key, line)
        return submission.envelope_recipients, raw

    database = Database(_owner_url(args), max_size=1)
    try:
        counts = backfill(database, load, batch=args.batch, tenants=args.tenant or None,
                          progress=lambda tenant, c: print(f"{tenant}: {c}", file=sys.stderr) if args.verbose else None)
    finally:
        database.close()
    print(json.dumps(counts))
    return 0


def _known_tenant(conn, tenant_id: str | None) -> None:
    from swordfish.store.tenants import UnknownTenant, get_tenant

    if tenant_id is not None and get_tenant(conn, tenant_id) is None:
        raise UnknownTenant(tenant_id)


def _entry_row(row: dict) -> dict:
    return {"entry_id": row["entry_id"], "scope": row["tenant_id"] or "*", "list": row["list"], "entry": row["entry"],
            "comment": row["comment"], "expires_at": row["expires_at"], "created_by": row["created_by"],
            "created_at": row["created_at"]}


@_command
def cmd_lists_list(args) -> int:
    """The entries in force: MSP-wide ones, and with --tenant that tenant's too (what its policy gets)."""
    from swordfish.store.list_entries import active_entries

    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        _known_tenant(conn, args.tenant)
        rows = [_entry_row(r) for r in active_entries(conn, args.tenant)]
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
        return 0
    for row in rows:
        expiry = f"expires {row['expires_at']:%Y-%m-%d %H:%M}" if row["expires_at"] else "no expiry"
        scope = "every tenant" if row["scope"] == "*" else row["scope"]
        print(f"{row['entry_id']:<8} {row['list']:<6} {row['entry']:<40} {scope:<20} {expiry:<22} "
              f"{row['created_by']}  {row['comment']}".rstrip())
    if not rows:
        print("no entries in force" + (f" for {args.tenant}" if args.tenant else " for every tenant"), file=sys.stderr)
    return 0


@_command
def cmd_trace_purge(args) -> int:
    """Delete traces past the raw archive's retention (run daily; idempotent)."""
    import contextlib
    from datetime import UTC, datetime

    from swordfish.store.traces import purge_all_expired

    with proxy_connect(_owner_url(args)) as conn:
        report = purge_all_expired(lambda: contextlib.nullcontext(conn), datetime.now(UTC))
    print(json.dumps({"deleted": report["deleted"]}))
    return 0


@_command
def cmd_lists_add(args) -> int:
    """One entry, checked like the console's (``analysis.list_entries``); audited with the operator."""
    from datetime import timedelta

    from swordfish.security.inputs import check_text
    from swordfish.store.list_entries import add_entry

    actor = _actor(args)
    check_text(args.comment, "the comment")
    if not 0 <= args.expires_days <= 3650:
        raise CommandError("expiry must be 0 (never) to 3650 days")
    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        _known_tenant(conn, args.tenant)
        row = add_entry(conn, tenant_id=args.tenant, list_name=args.list, entry=args.entry, created_by=actor,
                        comment=args.comment.strip(),
                        valid_for=timedelta(days=args.expires_days) if args.expires_days else None)
        scope = args.tenant or "every tenant"
        _audit(conn, args, "list_entry.add", args.tenant, object_type="list_entry", object_id=row["entry"],
               after={"list": row["list"], "entry": row["entry"], "scope": scope, "comment": row["comment"],
                      "expires_at": row["expires_at"]})
    expiry = f", expires {row['expires_at']:%Y-%m-%d %H:%M} UTC" if row["expires_at"] else ""
    print(f"{row['entry_id']} {row['list']} {row['entry']} added for {scope}{expiry}")
    return 0


@_command
def cmd_lists_remove(args) -> int:
    from swordfish.store.list_entries import remove_entry

    actor = _actor(args)
    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        _known_tenant(conn, args.tenant)
        row = remove_entry(conn, args.entry_id, actor, args.tenant)
        if row is None:
            where = f"for {args.tenant}" if args.tenant else "MSP-wide (a tenant's entry needs --tenant)"
            raise CommandError(f"no entry {args.entry_id} in force {where}", code=1)
        _audit(conn, args, "list_entry.remove", args.tenant, object_type="list_entry", object_id=row["entry"],
               before={"list": row["list"], "entry": row["entry"], "comment": row["comment"], "by": row["created_by"]})
    print(f"{row['entry_id']} {row['list']} {row['entry']} removed for {args.tenant or 'every tenant'}")
    return 0


@_command
def cmd_lists_blocks(args) -> int:
    """Blocked indicators in force (issue 28): every block, or what one tenant's policy gets."""
    from swordfish.store.indicator_blocks import active_blocks

    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        _known_tenant(conn, args.tenant)
        rows = active_blocks(conn, [args.tenant] if args.tenant else None)
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
        return 0
    for row in rows:
        campaign = f"campaign {row['campaign_id']}" if row["campaign_id"] else ""
        print(f"{row['block_id']:<8} {row['kind']:<18} {row['indicator']:<40} {row['tenant_id'] or 'every tenant':<20} "
              f"{campaign:<16} {row['created_by']}  {row['comment']}".rstrip())
    if not rows:
        print("no blocks in force", file=sys.stderr)
    return 0


@_command
def cmd_lists_block(args) -> int:
    """Block a link domain, attachment SHA-256 or sender domain (a campaign's, usually); audited."""
    from swordfish.security.inputs import check_text
    from swordfish.store.indicator_blocks import add_block

    actor = _actor(args)
    check_text(args.comment, "the comment")
    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        _known_tenant(conn, args.tenant)
        try:
            row = add_block(conn, tenant_id=args.tenant, kind=args.kind, indicator=args.indicator, created_by=actor,
                            campaign_id=args.campaign, comment=args.comment.strip())
        except ValueError as exc:
            raise CommandError(f"not blocked: {exc}") from exc
        _audit(conn, args, "indicator_block.add", args.tenant, object_type="indicator_block",
               object_id=str(row["block_id"]), after={"kind": row["kind"], "indicator": row["indicator"],
                                                      "scope": args.tenant or "every tenant",
                                                      "campaign_id": args.campaign})
    print(f"{row['block_id']} {row['kind']} {row['indicator']} blocked for {args.tenant or 'every tenant'}")
    return 0


@_command
def cmd_lists_unblock(args) -> int:
    from swordfish.store.indicator_blocks import remove_block

    actor = _actor(args)
    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        _known_tenant(conn, args.tenant)
        row = remove_block(conn, args.block_id, actor, [args.tenant] if args.tenant else None)
        if row is None or row["tenant_id"] != args.tenant:
            raise CommandError(f"no block {args.block_id} in force "
                               + (f"for {args.tenant}" if args.tenant else "(a tenant's block needs --tenant)"),
                               code=1)
        _audit(conn, args, "indicator_block.remove", args.tenant, object_type="indicator_block",
               object_id=str(row["block_id"]), before={"kind": row["kind"], "indicator": row["indicator"],
                                                       "by": row["created_by"]})
    print(f"{row['block_id']} {row['kind']} {row['indicator']} unblocked for {args.tenant or 'every tenant'}")
    return 0


def register(subparsers) -> None:
    trace = subparsers.add_parser("trace", help="per-verdict trace data (issue 28)").add_subparsers(
        dest="trace_command", required=True)
    fill = trace.add_parser("backfill", help="read traces of older verdicts from the raw archive (resumable)")
    fill.add_argument("--tenant", action="append", help="only this tenant (repeatable); default every tenant")
    fill.add_argument("--batch", type=int, default=200, help="verdicts per transaction")
    fill.add_argument("--verbose", action="store_true", help="print progress per batch")
    fill.set_defaults(func=cmd_trace_backfill)
    purge = trace.add_parser("purge", help="delete traces past the raw archive's retention")
    purge.set_defaults(func=cmd_trace_purge)
    for sub in trace.choices.values():
        sub.add_argument("--database-url")

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
    lists = subparsers.add_parser("lists", help="allow and block entries for every tenant (MSP-wide) or one "
                                                "tenant, with a comment and an expiry").add_subparsers(
        dest="lists_command", required=True)
    shown = lists.add_parser("list", help="the entries in force: MSP-wide, plus one tenant's with --tenant")
    shown.add_argument("--json", action="store_true")
    shown.set_defaults(func=cmd_lists_list)
    add = lists.add_parser("add", help="add a sender address (that address only) or domain (and its subdomains); "
                                       "wildcards, URLs, IPs and free text are refused")
    add.add_argument("list", choices=("allow", "block"))
    add.add_argument("entry")
    add.add_argument("--comment", default="", help="why (shown in the console and the audit trail)")
    add.add_argument("--expires-days", type=int, default=0, help="stop counting after this many days (0: never)")
    add.set_defaults(func=cmd_lists_add)
    remove = lists.add_parser("remove", help="remove an entry by its id (see `lists list`)")
    remove.add_argument("entry_id", type=int)
    remove.set_defaults(func=cmd_lists_remove)
    blocks = lists.add_parser("blocks", help="blocked indicators in force (a campaign's link domains, attachment "
                                             "hashes, sender domains); with --tenant what its policy gets")
    blocks.add_argument("--json", action="store_true")
    blocks.set_defaults(func=cmd_lists_blocks)
    block = lists.add_parser("block", help="block a link domain (and subdomains), an attachment SHA-256 or a "
                                           "sender domain (and subdomains): new mail holding it is flagged")
    block.add_argument("kind", choices=("link_domain", "attachment_sha256", "sender_domain"))
    block.add_argument("indicator")
    block.add_argument("--campaign", type=int, help="the campaign it comes from (named in the verdict's reason)")
    block.add_argument("--comment", default="", help="why (shown in the console and the audit trail)")
    block.set_defaults(func=cmd_lists_block)
    unblock = lists.add_parser("unblock", help="undo a block by its id (see `lists blocks`)")
    unblock.add_argument("block_id", type=int)
    unblock.set_defaults(func=cmd_lists_unblock)
    for sub in lists.choices.values():
        sub.add_argument("--tenant", help="one tenant's entries instead of the MSP-wide ones")
    for sub in (*tenants.choices.values(), *lists.choices.values()):  # where, and (for changes) who
        sub.add_argument("--database-url")
        sub.add_argument("--actor", help="who makes the change, for the audit trail (default: SWORDFISH_OPERATOR, "
                                         "then the login name behind sudo, then the login name; never root)")
