"""Issue 26, API side: hostile text in authenticated requests gets a 400 (item 5), feedback identity
comes from the key (item 6), nothing anonymous carries exception text (item 7), and wrong operator
tokens on /health/deep are throttled (item 9)."""

from __future__ import annotations

import base64
from urllib.parse import quote

import requests

from tests.console.helpers import add_verdict

MIME = base64.b64encode(b"From: a@acme.example\r\nSubject: hi\r\n\r\nhello\r\n").decode()


def _post(site, path, body, key=None):
    headers = {"content-type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return requests.post(site.url + path, json=body, headers=headers, timeout=30)


def _get(site, path, key=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.get(site.url + path, headers=headers, timeout=30)


HOSTILE_IDS = ("ctl-\x01-id", "del-\x7f-id", "nul-\x00-id", "crlf-\r\n-id", "tab\tid", "caf\u00e9-id",
               "emoji-\U0001f600", "bidi-\u202e-id", "zero-width-\u200b", ".", "..")


def test_hostile_message_ids_get_400_on_submissions(site):
    acme = site.api_key("acme-corp")
    for bad in HOSTILE_IDS:
        response = _post(site, "/v1/tenants/acme-corp/submissions", {"raw_mime_b64": MIME, "message_id": bad}, acme)
        assert response.status_code == 400, (bad, response.status_code, response.text[:200])
        assert "message_id" in response.json()["message"]
        batch = _post(site, "/v1/tenants/acme-corp/submissions/batch",
                      {"messages": [{"raw_mime_b64": MIME, "message_id": bad}]}, acme)
        assert batch.status_code == 400, (bad, batch.status_code, batch.text[:200])
    ok = _post(site, "/v1/tenants/acme-corp/submissions", {"raw_mime_b64": MIME,
                                                           "message_id": "<ok.1+x@acme.example>"}, acme)
    assert ok.status_code == 202


def test_nul_and_control_characters_in_feedback_and_release_get_400(site):
    add_verdict(site.stack.info.owner_url, "acme-corp", "m-1")
    acme = site.api_key("acme-corp")
    for field in ("analyst", "comment"):
        for bad in ("a\x00b", "a\x1bb", "a\x7fb"):
            body = {"label": "phishing", "analyst": "ann", "comment": "fine", field: bad}
            response = _post(site, "/v1/tenants/acme-corp/verdicts/m-1/feedback", body, acme)
            assert response.status_code == 400, (field, bad, response.status_code, response.text[:200])
            release = _post(site, "/v1/tenants/acme-corp/verdicts/m-1/release",
                            {"analyst": "ann", "comment": "fine", field: bad}, acme)
            assert release.status_code == 400, (field, bad, release.status_code)
    # A comment may run over several lines, in any script; a name may not hold a line break.
    ok = _post(site, "/v1/tenants/acme-corp/verdicts/m-1/feedback",
               {"label": "phishing", "comment": "line one\nline two: ça va, 日本"}, acme)
    assert ok.status_code == 201, ok.text
    assert _post(site, "/v1/tenants/acme-corp/verdicts/m-1/feedback",
                 {"label": "phishing", "analyst": "ann\r\nForged: yes"}, acme).status_code == 400


def test_feedback_identity_is_the_key_never_what_the_caller_writes(site):
    add_verdict(site.stack.info.owner_url, "acme-corp", "m-2", sender="boss@partner.example")
    acme = site.api_key("acme-corp")
    key_id = acme.split(".")[2]
    response = _post(site, "/v1/tenants/acme-corp/verdicts/m-2/feedback",
                     {"label": "legitimate", "analyst": "analyst-acme@msp.example", "comment": "looks fine"}, acme)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["analyst"] == f"api-key:{key_id}" and body["api_key_id"] == key_id
    assert body["stated_analyst"] == "analyst-acme@msp.example"
    stored = site.sql("SELECT analyst, api_key_id FROM verdict_feedback WHERE message_id = 'm-2'")
    assert stored == [(f"api-key:{key_id}", key_id)]
    # The console shows it as the key's action, not as the analyst's own.
    from tests.security.owasp.conftest import ADMIN

    page = site.login(ADMIN).get("/console/tenants/acme-corp/verdicts/" + quote("m-2")).text
    assert f"api-key:{key_id}" in page


def test_a_database_outage_shows_no_host_or_port_to_anyone(site, settings_env):
    from swordfish import wiring

    settings_env(db_credentials_from_secret="false", database_url="postgresql://swordfish_app:pw@127.0.0.1:9/swordfish",
                 db_connect_timeout_seconds=1,
                 db_reconnect_timeout_seconds=1)
    wiring.reset()
    for key in ("sfk.acme-corp.0123456789ab.wrong", site.api_key("acme-corp")):
        response = _get(site, "/v1/tenants/acme-corp/verdicts", key)
        assert response.status_code == 503, response.text
        assert "127.0.0.1" not in response.text and ":9" not in response.text and "detail" not in response.json()
    ready = _get(site, "/health/ready")
    assert ready.status_code == 503
    assert "127.0.0.1" not in ready.text and "postgres" not in ready.text.lower()


def test_anonymous_readiness_is_a_status_only(site):
    response = _get(site, "/health/ready")
    assert response.status_code in (200, 503)
    assert response.json() == {"status": response.json()["status"]}
    assert response.headers["content-type"].startswith("application/health+json")


def test_wrong_operator_tokens_on_deep_health_end_in_429(site):
    statuses = [_get(site, "/health/deep", f"not-the-token-{i}").status_code for i in range(24)]
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}, statuses
    # The source is refused before its token is compared: even the right token waits.
    refused = _get(site, "/health/deep", site.stack.operator_token)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
