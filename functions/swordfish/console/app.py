"""The console's Flask application: sessions, CSRF, headers, who the caller is and what they may do.

Flask was chosen over Django (see README "The MSP console"): the console reads and writes the same
PostgreSQL tables as the pipeline through psycopg, with our migrations and row-level security, so
Django's ORM, its auth tables and its migrations would be a second schema to keep in step; and a
Lambda cold start of Flask plus four small extensions is a fraction of Django's. The security
pieces are the established libraries, not our own: Flask-Session (server-side sessions in Redis),
Flask-WTF (CSRF), argon2-cffi (argon2id), pyotp (TOTP), nh3 (HTML sanitising).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import wraps
from typing import Any

import redis
from flask import Flask, abort, g, redirect, request, session, url_for
from flask_session import Session
from flask_wtf.csrf import CSRFError, CSRFProtect

from swordfish.console import store
from swordfish.console.throttle import LoginThrottle
from swordfish.security.headers import console_headers
from swordfish.security.totp_keys import TotpSecretBox
from swordfish.store.database import Database

PREFIX = "/console"
SESSION_COOKIE = "__Host-swordfish-console"  # __Host-: Secure, path /, no Domain: no subdomain can set it


@dataclass
class ConsoleDependencies:
    database: Database
    redis: redis.Redis
    secret_key: str
    clock: Callable[[], float] = time.time
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    totp_for_all: bool = False
    flag_admin: Callable[[str], Any] | None = None  # actor -> FlagAdmin (the audited path)
    flag_document: Callable[[], tuple[str, dict]] | None = None  # (version, deployed document)
    health_report: Callable[[str], tuple[int, dict]] | None = None  # "ready" | "deep" -> (status, body)
    # Factories, called on first use: () -> an object with .load(tenant_id, message_id, archive
    # key, line) -> raw bytes (integrations.message_content), and () -> a pipeline.ports.Releaser
    # (Nango behind the remediation breaker); None or a None result: not configured here.
    message_source: Callable[[], Any] | None = None
    releaser: Callable[[], Any] | None = None
    totp_box: TotpSecretBox = field(default_factory=TotpSecretBox)  # keys from Secrets Manager
    extra: dict = field(default_factory=dict)


def create_app(deps: ConsoleDependencies) -> Flask:
    app = Flask(__name__, static_url_path=f"{PREFIX}/static")
    app.config.update(
        SECRET_KEY=deps.secret_key,
        SESSION_TYPE="redis",
        SESSION_REDIS=deps.redis,
        SESSION_KEY_PREFIX="swordfish:console:session:",
        SESSION_PERMANENT=True,
        PERMANENT_SESSION_LIFETIME=deps.idle,  # Redis forgets an idle session by itself
        SESSION_REFRESH_EACH_REQUEST=True,
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session that holds it
        WTF_CSRF_SSL_STRICT=True,  # HTTPS posts must come with our own Referer
        MAX_CONTENT_LENGTH=256 * 1024,
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.extensions["swordfish"] = deps
    Session(app)
    app.jinja_env.autoescape = True  # every template, whatever its extension

    from swordfish.console import views

    app.register_blueprint(views.blueprint, url_prefix=PREFIX)

    @app.before_request
    def load_caller():
        g.deps, g.user = deps, None
        g.source_ip = source_ip()
        user_id = session.get("user_id")
        if user_id is None:
            return None
        now = deps.clock()
        with deps.database.connection() as conn, conn.transaction():
            user = store.get_user(conn, user_id)
        expired = (now - session.get("seen_at", 0) > deps.idle.total_seconds()
                   or now - session.get("auth_at", 0) > deps.absolute.total_seconds())
        if user is None or user.disabled or user.session_epoch != session.get("epoch") or expired:
            end_session()
            return None
        session["seen_at"] = now
        g.user = user
        return None

    CSRFProtect(app)  # after load_caller: a refused token is audited with the caller's name

    @app.after_request
    def security_headers(response):
        for key, value in console_headers(authenticated=not request.path.startswith(f"{PREFIX}/static/")).items():
            response.headers[key] = value
        return response

    @app.errorhandler(CSRFError)
    def csrf_refused(exc: CSRFError):
        audit("csrf.refused", outcome="refused", after={"path": request.path, "reason": exc.description})
        return views.render_error(400, "The form was stale or did not come from this console. "
                                       "Reload the page and try again.")

    for status in (403, 404, 405, 413, 429):
        app.register_error_handler(status, lambda exc, status=status: views.render_error(status, exc.description))
    return app


def source_ip() -> str:
    """The address API Gateway saw. Never X-Forwarded-For's first entry (apig-wsgi's REMOTE_ADDR):
    the client writes that one, and would pick a fresh "source" for every guess."""
    context = request.environ.get("apig_wsgi.request_context") or {}
    return (context.get("identity") or {}).get("sourceIp") or request.remote_addr or "unknown"


def start_session(user: store.User) -> None:
    """A fresh session id for a fresh login (no fixation), tied to the user's current epoch."""
    from flask import current_app

    current_app.session_interface.regenerate(session)  # deletes the old id's record from Redis
    session.clear()
    now = g.deps.clock()
    session.update(user_id=user.user_id, epoch=user.session_epoch, auth_at=now, seen_at=now)


def end_session() -> None:
    """Destroy the server-side session: its id is gone from Redis and the cookie is cleared."""
    from flask import current_app

    current_app.session_interface.regenerate(session)  # deletes the record behind the presented id
    session.clear()  # empty and modified: Flask-Session clears the cookie
    g.user = None


def login_required(*roles: str):
    """The caller must be signed in (else: to the login page) and hold one of ``roles`` (else 403)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if g.user is None:
                return redirect(url_for("console.login", next=request.path))
            if roles and g.user.role not in roles:
                audit("access.refused", outcome="refused", after={"path": request.path, "needs": list(roles)})
                abort(403, "your role cannot use this page")
            return view(*args, **kwargs)

        return wrapper

    return decorate


def visible_tenants(conn) -> list[dict]:
    """The tenants the caller may see: every tenant for MSP admins, else the assigned ones."""
    tenants = store.all_tenants(conn)
    if g.user.is_admin:
        return tenants
    return [t for t in tenants if t["tenant_id"] in g.user.tenants]


def require_tenant(tenant_id: str) -> None:
    """Another tenant's page or object is a 404, exactly like one that does not exist."""
    if g.user.is_admin:
        with g.deps.database.connection() as conn, conn.transaction():
            if any(t["tenant_id"] == tenant_id for t in store.all_tenants(conn)):
                return
    elif tenant_id in g.user.tenants:
        return
    abort(404, "no such tenant")


def audit(action: str, *, tenant_id: str | None = None, object_type: str | None = None,
          object_id: str | None = None, outcome: str = "ok", before: Any = None, after: Any = None,
          actor: str | None = None, conn=None) -> None:
    """Record a console action. Inside ``conn``'s transaction when given, so the change and its
    audit row commit (or roll back) together."""
    user = getattr(g, "user", None)
    values = dict(actor=actor or (user.email if user else "anonymous"), actor_role=user.role if user else None,
                  action=action, tenant_id=tenant_id, object_type=object_type, object_id=object_id,
                  outcome=outcome, before=before, after=after, source_ip=getattr(g, "source_ip", None),
                  request_id=request.headers.get("x-request-id"))
    if conn is not None:
        store.audit(conn, **values)
        return
    with g.deps.database.connection() as own, own.transaction():
        store.audit(own, **values)


def throttle() -> LoginThrottle:
    return LoginThrottle(g.deps.redis, clock=g.deps.clock)
