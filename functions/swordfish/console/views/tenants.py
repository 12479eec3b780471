"""The tenants the caller may see (the overview) and each tenant's policy (MSP admins change it)."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, g, redirect, render_template, request, url_for
from pydantic import ValidationError

from swordfish.console import store
from swordfish.console.access import audit, login_required, require_tenant, visible_tenants
from swordfish.console.views.common import blueprint, db, now


@blueprint.get("/")
@login_required()
def overview():
    since = now() - timedelta(hours=24)
    with db() as conn, conn.transaction():
        tenants = visible_tenants(conn)
        for tenant in tenants:
            tenant.update(store.tenant_summary(conn, tenant["tenant_id"], since))
    health = None
    if g.user.is_admin and g.deps.health_report is not None:
        health = g.deps.health_report("ready")[1].get("status")
    return render_template("overview.html", tenants=tenants, kinds=store.VERDICT_KINDS, health=health)


@blueprint.route("/tenants/<tenant_id>/policy", methods=["GET", "POST"])
@login_required()
def policy(tenant_id: str):
    from swordfish.analysis import TenantPolicy

    require_tenant(tenant_id)
    with db() as conn, conn.transaction():
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
            with db() as conn, conn.transaction():
                store.save_policy(conn, tenant_id, updated)
                audit("policy.update", tenant_id=tenant_id, object_type="policy", object_id=tenant_id,
                      before={k: current.get(k) for k in lists}, after=lists, conn=conn)
            return redirect(url_for("console.policy", tenant_id=tenant_id))
    return render_template("policy.html", tenant_id=tenant_id, policy=current, error=error,
                           can_edit=g.user.is_admin)
