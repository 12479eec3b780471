"""The second factor and the password form as a person meets them, in headless Chromium (Debian's):
an invited analyst chooses a password (typed twice, shown on request), finds the e-mail filled in
on the sign-in page, must enrol an authenticator (a QR code) and is shown the recovery codes once;
later sign-ins with an authenticator code and with a recovery code."""

from __future__ import annotations

import pyotp
import pytest
from swordfish.console import recovery, store

from tests.console.helpers import PASSWORD
from tests.console.test_console_admin_browser import _by, _wait, sign_out

ANALYST = "analyst@acme.example"
NEW_PASSWORD = "plume rivet canyon ledger"


def _field(driver, element_id: str):
    return driver.find_element(_by("ID"), element_id)


def _password_step(driver, base: str, email: str) -> None:
    driver.get(f"{base}/console/login")
    _field(driver, "email").send_keys(email)
    _field(driver, "password").send_keys(PASSWORD)
    _field(driver, "sign-in").click()
    _wait(driver, lambda d: d.current_url.endswith("/console/login/totp"))


def test_an_invited_analyst_chooses_a_password_then_must_enrol_and_gets_recovery_codes(console, served, browser):
    with console.deps.database.connection() as conn, conn.transaction():
        _, token = store.create_user(conn, ANALYST, "analyst", ["acme-corp"])
    driver = browser
    driver.get(f"{served}/console/invite/{token}")
    first, second = _field(driver, "password"), _field(driver, "password_confirm")
    first.send_keys(NEW_PASSWORD)
    second.send_keys(NEW_PASSWORD[:-1])
    assert "differ" in _field(driver, "password-match").text
    toggle = _field(driver, "show-password")
    toggle.click()
    assert (first.get_attribute("type"), second.get_attribute("type")) == ("text", "text")
    assert first.get_attribute("value") == NEW_PASSWORD  # what was typed is what is shown
    toggle.click()
    assert (first.get_attribute("type"), second.get_attribute("type")) == ("password", "password")
    second.send_keys(NEW_PASSWORD[-1])
    assert "match" in _field(driver, "password-match").text
    _field(driver, "save-password").click()
    _wait(driver, lambda d: "/console/login" in d.current_url)
    # The sign-in page knows who just chose a password: only the password is typed.
    assert _field(driver, "email").get_attribute("value") == ANALYST
    _field(driver, "password").send_keys(NEW_PASSWORD)
    _field(driver, "sign-in").click()
    _wait(driver, lambda d: d.current_url.endswith("/console/login/totp/enrol"))
    assert _field(driver, "totp-qr").get_attribute("src").startswith("data:image/png;base64,")
    driver.get(f"{served}/console/")  # nothing else before enrolling
    _wait(driver, lambda d: "/console/login" in d.current_url)
    driver.get(f"{served}/console/login/totp/enrol")
    secret = driver.find_element(_by("CSS_SELECTOR"), "code.secret").text
    _field(driver, "code").send_keys(pyotp.TOTP(secret).at(console.clock.now))
    driver.find_element(_by("CSS_SELECTOR"), "form button[type=submit]").click()
    _wait(driver, lambda d: d.find_elements(_by("ID"), "recovery-codes"))
    codes = [li.text for li in driver.find_elements(_by("CSS_SELECTOR"), "#recovery-codes code")]
    assert len(codes) == 10 and all(recovery.split(c) for c in codes)
    _field(driver, "continue").click()
    _wait(driver, lambda d: d.current_url.endswith("/console/"))
    assert ANALYST in driver.find_element(_by("CSS_SELECTOR"), ".who").text


@pytest.mark.parametrize("factor", ["authenticator", "recovery code"])
def test_signing_in_with_an_authenticator_code_or_a_recovery_code(console, served, browser, factor):
    user_id = console.add_user(ANALYST, "analyst", ["acme-corp"])
    codes = recovery.generate()
    with console.deps.database.connection() as conn, conn.transaction():
        store.replace_recovery_codes(conn, user_id, recovery.hashed(codes))
    driver = browser
    _password_step(driver, served, ANALYST)
    if factor == "authenticator":
        _field(driver, "code").send_keys(console.totp_code(ANALYST))
        driver.find_element(_by("CSS_SELECTOR"), "#totp-form button[type=submit]").click()
        _wait(driver, lambda d: d.current_url.endswith("/console/"))
    else:
        _field(driver, "recovery_code").send_keys(codes[0])
        _field(driver, "use-recovery-code").click()
        _wait(driver, lambda d: "/console/account" in d.current_url)
        assert _field(driver, "recovery-left").text == "9"
        sign_out(driver, served)
        _password_step(driver, served, ANALYST)  # the same code a second time
        _field(driver, "recovery_code").send_keys(codes[0])
        _field(driver, "use-recovery-code").click()
        _wait(driver, lambda d: d.find_elements(_by("CSS_SELECTOR"), "p.error"))
        assert "already used" in driver.find_element(_by("CSS_SELECTOR"), "p.error").text
