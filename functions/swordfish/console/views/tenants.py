"""The tenants the caller may see (the overview); each tenant's policy, every field the engine knows
(MSP admins change it); adding a client tenant and disabling one; the list entries analysts' feedback
made, with who, when and why, removable.

Nothing is changed silently: list entries that can never match are refused by name (the form keeps
what was typed), limits are stated on the page and enforced with a message, and the audit row holds
only what changed.
"""

from __future__ import annotations

from datetime import timedelta

from flask import abort, g, redirect, render_template, request, url_for
from pydantic import ValidationError

from swordfish.analysis.list_entries import MAX_LIST_ENTRIES, check_list, parse_extra_brands
from swordfish.console import store
from swordfish.console.access import audit, login_required, require_tenant, visible_tenants
from swordfish.console.views.common import ADMIN, blueprint, db, now
from swordfish.security.inputs import text_problem
from swordfish.store.feedback import feedback_entries, remove_feedback_entry
from swordfish.store.tenants import (
    TenantExists,
    create_tenant,
    get_tenant,
    set_tenant_disabled,
    update_tenant,
    validate_tenant_id,
)

LIST_FIELDS = (("domains", "Own domains"), ("vip_names", "VIP names (display names of executives)"),
               ("allow_list", "Allow list"), ("block_list", "Block list"),
               ("trusted_authserv_ids", "Trusted authserv-ids (whose Authentication-Results count)"))
THRESHOLDS = ("suspicious", "spam", "phishing", "malware")
VERDICT_KINDS = ("spam", "suspicious", "phishing", "malware")


@blueprint.get("/")
@login_required()
def overview():
    since = now() - timedelta(hours=24)
    with db() as conn, conn.transaction():
        tenants = visible_tenants(conn)
        for tenant in tenants:
            tenant.update(store.tenant_summary(conn, tenant["tenant_id"], since))
    health = None
    if g.user.is_admin and g.deps.health_report is not None:
        health = g.deps.health_report("ready")[1].get("status")
    return render_template("overview.html", tenants=tenants, kinds=store.VERDICT_KINDS, health=health,
                           now=since + timedelta(hours=24))


def _lines(name: str) -> list[str]:
    return [line.strip() for line in request.form.get(name, "").splitlines() if line.strip()]


def policy_from_form(current: dict) -> tuple[dict | None, list[str]]:
    """The policy the form describes over ``current`` (fields the form leaves out are kept), or the
    reasons it is refused: every refused list entry by name, a limit, a number that is not one."""
    from swordfish.analysis import TenantPolicy

    # The one text check (issue 26): a NUL was a 500, a control character a forged line on a page.
    errors = [p for p in (text_problem(request.form.get("name") or "", "the name"),
                          text_problem(request.form.get("extra_brands") or "", "extra brands", multiline=True),
                          *(text_problem(request.form.get(n) or "", label, multiline=True) for n, label in LIST_FIELDS))
              if p]
    document = dict(current)
    for name, label in LIST_FIELDS:
        if name not in request.form:
            continue
        values = _lines(name)
        if name in ("allow_list", "block_list"):
            values, refused = check_list(values)
            errors += [f"{label}: {r}" for r in refused]
        elif len(values) > MAX_LIST_ENTRIES:
            errors.append(f"{label}: {len(values):,} lines, over the limit of {MAX_LIST_ENTRIES:,} entries")
        document[name] = values
    if "extra_brands" in request.form:
        brands, refused = parse_extra_brands(request.form["extra_brands"])
        errors += [f"Extra brands: {r}" for r in refused]
        document["extra_brands"] = brands
    thresholds = dict(current.get("thresholds") or {})
    for kind in THRESHOLDS:
        raw = (request.form.get(f"threshold_{kind}") or "").strip()
        if raw:
            try:
                thresholds[kind] = float(raw)
            except ValueError:
                errors.append(f"threshold {kind}: {raw!r} is not a number")
    if thresholds:
        document["thresholds"] = thresholds
    if request.form.get("block_verdict"):
        document["block_verdict"] = request.form["block_verdict"]
    if (request.form.get("allow_weight") or "").strip():
        try:
            document["allow_weight"] = float(request.form["allow_weight"])
        except ValueError:
            errors.append(f"allow weight: {request.form['allow_weight']!r} is not a number")
    if errors:
        return None, errors
    try:
        return TenantPolicy.model_validate(document).model_dump(mode="json"), []
    except ValidationError as exc:
        return None, [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]


def _form_values(policy: dict) -> dict:
    """What the form shows: the stored policy, or what was typed when it was refused."""
    if request.method != "POST":
        return policy
    typed = dict(policy)
    for name, _ in LIST_FIELDS:
        if name in request.form:
            typed[name] = _lines(name)
    if "extra_brands" in request.form:
        typed["extra_brands"] = request.form["extra_brands"]  # as typed, refused lines included
    return typed


@blueprint.route("/tenants/<tenant_id>/policy", methods=["GET", "POST"])
@login_required()
def policy(tenant_id: str):
    from swordfish.analysis import TenantPolicy

    require_tenant(tenant_id)
    with db() as conn, conn.transaction():
        tenant = get_tenant(conn, tenant_id)
    current = tenant["policy"] or {}
    errors: list[str] = []
    if request.method == "POST":
        if not g.user.is_admin:
            audit("policy.update", tenant_id=tenant_id, outcome="refused")
            abort(403, "only MSP admins change policies")
        updated, errors = policy_from_form(current)
        if updated is not None:
            name = (request.form.get("name") or "").strip()[:200] or None
            with db() as conn, conn.transaction():
                before, after = update_tenant(conn, tenant_id, name=name, policy=updated)
                if after:
                    audit("policy.update", tenant_id=tenant_id, object_type="policy", object_id=tenant_id,
                          before=before, after=after, conn=conn)
            return redirect(url_for("console.policy", tenant_id=tenant_id, saved=len(after)))
    with db() as conn, conn.transaction():
        made = feedback_entries(conn, tenant_id)
    effective = TenantPolicy.model_validate(current)
    return render_template("policy.html", tenant=tenant, tenant_id=tenant_id, policy=_form_values(current),
                           effective=effective, errors=errors, can_edit=g.user.is_admin, list_fields=LIST_FIELDS,
                           thresholds=THRESHOLDS, verdict_kinds=VERDICT_KINDS, limit=MAX_LIST_ENTRIES,
                           feedback_entries=made, saved=request.args.get("saved")), 400 if errors else 200


@blueprint.post("/tenants/<tenant_id>/policy/feedback-entries/remove")
@login_required(ADMIN)
def remove_feedback_list_entry(tenant_id: str):
    require_tenant(tenant_id)
    entry = (request.form.get("entry") or "").strip().lower()
    reason = (request.form.get("reason") or "").strip()[:2000]
    problem = text_problem(entry, "the entry") or text_problem(reason, "the reason")
    if problem:
        abort(400, problem)
    with db() as conn, conn.transaction():
        current = {e["list_entry"]: e for e in feedback_entries(conn, tenant_id)}.get(entry)
        if current is None or not remove_feedback_entry(conn, tenant_id, entry, g.user.email, reason):
            abort(404, "no such entry made by feedback")
        audit("policy.feedback_entry_remove", tenant_id=tenant_id, object_type="list_entry", object_id=entry,
              before={"entry": entry, "list": current["list"], "by": current["analyst"],
                      "message_id": current["message_id"]},
              after={"entry": entry, "list": current["list"], "reason": reason}, conn=conn)
    return redirect(url_for("console.policy", tenant_id=tenant_id))


@blueprint.route("/tenants/new", methods=["GET", "POST"])
@login_required(ADMIN)
def new_tenant():
    errors: list[str] = []
    tenant_id = (request.form.get("tenant_id") or "").strip()
    if request.method == "POST":
        try:
            validate_tenant_id(tenant_id)
        except ValueError as exc:
            errors.append(str(exc))
        name = (request.form.get("name") or "").strip()[:200] or tenant_id
        created, policy_errors = policy_from_form({})
        errors += policy_errors
        if not errors:
            try:
                with db() as conn, conn.transaction():
                    create_tenant(conn, tenant_id, name, created)
                    audit("tenant.create", tenant_id=tenant_id, object_type="tenant", object_id=tenant_id,
                          after={"name": name, **created}, conn=conn)
            except TenantExists as exc:
                errors.append(str(exc).split(":")[0] + ": pick another id, or edit that tenant's policy")
            else:
                return redirect(url_for("console.policy", tenant_id=tenant_id, saved="created"))
    return render_template("tenant_new.html", tenant_id=tenant_id, policy=_form_values({}), errors=errors,
                           list_fields=LIST_FIELDS, thresholds=THRESHOLDS, verdict_kinds=VERDICT_KINDS,
                           limit=MAX_LIST_ENTRIES), 400 if errors else 200


@blueprint.post("/tenants/<tenant_id>/<any(disable, enable):action>")
@login_required(ADMIN)
def tenant_state(tenant_id: str, action: str):
    require_tenant(tenant_id)
    disable = action == "disable"
    problem = text_problem(request.form.get("reason") or "", "the reason")
    if problem:
        abort(400, problem)
    with db() as conn, conn.transaction():
        if set_tenant_disabled(conn, tenant_id, disable):
            audit(f"tenant.{action}", tenant_id=tenant_id, object_type="tenant", object_id=tenant_id,
                  before={"disabled": not disable},
                  after={"disabled": disable, "reason": (request.form.get("reason") or "")[:500]}, conn=conn)
    return redirect(url_for("console.policy", tenant_id=tenant_id))
