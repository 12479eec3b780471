"""What a person clicks, in headless Chromium (Debian's), against the console on the test database:
the feedback buttons' confirmation says what the click does to the lists, the entry then shows on the
policy page and is removed there; a rotation shows the replacement's expiry; a new tenant is added.
One browser for the module (starting Chromium is the slow part)."""

from __future__ import annotations

from tests.console.helpers import add_verdict

ADMIN, ANALYST = "admin@msp.example", "analyst@acme.example"


def _by(kind):
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def _wait(driver, predicate, timeout=20):
    """Until ``predicate`` holds on a loaded page (a hang guard of ``timeout`` s). An element read while
    the page is replaced (a script's redirect) is stale: asked again, not a failure. Chromium says so in
    two ways: a stale reference, or an inspector error that the node "does not belong to the document"."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def holds(d) -> bool:
        try:
            return bool(predicate(d)) and d.execute_script("return document.readyState") == "complete"
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return False
            raise

    WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)).until(
        holds)


def sign_in(driver, base: str, console, email: str) -> None:
    driver.get(f"{base}/console/login")
    driver.find_element(_by("ID"), "email").send_keys(email)
    driver.find_element(_by("ID"), "password").send_keys("correct horse battery staple")
    driver.find_element(_by("ID"), "sign-in").click()
    _wait(driver, lambda d: "/console/login" != d.current_url.split("?")[0].removeprefix(base))
    if driver.current_url.endswith("/console/login/totp"):
        driver.find_element(_by("ID"), "code").send_keys(console.totp_code(email))
        driver.find_element(_by("CSS_SELECTOR"), "form button[type=submit]").click()
        _wait(driver, lambda d: not d.current_url.endswith("/login/totp"))
    assert driver.current_url.endswith("/console/"), driver.page_source[:300]


def sign_out(driver, base: str) -> None:
    driver.get(f"{base}/console/")
    driver.find_element(_by("ID"), "logout").click()
    _wait(driver, lambda d: "/console/login" in d.current_url)


def click_and_accept(driver, button) -> str:
    """Click a button that asks first; the question's text, accepted."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    button.click()
    alert = WebDriverWait(driver, 10).until(expected_conditions.alert_is_present())
    text = alert.text
    alert.accept()
    _wait(driver, lambda d: True)
    return text


def test_mark_legitimate_says_what_it_does_and_its_entry_is_removed_on_the_policy_page(console, served, browser):
    add_verdict(console.owner_url, "acme-corp", "m-1", verdict="phishing", sender="ceo@partner.example",
                subject="quarterly numbers")
    console.add_user(ANALYST, "analyst", ["acme-corp"])
    console.add_user(ADMIN, "msp_admin", [])
    driver = browser
    sign_in(driver, served, console, ANALYST)
    driver.get(f"{served}/console/tenants/acme-corp/verdicts/m-1")
    assert "ceo@partner.example" in driver.find_element(_by("ID"), "feedback-effect").text
    button = driver.find_element(_by("CSS_SELECTOR"), "button[value=mark_legitimate]")
    question = click_and_accept(driver, button)
    assert "ceo@partner.example" in question and "allow list" in question
    _wait(driver, lambda d: d.find_elements(_by("ID"), "overridden"))
    assert "legitimate" in driver.find_element(_by("ID"), "overridden").text
    sign_out(driver, served)

    sign_in(driver, served, console, ADMIN)
    driver.get(f"{served}/console/tenants/acme-corp/policy")
    table = driver.find_element(_by("ID"), "feedback-entries")
    assert "ceo@partner.example" in table.text and ANALYST in table.text
    question = click_and_accept(driver, table.find_element(_by("CSS_SELECTOR"), "button.danger"))
    assert "allow list" in question
    _wait(driver, lambda d: "ceo@partner.example" not in d.find_element(_by("ID"), "feedback-entries").text)


def test_an_admin_adds_a_tenant_and_rotates_a_key_keeping_its_expiry(console, served, browser):
    console.add_user(ADMIN, "msp_admin", [])
    driver = browser
    sign_in(driver, served, console, ADMIN)
    driver.find_element(_by("ID"), "add-tenant").click()
    _wait(driver, lambda d: d.current_url.endswith("/console/tenants/new"))
    driver.find_element(_by("ID"), "tenant_id").send_keys("initech")
    driver.find_element(_by("ID"), "name").send_keys("Initech")
    driver.find_element(_by("ID"), "domains").send_keys("initech.example")
    driver.find_element(_by("ID"), "block_list").send_keys("*.evil.example")
    driver.find_element(_by("CSS_SELECTOR"), "form.card button[type=submit]").click()
    _wait(driver, lambda d: d.find_elements(_by("ID"), "errors"))
    assert "*.evil.example" in driver.find_element(_by("ID"), "errors").text
    block = driver.find_element(_by("ID"), "block_list")
    block.clear()
    block.send_keys("evil.example")
    driver.find_element(_by("CSS_SELECTOR"), "form.card button[type=submit]").click()
    _wait(driver, lambda d: d.find_elements(_by("ID"), "saved"))
    assert "/console/tenants/initech/policy" in driver.current_url

    driver.get(f"{served}/console/tenants/initech/keys")
    driver.find_element(_by("ID"), "expires_days").clear()
    driver.find_element(_by("ID"), "expires_days").send_keys("90")
    driver.find_element(_by("CSS_SELECTOR"), "form.card button[type=submit]").click()
    _wait(driver, lambda d: d.find_elements(_by("ID"), "new-key"))
    rotate = driver.find_element(_by("XPATH"), "//button[text()='Rotate']")
    revoke = driver.find_element(_by("XPATH"), "//button[text()='Revoke']")
    assert rotate.value_of_css_property("background-color") != revoke.value_of_css_property("background-color")
    question = click_and_accept(driver, rotate)
    assert "90 days" in question
    _wait(driver, lambda d: "replaced by" in d.page_source)
    assert "expires" in driver.find_element(_by("CSS_SELECTOR"), "p.notice").text
