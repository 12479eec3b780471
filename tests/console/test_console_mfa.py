"""Second factor: required of every role that can release mail; a QR code to enrol (the same otpauth
URI as the printed key); one-time recovery codes (shown once, stored hashed, each usable once,
regenerated with an audit row); and a way back for a sole admin who lost the phone: `swordfish
console reset-user`, audited with the operator, which clears the codes too."""

from __future__ import annotations

import base64
import io
import re

import psycopg
from swordfish.cli import main

from tests.console.helpers import PASSWORD, get, post_form

ADMIN = "admin@msp.example"


def test_enrolment_shows_a_qr_code_of_the_key(console):
    import zxingcpp
    from PIL import Image

    console.add_user(ADMIN, "msp_admin", [], totp=False)
    client = console.client()
    assert console.login(client, ADMIN).headers["Location"].endswith("/console/login/totp/enrol")
    page = get(client, "/console/login/totp/enrol").get_data(as_text=True)
    uri = re.search(r"<code>(otpauth://[^<]+)</code>", page).group(1).replace("&amp;", "&")
    png = base64.b64decode(re.search(r'id="totp-qr" src="data:image/png;base64,([^"]+)"', page).group(1))
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert decoded.text == uri


def test_a_sole_admin_who_lost_the_phone_is_reset_from_the_cli_and_it_is_audited(console, settings_env, capsys):
    settings_env(operator="olivia@msp.example", admin_database_url=console.owner_url)
    user_id = console.add_user(ADMIN, "msp_admin", [])
    from swordfish.console import recovery, store

    with console.deps.database.connection() as conn, conn.transaction():
        store.replace_recovery_codes(conn, user_id, recovery.hashed(recovery.generate(2)))
    assert main(["console", "reset-user", ADMIN, "--base-url", "https://console.example"]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith("https://console.example/console/invite/")
    with psycopg.connect(console.superuser_url) as conn:
        row = conn.execute("SELECT password_hash, totp_secret, totp_enabled FROM console_users WHERE user_id = %s",
                           (user_id,)).fetchone()
        audit = conn.execute("SELECT actor, actor_role, action, object_id FROM console_audit "
                             "WHERE action = 'user.reset'").fetchall()
        codes = conn.execute("SELECT count(*) FROM console_recovery_codes WHERE user_id = %s", (user_id,)).fetchone()
        cleared = conn.execute("SELECT after FROM console_audit WHERE action = 'user.reset'").fetchone()[0]
    assert row == (None, None, False)
    assert codes == (0,) and cleared["recovery_codes"] == "2 deleted"
    assert audit == [("olivia@msp.example", "cli", "user.reset", str(user_id))]
    client = console.client()
    assert console.login(client, ADMIN).status_code != 302  # the old password no longer works
    assert get(client, link.removeprefix("https://console.example")).status_code == 200  # the link does
    assert main(["console", "reset-user", "nobody@msp.example"]) == 1


# --- every role that can release mail needs the second factor (issue 27) --------------------------

ANALYST, AUDITOR = "analyst@acme.example", "auditor@acme.example"
CODES = re.compile(r"<li><code>([a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4})</code></li>")


def _sql(console, query, params=()):
    with psycopg.connect(console.superuser_url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def _enrol(console, email: str) -> tuple[object, str, list[str]]:
    """Sign in with the password, enrol an authenticator through the pages: (client, secret, codes)."""
    import pyotp

    client = console.client()
    assert console.login(client, email).headers["Location"].endswith("/console/login/totp/enrol")
    page = get(client, "/console/login/totp/enrol").get_data(as_text=True)
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)
    done = post_form(client, "/console/login/totp/enrol", "/console/login/totp/enrol",
                     {"code": pyotp.TOTP(secret).at(console.clock.now)})
    assert done.status_code == 200, done.get_data(as_text=True)[:300]
    return client, secret, CODES.findall(done.get_data(as_text=True))


def _password_step(console, email: str):
    client = console.client()
    response = post_form(client, "/console/login", "/console/login", {"email": email, "password": PASSWORD})
    assert response.headers["Location"].endswith("/console/login/totp")
    return client


def test_an_analyst_cannot_use_the_console_or_release_before_enrolling(console):
    from tests.console.helpers import add_verdict

    add_verdict(console.owner_url, "acme-corp", "m-1")
    console.add_user(ANALYST, "analyst", ["acme-corp"], totp=False)
    client = console.client()
    # Analysts can release mail: the password alone leads only to the enrolment page.
    assert console.login(client, ANALYST).headers["Location"].endswith("/console/login/totp/enrol")
    for path in ("/console/", "/console/tenants/acme-corp/verdicts/m-1"):
        assert get(client, path).headers["Location"].startswith("/console/login")
    release = client.post("/console/tenants/acme-corp/verdicts/m-1", data={"action": "release"},
                          base_url="https://localhost", headers={"Referer": "https://localhost/console/"})
    assert release.status_code in (302, 400) and not _sql(console, "SELECT 1 FROM verdict_releases")
    assert not _sql(console, "SELECT 1 FROM console_audit WHERE action LIKE 'verdict.%%'")


def test_a_session_without_the_second_factor_ends_when_the_rule_covers_it(console):
    console.add_user(AUDITOR, "auditor", ["acme-corp"])  # auditors cannot release: no second factor
    client = console.client()
    assert console.login(client, AUDITOR).headers["Location"].endswith("/console/")
    assert get(client, "/console/").status_code == 200
    console.deps.totp_for_all = True  # the deployment now asks it of everyone
    assert get(client, "/console/").headers["Location"].startswith("/console/login")


def test_enrolment_shows_ten_recovery_codes_once_stored_only_as_hashes(console):
    user_id = console.add_user(ANALYST, "analyst", ["acme-corp"], totp=False)
    _, _, codes = _enrol(console, ANALYST)
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = _sql(console, "SELECT code_id, code_hash, used_at FROM console_recovery_codes WHERE user_id = %s",
                  (user_id,))
    assert sorted(r[0] for r in stored) == sorted(c[:4] for c in codes)
    assert all(r[1].startswith("$argon2id$") and r[2] is None for r in stored)
    assert not any(c.replace("-", "")[4:] in r[1] for c in codes for r in stored)
    assert _sql(console, "SELECT after FROM console_audit WHERE action = 'user.totp_enrolled'") == \
        [({"recovery_codes": 10},)]


def test_a_recovery_code_signs_in_once(console):
    user_id = console.add_user(ANALYST, "analyst", ["acme-corp"], totp=False)
    _, _, codes = _enrol(console, ANALYST)
    console.clock.advance(60)
    client = _password_step(console, ANALYST)
    # Typed as read off paper: upper case, spaces instead of dashes.
    used = post_form(client, "/console/login/totp", "/console/login/totp",
                     {"recovery_code": codes[3].upper().replace("-", " ")})
    assert used.status_code == 302 and "/console/account" in used.headers["Location"]
    account = get(client, used.headers["Location"]).get_data(as_text=True)
    assert '<span id="recovery-left">9</span>' in account and "signed in with a recovery code" in account
    again = post_form(_password_step(console, ANALYST), "/console/login/totp", "/console/login/totp",
                      {"recovery_code": codes[3]})
    assert again.status_code == 401
    wrong = post_form(_password_step(console, ANALYST), "/console/login/totp", "/console/login/totp",
                      {"recovery_code": codes[4][:-1] + ("2" if codes[4][-1] != "2" else "3")})
    assert wrong.status_code == 401
    assert _sql(console, "SELECT count(*) FROM console_recovery_codes WHERE user_id = %s AND used_at IS NOT NULL",
                (user_id,)) == [(1,)]
    assert _sql(console, "SELECT actor, after FROM console_audit WHERE action = 'user.recovery_code_used'") == \
        [(ANALYST, {"recovery_codes_left": 9})]
    assert _sql(console, "SELECT count(*) FROM console_audit WHERE action = 'login.recovery_code_failed'") == [(2,)]


def test_regenerating_recovery_codes_is_audited_and_the_old_ones_stop_working(console):
    console.add_user(ANALYST, "analyst", ["acme-corp"], totp=False)
    client, _, old = _enrol(console, ANALYST)
    fresh = post_form(client, "/console/account", "/console/account/recovery-codes", {})
    assert fresh.status_code == 200
    new = CODES.findall(fresh.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    assert _sql(console, "SELECT actor, before, after FROM console_audit WHERE action = "
                         "'user.recovery_codes_regenerated'") == \
        [(ANALYST, {"recovery_codes_left": 10}, {"recovery_codes_left": 10})]
    console.clock.advance(60)
    refused = post_form(_password_step(console, ANALYST), "/console/login/totp", "/console/login/totp",
                        {"recovery_code": old[0]})
    assert refused.status_code == 401
    assert post_form(_password_step(console, ANALYST), "/console/login/totp", "/console/login/totp",
                     {"recovery_code": new[0]}).status_code == 302


def test_an_admin_reset_clears_the_authenticator_and_the_recovery_codes(console):
    user_id = console.add_user(ANALYST, "analyst", ["acme-corp"], totp=False)
    _enrol(console, ANALYST)
    console.add_user(ADMIN, "msp_admin", [])
    admin = console.client()
    console.login(admin, ADMIN)
    assert post_form(admin, "/console/users", f"/console/users/{user_id}/reset", {}).status_code == 200
    assert _sql(console, "SELECT totp_secret, totp_enabled FROM console_users WHERE user_id = %s",
                (user_id,)) == [(None, False)]
    assert _sql(console, "SELECT count(*) FROM console_recovery_codes WHERE user_id = %s", (user_id,)) == [(0,)]
    assert _sql(console, "SELECT after FROM console_audit WHERE action = 'user.reset'") == \
        [({"password": "reset", "totp": "cleared", "recovery_codes": "10 deleted", "passkeys": "0 deleted"},)]


# --- choosing a password: typed twice, then the sign-in page knows the e-mail ----------------------


def test_a_new_password_must_be_typed_twice_and_the_sign_in_page_then_has_the_email(console):
    from swordfish.console import store as console_store

    with console.deps.database.connection() as conn, conn.transaction():
        _, token = console_store.create_user(conn, AUDITOR, "auditor", ["acme-corp"])
    client = console.client()
    page = f"/console/invite/{token}"
    html = get(client, page).get_data(as_text=True)
    assert 'name="password_confirm"' in html and 'data-toggle-password="password password_confirm"' in html
    differ = post_form(client, page, page, {"password": "plume rivet canyon ledger",
                                            "password_confirm": "plume rivet canyon ledgr"})
    assert differ.status_code == 400 and "not the same" in differ.get_data(as_text=True)
    assert _sql(console, "SELECT password_hash FROM console_users WHERE email = %s", (AUDITOR,)) == [(None,)]
    done = post_form(client, page, page, {"password": "plume rivet canyon ledger",
                                          "password_confirm": "plume rivet canyon ledger"})
    assert done.status_code == 302 and done.headers["Location"] == "/console/login?email=auditor@acme.example"
    login = get(client, done.headers["Location"]).get_data(as_text=True)
    assert 'value="auditor@acme.example"' in login and 'id="password-saved"' in login


def test_the_sign_in_page_ignores_an_email_parameter_that_is_not_one(console):
    html = get(console.client(), "/console/login?email=%22%3E%3Cscript%3E").get_data(as_text=True)
    assert "<script>" not in html and 'value=""' in html and "password-saved" not in html
