"""The console's pages, one module per area, all on one blueprint (``console.<view>`` endpoints).

Every view checks the caller's role (``access.login_required``) and, for tenant objects, the
caller's tenants (``access.require_tenant``: another tenant's object is a 404); every state change
is a POST under CSRF and writes an audit row in the same transaction as the change. The area
modules import ``common`` and ``access``, never each other nor ``app``.
"""

from __future__ import annotations

# Importing an area registers its routes on the blueprint.
from swordfish.console.views import (  # noqa: F401
    alerts,
    audit,
    campaigns,
    flags,
    keys,
    lists,
    operations,
    reports,
    response,
    search,
    signin,
    sso,
    tenants,
    users,
    verdicts,
)
from swordfish.console.views.common import blueprint, render_error

__all__ = ["blueprint", "render_error"]
