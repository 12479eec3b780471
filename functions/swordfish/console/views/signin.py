"""Signing in and out: password, TOTP (enrolment and codes, each used once), invites and
password resets, the account page. Failed sign-ins are throttled per e-mail and source address."""

from __future__ import annotations

import pyotp
from flask import abort, g, redirect, render_template, request, url_for

from swordfish.console import passwords, store
from swordfish.console.access import audit, end_session, login_required, start_session, throttle
from swordfish.console.views.common import blueprint, db, render_error
from swordfish.monitoring.observability import logger
from swordfish.security.totp_keys import TotpSecretUnreadable

TOTP_ISSUER = "Swordfish console"


def _needs_totp(user: store.User) -> bool:
    return user.is_admin or g.deps.totp_for_all or user.totp_enabled


def _safe_next(target: str | None) -> str:
    """Only our own pages after login: no open redirect."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.overview")


@blueprint.get("/login")
def login():
    return render_template("login.html", next=request.args.get("next", ""), error=None)


@blueprint.post("/login")
def login_post():
    email = (request.form.get("email") or "").strip().lower()[:254]
    password = request.form.get("password") or ""
    limiter = throttle()
    wait = limiter.wait_seconds(email, g.source_ip)
    if wait:
        audit("login.throttled", outcome="refused", actor=email or "anonymous", after={"wait_seconds": wait})
        return _too_many(wait)
    with db() as conn, conn.transaction():
        user = store.find_user(conn, email)
    ok = passwords.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or user.disabled:
        wait, locked = limiter.failure(email, g.source_ip)
        audit("login.failed", outcome="refused", actor=email or "anonymous",
              after={"locked": locked, "wait_seconds": wait, "known_user": user is not None})
        return render_template("login.html", next=request.form.get("next", ""),
                               error="Wrong e-mail or password."), 401
    limiter.success(email, g.source_ip)
    if _needs_totp(user):
        start_session(user)
        # Half signed in: only the TOTP pages accept this session until the code is checked.
        from flask import session

        session.pop("user_id")
        session["pending_user_id"], session["next"] = user.user_id, _safe_next(request.form.get("next"))
        return redirect(url_for("console.totp" if user.totp_enabled else "console.totp_enrol"))
    return _complete_login(user, request.form.get("next"))


def _complete_login(user: store.User, next_page: str | None):
    start_session(user)
    with db() as conn, conn.transaction():
        store.record_login(conn, user.user_id)
    g.user = user
    audit("login.ok")
    return redirect(_safe_next(next_page))


def _too_many(wait: int):
    body, status = render_error(429, f"Too many failed sign-ins. Try again in {wait} seconds.")
    return body, status, {"Retry-After": str(wait)}


def _pending_user() -> store.User:
    from flask import session

    user_id = session.get("pending_user_id")
    if user_id is None:
        abort(403, "sign in with your password first")
    with db() as conn, conn.transaction():
        user = store.get_user(conn, user_id)
    if user is None or user.disabled or user.session_epoch != session.get("epoch") or \
            g.deps.clock() - session.get("auth_at", 0) > 300:
        end_session()
        abort(403, "sign in with your password first")
    return user


def _check_code(user: store.User, secret: str, code: str) -> bool:
    """A valid code, used once: Redis remembers the last accepted time step per user."""
    totp = pyotp.TOTP(secret)
    now = g.deps.clock()
    for step_offset in (0, -1, 1):
        at = now + step_offset * totp.interval
        if code and totp.verify(code, for_time=at):
            step = int(at // totp.interval)
            key = f"swordfish:console:totp-step:{user.user_id}"
            last = g.deps.redis.get(key)
            if last is not None and int(last) >= step:
                return False  # replayed
            g.deps.redis.set(key, step, ex=totp.interval * 3)
            return True
    return False


def _stored_totp_secret(user: store.User) -> str | None:
    """The user's TOTP secret decrypted, or None when it cannot be (tampered, or its key dropped):
    the sign-in is then refused like a wrong code, audited, and an admin resets the user's TOTP."""
    if not user.totp_secret:
        return None
    try:
        return g.deps.totp_box.open(user.totp_secret)
    except TotpSecretUnreadable:
        logger.error("a stored TOTP secret does not decrypt: reset this user's TOTP",
                     extra={"user_id": user.user_id})
        audit("login.totp_unreadable", outcome="refused", actor=user.email, object_type="user",
              object_id=str(user.user_id))
        return None


@blueprint.route("/login/totp", methods=["GET", "POST"])
def totp():
    user = _pending_user()
    if request.method == "GET":
        return render_template("totp.html", error=None)
    limiter = throttle()
    wait = limiter.wait_seconds(user.email, g.source_ip)
    if wait:
        return _too_many(wait)
    secret = _stored_totp_secret(user)
    if not secret or not _check_code(user, secret, request.form.get("code", "").strip()):
        wait, locked = limiter.failure(user.email, g.source_ip)
        audit("login.totp_failed", outcome="refused", actor=user.email, after={"locked": locked})
        return render_template("totp.html", error="That code is not right (or was already used)."), 401
    if not g.deps.totp_box.is_sealed(user.totp_secret):  # stored before encryption: encrypt it now
        with db() as conn, conn.transaction():
            store.set_totp(conn, user.user_id, secret, True, box=g.deps.totp_box)
    from flask import session

    return _complete_login(user, session.get("next"))


@blueprint.route("/login/totp/enrol", methods=["GET", "POST"])
def totp_enrol():
    from flask import session

    user = _pending_user()
    if user.totp_enabled:
        return redirect(url_for("console.totp"))
    # The secret waits in the server-side session until confirmed: sealed there too.
    try:
        secret = g.deps.totp_box.open(session["enrol_secret"]) if session.get("enrol_secret") else None
    except TotpSecretUnreadable:
        secret = None
    secret = secret or pyotp.random_base32()
    session["enrol_secret"] = g.deps.totp_box.seal(secret)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)
    if request.method == "GET":
        return render_template("totp_enrol.html", secret=secret, uri=uri, error=None)
    if not _check_code(user, secret, request.form.get("code", "").strip()):
        throttle().failure(user.email, g.source_ip)
        return render_template("totp_enrol.html", secret=secret, uri=uri,
                               error="That code is not right; check the clock of your device."), 401
    with db() as conn, conn.transaction():
        store.set_totp(conn, user.user_id, secret, True, box=g.deps.totp_box)
        g.user = user
        audit("user.totp_enrolled", object_type="user", object_id=str(user.user_id), conn=conn)
    return _complete_login(user, session.get("next"))


@blueprint.post("/logout")
def logout():
    if g.user is not None:
        audit("logout")
    end_session()
    return redirect(url_for("console.login"))


@blueprint.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str):
    """Choose a password from an invite or reset link (one use, time-limited)."""
    with db() as conn, conn.transaction():
        user = store.user_for_token(conn, token)
    if user is None:
        abort(404, "this link is unknown, used or expired: ask an MSP admin for a new one")
    if request.method == "GET":
        return render_template("set_password.html", email=user.email, error=None)
    try:
        password = passwords.check_password(request.form.get("password", ""), email=user.email)
    except passwords.PasswordRejected as exc:
        return render_template("set_password.html", email=user.email, error=str(exc)), 400
    with db() as conn, conn.transaction():
        store.set_password(conn, user.user_id, passwords.hash_password(password))
        audit("user.password_set", actor=user.email, object_type="user", object_id=str(user.user_id), conn=conn)
    end_session()
    return redirect(url_for("console.login"))


@blueprint.route("/account", methods=["GET", "POST"])
@login_required()
def account():
    if request.method == "GET":
        return render_template("account.html", error=None, done=False)
    with db() as conn, conn.transaction():
        current = store.find_user(conn, g.user.email)
    if not passwords.verify_password(current.password_hash, request.form.get("current_password", "")):
        audit("user.password_change", outcome="refused", object_type="user", object_id=str(g.user.user_id))
        return render_template("account.html", error="Your current password is not right.", done=False), 400
    try:
        password = passwords.check_password(request.form.get("new_password", ""), email=g.user.email)
    except passwords.PasswordRejected as exc:
        return render_template("account.html", error=str(exc), done=False), 400
    with db() as conn, conn.transaction():
        store.set_password(conn, g.user.user_id, passwords.hash_password(password))
        audit("user.password_change", object_type="user", object_id=str(g.user.user_id), conn=conn)
    end_session()  # every session of this user, this one included, is gone (epoch bump)
    return redirect(url_for("console.login"))
