"""Search, trace and campaigns through the API (issue 28), on the embedded stack: mail submitted to
three tenants through the API, analysed by the real pipeline; a tenant's key searches its own
traces only, the operator token every tenant; the shared lure is a campaign as soon as the batch
with the third tenant's copy is committed."""

from __future__ import annotations

import base64
import csv
import io
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
import pytest

from devstack.gateway import make_server
from tests.pipeline.helpers import failed_ids, invoke, receive_event

LURE = (Path(__file__).resolve().parents[2] / "samples" / "swordfish" / "m365-password-expiry-phish.eml").read_bytes()
THIRD = "initech"


@pytest.fixture()
def gateway(stack_env):
    from handlers import api
    from swordfish import wiring
    from swordfish.store.tenants import create_api_key, ensure_tenant

    with psycopg.connect(stack_env.info.owner_url, prepare_threshold=None) as conn, conn.transaction():
        ensure_tenant(conn, THIRD, "Initech", {"domains": ["initech.example"]})
        third_key = create_api_key(conn, THIRD, "search-test").plaintext
    wiring.reset()
    server = make_server(api.handler, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    keys = {**stack_env.info.api_keys, THIRD: third_key}
    yield f"http://127.0.0.1:{server.server_address[1]}", stack_env, keys
    server.shutdown()
    server.server_close()
    wiring.reset()


def call(url: str, key: str | None = None, method: str = "GET", body: dict | None = None):
    import json

    headers = {"content-type": "application/json", **({"authorization": f"Bearer {key}"} if key else {})}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            raw = response.read()
            kind = response.headers.get("content-type", "")
            return response.status, (raw.decode() if kind.startswith("text/csv") else json.loads(raw or b"{}"))
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def submit_lure(url: str, keys: dict, stack) -> None:
    for tenant in ("acme-corp", "globex", THIRD):
        status, _ = call(f"{url}/v1/tenants/{tenant}/submissions", keys[tenant], "POST",
                         {"raw_mime_b64": base64.b64encode(LURE).decode(), "message_id": f"lure-{tenant}",
                          "envelope_recipients": [f"pat@{tenant}.example"]})
        assert status == 202
    assert failed_ids(invoke(receive_event(stack, 3))) == set()


def test_a_tenant_key_searches_its_own_traces_and_the_operator_every_tenants(gateway):
    url, stack, keys = gateway
    submit_lure(url, keys, stack)
    q = urllib.parse.urlencode({"recipient": "pat@globex.example"})
    status, page = call(f"{url}/v1/tenants/globex/search?{q}", keys["globex"])
    assert status == 200 and [r["message_id"] for r in page["results"]] == ["lure-globex"]
    hit = page["results"][0]
    assert hit["envelope_recipients"] == ["pat@globex.example"] and hit["link_domains"]
    assert hit["verdict_url"] == "/v1/tenants/globex/verdicts/lure-globex"
    assert call(f"{url}{hit['verdict_url']}", keys["globex"])[0] == 200
    # Another tenant's recipient through this tenant's key: nothing, not an error.
    q = urllib.parse.urlencode({"recipient": "pat@acme-corp.example"})
    assert call(f"{url}/v1/tenants/globex/search?{q}", keys["globex"]) == (200, {"results": [], "next_cursor": None})
    # MSP-wide: the operator token, never a tenant's key.
    domain = hit["link_domains"][0]
    q = urllib.parse.urlencode({"link_domain": domain, "verdict": "phishing,suspicious,malware,spam,clean"})
    assert call(f"{url}/v1/msp/search?{q}", keys["globex"])[0] == 401
    status, page = call(f"{url}/v1/msp/search?{q}&limit=2", stack.operator_token)
    assert status == 200 and len(page["results"]) == 2 and page["next_cursor"]
    status, rest = call(f"{url}/v1/msp/search?{q}&limit=2&cursor={page['next_cursor']}", stack.operator_token)
    assert status == 200 and len(rest["results"]) == 1 and rest["next_cursor"] is None
    assert {r["tenant_id"] for r in page["results"] + rest["results"]} == {"acme-corp", "globex", THIRD}
    status, text = call(f"{url}/v1/msp/search/csv?{urllib.parse.urlencode({'link_domain': domain})}",
                        stack.operator_token)
    rows = list(csv.reader(io.StringIO(text)))
    assert status == 200 and rows[0][:2] == ["tenant_id", "message_id"] and len(rows) == 4


@pytest.mark.parametrize("query", ["verdict=evil", "sending_ip=1.2.3", "attachment_sha256=zz", "min_score=abc",
                                   "cursor=nonsense", "since=yesterday", "reason=lower%20case",
                                   "min_score=9&max_score=1", "url=not-a-url", "recipient=a%00b", "limit=0"])
def test_bad_search_input_is_a_clear_400(gateway, query):
    url, _, keys = gateway
    status, body = call(f"{url}/v1/tenants/globex/search?{query}", keys["globex"])
    assert status == 400 and body["message"], body


def test_the_lure_is_a_campaign_as_soon_as_the_third_tenant_has_it(gateway):
    url, stack, keys = gateway
    submit_lure(url, keys, stack)
    status, page = call(f"{url}/v1/msp/campaigns", stack.operator_token)
    assert status == 200 and page["campaigns"], page
    kinds = {c["kind"] for c in page["campaigns"]}
    assert "link_domain" in kinds and all(c["tenant_count"] == 3 for c in page["campaigns"])
    status, detail = call(f"{url}/v1/msp/campaigns/{page['campaigns'][0]['campaign_id']}", stack.operator_token)
    assert status == 200 and detail["tenants"] == sorted(["acme-corp", "globex", THIRD])
    assert {m["address"] for m in detail["mailboxes"]} == {f"pat@{t}.example" for t in ("acme-corp", "globex", THIRD)}
    assert sum(detail["verdict_mix"].values()) == 3 and detail["reasons"]
    assert call(f"{url}/v1/msp/campaigns/999999", stack.operator_token)[0] == 404
    assert call(f"{url}/v1/msp/campaigns/x'1", stack.operator_token)[0] == 404
    assert call(f"{url}/v1/msp/campaigns", keys["globex"])[0] == 401
