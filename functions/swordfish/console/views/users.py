"""Console users (MSP admins only): invite, disable and enable, reset password and TOTP, assign tenants."""

from __future__ import annotations

from flask import abort, g, redirect, render_template, request, url_for

from swordfish.console import store
from swordfish.console.access import audit, login_required
from swordfish.console.views.common import ADMIN, blueprint, db
from swordfish.security.inputs import text_problem


@blueprint.route("/users", methods=["GET", "POST"])
@login_required(ADMIN)
def users():
    invite_link = error = None
    with db() as conn, conn.transaction():
        tenant_ids = [t["tenant_id"] for t in store.all_tenants(conn)]
    if request.method == "POST":
        email = (request.form.get("email") or "").strip().lower()
        role = request.form.get("role", "")
        tenants = [t for t in request.form.getlist("tenants") if t in tenant_ids]
        problem = text_problem(request.form.get("email") or "", "the e-mail") or \
            text_problem(request.form.get("display_name") or "", "the name")
        if problem:  # NUL reached PostgreSQL (a 500); CR/LF would go into the invite's mail headers
            error = problem
        elif role not in store.ROLES or "@" not in email or not 3 <= len(email) <= 254 or not email.isascii():
            error = "give an e-mail address and a role"
        elif role != ADMIN and not tenants:
            error = f"an {role} sees only assigned tenants: choose at least one tenant"
        else:
            with db() as conn, conn.transaction():
                if store.find_user(conn, email) is not None:
                    error = "a user with this e-mail already exists"
                else:
                    user_id, token = store.create_user(conn, email, role, tenants,
                                                       display_name=request.form.get("display_name", ""))
                    audit("user.invite", object_type="user", object_id=str(user_id),
                          after={"email": email, "role": role, "tenants": tenants}, conn=conn)
                    invite_link = url_for("console.accept_invite", token=token, _external=True)
    with db() as conn, conn.transaction():
        everyone = store.list_users(conn)
    # The least powerful role first and preselected: an invite gives more power only when chosen.
    return render_template("users.html", users=everyone, tenant_ids=tenant_ids, roles=INVITE_ROLES,
                           invite_link=invite_link, error=error), 400 if error else 200


INVITE_ROLES = ("auditor", "analyst", ADMIN)


@blueprint.post("/users/<int:user_id>/edit")
@login_required(ADMIN)
def edit_user(user_id: int):
    """Change a user's role and tenants. Their sessions end (the epoch), so the next request is made
    with the new rights, never the old ones."""
    role = request.form.get("role", "")
    with db() as conn, conn.transaction():
        target = store.get_user(conn, user_id)
        if target is None:
            abort(404, "no such user")
        known = {t["tenant_id"] for t in store.all_tenants(conn)}
        chosen = sorted(t for t in set(request.form.getlist("tenants")) if t in known)
        if role not in store.ROLES:
            abort(400, f"role must be one of {', '.join(INVITE_ROLES)}")
        if role != ADMIN and not chosen:
            abort(400, f"an {role} sees only assigned tenants: choose at least one tenant")
        if target.user_id == g.user.user_id and role != ADMIN:
            abort(400, "you cannot take the admin role from yourself")
        before = {"role": target.role, "tenants": list(target.tenants)}
        after = {"role": role, "tenants": chosen}
        if before != after:
            store.set_role(conn, user_id, role)
            store.set_user_tenants(conn, user_id, chosen)
            audit("user.edit", object_type="user", object_id=str(user_id), before=before, after=after, conn=conn)
    return redirect(url_for("console.users"))


@blueprint.post("/users/<int:user_id>/<action>")
@login_required(ADMIN)
def user_action(user_id: int, action: str):
    link = None
    with db() as conn, conn.transaction():
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
            after = {"password": "reset", **store.clear_mfa(conn, user_id)}
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
