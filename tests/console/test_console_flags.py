"""Flags per tenant from the console: target one tenant, roll out, roll back, through the same audited
path as `swordfish flags`; an auditor sees only their tenants' ids in the targeting rules."""

from __future__ import annotations

import uuid

import psycopg
from swordfish.features.admin import FlagAdmin
from swordfish.features.repository import MotoRepository

from devstack.appconfig_agent import seed_flags
from tests.console.helpers import get, post_form

ADMIN, AUDITOR = "admin@msp.example", "auditor@acme.example"
FLAG = "auto_quarantine"


def test_an_admin_targets_one_tenant_rolls_out_and_back_and_auditors_see_only_their_ids(console, database,
                                                                                        moto_server):
    application = f"swordfish-console-{uuid.uuid4().hex[:8]}"
    seed_flags(moto_server.url, {FLAG: {"default": False}}, application=application)
    repository = MotoRepository(moto_server.url, application=application)
    console.deps.flag_admin = lambda actor: FlagAdmin(repository, database.app_url, actor)
    console.deps.flag_document = lambda: (repository.deployed().version, repository.deployed().document)
    console.add_user(ADMIN, "msp_admin", [])
    admin = console.client()
    console.login(admin, ADMIN)
    page = "/console/flags"
    for tenant, state in (("globex", "on"), ("acme-corp", "on")):
        response = post_form(admin, page, f"/console/flags/{FLAG}/target",
                             {"tenant": tenant, "state": state, "reason": "pilot"})
        assert response.status_code == 302 and "deployed" in response.headers["Location"]
    rules = repository.deployed().document[FLAG]["rules"]
    assert rules["tenants on"]["conditions"][0]["value"] == ["acme-corp", "globex"]
    assert post_form(admin, page, f"/console/flags/{FLAG}/target", {"tenant": "nope", "state": "on"}).status_code == 400
    assert post_form(admin, page, f"/console/flags/{FLAG}/target",  # the one text check: nothing deployed
                     {"tenant": "globex", "state": "off", "reason": "pilot\r\nforged"}).status_code == 400

    console.add_user(AUDITOR, "auditor", ["acme-corp"])
    auditor = console.client()
    console.login(auditor, AUDITOR)
    html = get(auditor, page).get_data(as_text=True)
    assert "acme-corp" in html and "globex" not in html
    assert post_form(auditor, page, f"/console/flags/{FLAG}/rollback", {}).status_code == 403

    assert post_form(admin, page, f"/console/flags/{FLAG}/rollout", {"percent": "25"}).status_code == 302
    assert "percentage rollout" in repository.deployed().document[FLAG]["rules"]
    assert post_form(admin, page, f"/console/flags/{FLAG}/rollback", {}).status_code == 302
    assert "percentage rollout" not in repository.deployed().document[FLAG].get("rules", {})
    with psycopg.connect(database.superuser_url) as conn:
        flag_rows = conn.execute("SELECT actor, action FROM flag_audit WHERE store LIKE %s ORDER BY audit_id",
                                 (f"{application}/%",)).fetchall()
        console_rows = conn.execute("SELECT action FROM console_audit WHERE action LIKE 'flag.%%' AND outcome = 'ok' "
                                    "ORDER BY audit_id").fetchall()
    assert [a for _, a in flag_rows] == ["target", "target", "rollout", "rollback"]
    assert {actor for actor, _ in flag_rows} == {f"console:{ADMIN}"}
    assert [r[0] for r in console_rows] == ["flag.target", "flag.target", "flag.rollout", "flag.rollback"]
