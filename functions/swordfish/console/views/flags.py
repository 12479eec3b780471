"""Feature flags: admins change a default through the audited flag admin; auditors read."""

from __future__ import annotations

import json

from flask import abort, g, redirect, render_template, request, url_for

from swordfish.console.access import audit, login_required
from swordfish.console.views.common import ADMIN, AUDITOR, blueprint
from swordfish.monitoring.observability import logger
from swordfish.security.inputs import text_problem, visible


@blueprint.route("/flags", methods=["GET", "POST"])
@login_required(ADMIN, AUDITOR)
def flags():
    if g.deps.flag_document is None:
        abort(404, "feature flags are not configured here")
    error = None
    if request.method == "POST":
        name, raw = request.form.get("flag", ""), request.form.get("value", "")
        where = dict(object_type="flag", object_id=visible(name, 100))
        if not g.user.is_admin:
            audit("flag.set", outcome="refused", after={"reason": "role"}, **where)  # ASVS V7
            abort(403, "only MSP admins change flags")
        reason = request.form.get("reason") or ""
        error = text_problem(reason, "the reason") or text_problem(raw, "the value")
        value = None
        if error is None:
            try:  # NaN and Infinity are not JSON, whatever json.loads accepts
                value = json.loads(raw, parse_constant=_not_json)
            except ValueError:
                error = f"{raw!r} is not JSON: write true, false, a number or a quoted string"
        if error is None:
            from swordfish.features.admin import FlagChangeError

            try:
                result = g.deps.flag_admin(f"console:{g.user.email}").set_default(name, value,
                                                                                  reason=reason[:500] or None)
            except (FlagChangeError, ValueError) as exc:
                error = str(exc)
            except Exception as exc:  # the flag store or the audit database: nothing was deployed
                logger.exception("a console flag change failed")
                audit("flag.set", outcome="failed", after={"value": value, "error": type(exc).__name__}, **where)
                abort(503, "the flag store could not be reached; nothing was changed. Try again shortly.")
            else:
                audit("flag.set", before=result.before, after=result.after, **where)
                return redirect(url_for("console.flags"))
        audit("flag.set", outcome="refused", after={"value": visible(raw, 200), "reason": error[:500]}, **where)
    version, document = g.deps.flag_document()
    return render_template("flags.html", version=version, flags=sorted(document.items()), error=error,
                           can_edit=g.user.is_admin), 400 if error else 200


def _not_json(constant: str):
    raise ValueError(f"{constant} is not JSON")
