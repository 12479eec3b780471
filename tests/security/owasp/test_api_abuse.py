"""The API as an attacker probes it: key guessing, one tenant starving others, a spoofed caller
identity, oversized correlation ids, wrong content types, deep health, and the batch route."""

from __future__ import annotations

import base64
import secrets

import requests
from swordfish.store.database import proxy_connect
from swordfish.store.tenants import create_api_key

MIME = base64.b64encode(b"From: a@globex.example\r\nSubject: hi\r\n\r\nhello\r\n").decode()


def _get(site, path, key=None, **headers):
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return requests.get(site.url + path, headers=headers, timeout=20)


def _post(site, path, body, key=None, **headers):
    headers.setdefault("content-type", "application/json")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return requests.post(site.url + path, json=body, headers=headers, timeout=20)


def _fresh_limits(site, settings_env, **limits):
    from swordfish import wiring

    settings_env(api_rate_limit_window_seconds=3600, **limits)  # one window for the whole test
    wiring.reset()
    client = site.stack.redis.server  # only the limit counters: the stack's indicators stay for other tests
    for key in client.keys("swordfish:api:limit:*"):
        client.delete(key)


def test_guessing_keys_ends_in_429_with_retry_after(site, settings_env):
    _fresh_limits(site, settings_env, api_rate_limit_failed_auth_per_source=20)
    statuses = [_get(site, "/v1/tenants/acme-corp/verdicts", f"sfk.acme-corp.{secrets.token_hex(6)}.guess{i}").status_code
                for i in range(25)]
    assert statuses[:20] == [401] * 20 and statuses[20:] == [429] * 5
    refused = _get(site, "/v1/tenants/acme-corp/verdicts", "sfk.acme-corp.0123456789ab.again")
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 3600


def test_one_key_or_tenant_cannot_take_more_than_its_share(site, settings_env):
    _fresh_limits(site, settings_env, api_rate_limit_per_key=5, api_rate_limit_per_tenant=8)
    acme = site.api_key("acme-corp")
    statuses = [_get(site, "/v1/tenants/acme-corp/verdicts", acme).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    with proxy_connect(site.stack.info.owner_url) as conn, conn.transaction():
        second = create_api_key(conn, "acme-corp", "second").plaintext
    statuses = [_get(site, "/v1/tenants/acme-corp/verdicts", second).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # the tenant's 8: 5 by the first key (its refused 6th not counted) + 3
    assert "Retry-After" in _get(site, "/v1/tenants/acme-corp/verdicts", second).headers
    assert _get(site, "/v1/tenants/globex/verdicts", site.api_key("globex")).status_code == 200


def test_identity_comes_only_from_the_key_that_authenticates(site):
    acme, globex = site.api_key("acme-corp"), site.api_key("globex")
    # A valid Bearer key plus someone else's x-api-key: the Bearer key decides, for access and identity.
    assert _get(site, "/v1/tenants/acme-corp/verdicts", acme, **{"x-api-key": globex}).status_code == 200
    assert _get(site, "/v1/tenants/globex/verdicts", acme, **{"x-api-key": globex}).status_code == 403
    from swordfish.monitoring import context_provider

    seen = []
    original = context_provider.identify_caller

    def spy(user_id):
        seen.append(user_id)
        original(user_id)

    import swordfish.api.routes as routes

    routes.identify_caller = spy
    try:
        _get(site, "/v1/tenants/acme-corp/verdicts", "sfk.acme-corp.0123456789ab.forged",
             **{"x-api-key": globex})
        _get(site, "/v1/tenants/acme-corp/verdicts", acme, **{"x-api-key": globex})
    finally:
        routes.identify_caller = original
    assert seen == [f"api-key:{acme.split('.')[2]}"]  # the forged key named nobody


def test_correlation_ids_are_validated(site):
    acme = site.api_key("acme-corp")
    for bad in ("x" * 8000, "<script>alert(1)</script>", "a b", "é"):
        response = _post(site, "/v1/tenants/acme-corp/submissions", {"raw_mime_b64": MIME}, acme,
                         **{"x-correlation-id": bad})
        assert response.status_code == 400, bad[:20]
    good = _post(site, "/v1/tenants/acme-corp/submissions", {"raw_mime_b64": MIME}, acme,
                 **{"x-correlation-id": "ticket-42:retry.1"})
    assert good.status_code == 202 and good.json()["correlation_id"] == "ticket-42:retry.1"


def test_bodies_that_are_not_json_get_415(site):
    acme = site.api_key("acme-corp")
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml", ""):
        response = requests.post(f"{site.url}/v1/tenants/acme-corp/submissions", data='{"raw_mime_b64": "eA=="}',
                                 headers={"Authorization": f"Bearer {acme}", "content-type": content_type}, timeout=20)
        assert response.status_code == 415, content_type


def test_deep_health_is_for_operators_and_scrubbed(site):
    assert _get(site, "/health/deep").status_code == 401
    assert _get(site, "/health/deep", site.api_key("acme-corp")).status_code == 401
    response = _get(site, "/health/deep", site.stack.operator_token)
    assert response.status_code in (200, 503)
    text = response.text
    assert "://" not in text and '"output"' not in text and "Traceback" not in text
    assert response.json()["checks"]


def test_batches_of_up_to_ten_are_queued_with_a_result_per_message(site):
    acme = site.api_key("acme-corp")
    messages = [{"raw_mime_b64": MIME, "message_id": f"batch-{i}"} for i in range(9)] + [{"raw_mime_b64": "!!"}]
    response = _post(site, "/v1/tenants/acme-corp/submissions/batch", {"messages": messages}, acme)
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 9 and body["rejected"] == 1
    assert [r["index"] for r in body["results"]] == list(range(10))
    assert body["results"][9]["error"].startswith("raw_mime_b64 is not valid base64")
    assert all(r["queue_message_id"] for r in body["results"][:9])
    too_many = _post(site, "/v1/tenants/acme-corp/submissions/batch", {"messages": messages + messages[:1]}, acme)
    assert too_many.status_code == 400
    other = _post(site, "/v1/tenants/globex/submissions/batch", {"messages": messages[:1]}, acme)
    assert other.status_code == 403
