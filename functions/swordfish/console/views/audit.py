"""The one audit trail: console and CLI changes (console_audit) and flag changes (flag_audit). MSP
admins see every row; auditors their tenants' rows (no flag rows: targeting names other tenants).
Filter by actor, tenant, action, outcome and time; export what the filters select as CSV or JSON
(the export is itself audited)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from flask import Response, abort, g, render_template, request

from swordfish.console import store
from swordfish.console.access import audit, login_required
from swordfish.console.views.common import ADMIN, AUDITOR, blueprint, db, time_arg
from swordfish.security.inputs import text_problem

PAGE = 100
EXPORT_LIMIT = 10_000  # rows per export: narrow the filters (time) for more
COLUMNS = ("at", "actor", "actor_role", "action", "outcome", "tenant_id", "object_type", "object_id", "before",
           "after", "source_ip")


@blueprint.get("/audit")
@login_required(ADMIN, AUDITOR)
def audit_log():
    args = request.args
    for name, value in args.items():  # the one text check: NUL reached PostgreSQL (a 500)
        problem = text_problem(value, name)
        if problem:
            abort(400, problem)
    filters = {"actor": (args.get("actor") or "").strip()[:254] or None,
               "tenant": (args.get("tenant") or "").strip()[:63] or None,
               "action": (args.get("action") or "").strip()[:64] or None,
               "outcome": args.get("outcome") or None,
               "since": time_arg(args.get("since"), "since"), "until": time_arg(args.get("until"), "until")}
    if filters["outcome"] and filters["outcome"] not in ("ok", "refused", "failed"):
        abort(400, "outcome must be ok, refused or failed")
    before = None
    if args.get("before_at") and args.get("before_key"):
        before = (time_arg(args.get("before_at"), "before_at"), args["before_key"][:40])
    export = args.get("format")
    if export not in (None, "", "csv", "json"):
        abort(400, "format must be csv or json")
    tenants = None if g.user.is_admin else list(g.user.tenants)
    with db() as conn, conn.transaction():
        rows = store.audit_page(conn, tenants, limit=EXPORT_LIMIT if export else PAGE, before=before, **filters)
    if export:
        audit("audit.export", after={"format": export, "rows": len(rows),
                                     **{k: (v.isoformat() if isinstance(v, datetime) else v)
                                        for k, v in filters.items() if v}})
        return _export(rows, export)
    for row in rows:
        row["diff"] = store.short_diff(row["before"], row["after"])
    next_args = None
    if len(rows) == PAGE:
        next_args = {k: v for k, v in args.items() if k not in ("before_at", "before_key")}
        next_args.update(before_at=rows[-1]["at"].isoformat(), before_key=rows[-1]["key"])
    return render_template("audit.html", rows=rows, args=args, next_args=next_args,
                           export_args={k: v for k, v in args.items() if k not in ("before_at", "before_key")})


def _export(rows: list[dict], kind: str) -> Response:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if kind == "json":
        body = json.dumps([{c: row[c] for c in COLUMNS} for row in rows], default=str, indent=1)
        mimetype = "application/json"
    else:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([_csv_cell(row[c]) for c in COLUMNS])
        body, mimetype = out.getvalue(), "text/csv"
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="swordfish-audit-{stamp}.{kind}"'})


def _csv_cell(value) -> str:
    if value is None:
        return ""
    text = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)
    # A cell a spreadsheet would run as a formula (=, +, -, @) is quoted as text: actors and objects
    # come from people and mail (OWASP "CSV injection").
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
