"""Headless Chromium from Debian's packages, driven by Selenium (few, fast browser tests)."""

from __future__ import annotations

import shutil
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")


@contextmanager
def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert shutil.which("chromium") and shutil.which("chromedriver"), \
        "install Debian's chromium and chromium-driver (make install does when it runs as root)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(driver, base_url: str, email: str, password: str, totp_secret: str | None = None) -> None:
    """Password, then (for a user with a second factor) the authenticator code from ``totp_secret``."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base_url}/console/login")
    login_page = driver.current_url
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "sign-in").click()
    # click() returns before the form's navigation ends: wait for it (a hang guard, not a timing
    # assertion), or the caller reads the login page's URL on a busy machine. A refused login
    # stays on the login page, and the caller's own assertion then shows that page.
    try:
        WebDriverWait(driver, 30).until(lambda d: d.current_url != login_page
                                        and d.execute_script("return document.readyState") == "complete")
    except TimeoutException:
        pass
    if totp_secret and driver.current_url.endswith("/console/login/totp"):
        import pyotp

        driver.find_element(By.ID, "code").send_keys(pyotp.TOTP(totp_secret).now())
        driver.find_element(By.CSS_SELECTOR, "#totp-form button[type=submit]").click()
        try:
            WebDriverWait(driver, 30).until(lambda d: not d.current_url.endswith("/console/login/totp")
                                            and d.execute_script("return document.readyState") == "complete")
        except TimeoutException:
            pass
