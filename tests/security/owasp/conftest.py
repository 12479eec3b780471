"""The real API and the real console behind the local API gateway, on the embedded stack.

Requests go over HTTP to ``devstack/gateway.py``, which builds API Gateway proxy events for the
API handler and, under /console, for the console handler (Flask behind apig-wsgi), as on AWS.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

import psycopg
import pyotp
import pytest
import requests
from swordfish.console import passwords, store
from swordfish.security.totp_keys import TotpSecretBox
from swordfish.store.database import proxy_connect

from devstack.gateway import make_server
from tests.console.helpers import CSRF, PASSWORD

SESSION = "__Host-swordfish-console"
ADMIN, ANALYST, AUDITOR, GLOBEX_ANALYST = ("admin@msp.example", "analyst@acme.example", "auditor@acme.example",
                                           "analyst@globex.example")


class WebClient:
    """A cookie-keeping HTTP client. Cookies are kept by hand: the console's cookies are Secure
    (and __Host-), which http.cookiejar would never send back over the local http:// gateway."""

    def __init__(self, base_url: str, source_ip: str | None = None):
        self.base_url, self.cookies, self.source_ip = base_url, {}, source_ip

    def request(self, method: str, path: str, *, data=None, headers: dict | None = None, **kwargs) -> requests.Response:
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = requests.request(method, self.base_url + path, data=data, headers=sent,
                                    allow_redirects=False, timeout=20, **kwargs)
        for raw in response.raw.headers.getlist("Set-Cookie"):
            cookie = SimpleCookie()
            cookie.load(raw)
            for name, morsel in cookie.items():
                if morsel.value == "" or morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        response.set_cookie_headers = response.raw.headers.getlist("Set-Cookie")
        return response

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def token(self, page: str) -> str:
        match = CSRF.search(self.get(page).text)
        assert match, f"no CSRF token on {page}"
        return match.group(1)

    def post_form(self, page: str, action: str, data: dict, *, with_token: bool = True, **kwargs) -> requests.Response:
        form = dict(data)
        if with_token:
            form["csrf_token"] = self.token(page)
        return self.request("POST", action, data=form, **kwargs)


@dataclass
class Site:
    url: str
    stack: object
    users: dict  # email -> (user_id, totp secret)
    logins: dict = field(default_factory=dict)  # email -> sign-ins so far in this test

    def client(self) -> WebClient:
        return WebClient(self.url)

    def login(self, email: str, password: str = PASSWORD) -> WebClient:
        client = self.client()
        response = client.post_form("/console/login", "/console/login", {"email": email, "password": password})
        assert response.status_code == 302, response.text
        if response.headers["Location"].endswith("/console/login/totp"):
            # A code is accepted once: a second sign-in of the same user in the same 30 s uses the
            # next step's code (the console accepts one step of drift either way).
            earlier = self.logins.get(email, 0)
            self.logins[email] = earlier + 1
            code = pyotp.TOTP(self.users[email][1]).at(time.time() + 30 * earlier)
            response = client.post_form("/console/login/totp", "/console/login/totp", {"code": code})
            assert response.status_code == 302, response.text
        return client

    def sql(self, query: str, params=()) -> list:
        with psycopg.connect(self.stack.info.superuser_url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def api_key(self, tenant: str) -> str:
        return self.stack.info.api_keys[tenant]


def _forget_counters(stack) -> None:
    """Login throttles, sessions and API limits (shared 127.0.0.1 source) start empty in each test;
    the stack's other Redis data (threat indicators) stays."""
    client = stack.redis.server
    for pattern in ("swordfish:console:*", "swordfish:api:limit:*"):
        for key in client.keys(pattern):
            client.delete(key)


def _reset_console(stack) -> dict:
    with psycopg.connect(stack.info.superuser_url, autocommit=True) as conn:
        conn.execute("TRUNCATE console_audit, verdict_feedback, verdict_releases, mailbox_quarantines, console_user_tenants, "
                     "console_recovery_codes, console_passkeys, console_users")
    _forget_counters(stack)
    users = {}
    hashed = passwords.hash_password(PASSWORD)
    with proxy_connect(stack.info.owner_url) as conn, conn.transaction():
        for email, role, tenants in ((ADMIN, "msp_admin", []), (ANALYST, "analyst", ["acme-corp"]),
                                     (AUDITOR, "auditor", ["acme-corp"]), (GLOBEX_ANALYST, "analyst", ["globex"])):
            user_id, _ = store.create_user(conn, email, role, tenants, password_hash=hashed)
            secret = None
            if role in store.RELEASE_ROLES:  # every role that can release mail has a second factor
                secret = pyotp.random_base32()
                store.set_totp(conn, user_id, secret, True, box=TotpSecretBox())  # the stack's keys (moto)
            users[email] = (user_id, secret)
    return users


@pytest.fixture()
def site(stack_env):
    from handlers import api, console
    from swordfish import wiring

    wiring.reset()
    console._wsgi.reset()
    users = _reset_console(stack_env)
    server = make_server(api.handler, port=0, console_handler=console.handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}", stack_env, users)
    finally:
        server.shutdown()
        server.server_close()
        _forget_counters(stack_env)
        wiring.reset()
        console._wsgi.reset()
