"""The security headers on every console and API response; a strict CSP with no inline script."""

from __future__ import annotations

import requests

from tests.security.owasp.conftest import ANALYST

REQUIRED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


def _check_common(response: requests.Response, what: str) -> None:
    for name, value in REQUIRED.items():
        assert response.headers.get(name) == value, (what, name)
    # The console sends its own origin as Referer (its HTTPS CSRF check needs it); the API never.
    expected_referrer = "same-origin" if "/console" in what or what.startswith("/console") else "no-referrer"
    assert response.headers.get("referrer-policy") == expected_referrer, what
    assert response.headers["strict-transport-security"].startswith("max-age=63072000"), what
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, what
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, what


def test_console_responses_carry_the_headers_and_no_store_when_signed_in(site):
    anonymous = site.client()
    for path in ("/console/login", "/console/no-such-page", "/console/static/console.css"):
        _check_common(anonymous.get(path), path)
    analyst = site.login(ANALYST)
    for path in ("/console/", "/console/tenants/acme-corp/verdicts", "/console/users", "/console/tenants/globex/verdicts"):
        response = analyst.get(path)
        _check_common(response, path)
        assert response.headers["cache-control"] == "no-store", path
    csp = analyst.get("/console/").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "form-action 'self'" in csp and "base-uri 'none'" in csp


def test_api_responses_carry_the_headers_and_are_never_cached(site):
    key = site.api_key("acme-corp")
    for method, path, headers in (("GET", "/health", {}), ("GET", "/health/live", {}),
                                  ("GET", "/v1/tenants/acme-corp/verdicts", {}),
                                  ("GET", "/v1/tenants/acme-corp/verdicts", {"Authorization": f"Bearer {key}"}),
                                  ("GET", "/v1/tenants/acme-corp/verdicts/none", {"Authorization": f"Bearer {key}"}),
                                  ("GET", "/no/such/route", {})):
        response = requests.request(method, site.url + path, headers=headers, timeout=10)
        _check_common(response, path)
        assert response.headers["cache-control"] == "no-store", path
