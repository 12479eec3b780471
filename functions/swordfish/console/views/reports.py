"""A tenant's dashboard and the report an MSP sends the client (issue 28): the same figures and
charts as the API's report (``store.reports``, ``reports.render``), for a period picked on the
page; HTML and PDF downloads (audited: a report holds the client's mail data). Every role sees the
tenants it may see (``require_tenant``: another tenant's report is a 404)."""

from __future__ import annotations

from flask import Response, abort, render_template, request

from swordfish.console.access import audit, login_required, require_tenant
from swordfish.console.views.common import blueprint, now
from swordfish.reports import render
from swordfish.reports.model import InvalidPeriod, ReportPeriod, TenantReport, parse_period
from swordfish.store.reports import tenant_report


def _report(tenant_id: str) -> TenantReport:
    require_tenant(tenant_id)
    from flask import g

    at = now()
    try:
        period: ReportPeriod = parse_period(request.args.get("from"), request.args.get("to"), today=at.date())
    except InvalidPeriod as exc:
        abort(400, str(exc))
    report = tenant_report(g.deps.database, tenant_id, period, now=at)
    if report is None:
        abort(404, "no such tenant")
    return report


@blueprint.get("/tenants/<tenant_id>/reports")
@login_required()
def tenant_dashboard(tenant_id: str):
    report = _report(tenant_id)
    period = {"from": report.period.start.isoformat(), "to": report.period.end.isoformat()}
    return render_template("dashboard.html", tenant_id=tenant_id, r=report, body=render.report_body(report),
                           period=period, filename_pdf=render.filename(report, "pdf"))


@blueprint.get("/tenants/<tenant_id>/reports.<any(html, pdf):kind>")
@login_required()
def tenant_report_download(tenant_id: str, kind: str):
    report = _report(tenant_id)
    audit("report.export", tenant_id=tenant_id,
          after={"format": kind, "from": report.period.start.isoformat(), "to": report.period.end.isoformat()})
    body, mimetype = ((render.report_html(report), "text/html") if kind == "html"
                      else (render.report_pdf(report), "application/pdf"))
    # Downloaded, not shown: the page is for the client, opened from a file (the console's CSP
    # would refuse its inline stylesheet).
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{render.filename(report, kind)}"'})
