"""Response in bulk (issue 28): quarantine, release or delete a campaign's or a search's messages in
every mailbox, the jobs' progress, the quarantine list with bulk release, and indicator blocks.

MSP admins act across tenants (campaigns, searches of every tenant, MSP-wide blocks); analysts act on
one of their tenants at a time (a search of it, its quarantine list, its blocks); auditors read.
Every start, block and unblock is audited (``store.response_jobs.ResponseDesk``), each mailbox's
outcome by the worker.
"""

from __future__ import annotations

from flask import abort, g, redirect, render_template, request, url_for
from pydantic import ValidationError

from swordfish.console.access import login_required, visible_tenants
from swordfish.console.views.common import ADMIN, ANALYST, blueprint, db, time_arg
from swordfish.security.inputs import text_problem
from swordfish.store.response_jobs import JobRefused, ResponseDesk
from swordfish.store.traces import TraceSearch

ACTORS = (ADMIN, ANALYST)
FILTERS = ("recipient", "message_id", "sending_ip", "helo", "link_domain", "url", "attachment_name",
           "attachment_sha256", "sender_domain", "reply_to_domain", "reason", "min_score", "max_score", "since",
           "until")
PAGE = 50


def _desk() -> ResponseDesk:
    return g.deps.responses() if g.deps.responses else ResponseDesk(g.deps.database)


def _scope() -> list[str] | None:
    return None if g.user.is_admin else list(g.user.tenants)


def _tenant_choice(value: str | None) -> str | None:
    """The job's tenant: '' for an admin is every tenant; an analyst must name one of theirs."""
    value = (value or "").strip()
    if not value:
        if g.user.is_admin:
            return None
        abort(400, "choose one of your tenants to act on")
    if not g.user.is_admin and value not in g.user.tenants:
        abort(404, "no such tenant")
    return value


def _search_from_form() -> TraceSearch | None:
    values = {n: request.form.get(f"f_{n}") for n in FILTERS if (request.form.get(f"f_{n}") or "").strip()}
    verdicts = [v for v in request.form.getlist("f_verdict") if v]
    if verdicts:
        values["verdict"] = verdicts
    if not values:
        return None
    try:
        return TraceSearch.model_validate(values)
    except ValidationError as exc:
        abort(400, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)))


@blueprint.post("/responses")
@login_required(*ACTORS)
def start_response():
    form = request.form
    action = form.get("action", "")
    problem = text_problem(form.get("note") or "", "the note", multiline=True)
    if problem:
        abort(400, problem)
    tenant_id = _tenant_choice(form.get("tenant"))
    source = form.get("source", "")
    campaign_id = query = quarantined = None
    if source == "campaign":
        if not g.user.is_admin:
            abort(403, "campaigns span tenants: acting on one is for MSP admins")
        raw = form.get("campaign_id", "")
        if not raw.isdigit() or len(raw) > 18:
            abort(400, "no such campaign")
        campaign_id = int(raw)
    elif source == "search":
        query = _search_from_form()
        if query is None:
            abort(400, "a search with no filter would act on every message: add a filter")
    elif source == "quarantine":
        quarantined = []
        for value in form.getlist("m")[:1000]:
            tenant, sep, message = value.partition("|")
            if not sep or not message:
                abort(400, "choose messages of the quarantine list")
            quarantined.append((tenant, message))
        if not quarantined:
            abort(400, "choose at least one message to release")
        if tenant_id is None and not g.user.is_admin:
            abort(400, "choose one of your tenants to act on")
    else:
        abort(400, "start from a campaign, a search or the quarantine list")
    try:
        job = _desk().start(scope=_scope(), tenant_id=tenant_id, action=action, created_by=g.user.email,
                            created_role=g.user.role, campaign_id=campaign_id, query=query, quarantined=quarantined,
                            confirm_delete=form.get("confirm_delete") == "yes", note=(form.get("note") or "").strip(),
                            source_ip=getattr(g, "source_ip", None))
    except JobRefused as exc:
        abort(400, str(exc))
    return redirect(url_for("console.response_job", job_id=job["job_id"]))


@blueprint.get("/responses")
@login_required()
def responses():
    before = request.args.get("before", "")
    jobs = _desk().jobs(_scope(), limit=PAGE, before=int(before) if before.isdigit() and len(before) < 19 else None)
    return render_template("responses.html", jobs=jobs, page=PAGE)


@blueprint.get("/responses/<int:job_id>")
@login_required()
def response_job(job_id: int):
    found = _desk().progress(job_id, _scope()) if job_id < 2**62 else None
    if found is None:
        abort(404, "no such job")
    items = _desk().items(job_id, _scope(), limit=500, after=0)
    return render_template("response_job.html", job=found, items=items)


@blueprint.get("/quarantine")
@login_required()
def quarantine():
    args = request.args
    tenant = (args.get("tenant") or "").strip() or None
    if tenant and not g.user.is_admin and tenant not in g.user.tenants:
        abort(404, "no such tenant")
    state = args.get("state", "quarantined")
    if state not in ("quarantined", "released", "deleted", ""):
        abort(400, "state is quarantined, released or deleted")
    for name in ("recipient", "sender"):
        problem = text_problem(args.get(name) or "", name)
        if problem or len(args.get(name) or "") > 300:
            abort(400, problem or f"{name} is too long")
    try:
        rows, next_cursor = _desk().quarantine(
            _scope(), limit=PAGE, cursor=args.get("cursor") or None, tenant=tenant, state=state or None,
            recipient=(args.get("recipient") or "").strip() or None, sender=(args.get("sender") or "").strip() or None,
            since=time_arg(args.get("since"), "from"), until=time_arg(args.get("until"), "to"))
    except JobRefused as exc:
        abort(400, str(exc))
    with db() as conn, conn.transaction():
        tenants = visible_tenants(conn)
    next_args = None
    if next_cursor:
        next_args = [(k, v) for k, v in args.items(multi=True) if k != "cursor"] + [("cursor", next_cursor)]
    return render_template("quarantine.html", rows=rows, args=args, tenants=tenants, next_args=next_args,
                           can_act=g.user.role in ACTORS)


@blueprint.get("/blocks")
@login_required()
def blocks():
    with db() as conn, conn.transaction():
        tenants = visible_tenants(conn)
    return render_template("blocks.html", rows=_desk().blocks(_scope()), tenants=tenants,
                           can_act=g.user.role in ACTORS)


@blueprint.post("/blocks")
@login_required(*ACTORS)
def add_blocks():
    """One block, or several of a campaign's indicators (``kind|indicator`` values of ``i``)."""
    form = request.form
    tenant_id = _tenant_choice(form.get("tenant"))
    problem = text_problem(form.get("comment") or "", "the comment", multiline=True)
    if problem:
        abort(400, problem)
    raw = form.get("campaign_id", "")
    campaign_id = int(raw) if raw.isdigit() and len(raw) < 19 else None
    chosen = [v.partition("|")[::2] for v in form.getlist("i")[:100]]
    if form.get("kind") or form.get("indicator"):
        chosen.append((form.get("kind", ""), form.get("indicator", "")))
    if campaign_id is not None:
        offered = _desk().campaign_indicators(campaign_id) if g.user.is_admin else None
        if offered is None:
            abort(404, "no such campaign")
        if any((k, v) not in offered for k, v in chosen):
            abort(400, "choose indicators of this campaign")
    if not chosen:
        abort(400, "choose at least one indicator to block")
    try:
        for kind, indicator in chosen:
            _desk().block(scope=_scope(), tenant_id=tenant_id, kind=kind, indicator=indicator,
                          created_by=g.user.email, created_role=g.user.role, campaign_id=campaign_id,
                          comment=(form.get("comment") or "").strip(), source_ip=getattr(g, "source_ip", None))
    except ValueError as exc:
        abort(400, f"not blocked: {exc}")
    return redirect(url_for("console.blocks"))


@blueprint.post("/blocks/<int:block_id>/remove")
@login_required(*ACTORS)
def remove_block(block_id: int):
    if _desk().unblock(block_id, scope=_scope(), removed_by=g.user.email, role=g.user.role,
                       source_ip=getattr(g, "source_ip", None)) is None:
        abort(404, "no such block in force here")
    return redirect(url_for("console.blocks"))
