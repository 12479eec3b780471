"""The audit trail: MSP admins see every row, auditors their tenants' rows."""

from __future__ import annotations

from flask import abort, g, render_template, request

from swordfish.console import store
from swordfish.console.access import login_required
from swordfish.console.views.common import ADMIN, AUDITOR, blueprint, db


@blueprint.get("/audit")
@login_required(ADMIN, AUDITOR)
def audit_log():
    try:
        before_id = int(request.args.get("before_id") or 0) or None
    except ValueError:
        abort(400, "before_id must be a number")
    tenants = None if g.user.is_admin else list(g.user.tenants)
    with db() as conn, conn.transaction():
        rows = store.audit_page(conn, tenants, limit=100, before_id=before_id)
    return render_template("audit.html", rows=rows, next_id=rows[-1]["audit_id"] if len(rows) == 100 else None)
