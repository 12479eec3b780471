"""Passkeys (WebAuthn, py_webauthn): added on the account page and a whole sign-in on the sign-in page,
in headless Chromium with its virtual authenticator (WebDriver's, which chromedriver drives through
CDP's WebAuthn domain); hostile answers get a clear 400/401, never a 500."""

from __future__ import annotations

import psycopg
import pytest

from tests.console.helpers import get, post_form
from tests.console.test_console_admin_browser import _by, _wait, sign_in, sign_out

ANALYST = "analyst@acme.example"


def _sql(console, query, params=()):
    with psycopg.connect(console.superuser_url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture()
def authenticator(browser):
    """A platform authenticator with user verification (a laptop's fingerprint reader), for one test."""
    from selenium.webdriver.common.virtual_authenticator import Protocol, Transport, VirtualAuthenticatorOptions

    browser.add_virtual_authenticator(VirtualAuthenticatorOptions(
        protocol=Protocol.CTAP2, transport=Transport.INTERNAL, has_resident_key=True, has_user_verification=True,
        is_user_consenting=True, is_user_verified=True))
    yield browser
    browser.remove_virtual_authenticator()


def test_an_analyst_adds_a_passkey_and_signs_in_with_it_alone(console, served, authenticator):
    driver = authenticator
    user_id = console.add_user(ANALYST, "analyst", ["acme-corp"])
    sign_in(driver, served, console, ANALYST)  # password and authenticator code
    driver.get(f"{served}/console/account")
    driver.find_element(_by("ID"), "passkey-name").send_keys("work laptop")
    driver.find_element(_by("ID"), "add-passkey").click()
    _wait(driver, lambda d: d.find_elements(_by("CSS_SELECTOR"), "#passkey-list .passkey-name")
          or d.find_element(_by("ID"), "passkey-status").text)
    assert driver.find_element(_by("ID"), "passkey-status").text == ""
    assert driver.find_element(_by("CSS_SELECTOR"), "#passkey-list .passkey-name").text == "work laptop"
    assert len(driver.get_credentials()) == 1  # the private key is on the (virtual) device only
    sign_out(driver, served)

    driver.find_element(_by("ID"), "passkey-sign-in").click()  # no e-mail, no password, no code
    _wait(driver, lambda d: d.current_url.endswith("/console/") or d.find_element(_by("ID"), "passkey-status").text)
    assert driver.current_url.endswith("/console/"), driver.find_element(_by("ID"), "passkey-status").text
    assert ANALYST in driver.find_element(_by("CSS_SELECTOR"), ".who").text
    assert _sql(console, "SELECT name, sign_count >= 0, last_used_at IS NOT NULL FROM console_passkeys "
                         "WHERE user_id = %s", (user_id,)) == [("work laptop", True, True)]
    actions = [r[0] for r in _sql(console, "SELECT action FROM console_audit WHERE actor = %s ORDER BY audit_id",
                                  (ANALYST,))]
    assert "user.passkey_added" in actions and actions[-1] == "login.ok"

    # Removed on the account page: it signs in no more.
    driver.get(f"{served}/console/account")
    driver.find_element(_by("CSS_SELECTOR"), "#passkey-list button.danger").click()
    driver.switch_to.alert.accept()
    _wait(driver, lambda d: not d.find_elements(_by("CSS_SELECTOR"), "#passkey-list .passkey-name"))
    sign_out(driver, served)
    driver.find_element(_by("ID"), "passkey-sign-in").click()
    _wait(driver, lambda d: d.find_element(_by("ID"), "passkey-status").text)
    assert "not registered" in driver.find_element(_by("ID"), "passkey-status").text
    assert _sql(console, "SELECT count(*) FROM console_audit WHERE action = 'login.passkey_failed'") == [(1,)]


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"credential": "x"}', b'{"credential": {}}',
                                  b'{"credential": {"id": "AAAA", "rawId": "AAAA", "type": "public-key", '
                                  b'"response": {}}}', "\u0000".encode()])
def test_hostile_passkey_answers_are_refused_cleanly(console, body):
    client = console.client()
    assert client.post("/console/login/passkey", data=body, base_url="https://localhost").status_code == 400
    options = client.post("/console/login/passkey/options", data=b"{}", base_url="https://localhost")
    assert options.status_code == 200 and options.json["rpId"] == "localhost"
    refused = client.post("/console/login/passkey", data=body, base_url="https://localhost")
    assert refused.status_code == 401 and "did not sign you in" in refused.json["error"]
    assert get(client, "/console/").status_code == 302  # not signed in


def test_adding_a_passkey_needs_a_signed_in_user_and_the_csrf_token(console):
    console.add_user(ANALYST, "analyst", ["acme-corp"])
    anonymous = console.client()
    assert anonymous.post("/console/account/passkeys/options", base_url="https://localhost").status_code in (302, 400)
    client = console.client()
    console.login(client, ANALYST)
    no_token = client.post("/console/account/passkeys/options", base_url="https://localhost",
                           headers={"Referer": "https://localhost/console/account"})
    assert no_token.status_code == 400
    assert post_form(client, "/console/account", "/console/account/passkeys", {}).status_code == 400  # nothing begun
