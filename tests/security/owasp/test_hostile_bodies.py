"""Issue 26, item 1: a body that would crash the parser is refused with a 400 (413 past the size
bound), and a caller without a valid key learns nothing but 401: the key is checked before the
body is parsed."""

from __future__ import annotations

import base64

import requests

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit

MIME = base64.b64encode(b"From: a@acme.example\r\nSubject: hi\r\n\r\nhello\r\n").decode()
ROUTES = ("/v1/tenants/acme-corp/submissions", "/v1/tenants/acme-corp/submissions/batch",
          "/v1/tenants/acme-corp/verdicts/m-1/feedback", "/v1/tenants/acme-corp/verdicts/m-1/release")


def _post(site, path, data: str, key=None):
    headers = {"content-type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return requests.post(site.url + path, data=data, headers=headers, timeout=30)


def test_deeply_nested_json_gets_400_not_a_crash(site):
    deep = "[" * 1000 + "]" * 1000  # about 2 KB
    for path in ROUTES:
        response = _post(site, path, deep, site.api_key("acme-corp"))
        assert response.status_code == 400, (path, response.status_code, response.text[:200])
        assert "nest" in response.json()["message"]
    nested_in_a_field = '{"raw_mime_b64": ' + "[" * 500 + "]" * 500 + "}"
    assert _post(site, ROUTES[0], nested_in_a_field, site.api_key("acme-corp")).status_code == 400
    # Brackets inside strings are text, not nesting.
    text = '{"raw_mime_b64": "%s", "message_id": "%s"}' % (MIME, "[{" * 200)
    assert _post(site, ROUTES[0], text, site.api_key("acme-corp")).status_code == 202
    ok_depth = '{"messages": [{"raw_mime_b64": "%s", "message_id": "depth-ok"}]}' % MIME
    assert _post(site, ROUTES[1], ok_depth, site.api_key("acme-corp")).status_code == 202


def test_without_a_valid_key_the_body_is_never_parsed(site):
    deep = "[" * 1000 + "]" * 1000
    for key in (None, "sfk.acme-corp.0123456789ab.wrong"):
        for path in ROUTES:
            response = _post(site, path, deep, key)
            assert response.status_code == 401, (path, key, response.status_code)
    # ... and the wrong key is counted against the source like any other failed authentication.
    from swordfish import wiring

    limiter = wiring.api_dependencies().rate_limiter
    assert limiter._peek("auth-fail:127.0.0.1")[0] >= len(ROUTES)
    assert _post(site, ROUTES[0], deep, site.api_key("globex")).status_code == 403


def test_a_body_past_the_size_bound_is_refused_before_parsing(site):
    """The gateway (and API Gateway) stop bodies over 10 MB; the handler bounds them itself too,
    for whatever invokes it directly."""
    from handlers import api

    from devstack.gateway import FakeLambdaContext, to_proxy_event

    huge = ('{"raw_mime_b64": "' + "A" * MAX_BODY_BYTES + '"}').encode()
    headers = {"content-type": "application/json", "authorization": f"Bearer {site.api_key('acme-corp')}"}
    event = to_proxy_event("POST", ROUTES[0], headers, huge, "127.0.0.1")
    response = api.handler(event, FakeLambdaContext(function_name="swordfish-api"))
    assert response["statusCode"] == 413 and "bytes" in response["body"]
