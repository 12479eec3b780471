"""Issue 26, console side: hostile text gets a 400 (item 5), refusals are audited (item 8), the
current-password check is throttled (item 9), message_id links stay on their verdict (item 13),
audit actors cannot hold line breaks, and an anonymous login page creates no session (item 14)."""

from __future__ import annotations

from urllib.parse import quote

from tests.console.helpers import PASSWORD, add_verdict
from tests.security.owasp.conftest import ADMIN, ANALYST, AUDITOR, SESSION


def _audit(site, action, outcome=None):
    query = "SELECT count(*) FROM console_audit WHERE action = %s" + (" AND outcome = %s" if outcome else "")
    return site.sql(query, (action, outcome) if outcome else (action,))[0][0]


def test_a_next_with_a_line_break_signs_in_to_the_overview(site):
    client = site.client()
    for target in ("/console/users\r\nSet-Cookie: x=1", "/console/\nfoo", "/console/%0d%0aX: y"):
        response = client.post_form("/console/login", "/console/login",
                                    {"email": AUDITOR, "password": PASSWORD, "next": target})
        assert response.status_code == 302, (target, response.status_code)
        location = response.headers["Location"]
        assert "\r" not in location and "\n" not in location and "X: y" not in location
        assert "x" not in response.headers.get("Set-Cookie", "").split("=")[0]
        client.post_form("/console/", "/console/logout", {})


def test_nul_and_control_characters_in_console_forms_get_400(site):
    analyst = site.login(ANALYST)
    for field in ("sender", "subject"):
        response = analyst.get(f"/console/tenants/acme-corp/verdicts?{field}=" + quote("a\x00b"))
        assert response.status_code == 400, (field, response.status_code)
    admin = site.login(ADMIN)
    for email in ("nul\x00@acme.example", "crlf@acme.example\r\nBcc: x@evil.example", "del\x7f@acme.example"):
        response = admin.post_form("/console/users", "/console/users", {"email": email, "role": "analyst"})
        assert response.status_code == 400, (repr(email), response.status_code)
    assert site.sql("SELECT count(*) FROM console_users WHERE email LIKE '%%acme.example%%' "
                    "AND email !~ '^[ -~]+$'")[0][0] == 0
    reason = admin.post_form("/console/flags", "/console/flags",
                             {"flag": "detector_qr_code_lure", "value": "false", "reason": "ok\r\nforged line"})
    assert reason.status_code == 400
    note = analyst_note = None
    add_verdict(site.stack.info.owner_url, "acme-corp", "m-note")
    path = "/console/tenants/acme-corp/verdicts/m-note"
    note = analyst.post_form(path, path, {"action": "confirm_phishing", "note": "a\x00b"})
    assert note.status_code == 400 and analyst_note is None


def test_access_refusals_are_audited(site):
    add_verdict(site.stack.info.owner_url, "globex", "g-1")
    analyst = site.login(ANALYST)
    assert analyst.get("/console/tenants/globex/verdicts").status_code == 404
    assert analyst.get("/console/tenants/globex/verdicts/g-1").status_code == 404
    rows = site.sql("SELECT actor, tenant_id, outcome, after->>'path' FROM console_audit "
                    "WHERE action = 'tenant.refused' ORDER BY audit_id")
    assert [(r[0], r[1], r[2]) for r in rows] == [(ANALYST, "globex", "refused")] * 2
    auditor = site.login(AUDITOR)
    assert auditor.post_form("/console/flags", "/console/flags",
                             {"flag": "detector_qr_code_lure", "value": "true"}).status_code == 403
    assert _audit(site, "flag.set", "refused") == 1


def test_a_flag_change_that_fails_is_audited_as_failed(site, settings_env):
    admin = site.login(ADMIN)
    token = admin.token("/console/flags")
    settings_env(aws_endpoint_url="http://127.0.0.1:9")  # the flag store is gone
    response = admin.request("POST", "/console/flags", data={"csrf_token": token, "flag": "detector_qr_code_lure",
                                                             "value": "true", "reason": "trial"})
    assert response.status_code == 503, response.status_code
    assert "127.0.0.1" not in response.text
    assert _audit(site, "flag.set", "failed") == 1


def test_wrong_current_passwords_on_the_account_page_end_in_429(site):
    analyst = site.login(ANALYST)
    token = analyst.token("/console/account")
    statuses = [analyst.request("POST", "/console/account",
                                data={"csrf_token": token, "current_password": f"wrong {i}",
                                      "new_password": "an entirely new passphrase"}).status_code
                for i in range(7)]
    assert statuses[:5] == [400] * 5 and set(statuses[5:]) == {429}, statuses
    right = analyst.request("POST", "/console/account", data={"csrf_token": token, "current_password": PASSWORD,
                                                              "new_password": "an entirely new passphrase"})
    assert right.status_code == 429  # no more checks until the lock ends, not even the right one


def test_message_id_links_stay_on_their_verdict(site):
    # ("." and ".." cannot be linked at all: the API refuses them, test_api_inputs.py)
    for hostile in ("../../../console/users", "//evil.example/x", "a?b=c#d", "%2e%2e", "x/../../users"):
        add_verdict(site.stack.info.owner_url, "acme-corp", hostile, subject=f"subject of {hostile}")
    analyst = site.login(ANALYST)
    page = analyst.get("/console/tenants/acme-corp/verdicts").text
    import re

    links = re.findall(r'href="(/console/tenants/acme-corp/verdicts/[^"]*)"', page)
    assert len(links) >= 5
    from urllib.parse import urljoin

    for link in links:
        resolved = urljoin("https://console.example/console/tenants/acme-corp/verdicts", link)
        assert resolved.startswith("https://console.example/console/tenants/acme-corp/verdicts/"), link
        response = analyst.get(link.replace("&amp;", "&"))
        assert response.status_code == 200 and "subject of" in response.text, link


def test_audit_actors_hold_no_line_breaks(site):
    client = site.client()
    response = client.post_form("/console/login", "/console/login",
                                {"email": "x@acme.example\r\nactor: admin@msp.example", "password": "wrong"})
    assert response.status_code in (400, 401)
    actors = [r[0] for r in site.sql("SELECT actor FROM console_audit")]
    assert not any("\r" in a or "\n" in a for a in actors), actors


def test_an_anonymous_login_page_creates_no_session(site):
    keys_before = set(site.stack.redis.server.keys("swordfish:console:session:*"))
    client = site.client()
    page = client.get("/console/login")
    assert page.status_code == 200
    assert SESSION not in client.cookies
    assert set(site.stack.redis.server.keys("swordfish:console:session:*")) == keys_before
    # The form still carries a CSRF token, checked at the POST, which is where the session begins.
    forged = site.client().request("POST", "/console/login", data={"email": ANALYST, "password": PASSWORD,
                                                                   "csrf_token": "forged"})
    assert forged.status_code == 400
    assert site.login(ANALYST).get("/console/").status_code == 200
