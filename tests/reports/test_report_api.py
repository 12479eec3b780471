"""GET /v1/tenants/<t>/reports through the local gateway and the API Lambda's handler: JSON, HTML
(its own CSP) and PDF of the same figures; a key only reads its own tenant's report; a bad period
or format is a 400 that says why; the route is in the OpenAPI document."""

from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
from pypdf import PdfReader

from devstack.gateway import make_server
from tests.reports.conftest import HOSTILE_RECIPIENT, PERIOD, quarantine, seed_mail, week_of_mail

WEEK = f"from={PERIOD[0]}&to={PERIOD[1]}"


@pytest.fixture()
def gateway(stack_env):
    from handlers import api
    from swordfish import wiring

    urls = SimpleNamespace(owner_url=stack_env.info.owner_url, superuser_url=stack_env.info.superuser_url)
    seed_mail(urls, week_of_mail())
    quarantine(urls, "acme-corp", "phish-1", week_of_mail()[10].at)
    wiring.reset()
    server = make_server(api.handler, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", {**stack_env.info.api_keys,
                                                          "operator": stack_env.operator_token}
    server.shutdown()
    server.server_close()
    wiring.reset()


def get(url: str, key: str | None):
    request = urllib.request.Request(url, headers={"authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_json_html_and_pdf_of_the_same_week(gateway):
    from swordfish.reports.render import STYLE_HASH

    url, keys = gateway
    status, headers, body = get(f"{url}/v1/tenants/acme-corp/reports?{WEEK}", keys["acme-corp"])
    assert status == 200, body
    report = json.loads(body)
    assert (report["total"], report["threats"], report["previous_total"]) == (16, 6, 7)
    assert report["period"] == {"from": "2026-11-23", "to": "2026-11-29"}
    assert report["recipients"][0] == {"name": "pat@acme.example", "messages": 3}
    assert report["remediation"] == {"quarantined": 1, "released": 0, "held": 1}

    status, headers, body = get(f"{url}/v1/tenants/acme-corp/reports?{WEEK}&format=html", keys["acme-corp"])
    html = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert f"style-src '{STYLE_HASH}'" in headers["Content-Security-Policy"]
    assert "script-src" not in headers["Content-Security-Policy"]
    assert 'id="figure-total">16<' in html and HOSTILE_RECIPIENT not in html and "&lt;script&gt;" in html

    status, headers, body = get(f"{url}/v1/tenants/acme-corp/reports?{WEEK}&format=pdf", keys["acme-corp"])
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert 'filename="swordfish-report-acme-corp-2026-11-23-2026-11-29.pdf"' in headers["Content-Disposition"]
    text = " ".join(PdfReader(io.BytesIO(body)).pages[0].extract_text().split())
    assert "16 messages analysed (7 before)" in text and "6 threats stopped or flagged" in text


def test_a_key_reads_only_its_own_tenants_report_and_bad_input_is_a_400(gateway):
    url, keys = gateway
    assert get(f"{url}/v1/tenants/acme-corp/reports?{WEEK}", keys["globex"])[0] == 403
    assert get(f"{url}/v1/tenants/acme-corp/reports?{WEEK}", None)[0] == 401
    status, _, body = get(f"{url}/v1/tenants/globex/reports?{WEEK}", keys["globex"])
    assert status == 200 and json.loads(body)["total"] == 5
    for query, problem in (("from=2026-11-30&to=2026-11-01", "from must not be after to"),
                           ("from=yesterday", "from must be a date"),
                           ("from=2020-01-01&to=2026-01-01", "at most 366 days"),
                           ("from=2026-11-01%00", "from"),
                           ("format=xml", "format"),
                           (WEEK + "&format=", "format")):
        status, _, body = get(f"{url}/v1/tenants/acme-corp/reports?{query}", keys["acme-corp"])
        assert status == 400, (query, body)
        assert problem in json.loads(body)["message"], (query, body)


def test_msp_staff_read_any_tenants_report_with_the_operator_token(gateway):
    url, keys = gateway
    for tenant, total in (("acme-corp", 16), ("globex", 5)):
        status, _, body = get(f"{url}/v1/msp/tenants/{tenant}/reports?{WEEK}", keys["operator"])
        assert status == 200 and json.loads(body)["total"] == total
    status, headers, body = get(f"{url}/v1/msp/tenants/globex/reports?{WEEK}&format=pdf", keys["operator"])
    assert status == 200 and body.startswith(b"%PDF-")
    assert get(f"{url}/v1/msp/tenants/acme-corp/reports?{WEEK}", keys["acme-corp"])[0] == 401  # a tenant's key
    assert get(f"{url}/v1/msp/tenants/initech/reports?{WEEK}", keys["operator"])[0] == 404
    assert get(f"{url}/v1/msp/tenants/..%2Facme/reports?{WEEK}", keys["operator"])[0] == 404
    assert get(f"{url}/v1/msp/tenants/acme-corp/reports?from=x", keys["operator"])[0] == 400


def test_the_route_is_in_the_openapi_document(gateway):
    url, _ = gateway
    status, _, body = get(f"{url}/openapi.json", None)
    route = json.loads(body)["paths"]["/v1/tenants/{tenant_id}/reports"]["get"]
    assert {p["name"] for p in route["parameters"]} >= {"tenant_id", "from", "to", "format"}
    assert {"application/json", "text/html", "application/pdf"} <= set(route["responses"]["200"]["content"])


def test_a_route_may_narrow_the_apis_csp_never_widen_it():
    from swordfish.security.headers import API_CSP, add_api_headers

    def csp_of(route_csp: str) -> str:
        response = {"statusCode": 200, "multiValueHeaders": {"Content-Security-Policy": [route_csp]}}
        return add_api_headers(response)["headers"]["Content-Security-Policy"]

    narrow = "default-src 'none'; style-src 'sha256-abc='; frame-ancestors 'none'"
    assert csp_of(narrow) == narrow
    for wider in ("default-src 'none'; script-src 'self'", "default-src 'none'; style-src 'unsafe-inline'",
                  "default-src *", ""):
        assert csp_of(wider) == API_CSP, wider
