"""Allow and block entries with a comment and an expiry (MSP admins): MSP-wide, for every tenant,
or for one tenant. Checked like the policy's lists; adding and removing are audited."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, g, redirect, render_template, request, url_for

from swordfish.console import store
from swordfish.console.access import audit, login_required
from swordfish.console.views.common import ADMIN, blueprint, db
from swordfish.security.inputs import text_problem
from swordfish.store.list_entries import active_entries, add_entry, remove_entry


@blueprint.route("/lists", methods=["GET", "POST"])
@login_required(ADMIN)
def lists():
    with db() as conn, conn.transaction():
        tenant_ids = [t["tenant_id"] for t in store.all_tenants(conn)]
    error = None
    if request.method == "POST":
        scope = request.form.get("scope") or ""
        tenant_id = None if scope == "*" else scope
        if tenant_id is not None and tenant_id not in tenant_ids:
            abort(400, "choose every tenant or one tenant")
        try:
            days = int(request.form.get("expires_days") or 0)
        except ValueError:
            abort(400, "expiry must be a number of days")
        if not 0 <= days <= 3650:
            abort(400, "expiry must be 0 (never) to 3650 days")
        problem = text_problem(request.form.get("entry", ""), "the entry") or \
            text_problem(request.form.get("comment") or "", "the comment")  # a NUL was a 500
        try:
            if problem:
                raise ValueError(problem)
            with db() as conn, conn.transaction():
                row = add_entry(conn, tenant_id=tenant_id, list_name=request.form.get("list", ""),
                                entry=request.form.get("entry", ""), created_by=g.user.email,
                                comment=(request.form.get("comment") or "").strip(),
                                valid_for=timedelta(days=days) if days else None)
                audit("list_entry.add", tenant_id=tenant_id, object_type="list_entry", object_id=row["entry"],
                      after={"list": row["list"], "entry": row["entry"], "scope": tenant_id or "every tenant",
                             "comment": row["comment"], "expires_at": row["expires_at"]}, conn=conn)
        except ValueError as exc:
            error = f"not added: {exc}"
        else:
            return redirect(url_for("console.lists"))
    rows, seen = [], set()
    with db() as conn, conn.transaction():
        for tenant_id in tenant_ids or [None]:
            for row in active_entries(conn, tenant_id):
                if row["entry_id"] not in seen:
                    seen.add(row["entry_id"])
                    rows.append(row)
    return render_template("lists.html", rows=rows, tenant_ids=tenant_ids, error=error), 400 if error else 200


@blueprint.post("/lists/<int:entry_id>/remove")
@login_required(ADMIN)
def remove_list_entry(entry_id: int):
    scope = request.form.get("scope") or None
    with db() as conn, conn.transaction():
        row = remove_entry(conn, entry_id, g.user.email, scope)
        if row is None:
            abort(404, "no such entry in force")
        audit("list_entry.remove", tenant_id=row["tenant_id"], object_type="list_entry", object_id=row["entry"],
              before={"list": row["list"], "entry": row["entry"], "comment": row["comment"],
                      "by": row["created_by"]}, conn=conn)
    return redirect(url_for("console.lists"))
