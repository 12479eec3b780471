"""Alert rules (MSP admins): signed webhooks or e-mail for malware, VIP impersonation, a tenant's
phishing rate jumping and campaigns, MSP-wide or for one tenant. A webhook's signing secret is
shown once, on the page that follows its creation; adding and disabling are audited."""

from __future__ import annotations

from flask import abort, g, redirect, render_template, request, url_for

from swordfish.alerts.events import EVENT_KINDS
from swordfish.alerts.rules import RuleRefused, add_rule, disable_rule, list_rules
from swordfish.console import store
from swordfish.console.access import audit, login_required
from swordfish.console.views.common import ADMIN, blueprint, db
from swordfish.security.inputs import text_problem


def _audited(row: dict) -> dict:
    return {"events": list(row["events"]), "channel": row["channel"], "target": row["target"],
            "scope": row["tenant_id"] or "every tenant", "min_tenants": row["min_tenants"], "label": row["label"]}


def _page(tenant_ids: list[str], *, error: str | None = None, created: dict | None = None,
          secret: str | None = None, status: int = 200):
    rows, seen = [], set()
    with db() as conn, conn.transaction():
        for tenant_id in [None, *tenant_ids]:
            for row in list_rules(conn, tenant_id, include_msp=tenant_id is None):
                if row["rule_id"] not in seen:
                    seen.add(row["rule_id"])
                    rows.append(row)
    return render_template("alerts.html", rows=rows, tenant_ids=tenant_ids, kinds=EVENT_KINDS, error=error,
                           created=created, secret=secret), status


@blueprint.route("/alerts", methods=["GET", "POST"])
@login_required(ADMIN)
def alerts():
    with db() as conn, conn.transaction():
        tenant_ids = [t["tenant_id"] for t in store.all_tenants(conn)]
    if request.method == "GET":
        return _page(tenant_ids)
    scope = request.form.get("scope") or ""
    tenant_id = None if scope == "*" else scope
    if tenant_id is not None and tenant_id not in tenant_ids:
        abort(400, "choose every tenant or one tenant")
    try:
        min_tenants = int(request.form.get("min_tenants") or 3)
    except ValueError:
        abort(400, "the tenant count must be a number")
    problem = text_problem(request.form.get("target", ""), "the target") or \
        text_problem(request.form.get("label") or "", "the label")
    try:
        if problem:
            raise RuleRefused(problem)
        with db() as conn, conn.transaction():
            row, secret = add_rule(conn, tenant_id=tenant_id, events=request.form.getlist("events"),
                                   channel=request.form.get("channel", ""), target=request.form.get("target", ""),
                                   created_by=g.user.email, box=g.deps.totp_box, min_tenants=min_tenants,
                                   label=(request.form.get("label") or "").strip(),
                                   allow_http=g.deps.alert_http_allowed)
            audit("alert_rule.add", tenant_id=tenant_id, object_type="alert_rule", object_id=str(row["rule_id"]),
                  after=_audited(row), conn=conn)
    except RuleRefused as exc:
        return _page(tenant_ids, error=f"not added: {exc}", status=400)
    return _page(tenant_ids, created=row, secret=secret, status=201)


@blueprint.post("/alerts/<int:rule_id>/disable")
@login_required(ADMIN)
def disable_alert_rule(rule_id: int):
    scope = request.form.get("scope") or None
    with db() as conn, conn.transaction():
        row = disable_rule(conn, rule_id, g.user.email, scope)
        if row is None:
            abort(404, "no such rule in force")
        audit("alert_rule.disable", tenant_id=row["tenant_id"], object_type="alert_rule", object_id=str(rule_id),
              before=_audited(row), conn=conn)
    with db() as conn, conn.transaction():
        tenant_ids = [t["tenant_id"] for t in store.all_tenants(conn)]
    return _page(tenant_ids)


def _alert_dead_letters():
    if g.deps.alert_dead_letters is None:
        abort(404, "the alerts DLQ is not configured here (SWORDFISH_ALERTS_DLQ_URL and SWORDFISH_ALERTS_QUEUE_URL)")
    return g.deps.alert_dead_letters()


@blueprint.get("/alerts/dlq")
@login_required(ADMIN)
def alerts_dlq():
    rows = _alert_dead_letters().list(100)
    return render_template("alerts_dlq.html", rows=rows, done=request.args.get("done"))


@blueprint.post("/alerts/dlq/<any(redrive, discard):action>")
@login_required(ADMIN)
def alerts_dlq_action(action: str):
    """Redrive: the delivery starts over (attempt 1) once the receiver is fixed; discard: dropped."""
    ids = {i for i in request.form.getlist("ids") if i and len(i) <= 128}
    if not ids:
        abort(400, "choose at least one alert")
    why = (request.form.get("reason") or "").strip()[:500]
    problem = text_problem(why, "the reason")
    if problem:
        abort(400, problem)
    done = _alert_dead_letters().act(ids, action)
    for row in done:
        audit(f"alert_dlq.{action}", object_type="alert_delivery", object_id=row["id"],
              after={"code": row["code"], "reason": row["reason"][:500], "why": why})
    missing = ids - {row["id"] for row in done}
    return redirect(url_for("console.alerts_dlq", done=f"{action}: {len(done)} done, {len(missing)} no longer there"))
