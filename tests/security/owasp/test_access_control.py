"""Tenant isolation, object ownership, privilege escalation and CSRF, console and API."""

from __future__ import annotations

from urllib.parse import quote

import requests

from tests.console.helpers import add_verdict
from tests.security.owasp.conftest import ADMIN, ANALYST, AUDITOR


def test_an_analyst_gets_404_for_another_tenants_pages_and_verdicts(site):
    add_verdict(site.stack.info.owner_url, "globex", "<globex-secret@globex.example>", subject="globex board minutes")
    add_verdict(site.stack.info.owner_url, "acme-corp", "<acme-1@acme.example>", subject="acme invoice")
    analyst = site.login(ANALYST)
    assert analyst.get("/console/tenants/acme-corp/verdicts").status_code == 200
    for path in ("/console/tenants/globex/verdicts", "/console/tenants/globex/policy",
                 "/console/tenants/globex/verdicts/" + quote("<globex-secret@globex.example>"),
                 "/console/tenants/no-such-tenant/verdicts"):
        response = analyst.get(path)
        assert response.status_code == 404, path
        assert "globex board minutes" not in response.text
    # Another tenant's message id under the analyst's own tenant: not found either (the row is RLS-scoped).
    response = analyst.get("/console/tenants/acme-corp/verdicts/" + quote("<globex-secret@globex.example>"))
    assert response.status_code == 404
    overview = analyst.get("/console/").text
    assert "acme-corp" in overview and "globex" not in overview


def test_an_analyst_cannot_reach_user_or_key_management_nor_escalate(site):
    analyst = site.login(ANALYST)
    for path in ("/console/users", "/console/tenants/acme-corp/keys", "/console/health", "/console/flags",
                 "/console/audit"):
        assert analyst.get(path).status_code == 403, path
    token = analyst.token("/console/")
    invite = analyst.request("POST", "/console/users", data={"csrf_token": token, "email": "mallory@evil.example",
                                                             "role": "msp_admin"})
    assert invite.status_code == 403
    admin_id = site.users[ADMIN][0]
    disable = analyst.request("POST", f"/console/users/{admin_id}/disable", data={"csrf_token": token})
    assert disable.status_code == 403
    key = analyst.request("POST", "/console/tenants/acme-corp/keys", data={"csrf_token": token, "label": "mine"})
    assert key.status_code == 403
    assert site.sql("SELECT count(*) FROM console_users WHERE email = 'mallory@evil.example'")[0][0] == 0
    assert site.sql("SELECT disabled_at FROM console_users WHERE user_id = %s", (admin_id,))[0][0] is None
    refused = site.sql("SELECT count(*) FROM console_audit WHERE action = 'access.refused' AND actor = %s", (ANALYST,))
    assert refused[0][0] >= 8


def test_an_auditor_reads_but_cannot_act_on_verdicts(site):
    add_verdict(site.stack.info.owner_url, "acme-corp", "m-1")
    auditor = site.login(AUDITOR)
    page = auditor.get("/console/tenants/acme-corp/verdicts/m-1")
    assert page.status_code == 200 and "Release from quarantine" not in page.text
    response = auditor.post_form("/console/tenants/acme-corp/verdicts/m-1", "/console/tenants/acme-corp/verdicts/m-1",
                                 {"action": "release"})
    assert response.status_code == 403
    assert site.sql("SELECT count(*) FROM verdict_releases")[0][0] == 0


def test_state_changes_without_a_csrf_token_are_refused(site):
    add_verdict(site.stack.info.owner_url, "acme-corp", "m-2")
    analyst = site.login(ANALYST)
    path = "/console/tenants/acme-corp/verdicts/m-2"
    missing = analyst.post_form(path, path, {"action": "confirm_phishing"}, with_token=False)
    assert missing.status_code == 400
    other = site.login(ANALYST)  # a valid token, but from another session
    forged = analyst.request("POST", path, data={"action": "confirm_phishing", "csrf_token": other.token(path)})
    assert forged.status_code == 400
    assert site.sql("SELECT count(*) FROM verdict_feedback")[0][0] == 0
    ok = analyst.post_form(path, path, {"action": "confirm_phishing"})
    assert ok.status_code == 302
    assert site.sql("SELECT analyst FROM verdict_feedback") == [(ANALYST,)]
    logout = analyst.request("POST", "/console/logout")  # logging out is a state change too
    assert logout.status_code == 400


def test_every_console_action_is_audited_with_before_and_after(site):
    add_verdict(site.stack.info.owner_url, "acme-corp", "m-3", verdict="phishing")
    analyst = site.login(ANALYST)
    path = "/console/tenants/acme-corp/verdicts/m-3"
    assert analyst.post_form(path, path, {"action": "mark_legitimate"}).status_code == 302
    assert site.sql("SELECT label, analyst FROM verdict_feedback") == [("legitimate", ANALYST)]
    rows = site.sql("SELECT actor, actor_role, tenant_id, object_id, before, after FROM console_audit "
                    "WHERE action = 'verdict.mark_legitimate'")
    assert rows == [(ANALYST, "analyst", "acme-corp", "m-3", {"verdict": "phishing", "feedback": []},
                     {"action": "mark_legitimate"})]
    assert site.sql("SELECT count(*) FROM console_audit WHERE action = 'login.ok' AND actor = %s", (ANALYST,))[0][0] == 1


def test_the_audit_log_is_append_only_for_the_application(site):
    site.login(ANALYST)
    import psycopg
    import pytest
    from swordfish.store.database import proxy_connect

    with proxy_connect(site.stack.info.app_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE console_audit SET actor = 'someone-else'")
    with proxy_connect(site.stack.info.owner_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM console_audit")


def test_api_keys_only_reach_their_own_tenant(site):
    acme = site.api_key("acme-corp")
    response = requests.get(f"{site.url}/v1/tenants/globex/verdicts", headers={"Authorization": f"Bearer {acme}"},
                            timeout=10)
    assert response.status_code == 403
    # A key whose tenant part is edited to another tenant is simply invalid.
    forged = acme.replace("sfk.acme-corp.", "sfk.globex.")
    response = requests.get(f"{site.url}/v1/tenants/globex/verdicts", headers={"Authorization": f"Bearer {forged}"},
                            timeout=10)
    assert response.status_code == 401
