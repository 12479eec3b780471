"""Campaigns for MSP admins (issue 28): lures that reached several tenants, with who they reached,
what caught them, and the copies that scored clean (the ones that were delivered)."""

from __future__ import annotations

from flask import abort, render_template

from swordfish.console.access import login_required
from swordfish.console.views.common import ADMIN, blueprint, db
from swordfish.store.campaigns import get_campaign, list_campaigns, members, summary
from swordfish.store.indicator_blocks import campaign_indicators


@blueprint.get("/campaigns")
@login_required(ADMIN)
def campaigns():
    with db() as conn, conn.transaction():
        rows = list_campaigns(conn, limit=100)
    return render_template("campaigns.html", rows=rows)


@blueprint.get("/campaigns/<int:campaign_id>")
@login_required(ADMIN)
def campaign(campaign_id: int):
    with db() as conn, conn.transaction():
        found = get_campaign(conn, campaign_id) if campaign_id < 2**62 else None
        if found is None:
            abort(404, "no such campaign")
        view = summary(found, members(conn, found))
        indicators = campaign_indicators(conn, found)
    return render_template("campaign.html", c=view, indicators=indicators)
