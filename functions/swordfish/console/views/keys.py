"""A tenant's API keys: create (shown once), revoke, rotate with a 24-hour overlap. MSP admins only."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, render_template, request

from swordfish.console.access import audit, login_required, require_tenant
from swordfish.console.views.common import ADMIN, blueprint, db, now
from swordfish.security.inputs import text_problem
from swordfish.store.tenants import list_api_keys, revoke_api_key, rotate_api_key


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
        expires = now() + timedelta(days=days) if days else None
        problem = text_problem(request.form.get("label") or "", "the label")
        if problem:
            abort(400, problem)
        with db() as conn, conn.transaction():
            created = create_api_key(conn, tenant_id, (request.form.get("label") or "")[:100], expires_at=expires)
            audit("api_key.create", tenant_id=tenant_id, object_type="api_key", object_id=created.key_id,
                  after={"label": request.form.get("label"), "expires_at": expires}, conn=conn)
    with db() as conn, conn.transaction():
        rows = list_api_keys(conn, tenant_id)
    return render_template("keys.html", tenant_id=tenant_id, keys=rows, created=created)


@blueprint.post("/tenants/<tenant_id>/keys/<key_id>/<action>")
@login_required(ADMIN)
def key_action(tenant_id: str, key_id: str, action: str):
    require_tenant(tenant_id)
    created = None
    with db() as conn, conn.transaction():
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
