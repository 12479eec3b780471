"""`swordfish console ...`: bootstrap the console's first MSP admin (everyone else is invited in it)."""

from __future__ import annotations

import sys

from swordfish.store.database import proxy_connect


def cmd_create_admin(args) -> int:
    from swordfish.console import store
    from swordfish.store.commands import _owner_url

    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        if store.find_user(conn, args.email) is not None:
            print(f"{args.email} already exists: an MSP admin can reset them in the console", file=sys.stderr)
            return 1
        user_id, token = store.create_user(conn, args.email, "msp_admin", [])
        store.audit(conn, actor="cli", actor_role=None, action="user.invite", object_type="user",
                    object_id=str(user_id), after={"email": args.email, "role": "msp_admin"})
    base = args.base_url.rstrip("/")  # without it, the path: open it on the URL `make serve` printed
    print(f"{base}/console/invite/{token}")
    print("(one-time link, valid 3 days: choose a password, then set up the authenticator)", file=sys.stderr)
    return 0


def cmd_reencrypt_totp(args) -> int:
    """Every TOTP secret under the newest key of swordfish/console-totp-keys; secrets still stored in
    clear (from before encryption) are encrypted. Run once after deploying, and after each key rotation
    (once every process has read the new key: the secret reader's TTL, 5 minutes by default)."""
    from swordfish.console import store
    from swordfish.security.totp_keys import TotpSecretBox
    from swordfish.store.commands import _owner_url

    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        counts = store.reencrypt_totp(conn, TotpSecretBox())
        store.audit(conn, actor="cli", actor_role=None, action="totp.reencrypt", after=counts)
    print(f"{counts['encrypted']} encrypted (were in clear), {counts['reencrypted']} re-encrypted under the newest "
          f"key, {counts['unreadable']} unreadable")
    if counts["unreadable"]:
        print("unreadable secrets stay as they are: keep their old key in the secret, or reset those users' "
              "TOTP in the console (Users > reset)", file=sys.stderr)
    return 1 if counts["unreadable"] else 0


def cmd_reset_user(args) -> int:
    """The way back for a sole MSP admin who lost the authenticator (or the password): the password,
    TOTP and recovery codes are cleared, every session ends, and a one-time link sets a new password, after which
    the next sign-in enrols a new authenticator. Audited with the operator who ran it."""
    from swordfish.console import store
    from swordfish.security.operator import UnknownOperator, operator_identity
    from swordfish.store.audit import CLI_ROLE
    from swordfish.store.commands import _owner_url

    try:
        actor = operator_identity(args.actor)
    except UnknownOperator as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with proxy_connect(_owner_url(args)) as conn, conn.transaction():
        user = store.find_user(conn, args.email)
        if user is None:
            print(f"error: no console user {args.email}", file=sys.stderr)
            return 1
        token = store.issue_reset(conn, user.user_id)
        cleared = store.clear_mfa(conn, user.user_id)  # the TOTP secret and every recovery code
        store.audit(conn, actor=actor, actor_role=CLI_ROLE, action="user.reset", object_type="user",
                    object_id=str(user.user_id), after={"email": user.email, "password": "reset", **cleared})
    print(f"{args.base_url.rstrip('/')}/console/invite/{token}")
    print(f"(one-time link for {user.email}, valid 24 h: a new password, then a new authenticator at sign-in)",
          file=sys.stderr)
    return 0


def register(subparsers) -> None:
    console = subparsers.add_parser("console", help="the MSP console").add_subparsers(
        dest="console_command", required=True)
    admin = console.add_parser("create-admin", help="invite an MSP admin; prints a one-time link")
    admin.add_argument("email")
    admin.add_argument("--base-url", default="", help="the console's public URL, e.g. http://127.0.0.1:8080")
    admin.add_argument("--database-url")
    admin.set_defaults(func=cmd_create_admin)
    reencrypt = console.add_parser("reencrypt-totp", help="encrypt every TOTP secret under the newest key "
                                                          "(also encrypts any stored in clear)")
    reencrypt.add_argument("--database-url")
    reencrypt.set_defaults(func=cmd_reencrypt_totp)
    reset = console.add_parser("reset-user", help="clear a user's password, TOTP and recovery codes (a sole admin who lost the "
                                                  "phone); prints a one-time link; audited")
    reset.add_argument("email")
    reset.add_argument("--base-url", default="", help="the console's public URL, e.g. http://127.0.0.1:8080")
    reset.add_argument("--actor", help="who runs it (default: SWORDFISH_OPERATOR, the login behind sudo, the login)")
    reset.add_argument("--database-url")
    reset.set_defaults(func=cmd_reset_user)
