"""TOTP secrets are encrypted at rest (MultiFernet, keys from the key secret): never stored in clear,
sign-in still works, key rotation keeps old secrets readable until re-encrypted, and a tampered value
refuses the sign-in cleanly."""

from __future__ import annotations

import re

import psycopg
import pyotp
import pytest
from swordfish.cli import main
from swordfish.console import store
from swordfish.security.totp_keys import LOCAL_DEV_TOTP_KEY, TotpSecretBox, TotpSecretUnreadable
from swordfish.store.database import proxy_connect

from tests.console.helpers import get, post_form

ADMIN = "admin@msp.example"
KEY_A, KEY_B = "key-a-" + "a" * 40, "key-b-" + "b" * 40


def stored_secret(console, email: str) -> str | None:
    """Straight from PostgreSQL, as anyone reading the table (or a backup of it) would see it."""
    with psycopg.connect(console.superuser_url) as conn:
        return conn.execute("SELECT totp_secret FROM console_users WHERE email = %s", (email,)).fetchone()[0]


def write_stored_secret(console, email: str, value: str) -> None:
    with psycopg.connect(console.superuser_url) as conn, conn.transaction():
        conn.execute("UPDATE console_users SET totp_secret = %s WHERE email = %s", (value, email))


def signs_in(console, email: str = ADMIN) -> bool:
    console.clock.advance(30)  # a fresh TOTP step: codes are single-use
    response = console.login(console.client(), email)
    return response.status_code == 302 and response.headers["Location"].endswith("/console/")


def test_the_stored_secret_is_not_the_plaintext_and_sign_in_works(console):
    console.add_user(ADMIN, "msp_admin", [])
    secret = console.users[ADMIN][1]
    stored = stored_secret(console, ADMIN)
    assert stored.startswith("fernet:") and secret not in stored
    assert signs_in(console)


def test_enrolment_through_the_pages_stores_the_new_secret_encrypted(console):
    console.add_user(ADMIN, "msp_admin", [], totp=False)
    client = console.client()
    response = post_form(client, "/console/login", "/console/login", {"email": ADMIN, "password": "correct horse battery staple"})
    assert response.headers["Location"].endswith("/console/login/totp/enrol")
    page = get(client, "/console/login/totp/enrol").get_data(as_text=True)
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)
    # Shown to the user once; waiting in the server-side session only sealed.
    session_values = b"".join(v for k in console.deps.redis.keys("swordfish:console:session:*")
                              if (v := console.deps.redis.get(k)) is not None)
    assert secret.encode() not in session_values
    code = pyotp.TOTP(secret).at(console.clock.now)
    response = post_form(client, "/console/login/totp/enrol", "/console/login/totp/enrol", {"code": code})
    # Signed in; the recovery codes are shown once before going on to the overview.
    assert response.status_code == 200 and 'id="continue" href="/console/"' in response.get_data(as_text=True)
    stored = stored_secret(console, ADMIN)
    assert stored.startswith("fernet:") and secret not in stored
    assert console.deps.totp_box.open(stored) == secret


def test_rotation_old_key_still_decrypts_and_reencrypt_moves_every_secret_to_the_new_key(console):
    console.totp_keys.materials = [KEY_A]
    console.add_user(ADMIN, "msp_admin", [])
    console.add_user("second@msp.example", "msp_admin", [])
    console.totp_keys.materials = [KEY_B, KEY_A]  # the new key first, the old one kept
    assert signs_in(console)  # sealed under A, still readable
    with proxy_connect(console.owner_url) as conn, conn.transaction():
        counts = store.reencrypt_totp(conn, console.deps.totp_box)
    assert counts == {"encrypted": 0, "reencrypted": 2, "unreadable": 0}
    only_a, only_b = TotpSecretBox(lambda refresh=False: [KEY_A]), TotpSecretBox(lambda refresh=False: [KEY_B])
    for email in (ADMIN, "second@msp.example"):
        stored = stored_secret(console, email)
        assert only_b.open(stored) == console.users[email][1]
        with pytest.raises(TotpSecretUnreadable):
            only_a.open(stored)
    console.totp_keys.materials = [KEY_B]  # the old key retired
    assert signs_in(console) and signs_in(console, "second@msp.example")


def test_a_tampered_secret_refuses_the_sign_in_cleanly_and_is_audited(console):
    console.add_user(ADMIN, "msp_admin", [])
    stored = stored_secret(console, ADMIN)
    middle = len(stored) // 2
    write_stored_secret(console, ADMIN, stored[:middle] + ("A" if stored[middle] != "A" else "B") + stored[middle + 1:])
    client = console.client()
    console.clock.advance(30)
    response = console.login(client, ADMIN)
    assert response.status_code == 401  # a refusal page, not a server error
    assert "not right" in response.get_data(as_text=True)
    assert get(client, "/console/").status_code == 302  # not signed in
    with psycopg.connect(console.superuser_url) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM console_audit ORDER BY audit_id")]
    assert "login.totp_unreadable" in actions and "login.ok" not in actions
    # The re-encrypt run leaves it alone and says so.
    with proxy_connect(console.owner_url) as conn, conn.transaction():
        assert store.reencrypt_totp(conn, console.deps.totp_box)["unreadable"] == 1


def test_a_secret_from_before_encryption_still_signs_in_and_is_encrypted_then(console):
    console.add_user(ADMIN, "msp_admin", [])
    secret = console.users[ADMIN][1]
    write_stored_secret(console, ADMIN, secret)  # as the console stored it before this change
    assert signs_in(console)
    stored = stored_secret(console, ADMIN)
    assert stored.startswith("fernet:") and console.deps.totp_box.open(stored) == secret


def test_the_reencrypt_command_encrypts_rows_still_in_clear(console, settings_env, capsys):
    """The one-shot after deploying: `swordfish console reencrypt-totp` (here with the local key)."""
    settings_env(environment="local")
    local = TotpSecretBox(lambda refresh=False: [LOCAL_DEV_TOTP_KEY])
    console.add_user(ADMIN, "msp_admin", [])
    console.add_user("second@msp.example", "msp_admin", [])
    write_stored_secret(console, ADMIN, console.users[ADMIN][1])  # in clear
    write_stored_secret(console, "second@msp.example", local.seal(console.users["second@msp.example"][1]))
    assert main(["console", "reencrypt-totp", "--database-url", console.owner_url]) == 0
    out = capsys.readouterr().out
    assert "1 encrypted" in out and "1 re-encrypted" in out and "0 unreadable" in out
    for email in (ADMIN, "second@msp.example"):
        stored = stored_secret(console, email)
        assert stored.startswith("fernet:") and local.open(stored) == console.users[email][1]
        assert console.users[email][1] not in out
