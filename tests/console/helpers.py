"""A console on the test database and Redis, with an injected clock, and a signed-in browser-like client."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyotp
import redis
from swordfish.console import passwords, store
from swordfish.console.app import ConsoleDependencies, create_app
from swordfish.security.totp_keys import TotpSecretBox
from swordfish.store.database import Database, proxy_connect
from swordfish.store.tenants import create_tenant
from swordfish.store.verdicts import VerdictRecord, save_verdicts

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class KeyRing:
    """The TOTP key secret's value as a list (newest first) a test can rotate."""

    materials: list[str] = field(default_factory=lambda: ["test-totp-key-one-" + "a" * 32])

    def __call__(self, refresh: bool = False) -> list[str]:
        return list(self.materials)


@dataclass
class Harness:
    app: object
    deps: ConsoleDependencies
    clock: Clock
    owner_url: str
    superuser_url: str
    users: dict = field(default_factory=dict)  # email -> (user_id, totp secret or None)
    totp_keys: KeyRing = field(default_factory=KeyRing)

    def add_user(self, email: str, role: str, tenants: list[str], *, totp: bool | None = None) -> int:
        with self.deps.database.connection() as conn, conn.transaction():
            user_id, _ = store.create_user(conn, email, role, tenants, password_hash=passwords.hash_password(PASSWORD))
            secret = None
            if totp if totp is not None else role in store.RELEASE_ROLES:  # the roles that must have it
                secret = pyotp.random_base32()
                store.set_totp(conn, user_id, secret, True, box=self.deps.totp_box)
        self.users[email] = (user_id, secret)
        return user_id

    def client(self, source_ip: str = "198.51.100.7"):
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = source_ip
        return client

    def totp_code(self, email: str, offset_steps: int = 0) -> str:
        return pyotp.TOTP(self.users[email][1]).at(self.clock.now + 30 * offset_steps)

    def login(self, client, email: str, password: str = PASSWORD, *, totp: bool = True):
        response = post_form(client, "/console/login", "/console/login", {"email": email, "password": password})
        if response.status_code == 302 and response.headers["Location"].endswith("/console/login/totp") and totp:
            response = post_form(client, "/console/login/totp", "/console/login/totp",
                                 {"code": self.totp_code(email)})
        return response


def csrf_token(client, page: str) -> str:
    html = client.get(page, base_url="https://localhost").get_data(as_text=True)
    match = CSRF.search(html)
    assert match, f"no CSRF token on {page}"
    return match.group(1)


def post_form(client, page: str, action: str, data: dict, *, with_token: bool = True):
    form = dict(data)
    if with_token:
        form["csrf_token"] = csrf_token(client, page)
    return client.post(action, data=form, base_url="https://localhost",
                       headers={"Referer": f"https://localhost{page}"})


def get(client, path: str):
    return client.get(path, base_url="https://localhost")


def make_harness(database, redis_url: str) -> Harness:
    database.reset()
    clock = Clock()
    totp_keys = KeyRing()
    deps = ConsoleDependencies(database=Database(database.app_url, max_size=2),
                               redis=redis.Redis.from_url(redis_url), secret_key="test-secret-key-" + "x" * 20,
                               clock=clock, totp_box=TotpSecretBox(totp_keys))
    app = create_app(deps)
    app.config["SERVER_NAME"] = "localhost"
    with proxy_connect(database.owner_url) as conn:
        for tenant in ("acme-corp", "globex"):
            with conn.transaction():
                create_tenant(conn, tenant, tenant.title(), {"domains": [f"{tenant}.example"]})
    return Harness(app, deps, clock, database.owner_url, database.superuser_url, totp_keys=totp_keys)


def add_verdict(owner_url: str, tenant: str, message_id: str, *, verdict: str = "phishing",
                subject: str = "hello", sender: str = "x@evil.example", reasons: list | None = None) -> None:
    from datetime import UTC, datetime

    with proxy_connect(owner_url) as conn, conn.transaction():
        save_verdicts(conn, [VerdictRecord(
            tenant_id=tenant, message_id=message_id, verdict=verdict, score=9.5,
            reasons=reasons or [{"name": "CREDENTIAL_PHISHING_LANGUAGE", "weight": 4.0, "evidence": "verify your account"}],
            parse_problems=[], subject=subject, sender=sender, submitted_at=datetime.now(UTC), sqs_sent_at=None)])
