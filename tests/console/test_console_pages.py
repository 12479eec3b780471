"""The console's pages and actions through Flask's test client (real PostgreSQL and Redis)."""

from __future__ import annotations

import re

import psycopg

from tests.console.helpers import add_verdict, get, post_form

ADMIN, ANALYST, AUDITOR = "admin@msp.example", "analyst@acme.example", "auditor@acme.example"


def _signed_in(console, email, role, tenants):
    console.add_user(email, role, tenants)
    client = console.client()
    assert console.login(client, email).status_code == 302
    return client


def _sql(console, query, params=()):
    with psycopg.connect(console.superuser_url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def test_verdicts_filter_and_page_newest_first(console):
    for i in range(60):
        add_verdict(console.owner_url, "acme-corp", f"m-{i:03d}", verdict="phishing" if i % 3 == 0 else "clean",
                    subject=f"subject {i:03d}", sender=f"s{i % 2}@x.example")
    add_verdict(console.owner_url, "globex", "g-1", subject="subject globex")
    client = _signed_in(console, ANALYST, "analyst", ["acme-corp"])
    first = get(client, "/console/tenants/acme-corp/verdicts?limit=25").get_data(as_text=True)
    subjects = re.findall(r'class="subject"[^>]*>subject (\d+)<', first)
    assert subjects == [f"{i:03d}" for i in range(59, 34, -1)]
    older = re.search(r'href="([^"]+)" id="older"', first).group(1).replace("&amp;", "&")
    second = get(client, older).get_data(as_text=True)
    assert re.findall(r'class="subject"[^>]*>subject (\d+)<', second) == [f"{i:03d}" for i in range(34, 9, -1)]
    phishing = get(client, "/console/tenants/acme-corp/verdicts?verdict=phishing&sender=s1&limit=100").get_data(as_text=True)
    found = re.findall(r'class="subject"[^>]*>subject (\d+)<', phishing)
    assert found and all(int(n) % 3 == 0 and int(n) % 2 == 1 for n in found)
    assert "subject globex" not in get(client, "/console/tenants/acme-corp/verdicts?subject=globex").get_data(as_text=True)
    assert get(client, "/console/tenants/acme-corp/verdicts?limit=100000").status_code == 400


def test_verdict_detail_shows_reasons_and_records_feedback(console):
    add_verdict(console.owner_url, "acme-corp", "m-1", reasons=[
        {"name": "LOOKALIKE_DOMAIN", "weight": 3.5, "evidence": "acme-c0rp.example ~ acme-corp.example"}])
    client = _signed_in(console, ANALYST, "analyst", ["acme-corp"])
    page = get(client, "/console/tenants/acme-corp/verdicts/m-1").get_data(as_text=True)
    assert "LOOKALIKE_DOMAIN" in page and "acme-c0rp.example ~ acme-corp.example" in page
    path = "/console/tenants/acme-corp/verdicts/m-1"
    assert post_form(client, path, path, {"action": "confirm_phishing", "note": "user reported"}).status_code == 302
    assert "confirm_phishing — user reported" in get(client, path).get_data(as_text=True)
    assert post_form(client, path, path, {"action": "delete_everything"}).status_code == 400


def test_admin_manages_api_keys_create_rotate_revoke_with_expiry(console):
    from swordfish.store.tenants import authenticate_api_key

    client = _signed_in(console, ADMIN, "msp_admin", [])
    page = "/console/tenants/acme-corp/keys"
    created = post_form(client, page, page, {"label": "siem", "expires_days": "30"}).get_data(as_text=True)
    key = re.search(r'id="new-key">([^<]+)<', created).group(1)
    key_id = key.split(".")[2]

    def authenticates(plaintext):
        with console.deps.database.connection() as conn, conn.transaction():
            return authenticate_api_key(conn, plaintext) == "acme-corp"

    assert authenticates(key)
    rotated = post_form(client, page, f"{page}/{key_id}/rotate", {}).get_data(as_text=True)
    new_key = re.search(r'id="new-key">([^<]+)<', rotated).group(1)
    assert authenticates(key) and authenticates(new_key)  # the overlap
    post_form(client, page, f"{page}/{key_id}/revoke", {})
    assert not authenticates(key) and authenticates(new_key)
    actions = [r[0] for r in _sql(console, "SELECT action FROM console_audit WHERE action LIKE 'api_key.%%' ORDER BY audit_id")]
    assert actions == ["api_key.create", "api_key.rotate", "api_key.revoke"]
    assert key.split(".")[3] not in str(_sql(console, "SELECT after FROM console_audit"))  # never a secret in the log
    assert post_form(client, page, page, {"expires_days": "9999"}).status_code == 400


def test_admin_invites_resets_and_disables_users(console):
    admin = _signed_in(console, ADMIN, "msp_admin", [])
    invite = post_form(admin, "/console/users", "/console/users",
                       {"email": "New.Person@Acme.example", "role": "auditor", "tenants": ["acme-corp", "nope"]})
    link = re.search(r'id="invite-link">([^<]+)<', invite.get_data(as_text=True)).group(1)
    assert "/console/invite/" in link
    user_id, tenants = _sql(console, "SELECT u.user_id, array_agg(t.tenant_id) FROM console_users u JOIN "
                                     "console_user_tenants t USING (user_id) WHERE email = 'new.person@acme.example' "
                                     "GROUP BY u.user_id")[0]
    assert tenants == ["acme-corp"]
    reset = post_form(admin, "/console/users", f"/console/users/{user_id}/reset", {}).get_data(as_text=True)
    assert re.search(r'id="reset-link">[^<]*/console/invite/', reset)
    assert post_form(admin, "/console/users", f"/console/users/{user_id}/disable", {}).status_code == 302
    assert _sql(console, "SELECT disabled_at IS NOT NULL FROM console_users WHERE user_id = %s", (user_id,)) == [(True,)]
    own_id = console.users[ADMIN][0]
    assert post_form(admin, "/console/users", f"/console/users/{own_id}/disable", {}).status_code == 400


def test_policy_edits_are_admin_only_validated_and_audited(console):
    analyst = _signed_in(console, ANALYST, "analyst", ["acme-corp"])
    page = "/console/tenants/acme-corp/policy"
    assert post_form(analyst, page, page, {"block_list": "evil.example"}).status_code == 403
    admin = _signed_in(console, ADMIN, "msp_admin", [])
    assert post_form(admin, page, page, {"block_list": "Evil.Example\nbad@spam.example", "allow_list": "",
                                         "vip_names": "Jane Doe", "domains": "acme-corp.example"}).status_code == 302
    with psycopg.connect(console.superuser_url) as conn:
        policy = conn.execute("SELECT policy FROM tenant_policies WHERE tenant_id = 'acme-corp'").fetchone()[0]
    assert policy["block_list"] == ["evil.example", "bad@spam.example"] and policy["vip_names"] == ["Jane Doe"]
    before, after = _sql(console, "SELECT before, after FROM console_audit WHERE action = 'policy.update' "
                                  "AND outcome = 'ok'")[0]
    # only what changed, as stored: entries normalised, unchanged fields (domains) left out
    assert before["block_list"] == [] and "domains" not in before
    assert after["block_list"] == ["evil.example", "bad@spam.example"]


def test_auditors_see_only_their_tenants_in_the_audit_log(console):
    add_verdict(console.owner_url, "acme-corp", "a-1")
    add_verdict(console.owner_url, "globex", "g-1")
    console.add_user("globex.analyst@globex.example", "analyst", ["globex"])
    globex = console.client("198.51.100.20")
    console.login(globex, "globex.analyst@globex.example")
    path = "/console/tenants/globex/verdicts/g-1"
    post_form(globex, path, path, {"action": "release"})
    auditor = _signed_in(console, AUDITOR, "auditor", ["acme-corp"])
    log = get(auditor, "/console/audit").get_data(as_text=True)
    assert "verdict.release" not in log and "g-1" not in log
    admin = _signed_in(console, ADMIN, "msp_admin", [])
    assert "verdict.release" in get(admin, "/console/audit").get_data(as_text=True)


def test_over_https_a_form_posted_from_another_origin_is_refused(console):
    add_verdict(console.owner_url, "acme-corp", "m-9")
    client = _signed_in(console, ANALYST, "analyst", ["acme-corp"])
    path = "/console/tenants/acme-corp/verdicts/m-9"
    token = re.search(r'name="csrf_token" value="([^"]+)"', get(client, path).get_data(as_text=True)).group(1)
    for referer in ({"Referer": "https://evil.example/console/"}, {}):
        response = client.post(path, data={"csrf_token": token, "action": "confirm_phishing"},
                               base_url="https://localhost", headers=referer)
        assert response.status_code == 400, referer
    ok = client.post(path, data={"csrf_token": token, "action": "confirm_phishing"}, base_url="https://localhost",
                     headers={"Referer": f"https://localhost{path}"})
    assert ok.status_code == 302
    assert get(client, "/console/login").headers["Referrer-Policy"] == "same-origin"
