"""Signing in and out: password, TOTP (enrolment and codes, each used once), one-time recovery
codes, invites and password resets, the account page. Failed sign-ins are throttled per e-mail and
source address. Every role that can release mail needs the second factor (``access.needs_mfa``)."""

from __future__ import annotations

import json

import pyotp
import segno
from flask import abort, g, jsonify, make_response, redirect, render_template, request, url_for

from swordfish.console import login_form, passkeys, passwords, recovery, store
from swordfish.console.access import audit, end_session, login_required, needs_mfa, start_session, throttle
from swordfish.console.throttle import LoginThrottle
from swordfish.console.views.common import blueprint, db, render_error
from swordfish.monitoring.observability import logger
from swordfish.security.inputs import text_problem, visible
from swordfish.security.totp_keys import TotpSecretUnreadable

TOTP_ISSUER = "Swordfish console"


def _safe_next(target: str | None) -> str:
    """Only our own pages after login: no open redirect, and nothing a header cannot carry (a CR/LF
    in next= made the redirect itself fail, after a successful sign-in)."""
    if (target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target
            and target.isascii() and text_problem(target, "next") is None):
        return target
    return url_for("console.overview")


def _login_page(error: str | None = None, status: int = 200, next_page: str = "", email: str = ""):
    """The sign-in form with a fresh CSRF token in a signed cookie (``login_form``): no server-side
    session exists until the form is posted."""
    token, cookie = login_form.issue(g.deps.secret_key)
    next_page = next_page if text_problem(next_page, "next") is None else ""
    email = email if "@" in email and len(email) <= 254 and text_problem(email, "e-mail") is None else ""
    response = make_response(render_template("login.html", next=next_page, error=error, login_token=token,
                                             email=email), status)
    response.set_cookie(login_form.COOKIE, cookie, max_age=login_form.MAX_AGE_SECONDS, secure=True, httponly=True,
                        samesite="Strict", path="/")
    return response


@blueprint.get("/login")
def login():
    # email=: filled in after choosing a password (the invite's own address), so only the password is typed.
    return _login_page(next_page=request.args.get("next", ""), email=request.args.get("email", ""))


@blueprint.post("/login")
def login_post():
    if not login_form.verify(g.deps.secret_key, request.form.get("csrf_token"), request.cookies.get(login_form.COOKIE)):
        audit("csrf.refused", outcome="refused", after={"path": request.path, "reason": "sign-in form token"})
        return render_error(400, "The form was stale or did not come from this console. Reload the page and try again.")
    raw_email = request.form.get("email") or ""
    if text_problem(raw_email, "e-mail"):
        audit("login.failed", outcome="refused", actor=visible(raw_email) or "anonymous",
              after={"reason": "control characters in the e-mail"})
        return _login_page("Wrong e-mail or password.", 400)
    email = raw_email.strip().lower()[:254]
    password = request.form.get("password") or ""
    limiter = throttle()
    wait = limiter.source_wait(email, g.source_ip)  # this address's own locks
    if wait:
        audit("login.throttled", outcome="refused", actor=email or "anonymous", after={"wait_seconds": wait})
        return _too_many(wait)
    with db() as conn, conn.transaction():
        user = store.find_user(conn, email)
    # Many addresses failed on this account: its short lock stops only those who could not pass it
    # otherwise. A TOTP user goes on (the code is the second wall, its guesses counted per account);
    # so does an address this account signed in from before. Nobody else is verified meanwhile.
    account_wait = limiter.account_wait(email)
    if account_wait and not (user is not None and not user.disabled
                             and (needs_mfa(user) or limiter.known_source(email, g.source_ip))):
        audit("login.throttled", outcome="refused", actor=email or "anonymous",
              after={"wait_seconds": account_wait, "rule": "account"})
        return _too_many(account_wait)
    ok = passwords.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or user.disabled:
        wait, locked = limiter.failure(email, g.source_ip)
        audit("login.failed", outcome="refused", actor=email or "anonymous",
              after={"locked": locked, "wait_seconds": wait, "known_user": user is not None})
        if "account" in locked:  # the pattern of a distributed guess: on record for the MSP to see
            audit("login.attack_suspected", outcome="refused", actor=email or "anonymous",
                  after={"rule": "account", "lock_seconds": wait})
        return _login_page("Wrong e-mail or password.", 401, request.form.get("next", ""))
    limiter.success(email, g.source_ip)
    if needs_mfa(user):
        start_session(user)
        # Half signed in: only the TOTP pages accept this session until the code is checked.
        from flask import session

        session.pop("user_id")
        session["pending_user_id"], session["next"] = user.user_id, _safe_next(request.form.get("next"))
        return redirect(url_for("console.totp" if user.totp_enabled else "console.totp_enrol"))
    return _complete_login(user, request.form.get("next"))


def _complete_login(user: store.User, next_page: str | None, *, mfa: bool = False, codes: list[str] | None = None):
    """The full session; ``mfa``: the second factor was given (pages check it, ``app.load_caller``).
    ``codes``: fresh recovery codes, shown on this one answer before going on."""
    from flask import session

    throttle().remember_source(user.email, g.source_ip)  # the account's lock will not stop this address
    start_session(user)
    session["mfa"] = mfa
    with db() as conn, conn.transaction():
        store.record_login(conn, user.user_id)
    g.user = user
    audit("login.ok", after={"second_factor": mfa} if mfa else None)
    if codes:
        return render_template("recovery_codes.html", codes=codes, next=_safe_next(next_page))
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
    # Wrong codes count against the account, whichever address or password step they followed.
    wait = max(limiter.source_wait(user.email, g.source_ip), limiter.totp_wait(user.email))
    if wait:
        return _too_many(wait)
    if "recovery_code" in request.form:
        return _sign_in_with_recovery_code(user, limiter)
    secret = _stored_totp_secret(user)
    if not secret or not _check_code(user, secret, request.form.get("code", "").strip()):
        wait, locked = limiter.failure(user.email, g.source_ip)
        totp_wait, totp_locked = limiter.totp_failure(user.email)
        audit("login.totp_failed", outcome="refused", actor=user.email,
              after={"locked": locked + totp_locked, "wait_seconds": max(wait, totp_wait)})
        return render_template("totp.html", error="That code is not right (or was already used)."), 401
    limiter.totp_success(user.email)
    if not g.deps.totp_box.is_sealed(user.totp_secret):  # stored before encryption: encrypt it now
        with db() as conn, conn.transaction():
            store.set_totp(conn, user.user_id, secret, True, box=g.deps.totp_box)
    from flask import session

    return _complete_login(user, session.get("next"), mfa=True)


def _sign_in_with_recovery_code(user: store.User, limiter: LoginThrottle):
    """The second factor from a recovery code: one hash verified (the code names its row), the code
    spent in the same transaction, every guess counted like a wrong authenticator code."""

    typed = recovery.split(request.form.get("recovery_code", ""))
    with db() as conn, conn.transaction():
        stored = store.unused_recovery_code(conn, user.user_id, typed[0]) if typed else None
        # A miss still costs one hash, so an unknown code id answers no faster than a wrong secret.
        ok = passwords.verify_password(stored, typed[1] if typed else "") and stored is not None
        spent = ok and store.spend_recovery_code(conn, user.user_id, typed[0])
        left = store.recovery_codes_left(conn, user.user_id) if spent else None
    if not spent:
        wait, locked = limiter.failure(user.email, g.source_ip)
        totp_wait, totp_locked = limiter.totp_failure(user.email)
        audit("login.recovery_code_failed", outcome="refused", actor=user.email,
              after={"locked": locked + totp_locked, "wait_seconds": max(wait, totp_wait)})
        return render_template("totp.html", error="That recovery code is not right (or was already used)."), 401
    limiter.totp_success(user.email)
    g.user = user
    audit("user.recovery_code_used", object_type="user", object_id=str(user.user_id),
          after={"recovery_codes_left": left})
    # Straight to the account page: a new authenticator or new codes are the next thing to do.
    return _complete_login(user, url_for("console.account", recovery_left=left), mfa=True)


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
    qr = segno.make(uri, error="m").png_data_uri(scale=5, border=2)  # a data: image, which the CSP allows
    if request.method == "GET":
        return render_template("totp_enrol.html", secret=secret, uri=uri, qr=qr, error=None)
    wait = throttle().totp_wait(user.email)
    if wait:
        return _too_many(wait)
    if not _check_code(user, secret, request.form.get("code", "").strip()):
        throttle().failure(user.email, g.source_ip)
        throttle().totp_failure(user.email)
        return render_template("totp_enrol.html", secret=secret, uri=uri, qr=qr,
                               error="That code is not right; check the clock of your device."), 401
    codes = recovery.generate()
    hashed = recovery.hashed(codes)  # before the transaction: ten argon2id hashes take a second or two
    with db() as conn, conn.transaction():
        store.set_totp(conn, user.user_id, secret, True, box=g.deps.totp_box)
        store.replace_recovery_codes(conn, user.user_id, hashed)
        g.user = user
        audit("user.totp_enrolled", object_type="user", object_id=str(user.user_id),
              after={"recovery_codes": len(codes)}, conn=conn)
    session.pop("enrol_secret", None)
    return _complete_login(user, session.get("next"), mfa=True, codes=codes)


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
        password = _chosen_password(user, "password", "password_confirm")
    except passwords.PasswordRejected as exc:
        return render_template("set_password.html", email=user.email, error=str(exc)), 400
    with db() as conn, conn.transaction():
        store.set_password(conn, user.user_id, passwords.hash_password(password))
        audit("user.password_set", actor=user.email, object_type="user", object_id=str(user.user_id), conn=conn)
    end_session()
    return redirect(url_for("console.login", email=user.email))


def _chosen_password(user: store.User, field: str, confirm_field: str) -> str:
    """The new password, checked; the confirmation must be the same (a typo would lock the user out)."""
    typed = request.form.get(field, "")
    if typed != request.form.get(confirm_field, ""):
        raise passwords.PasswordRejected("the two passwords are not the same; type it again in both fields")
    return passwords.check_password(typed, email=user.email, context=_tenant_names(user))


def _tenant_names(user: store.User) -> list[str]:
    """Context words for the password check: the user's tenants (every tenant for MSP admins)."""
    with db() as conn, conn.transaction():
        tenants = store.all_tenants(conn)
    return [str(t.get(key) or "") for t in tenants if user.is_admin or t["tenant_id"] in user.tenants
            for key in ("tenant_id", "name")]


@blueprint.route("/account", methods=["GET", "POST"])
@login_required()
def account():
    if request.method == "GET":
        return _account_page()
    # The current-password check is an argon2id hash per guess by whoever holds the session:
    # throttled like sign-ins, with counters of its own (a lock here does not touch the login).
    limiter = LoginThrottle(g.deps.redis, clock=g.deps.clock, prefix="swordfish:console:password-check")
    wait = limiter.wait_seconds(g.user.email, g.source_ip)
    if wait:
        audit("user.password_change", outcome="refused", object_type="user", object_id=str(g.user.user_id),
              after={"wait_seconds": wait})
        return _too_many(wait)
    with db() as conn, conn.transaction():
        current = store.find_user(conn, g.user.email)
    if not passwords.verify_password(current.password_hash, request.form.get("current_password", "")):
        wait, locked = limiter.failure(g.user.email, g.source_ip)
        audit("user.password_change", outcome="refused", object_type="user", object_id=str(g.user.user_id),
              after={"locked": locked, "wait_seconds": wait})
        return _account_page("Your current password is not right."), 400
    limiter.success(g.user.email, g.source_ip)
    try:
        password = _chosen_password(g.user, "new_password", "new_password_confirm")
    except passwords.PasswordRejected as exc:
        return _account_page(str(exc)), 400
    with db() as conn, conn.transaction():
        store.set_password(conn, g.user.user_id, passwords.hash_password(password))
        audit("user.password_change", object_type="user", object_id=str(g.user.user_id), conn=conn)
    email = g.user.email
    end_session()  # every session of this user, this one included, is gone (epoch bump)
    return redirect(url_for("console.login", email=email))


def _account_page(error: str | None = None):
    with db() as conn, conn.transaction():
        left = store.recovery_codes_left(conn, g.user.user_id)
        keys = store.passkeys(conn, g.user.user_id)
    return render_template("account.html", error=error, recovery_left=left, passkeys=keys,
                           just_used=request.args.get("recovery_left") is not None)


@blueprint.post("/account/recovery-codes")
@login_required()
def regenerate_recovery_codes():
    """A new set of ten codes, shown once; the old ones stop working. Audited."""
    if not g.user.totp_enabled:
        abort(400, "set up an authenticator first: recovery codes stand in for it")
    codes = recovery.generate()
    hashed = recovery.hashed(codes)
    with db() as conn, conn.transaction():
        before = store.recovery_codes_left(conn, g.user.user_id)
        store.replace_recovery_codes(conn, g.user.user_id, hashed)
        audit("user.recovery_codes_regenerated", object_type="user", object_id=str(g.user.user_id),
              before={"recovery_codes_left": before}, after={"recovery_codes_left": len(codes)}, conn=conn)
    return render_template("recovery_codes.html", codes=codes, next=url_for("console.account"))


# --- passkeys (WebAuthn): added on the account page, a whole sign-in on the sign-in page ---------


def _passkey_challenge(kind: str, challenge: bytes | None = None) -> bytes | None:
    """Keep (with ``challenge``) or take, once, the challenge of a passkey ceremony from the session."""
    from flask import session

    key = f"passkey_{kind}"
    if challenge is not None:
        session[key] = {"challenge": challenge.hex(), "at": g.deps.clock()}
        return challenge
    kept = session.pop(key, None)
    if not kept or g.deps.clock() - kept.get("at", 0) > passkeys.CHALLENGE_SECONDS:
        return None
    return bytes.fromhex(kept["challenge"])


def _passkey_body() -> tuple[str, str]:
    """(the credential as JSON text, the name typed for it) from the browser's JSON body."""
    body = json.loads(passkeys.body_text(request.get_data()))
    if not isinstance(body, dict) or not isinstance(body.get("credential"), dict):
        raise passkeys.PasskeyRefused("expected {credential: {...}}")
    name = body.get("name") if isinstance(body.get("name"), str) else ""
    if text_problem(name, "the name"):
        raise passkeys.PasskeyRefused("the name has control characters")
    return json.dumps(body["credential"]), name.strip()[:100]


def _refused_json(message: str, status: int = 400):
    return jsonify(error=message), status


@blueprint.post("/account/passkeys/options")
@login_required()
def passkey_registration_options():
    rp_id, _ = passkeys.relying_party(request.host_url)
    with db() as conn, conn.transaction():
        existing = [bytes(p["credential_id"]) for p in store.passkeys(conn, g.user.user_id)]
    options, challenge = passkeys.registration_options(rp_id, g.user.user_id, g.user.email, g.user.display_name,
                                                       existing)
    _passkey_challenge("registration", challenge)
    return options, 200, {"Content-Type": "application/json"}


@blueprint.post("/account/passkeys")
@login_required()
def add_passkey():
    challenge = _passkey_challenge("registration")
    if challenge is None:
        return _refused_json("no passkey registration in progress (or it took over 5 minutes): start again")
    rp_id, origin = passkeys.relying_party(request.host_url)
    try:
        credential, name = _passkey_body()
        credential_id, public_key, sign_count = passkeys.verify_registration(credential, challenge, rp_id, origin)
    except passkeys.PasskeyRefused as exc:
        audit("user.passkey_added", outcome="refused", object_type="user", object_id=str(g.user.user_id),
              after={"reason": str(exc)})
        return _refused_json(f"the passkey was not added: {exc}")
    name = name or f"passkey {now_label()}"
    with db() as conn, conn.transaction():
        if store.passkey(conn, credential_id) is not None:
            return _refused_json("this passkey is already registered")
        store.add_passkey(conn, g.user.user_id, credential_id, public_key, sign_count, name)
        audit("user.passkey_added", object_type="user", object_id=str(g.user.user_id),
              after={"name": name, "credential": credential_id.hex()[:16]}, conn=conn)
    return jsonify(ok=True, name=name)


def now_label() -> str:
    from swordfish.console.views.common import now

    return now().strftime("%Y-%m-%d %H:%M")


@blueprint.post("/account/passkeys/<credential>/remove")
@login_required()
def remove_passkey(credential: str):
    try:
        credential_id = bytes.fromhex(credential)
    except ValueError:
        abort(404, "no such passkey")
    with db() as conn, conn.transaction():
        if not store.remove_passkey(conn, g.user.user_id, credential_id):
            abort(404, "no such passkey")
        audit("user.passkey_removed", object_type="user", object_id=str(g.user.user_id),
              before={"credential": credential[:16]}, conn=conn)
    return redirect(url_for("console.account"))


@blueprint.post("/login/passkey/options")
def passkey_login_options():
    rp_id, _ = passkeys.relying_party(request.host_url)
    options, challenge = passkeys.authentication_options(rp_id)
    _passkey_challenge("login", challenge)
    return options, 200, {"Content-Type": "application/json"}


@blueprint.post("/login/passkey")
def passkey_login():
    """A whole sign-in from a passkey: the browser proved the device and its PIN or biometric for
    this origin, so neither the password nor a TOTP code is asked. Failures audited."""
    from flask import session

    challenge = _passkey_challenge("login")
    if challenge is None:
        return _refused_json("no passkey sign-in in progress (or it took over 5 minutes): start again")
    rp_id, origin = passkeys.relying_party(request.host_url)
    user, reason = None, None
    try:
        credential, _ = _passkey_body()
        with db() as conn, conn.transaction():
            stored = store.passkey(conn, passkeys.credential_id(credential))
            if stored is None:
                raise passkeys.PasskeyRefused("this passkey is not registered here (removed, or its user was reset)")
            count = passkeys.verify_authentication(credential, challenge, rp_id, origin, bytes(stored["public_key"]),
                                                   stored["sign_count"])
            user = store.get_user(conn, stored["user_id"])
            if user is None or user.disabled:
                raise passkeys.PasskeyRefused("this user is disabled")
            store.passkey_used(conn, bytes(stored["credential_id"]), count)
    except passkeys.PasskeyRefused as exc:
        reason = str(exc)
    if reason is not None:
        audit("login.passkey_failed", outcome="refused", actor=user.email if user else "anonymous",
              after={"reason": reason})
        return _refused_json("That passkey did not sign you in: " + reason, 401)
    next_page = session.get("next") or request.args.get("next")
    response = _complete_login(user, next_page, mfa=True)
    return jsonify(redirect=response.location)
