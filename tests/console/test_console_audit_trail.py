"""One audit trail: console, CLI and flag changes in one place, with who made them, filterable by
actor, tenant, action and time, exportable as CSV and JSON, each change shown as a short diff."""

from __future__ import annotations

import csv
import io
import json

import psycopg
from swordfish.cli import main
from swordfish.features import audit as flag_audit
from swordfish.store.database import proxy_connect

from tests.console.helpers import get, post_form

ADMIN, AUDITOR = "admin@msp.example", "auditor@acme.example"


def _signed_in(console, email, role, tenants):
    console.add_user(email, role, tenants)
    client = console.client()
    assert console.login(client, email).status_code == 302
    return client


def _trail(console, settings_env):
    settings_env(operator="olivia@msp.example", admin_database_url=console.owner_url)
    assert main(["tenants", "create", "initech", "--name", "Initech"]) == 0  # a CLI change
    admin = _signed_in(console, ADMIN, "msp_admin", [])
    page = "/console/tenants/acme-corp/policy"
    assert post_form(admin, page, page, {"block_list": "evil.example"}).status_code == 302  # a console change
    with proxy_connect(console.owner_url) as conn, conn.transaction():  # a flag change (swordfish flags)
        flag_audit.record(conn, flag_audit.AuditEntry(store="app/env/flags", actor="bob", action="target",
                                                      flag_name="auto_quarantine", before={"default": False},
                                                      after={"default": True}, config_version="7"))
    return admin


def test_console_cli_and_flag_changes_are_in_one_trail_and_filter(console, settings_env):
    admin = _trail(console, settings_env)
    everything = get(admin, "/console/audit").get_data(as_text=True)
    assert "tenant.create" in everything and "olivia@msp.example" in everything and "policy.update" in everything
    assert "flag.target" in everything and "auto_quarantine" in everything
    by_actor = get(admin, "/console/audit?actor=olivia").get_data(as_text=True)
    assert "tenant.create" in by_actor and "policy.update" not in by_actor
    by_tenant = get(admin, "/console/audit?tenant=acme-corp&action=policy").get_data(as_text=True)
    assert "policy.update" in by_tenant and "tenant.create" not in by_tenant and "flag.target" not in by_tenant
    assert "tenant.create" not in get(admin, "/console/audit?until=2000-01-01T00:00").get_data(as_text=True)
    assert get(admin, "/console/audit?since=yesterday").status_code == 400


def test_a_change_is_shown_as_a_short_diff(console, settings_env):
    admin = _trail(console, settings_env)
    html = get(admin, "/console/audit?action=policy.update").get_data(as_text=True)
    assert "block_list: [] → [&#34;evil.example&#34;]" in html or 'block_list: [] → ["evil.example"]' in html
    assert "thresholds" not in html  # unchanged fields are not repeated


def test_the_trail_exports_as_csv_and_json_with_the_filters(console, settings_env):
    admin = _trail(console, settings_env)
    response = get(admin, "/console/audit?format=csv&actor=olivia")
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["actor"], r["action"], r["tenant_id"]) for r in rows] == [("olivia@msp.example", "tenant.create", "initech")]
    data = json.loads(get(admin, "/console/audit?format=json&tenant=acme-corp").get_data(as_text=True))
    assert [r["action"] for r in data] == ["policy.update"] and data[0]["after"] == {"block_list": ["evil.example"]}
    exported = [r[0] for r in psycopg.connect(console.superuser_url).execute(
        "SELECT action FROM console_audit WHERE action = 'audit.export'").fetchall()]
    assert len(exported) == 2  # an export is itself audited


def test_auditors_see_their_tenants_rows_only_and_no_flag_rows(console, settings_env):
    _trail(console, settings_env)
    auditor = _signed_in(console, AUDITOR, "auditor", ["acme-corp"])
    html = get(auditor, "/console/audit").get_data(as_text=True)
    assert "policy.update" in html and "tenant.create" not in html and "flag.target" not in html
    data = json.loads(get(auditor, "/console/audit?format=json&tenant=initech").get_data(as_text=True))
    assert data == []


def test_a_nul_in_a_filter_is_a_clear_400(console, settings_env):
    admin = _trail(console, settings_env)
    assert get(admin, "/console/audit?actor=a%00b").status_code == 400
