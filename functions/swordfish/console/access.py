"""Who the console's caller is and what they may do: sessions, roles, tenant scoping, the audit trail.

Used by the pages (``views``) and by the application (``app``); it imports neither, so the
application can register the pages without a circle (an import-linter contract keeps it so).
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import abort, current_app, g, redirect, request, session, url_for

from swordfish.console import store
from swordfish.console.throttle import LoginThrottle
from swordfish.security.inputs import visible
from swordfish.store.tenants import TENANT_ID_PATTERN


def source_ip() -> str:
    """The address API Gateway saw. Never X-Forwarded-For's first entry (apig-wsgi's REMOTE_ADDR):
    the client writes that one, and would pick a fresh "source" for every guess."""
    context = request.environ.get("apig_wsgi.request_context") or {}
    return (context.get("identity") or {}).get("sourceIp") or request.remote_addr or "unknown"


def needs_mfa(user: store.User) -> bool:
    """A second factor is required: every role that can release mail, everyone when the deployment
    says so, and whoever enrolled anyway."""
    return user.role in store.RELEASE_ROLES or g.deps.totp_for_all or user.totp_enabled


def start_session(user: store.User) -> None:
    """A fresh session id for a fresh login (no fixation), tied to the user's current epoch."""
    current_app.session_interface.regenerate(session)  # deletes the old id's record from Redis
    session.clear()
    now = g.deps.clock()
    session.update(user_id=user.user_id, epoch=user.session_epoch, auth_at=now, seen_at=now)


def end_session() -> None:
    """Destroy the server-side session: its id is gone from Redis and the cookie is cleared."""
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
    # Audited (ASVS V7: access-control failures): another tenant's page, or one that does not exist.
    known = bool(TENANT_ID_PATTERN.match(tenant_id or ""))
    audit("tenant.refused", tenant_id=tenant_id if known else None, outcome="refused",
          after={"path": visible(request.path, 500), **({} if known else {"tenant": visible(tenant_id, 100)})})
    abort(404, "no such tenant")


def audit(action: str, *, tenant_id: str | None = None, object_type: str | None = None,
          object_id: str | None = None, outcome: str = "ok", before: Any = None, after: Any = None,
          actor: str | None = None, conn=None) -> None:
    """Record a console action. Inside ``conn``'s transaction when given, so the change and its
    audit row commit (or roll back) together."""
    user = getattr(g, "user", None)
    # The actor may be what an anonymous caller typed (a sign-in's e-mail): never a raw line break.
    values = dict(actor=visible(actor or (user.email if user else "anonymous")) or "anonymous",
                  actor_role=user.role if user else None,
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
