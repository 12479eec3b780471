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
    return render_template("users.html", users=everyone, tenant_ids=tenant_ids, roles=store.ROLES,
                           invite_link=invite_link, error=error), 400 if error else 200


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
