"""The console's Flask application: sessions, CSRF, headers and error pages; it registers the pages
(``views``). Who the caller is and what they may do is ``access``.

Flask was chosen over Django (docs/decisions/0001-flask-over-django.md): the console reads and writes the same
PostgreSQL tables as the pipeline through psycopg, with our migrations and row-level security, so
Django's ORM, its auth tables and its migrations would be a second schema to keep in step; and a
Lambda cold start of Flask plus four small extensions is a fraction of Django's. The security
pieces are the established libraries, not our own: Flask-Session (server-side sessions in Redis),
Flask-WTF (CSRF), argon2-cffi (argon2id), pyotp (TOTP), py_webauthn (passkeys), nh3 (HTML sanitising).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import redis
from flask import Flask, g, request, session
from flask_session import Session
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.routing import PathConverter

from swordfish.console import store, views
from swordfish.console.access import audit, end_session, needs_mfa, source_ip
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
    dead_letters: Callable[[], Any] | None = None  # () -> pipeline.queues.DeadLetters (the emails DLQ)
    totp_box: TotpSecretBox = field(default_factory=TotpSecretBox)  # keys from Secrets Manager
    oidc: Any | None = None  # console.oidc.OidcClient: sign-in with the MSP's identity provider
    alert_dead_letters: Callable[[], Any] | None = None  # () -> pipeline.queues.DeadLetters (the alerts DLQ)
    alert_http_allowed: bool = False  # plain-http webhook rules (the embedded stack's local receivers)
    responses: Callable[[], Any] | None = None  # () -> store.response_jobs.ResponseDesk (bulk response)
    extra: dict = field(default_factory=dict)


class MessageIdConverter(PathConverter):
    """A message id in a URL: submitters choose it, so every character that means something in a
    path is encoded, "/" included (``../../../console/users`` or ``//host/x`` must stay one segment
    of the verdict's own link). Read back like ``path``: the gateway decodes %2F before routing."""

    regex = ".+"  # path's "[^/].*?" would refuse an id that starts with "/"
    part_isolating = False  # it spans "/" (werkzeug infers True from a regex without "/")

    def to_url(self, value: str) -> str:
        return quote(str(value), safe="")


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

    app.url_map.converters["message_id"] = MessageIdConverter  # before the routes that use it
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
        if needs_mfa(user) and not session.get("mfa"):
            # Signed in without the second factor this user now needs (a session from before the
            # rule, or the deployment turned it on): nothing beyond the sign-in pages until it is given.
            end_session()
            return None
        session["seen_at"] = now
        g.user = user
        return None

    csrf = CSRFProtect(app)  # after load_caller: a refused token is audited with the caller's name
    # The sign-in form has its own token (a signed cookie, no server-side session before the POST).
    csrf.exempt(views.signin.login_post)
    # A passkey sign-in needs no token: the browser signs our challenge for our origin only (WebAuthn),
    # which a forged cross-site request cannot produce.
    csrf.exempt(views.signin.passkey_login_options)
    csrf.exempt(views.signin.passkey_login)

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

    for status in (400, 403, 404, 405, 413, 429, 503):
        app.register_error_handler(status, lambda exc, status=status: views.render_error(status, exc.description))
    return app
