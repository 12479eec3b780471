"""Feature flags: admins change a default through the audited flag admin; auditors read."""

from __future__ import annotations

import json

from flask import abort, g, redirect, render_template, request, url_for

from swordfish.console.access import audit, login_required
from swordfish.console.views.common import ADMIN, AUDITOR, blueprint


@blueprint.route("/flags", methods=["GET", "POST"])
@login_required(ADMIN, AUDITOR)
def flags():
    if g.deps.flag_document is None:
        abort(404, "feature flags are not configured here")
    error = None
    if request.method == "POST":
        if not g.user.is_admin:
            abort(403, "only MSP admins change flags")
        name, raw = request.form.get("flag", ""), request.form.get("value", "")
        try:
            value = json.loads(raw)
        except ValueError:
            error = f"{raw!r} is not JSON: write true, false, a number or a quoted string"
        else:
            from swordfish.features.admin import FlagChangeError

            try:
                result = g.deps.flag_admin(f"console:{g.user.email}").set_default(
                    name, value, reason=(request.form.get("reason") or "")[:500] or None)
            except (FlagChangeError, ValueError) as exc:
                error = str(exc)
            else:
                audit("flag.set", object_type="flag", object_id=name, before=result.before, after=result.after)
                return redirect(url_for("console.flags"))
    version, document = g.deps.flag_document()
    return render_template("flags.html", version=version, flags=sorted(document.items()), error=error,
                           can_edit=g.user.is_admin)
