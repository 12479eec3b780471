"""Operations: the deep health report, for MSP admins."""

from __future__ import annotations

from flask import abort, g, render_template

from swordfish.console.access import login_required
from swordfish.console.views.common import ADMIN, blueprint


@blueprint.get("/health")
@login_required(ADMIN)
def health():
    if g.deps.health_report is None:
        abort(404, "health checks are not configured here")
    status, body = g.deps.health_report("deep")
    return render_template("health.html", status=status, body=body)
