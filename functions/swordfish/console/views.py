"""The console's pages. Every view checks the caller's role (``login_required``) and, for tenant
objects, the caller's tenants (``require_tenant``: another tenant's object is a 404); every
state change is a POST under CSRF and writes an audit row in the same transaction as the change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyotp
from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from pydantic import ValidationError

from swordfish.console import passwords, store
from swordfish.console.app import (
    audit,
    end_session,
    login_required,
    require_tenant,
    start_session,
    throttle,
    visible_tenants,
)
from swordfish.console.message_view import render_message
from swordfish.monitoring.observability import logger
from swordfish.security.totp_keys import TotpSecretUnreadable
from swordfish.store.tenants import TENANT_ID_PATTERN, list_api_keys, revoke_api_key, rotate_api_key

blueprint = Blueprint("console", __name__)
ADMIN, ANALYST, AUDITOR = "msp_admin", "analyst", "auditor"
PAGE_SIZES = (25, 50, 100)
TOTP_ISSUER = "Swordfish console"


def render_error(status: int, message: str | None):
    return render_template("error.html", status=status, message=message or ""), status


def _now() -> datetime:
    return datetime.fromtimestamp(g.deps.clock(), UTC)


def _db():
    return g.deps.database.connection()


def _needs_totp(user: store.User) -> bool:
    return user.is_admin or g.deps.totp_for_all or user.totp_enabled


def _safe_next(target: str | None) -> str:
    """Only our own pages after login: no open redirect."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.overview")


# --- signing in and out ------------------------------------------------------------------------


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
    with _db() as conn, conn.transaction():
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
    with _db() as conn, conn.transaction():
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
    with _db() as conn, conn.transaction():
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
        with _db() as conn, conn.transaction():
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
    with _db() as conn, conn.transaction():
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
    with _db() as conn, conn.transaction():
        user = store.user_for_token(conn, token)
    if user is None:
        abort(404, "this link is unknown, used or expired: ask an MSP admin for a new one")
    if request.method == "GET":
        return render_template("set_password.html", email=user.email, error=None)
    try:
        password = passwords.check_password(request.form.get("password", ""), email=user.email)
    except passwords.PasswordRejected as exc:
        return render_template("set_password.html", email=user.email, error=str(exc)), 400
    with _db() as conn, conn.transaction():
        store.set_password(conn, user.user_id, passwords.hash_password(password))
        audit("user.password_set", actor=user.email, object_type="user", object_id=str(user.user_id), conn=conn)
    end_session()
    return redirect(url_for("console.login"))


@blueprint.route("/account", methods=["GET", "POST"])
@login_required()
def account():
    if request.method == "GET":
        return render_template("account.html", error=None, done=False)
    with _db() as conn, conn.transaction():
        current = store.find_user(conn, g.user.email)
    if not passwords.verify_password(current.password_hash, request.form.get("current_password", "")):
        audit("user.password_change", outcome="refused", object_type="user", object_id=str(g.user.user_id))
        return render_template("account.html", error="Your current password is not right.", done=False), 400
    try:
        password = passwords.check_password(request.form.get("new_password", ""), email=g.user.email)
    except passwords.PasswordRejected as exc:
        return render_template("account.html", error=str(exc), done=False), 400
    with _db() as conn, conn.transaction():
        store.set_password(conn, g.user.user_id, passwords.hash_password(password))
        audit("user.password_change", object_type="user", object_id=str(g.user.user_id), conn=conn)
    end_session()  # every session of this user, this one included, is gone (epoch bump)
    return redirect(url_for("console.login"))


# --- tenants and verdicts ------------------------------------------------------------------------


@blueprint.get("/")
@login_required()
def overview():
    since = _now() - timedelta(hours=24)
    with _db() as conn, conn.transaction():
        tenants = visible_tenants(conn)
        for tenant in tenants:
            tenant.update(store.tenant_summary(conn, tenant["tenant_id"], since))
    health = None
    if g.user.is_admin and g.deps.health_report is not None:
        health = g.deps.health_report("ready")[1].get("status")
    return render_template("overview.html", tenants=tenants, kinds=store.VERDICT_KINDS, health=health)


def _parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        abort(400, f"{name} must be a date and time like 2026-01-31T08:00")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@blueprint.get("/tenants/<tenant_id>/verdicts")
@login_required()
def verdicts(tenant_id: str):
    require_tenant(tenant_id)
    args = request.args
    verdict = args.get("verdict") or None
    if verdict and verdict not in store.VERDICT_KINDS:
        abort(400, f"verdict must be one of {', '.join(store.VERDICT_KINDS)}")
    try:
        limit = int(args.get("limit", 50))
    except ValueError:
        abort(400, "limit must be a number")
    if limit not in PAGE_SIZES:
        abort(400, f"limit must be one of {PAGE_SIZES}")
    before = None
    if args.get("before_at") and args.get("before_id") is not None:
        before = (_parse_time(args["before_at"], "before_at"), args["before_id"])
    filters = {"verdict": verdict, "since": _parse_time(args.get("since"), "since"),
               "until": _parse_time(args.get("until"), "until"),
               "sender": (args.get("sender") or "")[:200] or None, "subject": (args.get("subject") or "")[:200] or None}
    with _db() as conn, conn.transaction():
        rows = store.verdict_page(conn, tenant_id, limit=limit, before=before, **filters)
    next_args = None
    if len(rows) == limit:
        next_args = {k: v for k, v in args.items() if k not in ("before_at", "before_id")}
        next_args.update(before_at=rows[-1]["committed_at"].isoformat(), before_id=rows[-1]["message_id"])
    return render_template("verdicts.html", tenant_id=tenant_id, rows=rows, args=args, kinds=store.VERDICT_KINDS,
                           next_args=next_args, page_sizes=PAGE_SIZES, limit=limit)


@blueprint.route("/tenants/<tenant_id>/verdicts/<path:message_id>", methods=["GET", "POST"])
@login_required()
def verdict(tenant_id: str, message_id: str):
    require_tenant(tenant_id)
    with _db() as conn, conn.transaction():
        row = store.verdict_detail(conn, tenant_id, message_id)
    if row is None:
        abort(404, "no such verdict")
    if request.method == "POST":
        action = request.form.get("action", "")
        if g.user.role not in (ADMIN, ANALYST):
            audit(f"verdict.{action}" if action in store.FEEDBACK_ACTIONS else "verdict.feedback",
                  tenant_id=tenant_id, object_type="verdict", object_id=message_id, outcome="refused")
            abort(403, "auditors cannot act on verdicts")
        if action not in store.FEEDBACK_ACTIONS:
            abort(400, f"action must be one of {', '.join(store.FEEDBACK_ACTIONS)}")
        if action == "release":
            return _release(tenant_id, message_id, row)
        with _db() as conn, conn.transaction():
            store.add_feedback(conn, tenant_id, message_id, action, g.user.email, request.form.get("note"))
            audit(f"verdict.{action}", tenant_id=tenant_id, object_type="verdict", object_id=message_id,
                  before={"verdict": row["verdict"], "feedback": [f["action"] for f in row["feedback"]]},
                  after={"action": action}, conn=conn)
        return redirect(url_for("console.verdict", tenant_id=tenant_id, message_id=message_id))
    message, unavailable = _message_content(tenant_id, message_id, row)
    return render_template("verdict.html", tenant_id=tenant_id, v=row, m=message, unavailable=unavailable,
                           can_act=g.user.role in (ADMIN, ANALYST))


def _message_content(tenant_id: str, message_id: str, row: dict):
    """The message itself, re-read from the raw archive (``integrations.message_content``) and made
    safe to show (``message_view``). Every read of mail content is audited, shown or not."""
    from swordfish.integrations.message_content import ContentUnavailable

    try:
        source = g.deps.message_source() if g.deps.message_source else None
        if source is None:
            return None, "message content is not configured here (no raw-submission archive)"
        raw = source.load(tenant_id, message_id, row.get("raw_archive_key"), row.get("raw_archive_line"),
                          (row.get("quarantine") or {}).get("provider_message_id"))
    except Exception as exc:  # ContentUnavailable, or its clients could not be built (e.g. a secret)
        if not isinstance(exc, ContentUnavailable):
            exc = ContentUnavailable(f"the message could not be read: {type(exc).__name__}")
        audit("verdict.content_view", tenant_id=tenant_id, object_type="verdict", object_id=message_id,
              outcome="failed", after={"reason": str(exc)})
        return None, str(exc)
    message = render_message(raw)
    audit("verdict.content_view", tenant_id=tenant_id, object_type="verdict", object_id=message_id,
          after={"bytes": len(raw), "html": message.html is not None, "notes": message.notes[:5]})
    return message, None


def _release(tenant_id: str, message_id: str, row: dict):
    """Move the message back to the inbox through Nango, then record it; in one transaction, so a
    failed move marks nothing (``store.quarantines.release_from_quarantine``)."""
    from swordfish.pipeline.ports import NotQuarantined, ReleaseFailed
    from swordfish.store.quarantines import release_from_quarantine

    where = dict(tenant_id=tenant_id, object_type="verdict", object_id=message_id)
    try:
        releaser = g.deps.releaser() if g.deps.releaser else None
    except Exception as exc:  # the Nango client could not be built (its secret): nothing was tried
        audit("verdict.release", outcome="failed", after={"reason": f"Nango client: {type(exc).__name__}"}, **where)
        abort(503, "the mailbox integration (Nango) cannot be reached from here; nothing was released")
    if releaser is None:
        audit("verdict.release", outcome="failed", after={"reason": "Nango is not configured"}, **where)
        abort(503, "releasing needs the mailbox integration (Nango), which is not configured here")
    try:
        with _db() as conn, conn.transaction():
            released = release_from_quarantine(conn, tenant_id, message_id, releaser, actor=g.user.email,
                                               note=request.form.get("note"))
            audit("verdict.release", before={"verdict": row["verdict"], "state": "quarantined"},
                  after={"state": "released", "provider_message_id": released.provider_message_id}, conn=conn,
                  **where)
    except NotQuarantined as exc:
        audit("verdict.release", outcome="refused", after={"reason": str(exc)}, **where)
        return render_error(409, f"Not released: {exc}")
    except ReleaseFailed as exc:
        audit("verdict.release", outcome="failed", after={"kind": exc.kind, "reason": str(exc)[:500]}, **where)
        return render_error(exc.http_status, f"Not released: {exc}")
    return redirect(url_for("console.verdict", tenant_id=tenant_id, message_id=message_id))


# --- tenant policy and API keys --------------------------------------------------------------------


@blueprint.route("/tenants/<tenant_id>/policy", methods=["GET", "POST"])
@login_required()
def policy(tenant_id: str):
    from swordfish.analysis import TenantPolicy

    require_tenant(tenant_id)
    with _db() as conn, conn.transaction():
        current = store.get_policy(conn, tenant_id) or {}
    error = None
    if request.method == "POST":
        if not g.user.is_admin:
            audit("policy.update", tenant_id=tenant_id, outcome="refused")
            abort(403, "only MSP admins change policies")
        lists = {name: [line.strip() for line in request.form.get(name, "").splitlines() if line.strip()][:500]
                 for name in ("allow_list", "block_list", "vip_names", "domains")}
        try:
            updated = TenantPolicy.model_validate({**current, **lists}).model_dump(mode="json")
        except ValidationError as exc:
            error = f"not saved: {exc.errors()[0]['msg']}"
        else:
            with _db() as conn, conn.transaction():
                store.save_policy(conn, tenant_id, updated)
                audit("policy.update", tenant_id=tenant_id, object_type="policy", object_id=tenant_id,
                      before={k: current.get(k) for k in lists}, after=lists, conn=conn)
            return redirect(url_for("console.policy", tenant_id=tenant_id))
    return render_template("policy.html", tenant_id=tenant_id, policy=current, error=error,
                           can_edit=g.user.is_admin)


@blueprint.route("/tenants/<tenant_id>/keys", methods=["GET", "POST"])
@login_required(ADMIN)
def keys(tenant_id: str):
    from swordfish.store.tenants import create_api_key

    require_tenant(tenant_id)
    created = None
    if request.method == "POST":
        try:
            days = int(request.form.get("expires_days") or 0)
        except ValueError:
            abort(400, "expiry must be a number of days")
        if not 0 <= days <= 730:
            abort(400, "expiry must be 0 (never) to 730 days")
        expires = _now() + timedelta(days=days) if days else None
        with _db() as conn, conn.transaction():
            created = create_api_key(conn, tenant_id, (request.form.get("label") or "")[:100], expires_at=expires)
            audit("api_key.create", tenant_id=tenant_id, object_type="api_key", object_id=created.key_id,
                  after={"label": request.form.get("label"), "expires_at": expires}, conn=conn)
    with _db() as conn, conn.transaction():
        rows = list_api_keys(conn, tenant_id)
    return render_template("keys.html", tenant_id=tenant_id, keys=rows, created=created)


@blueprint.post("/tenants/<tenant_id>/keys/<key_id>/<action>")
@login_required(ADMIN)
def key_action(tenant_id: str, key_id: str, action: str):
    require_tenant(tenant_id)
    created = None
    with _db() as conn, conn.transaction():
        if action == "revoke":
            if not revoke_api_key(conn, tenant_id, key_id):
                abort(404, "no such active key")
            audit("api_key.revoke", tenant_id=tenant_id, object_type="api_key", object_id=key_id, conn=conn)
        elif action == "rotate":
            created = rotate_api_key(conn, tenant_id, key_id, overlap=timedelta(hours=24))
            if created is None:
                abort(404, "no such active key")
            audit("api_key.rotate", tenant_id=tenant_id, object_type="api_key", object_id=key_id,
                  after={"new_key_id": created.key_id, "old_key_valid_hours": 24}, conn=conn)
        else:
            abort(404)
        rows = list_api_keys(conn, tenant_id)
    return render_template("keys.html", tenant_id=tenant_id, keys=rows, created=created)


# --- users -----------------------------------------------------------------------------------------


@blueprint.route("/users", methods=["GET", "POST"])
@login_required(ADMIN)
def users():
    invite_link = error = None
    with _db() as conn, conn.transaction():
        tenant_ids = [t["tenant_id"] for t in store.all_tenants(conn)]
    if request.method == "POST":
        email = (request.form.get("email") or "").strip().lower()
        role = request.form.get("role", "")
        tenants = [t for t in request.form.getlist("tenants") if t in tenant_ids]
        if role not in store.ROLES or "@" not in email or not 3 <= len(email) <= 254:
            error = "give an e-mail address and a role"
        else:
            with _db() as conn, conn.transaction():
                if store.find_user(conn, email) is not None:
                    error = "a user with this e-mail already exists"
                else:
                    user_id, token = store.create_user(conn, email, role, tenants,
                                                       display_name=request.form.get("display_name", ""))
                    audit("user.invite", object_type="user", object_id=str(user_id),
                          after={"email": email, "role": role, "tenants": tenants}, conn=conn)
                    invite_link = url_for("console.accept_invite", token=token, _external=True)
    with _db() as conn, conn.transaction():
        everyone = store.list_users(conn)
    return render_template("users.html", users=everyone, tenant_ids=tenant_ids, roles=store.ROLES,
                           invite_link=invite_link, error=error)


@blueprint.post("/users/<int:user_id>/<action>")
@login_required(ADMIN)
def user_action(user_id: int, action: str):
    link = None
    with _db() as conn, conn.transaction():
        target = store.get_user(conn, user_id)
        if target is None:
            abort(404, "no such user")
        before = {"disabled": target.disabled, "tenants": list(target.tenants)}
        if action in ("disable", "enable"):
            if target.user_id == g.user.user_id:
                abort(400, "you cannot disable yourself")
            store.set_disabled(conn, user_id, action == "disable")
            after = {"disabled": action == "disable"}
        elif action == "reset":
            link = url_for("console.accept_invite", token=store.issue_reset(conn, user_id), _external=True)
            store.set_totp(conn, user_id, None, False)
            after = {"password": "reset", "totp": "cleared"}
        elif action == "tenants":
            known = {t["tenant_id"] for t in store.all_tenants(conn)}
            chosen = [t for t in request.form.getlist("tenants") if t in known]
            store.set_user_tenants(conn, user_id, chosen)
            after = {"tenants": chosen}
        else:
            abort(404)
        audit(f"user.{action}", object_type="user", object_id=str(user_id), before=before, after=after, conn=conn)
    if link:
        return render_template("reset_link.html", email=target.email, link=link)
    return redirect(url_for("console.users"))


# --- flags, health, audit ------------------------------------------------------------------------


@blueprint.route("/flags", methods=["GET", "POST"])
@login_required(ADMIN, AUDITOR)
def flags():
    if g.deps.flag_document is None:
        abort(404, "feature flags are not configured here")
    error = None
    if request.method == "POST":
        if not g.user.is_admin:
            abort(403, "only MSP admins change flags")
        name, raw = request.form.get("flag", ""), request.form.get("value", "")
        try:
            value = json.loads(raw)
        except ValueError:
            error = f"{raw!r} is not JSON: write true, false, a number or a quoted string"
        else:
            from swordfish.features.admin import FlagChangeError

            try:
                result = g.deps.flag_admin(f"console:{g.user.email}").set_default(
                    name, value, reason=(request.form.get("reason") or "")[:500] or None)
            except (FlagChangeError, ValueError) as exc:
                error = str(exc)
            else:
                audit("flag.set", object_type="flag", object_id=name, before=result.before, after=result.after)
                return redirect(url_for("console.flags"))
    version, document = g.deps.flag_document()
    return render_template("flags.html", version=version, flags=sorted(document.items()), error=error,
                           can_edit=g.user.is_admin)


@blueprint.get("/health")
@login_required(ADMIN)
def health():
    if g.deps.health_report is None:
        abort(404, "health checks are not configured here")
    status, body = g.deps.health_report("deep")
    return render_template("health.html", status=status, body=body)


@blueprint.get("/audit")
@login_required(ADMIN, AUDITOR)
def audit_log():
    try:
        before_id = int(request.args.get("before_id") or 0) or None
    except ValueError:
        abort(400, "before_id must be a number")
    tenants = None if g.user.is_admin else list(g.user.tenants)
    with _db() as conn, conn.transaction():
        rows = store.audit_page(conn, tenants, limit=100, before_id=before_id)
    return render_template("audit.html", rows=rows, next_id=rows[-1]["audit_id"] if len(rows) == 100 else None)


@blueprint.app_template_filter("tenant_ok")
def _tenant_ok(value: str) -> bool:
    return bool(TENANT_ID_PATTERN.match(value or ""))
