"""The sign-in form's CSRF token without a server-side session (issue 26): every anonymous GET of
the login page used to create a 30-minute session in Redis only to hold Flask-WTF's token.

Double submit, signed: the page carries a random token, and a ``__Host-`` cookie (Secure, HttpOnly,
SameSite=Strict, path /) carries the same token signed with the console's secret key and timed
(itsdangerous, Flask's own signing library). The POST must bring both, matching, within 30 minutes;
only then is a session created (``app.start_session``). A cross-site page can neither read the
cookie nor make the browser send it (SameSite=Strict), and cannot forge a signed value.
"""

from __future__ import annotations

import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "__Host-swordfish-login"
MAX_AGE_SECONDS = 1800
_SALT = "swordfish-console-login-form"


def issue(secret_key: str) -> tuple[str, str]:
    """(the token for the form, the signed value for the cookie)."""
    token = secrets.token_urlsafe(32)
    return token, URLSafeTimedSerializer(secret_key, salt=_SALT).dumps(token)


def verify(secret_key: str, form_token: str | None, cookie_value: str | None) -> bool:
    if not form_token or not cookie_value:
        return False
    try:
        expected = URLSafeTimedSerializer(secret_key, salt=_SALT).loads(cookie_value, max_age=MAX_AGE_SECONDS)
    except BadSignature:  # also SignatureExpired
        return False
    return isinstance(expected, str) and hmac.compare_digest(expected.encode(), form_token.encode())
