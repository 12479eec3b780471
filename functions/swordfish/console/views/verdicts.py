"""A tenant's verdicts: the filtered, paged list; one verdict with its message made safe to show;
feedback and release from quarantine (admins and analysts; every read of mail content is audited)."""

from __future__ import annotations

from flask import abort, g, redirect, render_template, request, url_for

from swordfish.console import store
from swordfish.console.access import audit, login_required, require_tenant
from swordfish.console.message_view import render_message
from swordfish.console.views.common import ADMIN, ANALYST, PAGE_SIZES, blueprint, db, render_error, time_arg
from swordfish.security.inputs import text_problem


@blueprint.get("/tenants/<tenant_id>/verdicts")
@login_required()
def verdicts(tenant_id: str):
    require_tenant(tenant_id)
    args = request.args
    verdict = args.get("verdict") or None
    if verdict and verdict not in store.VERDICT_KINDS:
        abort(400, f"verdict must be one of {', '.join(store.VERDICT_KINDS)}")
    try:
        limit = int(args.get("limit", 50))
    except ValueError:
        abort(400, "limit must be a number")
    if limit not in PAGE_SIZES:
        abort(400, f"limit must be one of {PAGE_SIZES}")
    for name in ("sender", "subject", "before_id", "since", "until", "before_at"):
        problem = text_problem(args.get(name) or "", name)  # NUL reached PostgreSQL: a 500
        if problem:
            abort(400, problem)
    before = None
    if args.get("before_at") and args.get("before_id") is not None:
        before = (time_arg(args["before_at"], "before_at"), args["before_id"])
    filters = {"verdict": verdict, "since": time_arg(args.get("since"), "since"),
               "until": time_arg(args.get("until"), "until"),
               "sender": (args.get("sender") or "")[:200] or None, "subject": (args.get("subject") or "")[:200] or None}
    with db() as conn, conn.transaction():
        rows = store.verdict_page(conn, tenant_id, limit=limit, before=before, **filters)
    next_args = None
    if len(rows) == limit:
        next_args = {k: v for k, v in args.items() if k not in ("before_at", "before_id")}
        next_args.update(before_at=rows[-1]["committed_at"].isoformat(), before_id=rows[-1]["message_id"])
    return render_template("verdicts.html", tenant_id=tenant_id, rows=rows, args=args, kinds=store.VERDICT_KINDS,
                           next_args=next_args, page_sizes=PAGE_SIZES, limit=limit)


# merge_slashes off: a message id may hold "//" (werkzeug would redirect to another URL)
@blueprint.route("/tenants/<tenant_id>/verdicts/<message_id:message_id>", methods=["GET", "POST"], merge_slashes=False)
@login_required()
def verdict(tenant_id: str, message_id: str):
    require_tenant(tenant_id)
    if text_problem(message_id, "message_id"):  # no stored id holds these (the API refuses them)
        abort(404, "no such verdict")
    with db() as conn, conn.transaction():
        row = store.verdict_detail(conn, tenant_id, message_id)
    if row is None:
        abort(404, "no such verdict")
    if request.method == "POST":
        action = request.form.get("action", "")
        if g.user.role not in (ADMIN, ANALYST):
            audit(f"verdict.{action}" if action in store.FEEDBACK_ACTIONS else "verdict.feedback",
                  tenant_id=tenant_id, object_type="verdict", object_id=message_id, outcome="refused")
            abort(403, "auditors cannot act on verdicts")
        if action not in store.FEEDBACK_ACTIONS:
            abort(400, f"action must be one of {', '.join(store.FEEDBACK_ACTIONS)}")
        problem = text_problem(request.form.get("note") or "", "the note", multiline=True)
        if problem:
            abort(400, problem)
        if action == "release":
            return _release(tenant_id, message_id, row)
        with db() as conn, conn.transaction():
            store.add_feedback(conn, tenant_id, message_id, action, g.user.email, request.form.get("note"))
            audit(f"verdict.{action}", tenant_id=tenant_id, object_type="verdict", object_id=message_id,
                  before={"verdict": row["verdict"], "feedback": [f["action"] for f in row["feedback"]]},
                  after={"action": action}, conn=conn)
        return redirect(url_for("console.verdict", tenant_id=tenant_id, message_id=message_id))
    message, unavailable = _message_content(tenant_id, message_id, row)
    return render_template("verdict.html", tenant_id=tenant_id, v=row, m=message, unavailable=unavailable,
                           can_act=g.user.role in (ADMIN, ANALYST), effect=(effect := _feedback_effect(tenant_id, row)),
                           summary=summary(row, effect["thresholds"]))


def _feedback_effect(tenant_id: str, row: dict) -> dict:
    """What "Mark legitimate" and "Confirm phishing" will do besides recording the judgement, said
    before the click: the sender address goes on the tenant's allow or block list (``store.feedback``)."""
    from swordfish.analysis import TenantPolicy

    with db() as conn, conn.transaction():
        policy = TenantPolicy.model_validate(store.get_policy(conn, tenant_id) or {})
    sender = (row.get("sender") or "").strip().lower()
    return {"entry": sender if "@" in sender else None, "allow_weight": policy.allow_weight,
            "block_verdict": policy.block_verdict.value, "thresholds": policy.thresholds}


def summary(row: dict, thresholds) -> str:
    """Why, in one sentence: the score against the tenant's thresholds and the biggest contributions."""
    score, verdict = row["score"], row["verdict"]
    limits = {k: getattr(thresholds, k) for k in ("suspicious", "spam", "phishing", "malware")}
    reasons = sorted((r for r in row.get("reasons") or [] if isinstance(r, dict)),
                     key=lambda r: -abs(float(r.get("weight") or 0)))[:3]
    named = ", ".join(f"{r.get('name')} ({float(r.get('weight') or 0):+.1f})" for r in reasons)
    if verdict == "clean":
        head = f"Clean: the score {score:.1f} is below the suspicious threshold {limits['suspicious']:.1f}"
    elif any(r.get("name") == "BLOCKLISTED" for r in reasons):
        head = f"{verdict.capitalize()}: the sender is on this tenant's block list (score {score:.1f})"
    else:
        limit = limits.get(verdict, limits["suspicious"])
        head = f"{verdict.capitalize()}: the score {score:.1f} reached the {verdict} threshold {limit:.1f}"
    return head + (f"; the largest contributions: {named}." if named else ".") + \
        " (Thresholds as the tenant's policy sets them now.)"


def _message_content(tenant_id: str, message_id: str, row: dict):
    """The message itself, re-read from the raw archive (``integrations.message_content``) and made
    safe to show (``message_view``). Every read of mail content is audited, shown or not."""
    from swordfish.integrations.message_content import ContentUnavailable

    try:
        source = g.deps.message_source() if g.deps.message_source else None
        if source is None:
            return None, "message content is not configured here (no raw-submission archive)"
        raw = source.load(tenant_id, message_id, row.get("raw_archive_key"), row.get("raw_archive_line"),
                          (row.get("quarantine") or {}).get("provider_message_id"))
    except Exception as exc:  # ContentUnavailable, or its clients could not be built (e.g. a secret)
        if not isinstance(exc, ContentUnavailable):
            exc = ContentUnavailable(f"the message could not be read: {type(exc).__name__}")
        audit("verdict.content_view", tenant_id=tenant_id, object_type="verdict", object_id=message_id,
              outcome="failed", after={"reason": str(exc)})
        return None, str(exc)
    message = render_message(raw)
    message.pivots = pivots(raw)
    audit("verdict.content_view", tenant_id=tenant_id, object_type="verdict", object_id=message_id,
          after={"bytes": len(raw), "html": message.html is not None, "notes": message.notes[:5]})
    return message, None


MAX_PIVOTS = 200


def pivots(raw: bytes) -> dict:
    """The message's links and attachments as the analysis parsed them, for pivoting: shown as text
    (never as links to follow), each link's domain a search of this tenant's verdicts from it, each
    attachment's SHA-256 to look up elsewhere."""
    from swordfish.analysis import AnalysisBudget, parse_message

    try:
        parsed = parse_message(raw, budget=AnalysisBudget(2.0))
    except Exception:  # parse_message never raises by contract; a page must not fail if it did
        return {"links": [], "attachments": [], "cut": False}
    seen, links = set(), []
    for link in parsed.links:
        if link.url not in seen:
            seen.add(link.url)
            links.append({"url": link.url, "host": link.host, "domain": link.domain, "text": link.text,
                          "source": link.source})
    attachments = [{"filename": a.filename, "type": a.sniffed_type or a.declared_type, "size": a.size,
                    "sha256": a.sha256, "inline": a.inline} for a in parsed.attachments]
    return {"links": links[:MAX_PIVOTS], "attachments": attachments[:MAX_PIVOTS],
            "cut": len(links) > MAX_PIVOTS or len(attachments) > MAX_PIVOTS}


def _release(tenant_id: str, message_id: str, row: dict):
    """Move the message back to the inbox through Nango, then record it; in one transaction, so a
    failed move marks nothing (``store.quarantines.release_from_quarantine``)."""
    from swordfish.pipeline.ports import NotQuarantined, ReleaseFailed
    from swordfish.store.quarantines import release_from_quarantine

    where = dict(tenant_id=tenant_id, object_type="verdict", object_id=message_id)
    try:
        releaser = g.deps.releaser() if g.deps.releaser else None
    except Exception as exc:  # the Nango client could not be built (its secret): nothing was tried
        audit("verdict.release", outcome="failed", after={"reason": f"Nango client: {type(exc).__name__}"}, **where)
        abort(503, "the mailbox integration (Nango) cannot be reached from here; nothing was released")
    if releaser is None:
        audit("verdict.release", outcome="failed", after={"reason": "Nango is not configured"}, **where)
        abort(503, "releasing needs the mailbox integration (Nango), which is not configured here")
    try:
        with db() as conn, conn.transaction():
            released = release_from_quarantine(conn, tenant_id, message_id, releaser, actor=g.user.email,
                                               note=request.form.get("note"))
            audit("verdict.release", before={"verdict": row["verdict"], "state": "quarantined"},
                  after={"state": "released", "provider_message_id": released.provider_message_id}, conn=conn,
                  **where)
    except NotQuarantined as exc:
        audit("verdict.release", outcome="refused", after={"reason": str(exc)}, **where)
        return render_error(409, f"Not released: {exc}")
    except ReleaseFailed as exc:
        audit("verdict.release", outcome="failed", after={"kind": exc.kind, "reason": str(exc)[:500]}, **where)
        return render_error(exc.http_status, f"Not released: {exc}")
    return redirect(url_for("console.verdict", tenant_id=tenant_id, message_id=message_id))
