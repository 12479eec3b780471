"""Reflected and stored XSS: hostile text is rendered as text, proven in a real browser; the CSP
is present and enforced."""

from __future__ import annotations

from urllib.parse import quote

from tests.console.helpers import PASSWORD, add_verdict
from tests.security.owasp.browser import chromium, sign_in
from tests.security.owasp.conftest import ANALYST, AUDITOR

HOSTILE_SUBJECT = '<script>window.__pwned = 1; document.title = "pwned"</script><img src=x onerror="window.__pwned=2">'
HOSTILE_SENDER = '"><svg onload=window.__pwned=3>@evil.example'


def test_a_phishing_subject_with_script_is_stored_and_shown_as_text(site):
    add_verdict(site.stack.info.owner_url, "acme-corp", "<xss-1@evil.example>", subject=HOSTILE_SUBJECT,
                sender=HOSTILE_SENDER, reasons=[{"name": "X", "weight": 1, "evidence": "<b onmouseover=alert(1)>"}])
    analyst = site.login(ANALYST)
    for path in ("/console/tenants/acme-corp/verdicts",
                 "/console/tenants/acme-corp/verdicts/" + quote("<xss-1@evil.example>")):
        html = analyst.get(path).text
        assert "<script>window.__pwned" not in html and "<img src=x" not in html and "<svg onload" not in html
        assert "&lt;script&gt;window.__pwned" in html
    assert "&lt;b onmouseover=alert(1)&gt;" in html


def test_reflected_input_is_escaped_and_next_cannot_leave_the_console(site):
    analyst = site.login(ANALYST)
    probe = '"><script>alert(1)</script>'
    html = analyst.get("/console/tenants/acme-corp/verdicts?subject=" + quote(probe)).text
    assert "<script>alert(1)</script>" not in html and "&#34;&gt;&lt;script&gt;" in html
    login_page = site.client().get("/console/login?next=" + quote('"><script>alert(1)</script>')).text
    assert "<script>alert(1)</script>" not in login_page
    client = site.client()
    response = client.post_form("/console/login", "/console/login",
                                {"email": AUDITOR, "password": PASSWORD, "next": "//evil.example/steal"})
    assert response.headers["Location"] == "/console/"


def test_in_a_real_browser_the_script_subject_renders_as_text_and_inline_script_is_blocked(site):
    add_verdict(site.stack.info.owner_url, "acme-corp", "<xss-2@evil.example>", subject=HOSTILE_SUBJECT,
                sender=HOSTILE_SENDER)
    from selenium.webdriver.common.by import By

    with chromium() as driver:
        sign_in(driver, site.url, ANALYST, PASSWORD, site.users[ANALYST][1])
        assert driver.current_url.endswith("/console/"), driver.page_source[:500]
        driver.get(f"{site.url}/console/tenants/acme-corp/verdicts")
        link = driver.find_element(By.CSS_SELECTOR, "a.subject")
        assert link.text == HOSTILE_SUBJECT
        link.click()
        assert driver.find_element(By.ID, "subject").text == HOSTILE_SUBJECT
        assert driver.execute_script("return window.__pwned === undefined")
        assert driver.title != "pwned"
        # Our own script (same origin) runs; an inline script put into the page does not: the CSP holds.
        assert driver.execute_script("return document.documentElement.dataset.consoleScript") == "loaded"
        violated = driver.execute_script("""
            window.__violations = [];
            document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective));
            const s = document.createElement('script');
            s.textContent = 'window.__inline_ran = true';
            document.body.appendChild(s);
            return window.__inline_ran === undefined;""")
        assert violated
        directives = driver.execute_script("return window.__violations")
        assert directives and directives[0].startswith("script-src")
