"""Feature flags: admins change a default, target one tenant (on, off, or no longer), roll out by
percentage and roll back, all through the audited flag admin (the same path as `swordfish flags`);
auditors read, and see only their own tenants' ids in the targeting rules."""

from __future__ import annotations

import copy
import json

from flask import abort, g, redirect, render_template, request, url_for

from swordfish.console.access import audit, login_required
from swordfish.console.views.common import ADMIN, AUDITOR, blueprint


def _admin():
    return g.deps.flag_admin(f"console:{g.user.email}")


def _reason() -> str | None:
    reason = request.form.get("reason") or ""
    if any(ord(c) < 32 for c in reason):  # NUL reaches PostgreSQL, a line break the deployment's description
        abort(400, "the reason holds a control character")
    return reason[:500] or None


def _visible(document: dict) -> dict:
    """The document an auditor may read: targeting lists cut to the auditor's tenants."""
    if g.user.is_admin:
        return document
    mine = set(g.user.tenants)
    shown = copy.deepcopy(document)
    for feature in shown.values():
        for rule in (feature.get("rules") or {}).values() if isinstance(feature, dict) else ():
            for condition in rule.get("conditions") or []:
                if condition.get("key") == "tenant_id" and isinstance(condition.get("value"), list):
                    condition["value"] = [t for t in condition["value"] if t in mine]
    return shown


@blueprint.route("/flags", methods=["GET", "POST"])
@login_required(ADMIN, AUDITOR)
def flags():
    if g.deps.flag_document is None:
        abort(404, "feature flags are not configured here")
    error = None
    if request.method == "POST":
        if not g.user.is_admin:
            audit("flag.set", outcome="refused", object_type="flag", object_id=request.form.get("flag", "")[:100])
            abort(403, "only MSP admins change flags")
        name, raw = request.form.get("flag", ""), request.form.get("value", "")
        try:
            value = json.loads(raw)
        except ValueError:
            error = f"{raw!r} is not JSON: write true, false, a number or a quoted string"
        else:
            error = _change("flag.set", name, lambda admin: admin.set_default(name, value, reason=_reason()))
            if error is None:
                return redirect(url_for("console.flags"))
    version, document = g.deps.flag_document()
    return render_template("flags.html", version=version, flags=sorted(_visible(document).items()), error=error,
                           can_edit=g.user.is_admin, tenant_ids=_tenant_ids(), done=request.args.get("done"))


def _tenant_ids() -> list[str]:
    from swordfish.console import store
    from swordfish.console.views.common import db

    with db() as conn, conn.transaction():
        return [t["tenant_id"] for t in store.all_tenants(conn)]


def _change(action: str, name: str, run) -> str | None:
    """Run one change through the flag admin; audit it in the console trail too. The error, or None."""
    from swordfish.features.admin import FlagChangeError

    try:
        result = run(_admin())
    except (FlagChangeError, ValueError) as exc:
        audit(action, outcome="refused", object_type="flag", object_id=name[:100], after={"reason": str(exc)[:500]})
        return str(exc)
    audit(action, object_type="flag", object_id=name, before=result.before, after=result.after)
    return None


@blueprint.post("/flags/<name>/<any(target, rollout, rollback):action>")
@login_required(ADMIN)
def flag_action(name: str, action: str):
    if g.deps.flag_admin is None:
        abort(404, "feature flags are not configured here")
    form = request.form
    if action == "target":
        tenant, state = form.get("tenant", ""), form.get("state", "")
        if tenant not in _tenant_ids():
            abort(400, "choose a tenant")
        if state not in ("on", "off", "remove"):
            abort(400, "state is on, off or remove")
        error = _change("flag.target", name, lambda admin: admin.target(
            name, tenants=[tenant], value=state == "on", remove=state == "remove", reason=_reason()))
    elif action == "rollout":
        try:
            percent = float(form.get("percent", ""))
        except ValueError:
            abort(400, "percent must be a number from 0 to 100")
        error = _change("flag.rollout", name, lambda admin: admin.rollout(name, percent, reason=_reason()))
    else:
        error = _change("flag.rollback", name, lambda admin: admin.rollback(name, reason=_reason()))
    return redirect(url_for("console.flags", done=error or f"{action} {name}: deployed"))
