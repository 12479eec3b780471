"""Feature flags: admins change a default, target one tenant (on, off, or no longer), roll out by
percentage and roll back, all through the audited flag admin (the same path as `swordfish flags`);
auditors read, and see only their own tenants' ids in the targeting rules. Every text passes the one
input check (security.inputs), and refusals and failures are audited too (issue 26)."""

from __future__ import annotations

import copy
import json

from flask import abort, g, redirect, render_template, request, url_for

from swordfish.console.access import audit, login_required
from swordfish.console.views.common import ADMIN, AUDITOR, blueprint
from swordfish.monitoring.observability import logger
from swordfish.security.inputs import text_problem, visible


def _admin():
    return g.deps.flag_admin(f"console:{g.user.email}")


def _reason() -> str | None:
    reason = request.form.get("reason") or ""
    problem = text_problem(reason, "the reason")  # NUL reaches PostgreSQL, a line break the deployment's description
    if problem:
        abort(400, problem)
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
    if g.deps.flag_admin is None:
        abort(404, "feature flags are not configured here")
    error = None
    if request.method == "POST":
        name, raw = request.form.get("flag", ""), request.form.get("value", "")
        if not g.user.is_admin:
            audit("flag.set", outcome="refused", object_type="flag", object_id=visible(name, 100),
                  after={"reason": "role"})  # ASVS V7
            abort(403, "only MSP admins change flags")
        reason = request.form.get("reason") or ""
        error = text_problem(reason, "the reason") or text_problem(raw, "the value")
        value = None
        if error is None:
            try:  # NaN and Infinity are not JSON, whatever json.loads accepts
                value = json.loads(raw, parse_constant=_not_json)
            except ValueError:
                error = f"{raw!r} is not JSON: write true, false, a number or a quoted string"
        if error is None:
            error = _change("flag.set", name, lambda admin: admin.set_default(name, value, reason=reason[:500] or None),
                            tried={"value": visible(raw, 200)})
            if error is None:
                return redirect(url_for("console.flags"))
        else:
            audit("flag.set", outcome="refused", object_type="flag", object_id=visible(name, 100),
                  after={"value": visible(raw, 200), "reason": error[:500]})
    version, document = g.deps.flag_document()
    return render_template("flags.html", version=version, flags=sorted(_visible(document).items()), error=error,
                           can_edit=g.user.is_admin, tenant_ids=_tenant_ids(),
                           done=request.args.get("done")), 400 if error else 200


def _not_json(constant: str):
    raise ValueError(f"{constant} is not JSON")


def _tenant_ids() -> list[str]:
    from swordfish.console import store
    from swordfish.console.views.common import db

    with db() as conn, conn.transaction():
        return [t["tenant_id"] for t in store.all_tenants(conn)]


def _change(action: str, name: str, run, tried: dict | None = None) -> str | None:
    """Run one change through the flag admin; audit it in the console trail too (refused and failed
    attempts as well: ASVS V7). The error, or None."""
    from swordfish.features.admin import FlagChangeError

    where = dict(object_type="flag", object_id=visible(name, 100))
    try:
        result = run(_admin())
    except (FlagChangeError, ValueError) as exc:
        audit(action, outcome="refused", after={**(tried or {}), "reason": str(exc)[:500]}, **where)
        return str(exc)
    except Exception as exc:  # the flag store or the audit database: nothing was deployed
        logger.exception("a console flag change failed")
        audit(action, outcome="failed", after={**(tried or {}), "error": type(exc).__name__}, **where)
        abort(503, "the flag store could not be reached; nothing was changed. Try again shortly.")
    audit(action, before=result.before, after=result.after, **where)
    return None


@blueprint.post("/flags/<name>/<any(target, rollout, rollback):action>")
@login_required(ADMIN)
def flag_action(name: str, action: str):
    if g.deps.flag_admin is None:
        abort(404, "feature flags are not configured here")
    form, reason = request.form, _reason()  # before the change runs: its 400 is not a failed change
    if action == "target":
        tenant, state = form.get("tenant", ""), form.get("state", "")
        if tenant not in _tenant_ids():
            abort(400, "choose a tenant")
        if state not in ("on", "off", "remove"):
            abort(400, "state is on, off or remove")
        error = _change("flag.target", name, lambda admin: admin.target(
            name, tenants=[tenant], value=state == "on", remove=state == "remove", reason=reason))
    elif action == "rollout":
        try:
            percent = float(form.get("percent", ""))
        except ValueError:
            abort(400, "percent must be a number from 0 to 100")
        error = _change("flag.rollout", name, lambda admin: admin.rollout(name, percent, reason=reason))
    else:
        error = _change("flag.rollback", name, lambda admin: admin.rollback(name, reason=reason))
    return redirect(url_for("console.flags", done=error or f"{action} {name}: deployed"))
