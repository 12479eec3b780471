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
