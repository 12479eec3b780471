"""Operations, for MSP admins: the deep health report; the emails DLQ, each message with its reason,
redriven or discarded from here (audited, like `swordfish dlq`)."""

from __future__ import annotations

from flask import abort, g, redirect, render_template, request, url_for

from swordfish.console.access import audit, login_required
from swordfish.console.views.common import ADMIN, blueprint
from swordfish.security.inputs import text_problem


@blueprint.get("/health")
@login_required(ADMIN)
def health():
    if g.deps.health_report is None:
        abort(404, "health checks are not configured here")
    status, body = g.deps.health_report("deep")
    return render_template("health.html", status=status, body=body)


def _dead_letters():
    if g.deps.dead_letters is None:
        abort(404, "the emails DLQ is not configured here (SWORDFISH_EMAILS_DLQ_URL and SWORDFISH_EMAILS_QUEUE_URL)")
    return g.deps.dead_letters()


@blueprint.get("/operations/dlq")
@login_required(ADMIN)
def dlq():
    rows = _dead_letters().list(100)
    return render_template("dlq.html", rows=rows, done=request.args.get("done"))


@blueprint.post("/operations/dlq/<any(redrive, discard):action>")
@login_required(ADMIN)
def dlq_action(action: str):
    ids = {i for i in request.form.getlist("ids") if i and len(i) <= 128}
    if not ids:
        abort(400, "choose at least one message")
    why = (request.form.get("reason") or "").strip()[:500]
    problem = text_problem(why, "the reason")
    if problem:
        abort(400, problem)
    done = _dead_letters().act(ids, action)
    for row in done:
        audit(f"dlq.{action}", tenant_id=row["tenant_id"], object_type="dlq_message",
              object_id=row["message_id"] or row["id"],
              after={"dlq_id": row["id"], "code": row["code"], "reason": row["reason"][:500], "why": why})
    missing = ids - {row["id"] for row in done}
    if missing:
        audit(f"dlq.{action}", outcome="failed", object_type="dlq_message",
              after={"missing": sorted(missing)[:20], "why": "no longer in the DLQ"})
    return redirect(url_for("console.dlq", done=f"{action}: {len(done)} done, {len(missing)} no longer there"))
