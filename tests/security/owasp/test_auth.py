"""Brute force, password rules, TOTP, session lifecycle: the console over the real gateway."""

from __future__ import annotations

from swordfish.console import store
from swordfish.store.database import proxy_connect

from tests.console.helpers import PASSWORD
from tests.security.owasp.conftest import ADMIN, ANALYST, AUDITOR, GLOBEX_ANALYST, SESSION


def _login(client, email, password):
    return client.post_form("/console/login", "/console/login", {"email": email, "password": password})


def test_brute_force_is_stopped_and_audited_even_with_the_right_password(site):
    attacker = site.client()
    statuses = [_login(attacker, ANALYST, f"wrong guess number {i}").status_code for i in range(5)]
    assert statuses == [401] * 5
    locked = _login(attacker, ANALYST, PASSWORD)
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["Retry-After"]) <= 900
    assert SESSION not in attacker.cookies or attacker.get("/console/").status_code == 302
    # Rotating X-Forwarded-For does not make a new source: the gateway's sourceIp is used.
    spoofed = attacker.post_form("/console/login", "/console/login", {"email": ANALYST, "password": PASSWORD},
                                 headers={"X-Forwarded-For": "203.0.113.99"})
    assert spoofed.status_code == 429
    audit = dict(site.sql("SELECT action, count(*) FROM console_audit WHERE actor = %s GROUP BY action", (ANALYST,)))
    assert audit == {"login.failed": 5, "login.throttled": 2}
    last = site.sql("SELECT after FROM console_audit WHERE action = 'login.failed' ORDER BY audit_id DESC LIMIT 1")
    assert last[0][0]["locked"] == ["pair"]


def test_guessing_unknown_accounts_looks_like_a_wrong_password(site):
    client = site.client()
    unknown = _login(client, "nobody@nowhere.example", "whatever password 1")
    known = _login(client, GLOBEX_ANALYST, "whatever password 1")
    assert unknown.status_code == known.status_code == 401
    assert "Wrong e-mail or password." in unknown.text and "Wrong e-mail or password." in known.text


def test_password_rules_follow_nist_and_hashes_are_argon2id(site):
    admin = site.login(ADMIN)
    response = admin.post_form("/console/users", "/console/users",
                               {"email": "new.analyst@acme.example", "role": "auditor", "tenants": "acme-corp"})
    assert response.status_code == 200
    link = response.text.split('id="invite-link">')[1].split("<")[0]
    path = link[link.index("/console/invite/"):]
    invitee = site.client()
    for bad, why in (("short pass", "at least 12"), ("password1234", "common or breached"),
                     ("new.analyst-2026!", "your e-mail")):
        refused = invitee.post_form(path, path, {"password": bad, "password_confirm": bad})
        assert refused.status_code == 400 and why in refused.text, bad
    # No composition rules: a long lowercase passphrase is fine.
    chosen = "tangerine ladder quietly"
    assert invitee.post_form(path, path, {"password": chosen, "password_confirm": chosen}).status_code == 302
    stored = site.sql("SELECT password_hash FROM console_users WHERE email = 'new.analyst@acme.example'")[0][0]
    assert stored.startswith("$argon2id$")
    assert invitee.get(path).status_code == 404  # the link works once
    signed_in = site.login("new.analyst@acme.example", "tangerine ladder quietly")
    assert signed_in.get("/console/tenants/acme-corp/verdicts").status_code == 200


def test_msp_admins_need_their_totp_code(site):
    client = site.client()
    response = _login(client, ADMIN, PASSWORD)
    assert response.status_code == 302 and response.headers["Location"].endswith("/console/login/totp")
    assert client.get("/console/").status_code == 302  # half signed in is not signed in
    wrong = client.post_form("/console/login/totp", "/console/login/totp", {"code": "000000"})
    assert wrong.status_code == 401
    assert site.sql("SELECT count(*) FROM console_audit WHERE action = 'login.totp_failed'")[0][0] == 1


def test_an_admin_without_totp_must_enrol_before_signing_in(site):
    with proxy_connect(site.stack.info.owner_url) as conn, conn.transaction():
        store.set_totp(conn, site.users[ADMIN][0], None, False)
    client = site.client()
    response = _login(client, ADMIN, PASSWORD)
    assert response.headers["Location"].endswith("/console/login/totp/enrol")
    page = client.get("/console/login/totp/enrol").text
    secret = page.split('class="secret">')[1].split("<")[0]
    import pyotp

    done = client.post_form("/console/login/totp/enrol", "/console/login/totp/enrol", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200 and 'id="recovery-codes"' in done.text  # shown once, then on
    assert client.get("/console/users").status_code == 200
    assert site.sql("SELECT totp_enabled FROM console_users WHERE email = %s", (ADMIN,))[0][0] is True


def test_session_cookie_is_strict_rotated_at_login_and_dead_after_logout(site):
    client = site.client()
    client.get("/console/login")
    before = client.cookies.get(SESSION)
    response = _login(client, AUDITOR, PASSWORD)  # a role without a second factor: the password signs in
    cookie = next(c for c in response.set_cookie_headers if c.startswith(SESSION + "="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    after = client.cookies[SESSION]
    assert after != before  # a new id at login: no session fixation
    old = site.client()
    old.cookies[SESSION] = before
    assert old.get("/console/").status_code == 302
    assert client.get("/console/").status_code == 200
    stolen = dict(client.cookies)
    assert client.post_form("/console/", "/console/logout", {}).status_code == 302
    replay = site.client()
    replay.cookies.update(stolen)
    response = replay.get("/console/tenants/acme-corp/verdicts")
    assert response.status_code == 302 and "/console/login" in response.headers["Location"]


def test_a_password_change_ends_every_session_of_that_user(site):
    laptop, phone = site.login(AUDITOR), site.login(AUDITOR)
    changed = laptop.post_form("/console/account", "/console/account",
                               {"current_password": PASSWORD, "new_password": "a brand new passphrase",
                                "new_password_confirm": "a brand new passphrase"})
    assert changed.status_code == 302
    assert phone.get("/console/").status_code == 302
    assert laptop.get("/console/").status_code == 302
    assert site.login(AUDITOR, "a brand new passphrase").get("/console/").status_code == 200


def test_a_disabled_user_is_signed_out_at_once(site):
    analyst = site.login(ANALYST)
    admin = site.login(ADMIN)
    user_id = site.users[ANALYST][0]
    assert admin.post_form("/console/users", f"/console/users/{user_id}/disable", {}).status_code == 302
    assert analyst.get("/console/").status_code == 302
    assert _login(site.client(), ANALYST, PASSWORD).status_code == 401
