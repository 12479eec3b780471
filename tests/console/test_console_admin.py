"""The MSP's daily tasks in the console without silent changes (issue 27): feedback says what it
will do and its list entries are shown and removable; list entries are checked and limits stated;
tenants added, edited field by field and disabled; keys keep their expiry policy; users invited
with the least role and edited later. Flask's test client on real PostgreSQL and Redis."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
from swordfish.store.database import proxy_connect

from tests.console.helpers import add_verdict, get, post_form

ADMIN, ANALYST = "admin@msp.example", "analyst@acme.example"


def _signed_in(console, email, role, tenants):
    console.add_user(email, role, tenants)
    client = console.client()
    assert console.login(client, email).status_code == 302
    return client


def _sql(console, query, params=()):
    with psycopg.connect(console.superuser_url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def _policy(console, tenant="acme-corp") -> dict:
    return _sql(console, "SELECT policy FROM tenant_policies WHERE tenant_id = %s", (tenant,))[0][0]


def _text(response) -> str:
    return response.get_data(as_text=True)


# --- feedback -------------------------------------------------------------------------------------


def test_feedback_says_what_it_will_do_and_its_entry_is_shown_on_the_policy_page_and_removable(console):
    add_verdict(console.owner_url, "acme-corp", "m-1", verdict="phishing", sender="Boss@Partner.example",
                subject="invoice")
    analyst = _signed_in(console, ANALYST, "analyst", ["acme-corp"])
    path = "/console/tenants/acme-corp/verdicts/m-1"
    page = _text(get(analyst, path))
    explained = re.search(r'id="feedback-effect">(.*?)</p>', page, re.S).group(1)
    assert "boss@partner.example" in explained and "allow list" in explained and "block list" in explained
    assert re.search(r'value="mark_legitimate" data-confirm="[^"]*allow list', page)
    assert post_form(analyst, path, path, {"action": "mark_legitimate", "note": "known partner"}).status_code == 302

    page = _text(get(analyst, path))
    assert re.search(r'id="overridden">[^<]*legitimate', page)
    listing = _text(get(analyst, "/console/tenants/acme-corp/verdicts"))
    assert re.search(r'class="overridden"[^>]*>overridden: legitimate', listing)

    admin = _signed_in(console, ADMIN, "msp_admin", [])
    policy_page = _text(get(admin, "/console/tenants/acme-corp/policy"))
    entries = re.search(r'id="feedback-entries">(.*?)</table>', policy_page, re.S).group(1)
    assert "boss@partner.example" in entries and ANALYST in entries and "known partner" in entries and "allow" in entries
    remove = "/console/tenants/acme-corp/policy/feedback-entries/remove"
    assert post_form(analyst, path, remove, {"entry": "boss@partner.example"}).status_code == 403
    assert post_form(admin, "/console/tenants/acme-corp/policy", remove,
                     {"entry": "boss@partner.example", "reason": "too broad"}).status_code == 302
    assert "boss@partner.example" not in _text(get(admin, "/console/tenants/acme-corp/policy"))
    [(actor, after)] = _sql(console, "SELECT actor, after FROM console_audit WHERE action = 'policy.feedback_entry_remove'")
    assert actor == ADMIN and after == {"entry": "boss@partner.example", "list": "allow", "reason": "too broad"}


# --- policy ---------------------------------------------------------------------------------------


def test_entries_that_can_never_match_are_refused_by_name_and_nothing_is_saved(console):
    admin = _signed_in(console, ADMIN, "msp_admin", [])
    page = "/console/tenants/acme-corp/policy"
    assert "1,000 entries" in _text(get(admin, page))
    response = post_form(admin, page, page, {"block_list": "*@evil.example\nhttps://evil.example/login\nok@evil.example",
                                             "domains": "acme-corp.example"})
    assert response.status_code == 400
    html = _text(response)
    assert "*@evil.example" in html and "wildcards" in html and "https://evil.example/login" in html
    assert "ok@evil.example" in html  # what was typed stays in the form
    assert _policy(console).get("block_list", []) == []
    too_many = "\n".join(f"user{i}@partner.example" for i in range(1001))
    response = post_form(admin, page, page, {"allow_list": too_many, "domains": "acme-corp.example"})
    assert response.status_code == 400 and "over the limit of 1,000" in _text(response)
    assert _policy(console).get("allow_list", []) == []


def test_admin_edits_every_policy_field_and_the_audit_keeps_a_short_diff(console):
    admin = _signed_in(console, ADMIN, "msp_admin", [])
    page = "/console/tenants/acme-corp/policy"
    form = {"name": "Acme Corporation", "domains": "acme-corp.example\nacme.example", "vip_names": "Jane Roe",
            "allow_list": "partner.example", "block_list": "evil.example", "trusted_authserv_ids": "mx.acme.example",
            "threshold_suspicious": "2.5", "threshold_spam": "5", "threshold_phishing": "6", "threshold_malware": "4",
            "block_verdict": "phishing", "allow_weight": "-3"}
    assert post_form(admin, page, page, form).status_code == 302
    policy = _policy(console)
    assert policy["domains"] == ["acme-corp.example", "acme.example"]
    assert policy["trusted_authserv_ids"] == ["mx.acme.example"] and policy["block_verdict"] == "phishing"
    assert policy["thresholds"] == {"suspicious": 2.5, "spam": 5.0, "phishing": 6.0, "malware": 4.0}
    assert policy["allow_weight"] == -3.0
    assert _sql(console, "SELECT name FROM tenants WHERE tenant_id = 'acme-corp'") == [("Acme Corporation",)]
    before, after = _sql(console, "SELECT before, after FROM console_audit WHERE action = 'policy.update'")[0]
    assert set(after) == {"name", "domains", "vip_names", "allow_list", "block_list", "trusted_authserv_ids",
                          "thresholds", "block_verdict", "allow_weight"}  # only what changed
    assert before["domains"] == ["acme-corp.example"]
    assert post_form(admin, page, page, {**form, "threshold_spam": "lots"}).status_code == 400
    assert post_form(admin, page, page, {**form, "allow_weight": "4"}).status_code == 400  # must lower the score


def test_admin_edits_extra_brands_which_are_checked_and_audited(console):
    """A tenant's own legitimate senders for a brand (a payroll provider sending as "PayPal"): a brand
    the engine does not know, a subdomain or an address could never match, so each is refused by name."""
    admin = _signed_in(console, ADMIN, "msp_admin", [])
    page = "/console/tenants/acme-corp/policy"
    assert 'id="extra_brands"' in _text(get(admin, page))
    refused = post_form(admin, page, page, {"extra_brands": "PayPal: payments.partner.com, x@partner.example\n"
                                                            "Acme Widgets: widgets.example\nno colon here"})
    text = _text(refused)
    assert refused.status_code == 400
    for why in ("write partner.com", "x@partner.example", "Acme Widgets: not a brand", "no colon here"):
        assert why in text, why
    assert "PayPal: payments.partner.com" in text  # the form keeps what was typed
    assert "extra_brands" not in _policy(console) or _policy(console)["extra_brands"] == {}
    saved = post_form(admin, page, page, {"extra_brands": "PayPal: partner.example, PARTNER.example\n"
                                                          "Wells Fargo: payroll.example"})
    assert saved.status_code == 302
    assert _policy(console)["extra_brands"] == {"paypal": ["partner.example"], "wellsfargo": ["payroll.example"]}
    assert "paypal: partner.example" in _text(get(admin, page))
    before, after = _sql(console, "SELECT before, after FROM console_audit WHERE action = 'policy.update'")[-1]
    assert after == {"extra_brands": {"paypal": ["partner.example"], "wellsfargo": ["payroll.example"]}}
    assert before == {"extra_brands": {}}
    # Another form without the field keeps them.
    assert post_form(admin, page, page, {"domains": "acme-corp.example"}).status_code == 302
    assert _policy(console)["extra_brands"]["paypal"] == ["partner.example"]
    assert post_form(admin, page, page, {"extra_brands": ""}).status_code == 302  # emptied on purpose
    assert _policy(console)["extra_brands"] == {}


# --- tenants --------------------------------------------------------------------------------------


def test_admin_adds_a_client_tenant_and_disables_it(console):
    from swordfish.store.tenants import authenticate_api_key, create_api_key

    admin = _signed_in(console, ADMIN, "msp_admin", [])
    new = "/console/tenants/new"
    response = post_form(admin, new, new, {"tenant_id": "initech", "name": "Initech", "domains": "initech.example",
                                           "vip_names": "Bill Lumbergh", "threshold_phishing": "5.5",
                                           "block_verdict": "spam", "allow_weight": "-6"})
    assert response.status_code == 302 and "/console/tenants/initech/policy?" in response.headers["Location"]
    assert _policy(console, "initech")["domains"] == ["initech.example"]
    assert _policy(console, "initech")["thresholds"]["phishing"] == 5.5
    existing = post_form(admin, new, new, {"tenant_id": "acme-corp", "name": "x"})
    assert existing.status_code == 400 and "exists" in _text(existing)
    assert _sql(console, "SELECT name FROM tenants WHERE tenant_id = 'acme-corp'") == [("Acme-Corp",)]
    assert post_form(admin, new, new, {"tenant_id": "Bad Id", "name": "x"}).status_code == 400
    assert "initech" in _text(get(admin, "/console/"))

    with proxy_connect(console.owner_url) as conn, conn.transaction():
        key = create_api_key(conn, "initech")
    page = "/console/tenants/initech/policy"
    assert post_form(admin, page, "/console/tenants/initech/disable", {"reason": "contract ended"}).status_code == 302
    assert re.search(r'initech</span>\s*<span class="badge disabled"', _text(get(admin, "/console/")))
    with console.deps.database.connection() as conn, conn.transaction():
        assert authenticate_api_key(conn, key.plaintext) is None
    assert post_form(admin, page, "/console/tenants/initech/enable", {}).status_code == 302
    actions = [r[0] for r in _sql(console, "SELECT action FROM console_audit WHERE tenant_id = 'initech' "
                                           "AND action LIKE 'tenant.%%' ORDER BY audit_id")]
    assert actions == ["tenant.create", "tenant.disable", "tenant.enable"]
    analyst = _signed_in(console, ANALYST, "analyst", ["acme-corp"])
    assert post_form(analyst, "/console/", new, {"tenant_id": "evil", "name": "x"}).status_code == 403


# --- keys -----------------------------------------------------------------------------------------


def test_keys_keep_their_expiry_through_rotation_and_revoke_looks_different(console):
    admin = _signed_in(console, ADMIN, "msp_admin", [])
    page = "/console/tenants/acme-corp/keys"
    created = _text(post_form(admin, page, page, {"label": "siem", "expires_days": "90"}))
    key_id = re.search(r'id="new-key">([^<]+)<', created).group(1).split(".")[2]
    rotated = _text(post_form(admin, page, f"{page}/{key_id}/rotate", {}))
    new_id = re.search(r'id="new-key">([^<]+)<', rotated).group(1).split(".")[2]
    [(expires,)] = _sql(console, "SELECT expires_at FROM api_keys WHERE key_id = %s", (new_id,))
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)
    listing = _text(get(admin, page))
    row = re.search(rf'<tr id="key-{key_id}">(.*?)</tr>', listing, re.S).group(1)
    assert f"replaced by <code>{new_id}</code>" in row and "never used" in row
    new_row = re.search(rf'<tr id="key-{new_id}">(.*?)</tr>', listing, re.S).group(1)
    assert "90 days" in new_row and f"replaces <code>{key_id}</code>" in new_row
    revoke = re.search(r'<button class="danger"[^>]*data-confirm="([^"]+)"[^>]*>Revoke', new_row).group(1)
    rotate = re.search(r'<button[^>]*data-confirm="([^"]+)"[^>]*>Rotate', new_row).group(1)
    assert "stops working now" in revoke and "same expiry" in rotate


# --- users ----------------------------------------------------------------------------------------


def test_invite_defaults_to_the_least_role_refuses_analysts_without_tenants_and_users_are_edited_later(console):
    admin = _signed_in(console, ADMIN, "msp_admin", [])
    page = _text(get(admin, "/console/users"))
    invite = re.search(r'id="invite-role" name="role">(.*?)</select>', page, re.S).group(1)
    options = re.findall(r'<option value="(\w+)"( selected)?>', invite)
    assert options[0] == ("auditor", " selected")
    refused = post_form(admin, "/console/users", "/console/users", {"email": "a@acme.example", "role": "analyst"})
    assert refused.status_code == 400 and "at least one tenant" in _text(refused)
    assert _sql(console, "SELECT count(*) FROM console_users WHERE email = 'a@acme.example'") == [(0,)]
    assert post_form(admin, "/console/users", "/console/users",
                     {"email": "a@acme.example", "role": "auditor", "tenants": ["acme-corp"]}).status_code == 200
    [(user_id,)] = _sql(console, "SELECT user_id FROM console_users WHERE email = 'a@acme.example'")
    edit = f"/console/users/{user_id}/edit"
    assert post_form(admin, "/console/users", edit, {"role": "analyst", "tenants": ["acme-corp", "globex"]}).status_code == 302
    assert _sql(console, "SELECT role FROM console_users WHERE user_id = %s", (user_id,)) == [("analyst",)]
    assert sorted(r[0] for r in _sql(console, "SELECT tenant_id FROM console_user_tenants WHERE user_id = %s",
                                     (user_id,))) == ["acme-corp", "globex"]
    assert post_form(admin, "/console/users", edit, {"role": "analyst"}).status_code == 400  # no tenants
    before, after = _sql(console, "SELECT before, after FROM console_audit WHERE action = 'user.edit'")[0]
    assert before == {"role": "auditor", "tenants": ["acme-corp"]}
    assert after == {"role": "analyst", "tenants": ["acme-corp", "globex"]}
    epoch = _sql(console, "SELECT session_epoch FROM console_users WHERE user_id = %s", (user_id,))[0][0]
    assert epoch >= 1  # a role change ends the user's sessions: the next request sees the new role


# --- small things ---------------------------------------------------------------------------------


def test_a_verdict_page_says_why_in_a_sentence_and_its_actions_come_before_the_long_parts(console):
    add_verdict(console.owner_url, "acme-corp", "m-1", verdict="phishing", reasons=[
        {"name": "LOOKALIKE_DOMAIN", "weight": 3.5, "evidence": "acme-c0rp.example"},
        {"name": "CREDENTIAL_PHISH_LANGUAGE", "weight": 4.0, "evidence": "verify your account"}])
    analyst = _signed_in(console, ANALYST, "analyst", ["acme-corp"])
    page = _text(get(analyst, "/console/tenants/acme-corp/verdicts/m-1"))
    summary = re.search(r'id="summary">([^<]+)<', page).group(1)
    assert summary.startswith("Phishing: the score 9.5 reached the phishing threshold")
    assert "CREDENTIAL_PHISH_LANGUAGE (+4.0), LOOKALIKE_DOMAIN (+3.5)" in summary
    assert page.index('value="confirm_phishing"') < page.index("<h2>Reasons</h2>") < page.index("<h2>Message</h2>")


def test_every_filter_input_has_a_label(console):
    analyst = _signed_in(console, ANALYST, "analyst", ["acme-corp"])
    for path in ("/console/tenants/acme-corp/verdicts",):
        html = _text(get(analyst, path))
        form = re.search(r'<form method="get" class="filters".*?</form>', html, re.S).group(0)
        ids = re.findall(r'<(?:input|select)[^>]* id="([^"]+)"', form)
        inputs = re.findall(r'<(?:input|select)\b', form)
        assert len(ids) == len(inputs) and all(f'<label for="{i}">' in form for i in ids)


# --- MSP-wide entries -----------------------------------------------------------------------------


def test_an_admin_adds_an_msp_wide_entry_with_comment_and_expiry_and_removes_it(console):
    from swordfish.store.tenants import load_policy

    admin = _signed_in(console, ADMIN, "msp_admin", [])
    page = "/console/lists"
    refused = post_form(admin, page, page, {"scope": "*", "list": "block", "entry": "*.evil.example"})
    assert refused.status_code == 400 and "wildcards" in _text(refused)
    assert post_form(admin, page, page, {"scope": "*", "list": "block", "entry": "evil.example",
                                         "comment": "campaign 2026-12", "expires_days": "30"}).status_code == 302
    html = _text(get(admin, page))
    row = re.search(r'<tr id="entry-(\d+)">(.*?)</tr>', html, re.S)
    assert "evil.example" in row.group(2) and "every tenant" in row.group(2) and "campaign 2026-12" in row.group(2)
    assert ADMIN in row.group(2) and "never" not in row.group(2)
    for tenant in ("acme-corp", "globex"):
        with console.deps.database.tenant_transaction(tenant) as conn:
            assert "evil.example" in load_policy(conn, tenant)["block_list"]
    assert post_form(admin, page, f"/console/lists/{row.group(1)}/remove", {"scope": ""}).status_code == 302
    with console.deps.database.tenant_transaction("globex") as conn:
        assert "evil.example" not in load_policy(conn, "globex").get("block_list", [])
    actions = [r[0] for r in _sql(console, "SELECT action FROM console_audit WHERE action LIKE 'list_entry.%%' "
                                           "ORDER BY audit_id")]
    assert actions == ["list_entry.add", "list_entry.remove"]
    analyst = _signed_in(console, ANALYST, "analyst", ["acme-corp"])
    assert get(analyst, page).status_code == 403


def test_a_verdict_lists_its_links_and_attachments_for_pivoting(console):
    from pathlib import Path

    raw = (Path(__file__).resolve().parents[2] / "samples" / "swordfish" / "invoice-double-extension-zip.eml").read_bytes()

    class Archive:  # the port (integrations.message_content): the message as the archive returns it
        def load(self, *args):
            return raw

    console.deps.message_source = Archive
    add_verdict(console.owner_url, "acme-corp", "m-1", verdict="malware")
    analyst = _signed_in(console, ANALYST, "analyst", ["acme-corp"])
    page = _text(get(analyst, "/console/tenants/acme-corp/verdicts/m-1"))
    attachments = re.search(r'<table id="attachments">(.*?)</table>', page, re.S).group(1)
    assert ".zip" in attachments and re.search(r"<code>[0-9a-f]{64}</code>", attachments)
    raw = (Path(__file__).resolve().parents[2] / "samples" / "swordfish" / "m365-password-expiry-phish.eml").read_bytes()
    add_verdict(console.owner_url, "acme-corp", "m-2")
    links = re.search(r'<table id="links">(.*?)</table>', _text(get(analyst, "/console/tenants/acme-corp/verdicts/m-2")),
                      re.S).group(1)
    assert "<code>http" in links and 'href="/console/tenants/acme-corp/verdicts?sender=' in links
    assert '<a href="http' not in links  # a hostile URL is text, never a link to follow


def test_hostile_text_in_the_new_forms_is_refused_and_nothing_is_stored(console):
    """The new forms pass issue 26's one text check (security.inputs): a NUL or a control character
    is a 400 (it was a 500 before either branch), and nothing of the refused request is stored."""
    add_verdict(console.owner_url, "acme-corp", "m-1", sender="x@partner.example")
    analyst = _signed_in(console, ANALYST, "analyst", ["acme-corp"])
    path = "/console/tenants/acme-corp/verdicts/m-1"
    assert post_form(analyst, path, path, {"action": "mark_legitimate"}).status_code == 302
    admin = _signed_in(console, ADMIN, "msp_admin", [])
    page = "/console/tenants/acme-corp/policy"
    remove = "/console/tenants/acme-corp/policy/feedback-entries/remove"
    assert post_form(admin, page, remove, {"entry": "x@partner.example", "reason": "nul\x00here"}).status_code == 400
    assert _sql(console, "SELECT count(*) FROM list_entry_removals") == [(0,)]
    assert post_form(admin, page, remove, {"entry": "x@partner.example", "reason": "left"}).status_code == 302
    assert _sql(console, "SELECT reason FROM list_entry_removals") == [("left",)]
    for form in ({"scope": "*", "list": "block", "entry": "evil.example", "comment": "a\x00b"},
                 {"scope": "*", "list": "block", "entry": "evil.example", "comment": "a\r\nforged line"},
                 {"scope": "*", "list": "block", "entry": "ev\x00il.example"}):
        assert post_form(admin, "/console/lists", "/console/lists", form).status_code == 400, form
    assert _sql(console, "SELECT count(*) FROM list_entries") == [(0,)]
    before = _policy(console), _sql(console, "SELECT name FROM tenants WHERE tenant_id = 'acme-corp'")
    for form in ({"name": "Acme\x00"}, {"name": "Acme\r\nCorp"}, {"vip_names": "Jane\x00Roe"}):
        assert post_form(admin, page, page, form).status_code == 400, form
    assert (_policy(console), _sql(console, "SELECT name FROM tenants WHERE tenant_id = 'acme-corp'")) == before
    assert post_form(admin, page, "/console/tenants/acme-corp/disable", {"reason": "a\x00b"}).status_code == 400
    assert _sql(console, "SELECT disabled_at FROM tenants WHERE tenant_id = 'acme-corp'") == [(None,)]


def test_an_error_page_offers_the_way_back(console):
    analyst = _signed_in(console, ANALYST, "analyst", ["acme-corp"])
    page = get(analyst, "/console/tenants/globex/policy")  # another tenant: a 404 like a missing one
    assert page.status_code == 404 and 'href="/console/">Back to the tenants</a>' in _text(page)
