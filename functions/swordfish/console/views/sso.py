"""Sign-in with the MSP's identity provider (``console.oidc``): the redirect out, the callback in,
the user created or updated from the provider's groups, every outcome audited. Password sign-in
(``signin``) stays for MSPs without a provider. A user who needs a second factor (``needs_mfa``)
goes on to our TOTP step unless the provider's sign-in was one (its ID token's ``amr``, or the
deployment trusts the provider's MFA policy)."""

from __future__ import annotations

from flask import abort, g, make_response, redirect, render_template, request, url_for

from swordfish.console import store
from swordfish.console.access import audit, needs_mfa, start_session, throttle
from swordfish.console.oidc import (
    BINDING_COOKIE,
    STATE_TTL_SECONDS,
    OidcFailed,
    map_groups,
    provider_second_factor,
)
from swordfish.console.views.common import blueprint, db
from swordfish.security.inputs import text_problem, visible


def _client():
    if g.deps.oidc is None:
        abort(404, "sign-in with an identity provider is not configured")
    return g.deps.oidc


def _safe_next(target: str | None) -> str:
    if (target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target
            and target.isascii() and text_problem(target, "next") is None and len(target) < 500):
        return target
    return url_for("console.overview")


@blueprint.get("/login/oidc")
def oidc_login():
    client = _client()
    try:
        url, binding = client.begin(url_for("console.oidc_callback", _external=True, _scheme="https"),
                                    _safe_next(request.args.get("next")))
    except OidcFailed as exc:
        return render_template("login_error.html", message=str(exc)), 503
    response = redirect(url)
    # Lax: sent on the provider's top-level redirect back, unlike the Strict session cookie.
    response.set_cookie(BINDING_COOKIE, binding, max_age=STATE_TTL_SECONDS, secure=True, httponly=True,
                        samesite="Lax", path="/")
    return response


def _refused(reason: str, actor: str = "anonymous", status: int = 403):
    audit("login.failed", outcome="refused", actor=actor, after={"method": "oidc", "reason": reason})
    response = make_response(render_template("login_error.html", message=reason), status)
    response.delete_cookie(BINDING_COOKIE, path="/", secure=True, httponly=True, samesite="Lax")
    return response


@blueprint.get("/login/oidc/callback")
def oidc_callback():
    client = _client()
    wait = throttle().source_wait("oidc", g.source_ip)
    if wait:
        return _refused(f"too many failed sign-ins; try again in {wait} seconds", status=429)
    try:
        claims, next_page = client.finish(request.args, request.cookies.get(BINDING_COOKIE))
    except OidcFailed as exc:
        throttle().failure("oidc", g.source_ip)
        return _refused(str(exc), status=400)
    email = str(claims.get("email") or claims.get("preferred_username") or "").strip().lower()
    if not email or "@" not in email or text_problem(email, "e-mail") or len(email) > 254:
        return _refused("the identity provider sent no usable e-mail address")
    if claims.get("email_verified") is False:
        return _refused("the identity provider has not verified this e-mail address", actor=email)
    config = client.config
    role, tenants = map_groups(claims, config)
    with db() as conn, conn.transaction():
        known = {t["tenant_id"] for t in store.all_tenants(conn)}
        tenants = [t for t in tenants if t in known]
        user = store.find_user(conn, email)
        if config.group_map and role is None:
            pass  # refused below, after the transaction
        elif user is None and role is not None:
            user_id, _ = store.create_user(conn, email, role, tenants,
                                           display_name=visible(str(claims.get("name") or ""), 200) or "")
            audit("user.sso_provisioned", actor=email, object_type="user", object_id=str(user_id),
                  after={"role": role, "tenants": tenants, "issuer": config.issuer}, conn=conn)
            user = store.get_user(conn, user_id)
        elif user is not None and role is not None and not user.disabled and \
                (user.role != role or sorted(user.tenants) != tenants):
            if user.role != role:
                store.set_role(conn, user.user_id, role)
            store.set_user_tenants(conn, user.user_id, tenants)
            audit("user.sso_updated", actor=email, object_type="user", object_id=str(user.user_id),
                  before={"role": user.role, "tenants": list(user.tenants)},
                  after={"role": role, "tenants": tenants}, conn=conn)
            user = store.get_user(conn, user.user_id)
    if config.group_map and role is None:
        return _refused("none of your groups at the identity provider may use this console", actor=email)
    if user is None:
        return _refused("there is no console user with this e-mail address; ask an MSP admin", actor=email)
    if user.disabled:
        return _refused("this console user is disabled", actor=email)
    from flask import session

    throttle().success("oidc", g.source_ip)
    start_session(user)
    second_factor = provider_second_factor(claims, config)
    if needs_mfa(user) and not second_factor:
        # Half signed in, as after a password: only our second-factor pages accept this session.
        session.pop("user_id")
        session["pending_user_id"], session["next"] = user.user_id, _safe_next(next_page)
        audit("login.oidc_needs_second_factor", actor=email, after={"issuer": config.issuer})
        target = url_for("console.totp" if user.totp_enabled else "console.totp_enrol")
    else:
        session["mfa"] = second_factor
        with db() as conn, conn.transaction():
            store.record_login(conn, user.user_id)
        g.user = user
        audit("login.ok", after={"method": "oidc", "issuer": config.issuer, "second_factor": second_factor})
        target = _safe_next(next_page)
    # A page of our own that moves on by itself: the browser sends the Strict session cookie on a
    # navigation this site starts, not on the rest of the provider's redirect chain.
    response = make_response(render_template("login_continue.html", next_page=target))
    response.delete_cookie(BINDING_COOKIE, path="/", secure=True, httponly=True, samesite="Lax")
    return response
