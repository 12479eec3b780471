"""Search and trace across tenants (issue 28): MSP admins search every tenant, analysts and auditors
their own tenants (row-level security holds it whatever the query says); any trace field, verdict,
score, reason and time; keyset pages; each result links to its verdict; CSV export (audited)."""

from __future__ import annotations

import csv
import io

from flask import Response, abort, g, render_template, request
from pydantic import ValidationError

from swordfish.console.access import audit, login_required, visible_tenants
from swordfish.console.views.common import blueprint, db
from swordfish.store.traces import (
    CSV_COLUMNS,
    MAX_CSV_ROWS,
    MAX_PAGE,
    InvalidSearch,
    TraceSearch,
    csv_rows,
    search,
)

FIELDS = ("tenant", "recipient", "message_id", "sending_ip", "helo", "link_domain", "url", "attachment_name",
          "attachment_sha256", "sender_domain", "reply_to_domain", "reason", "min_score", "max_score", "since", "until")
PAGE = 50


def _scope() -> list[str] | None:
    return None if g.user.is_admin else list(g.user.tenants)


def _query() -> TraceSearch:
    args = request.args
    values = {name: args.get(name) for name in FIELDS if (args.get(name) or "").strip()}
    verdicts = [v for v in args.getlist("verdict") if v]
    if verdicts:
        values["verdict"] = verdicts
    try:
        return TraceSearch.model_validate(values)
    except ValidationError as exc:
        abort(400, "; ".join(f"{'.'.join(map(str, e['loc'])) or 'search'}: {e['msg']}"
                             for e in exc.errors(include_url=False)))


@blueprint.get("/search")
@login_required()
def trace_search():
    query = _query()
    cursor = request.args.get("cursor") or None
    rows, next_cursor = [], None
    if not query.is_empty() or cursor:
        try:
            with db() as conn, conn.transaction():
                rows, next_cursor = search(conn, query, _scope(), limit=PAGE, cursor=cursor)
        except InvalidSearch as exc:
            abort(400, str(exc))
    with db() as conn, conn.transaction():
        tenants = visible_tenants(conn)
    next_args = None
    if next_cursor:
        next_args = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"] + [("cursor", next_cursor)]
    export_args = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
    return render_template("search.html", rows=rows, args=request.args, tenants=tenants, next_args=next_args,
                           export_args=export_args, searched=not query.is_empty(),
                           checked=set(request.args.getlist("verdict")))


@blueprint.get("/search.csv")
@login_required()
def trace_search_csv():
    query = _query()
    rows, cursor = [], None
    try:
        with db() as conn, conn.transaction():
            while len(rows) < MAX_CSV_ROWS:
                page, cursor = search(conn, query, _scope(), limit=MAX_PAGE, cursor=cursor)
                rows += page
                if cursor is None:
                    break
    except InvalidSearch as exc:
        abort(400, str(exc))
    rows = rows[:MAX_CSV_ROWS]
    # Who exported what: the filters and how many rows (a search result holds other people's mail data).
    audit("search.export", after={"filters": query.model_dump(mode="json", exclude_none=True), "rows": len(rows)})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(rows))
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="swordfish-search.csv"'})
