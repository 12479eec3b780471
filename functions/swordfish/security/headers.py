"""The security headers every console and API response carries (one list for both)."""

from __future__ import annotations

# The console: scripts and styles only from our own origin, no inline script, nothing framed, no
# plugins; forms post only to ourselves. The API answers JSON: nothing at all may load.
CONSOLE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; frame-src 'self'; "
               "connect-src 'self'")
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

COMMON = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def console_headers(*, authenticated: bool) -> dict[str, str]:
    # same-origin, not no-referrer: over HTTPS Flask-WTF refuses a form post whose Referer is not
    # our own origin (a second CSRF check), so our own pages must send it; other sites get nothing.
    return {**COMMON, "Referrer-Policy": "same-origin", "Content-Security-Policy": CONSOLE_CSP,
            **(NO_STORE if authenticated else {})}


def api_headers() -> dict[str, str]:
    # Every API answer is per caller or about the service's state: never cached anywhere.
    return {**COMMON, "Content-Security-Policy": API_CSP, **NO_STORE}


def _narrow(csp: str) -> bool:
    """A route's CSP that starts from nothing and allows no script nor anything unsafe."""
    return csp.startswith("default-src 'none';") and "script-src" not in csp and "unsafe" not in csp


def add_api_headers(response: dict) -> dict:
    """Set the API's security headers on an API Gateway proxy response (single and multi-value)."""
    headers = response.get("headers") or {}
    multi = response.get("multiValueHeaders") or {}
    own_csp = headers.get("Content-Security-Policy") or " ".join(multi.get("Content-Security-Policy") or ())
    for key, value in api_headers().items():
        if key == "Content-Security-Policy" and _narrow(own_csp):
            value = own_csp  # a route's own policy (the HTML report allows its one stylesheet, by hash)
        headers[key] = value
        multi.pop(key, None)  # one value only, whatever a route set
    response["headers"] = headers
    return response
